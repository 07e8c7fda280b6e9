#!/usr/bin/env bash
# The layout of common/ and kernels/ (common/README): one folder per
# subsystem, each allowed to include only the folders its README names on
# its `May include:` line; those lines form no cycle; kernels/ includes
# nothing from common/; every quoted include names its folder.  Last, the
# checker is shown to catch a planted upward include and a kernel that
# reaches into common/.
cd "$(dirname "$0")/../.."
source tests/cli/lib.bash

# layout_violations ROOT: one line per violation under ROOT, none when the
# layout holds.
layout_violations() {
    local root=$1 dir f inc folder target allowed
    declare -A may
    for dir in "$root"/common/*; do
        folder=${dir##*/}
        if [ ! -d "$dir" ]; then
            [ "$folder" = README ] || echo "common/$folder: a file outside the subsystem folders"
            continue
        fi
        if ! allowed=$(grep -m1 '^May include:' "$dir/README" 2>/dev/null); then
            echo "common/$folder: no README with a 'May include:' line"
            continue
        fi
        may[$folder]=" ${allowed#May include:} "
    done
    # The declared graph: only real folders, and no cycle (tsort).
    local pairs=""
    for folder in "${!may[@]}"; do
        for target in ${may[$folder]}; do
            if [ "$target" != kernels ] && [ -z "${may[$target]+x}" ]; then
                echo "common/$folder/README: may include '$target', which is no folder"
            fi
            pairs+="$folder $target"$'\n'
        done
    done
    if ! printf '%s' "$pairs" | tsort >/dev/null 2>"$TMP/tsort.err"; then
        echo "common/*/README: the 'May include:' lines form a cycle: $(tr '\n' ' ' <"$TMP/tsort.err")"
    fi
    # Each quoted include: where it resolves, and whether that is allowed.
    while IFS= read -r f; do
        local rel=${f#"$root"/} area=${f#"$root"/}
        area=${area%%/*}
        folder=""
        [ "$area" = common ] && { folder=${rel#common/}; folder=${folder%%/*}; }
        while IFS= read -r inc; do
            if [ "$area" = kernels ]; then
                if [ -f "$(dirname "$f")/$inc" ] || [ -f "$root/kernels/$inc" ]; then continue; fi
                echo "$rel: includes \"$inc\", which is not in kernels/"
                continue
            fi
            if [ -f "$root/common/$inc" ] && [[ $inc == */* ]]; then
                target=${inc%%/*}
            elif [ -f "$root/kernels/$inc" ]; then
                target=kernels
            elif [ "$area" != common ] && [ -f "$(dirname "$f")/$inc" ]; then
                continue   # a test's or tool's own helper header
            else
                echo "$rel: includes \"$inc\", which is neither common/FOLDER/NAME nor in kernels/"
                continue
            fi
            [ "$area" = common ] || continue
            [ "$target" = "$folder" ] && continue
            case "${may[$folder]-}" in
                *" $target "*) ;;
                *) echo "$rel: includes \"$inc\" but common/$folder/README does not allow $target" ;;
            esac
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
    done < <(find "$root/common" "$root/kernels" "$root/tools" "$root/tests" "$root/bench" \
                  -path "$root/tests/fixtures" -prune -o \
                  -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print | sort)
}

# check runs its command in a subshell of this one, so these see the function.
none_in() { cat "$1"; test ! -s "$1"; }
catches() { layout_violations "$1" | grep -qF "$2"; }

layout_violations . >"$TMP/violations"
check "common/ and kernels/ include only downwards" none_in "$TMP/violations"
check "every common/ folder has a README with its 'May include:' line" \
    bash -c '! grep -q "README\|a file outside" "$1"' _ "$TMP/violations"
check "no include in kernels/ reaches into common/" \
    bash -c '! grep -q "^kernels/" "$1"' _ "$TMP/violations"

# The checker itself, on copies with one planted violation each.
mkdir -p "$TMP/up" "$TMP/kern" "$TMP/cycle"
cp -r common kernels tools bench "$TMP/up/"
mkdir -p "$TMP/up/tests" && cp tests/*.[ch] "$TMP/up/tests/" && cp -r tests/fuzz "$TMP/up/tests/"
cp -r "$TMP/up/." "$TMP/kern/"
cp -r "$TMP/up/." "$TMP/cycle/"
sed -i '1i #include "score/score_match.h"' "$TMP/up/common/stream/records.c"
sed -i '1i #include "base/error.h"' "$TMP/kern/kernels/cpu/rope.c"
sed -i 's/^May include:.*/& score/' "$TMP/cycle/common/base/README"
check "the checker catches stream/ including score/ (upwards)" \
    catches "$TMP/up" 'common/stream/records.c: includes "score/score_match.h" but'
check "the checker catches a kernel including base/error.h" \
    catches "$TMP/kern" 'kernels/cpu/rope.c: includes "base/error.h", which is not in kernels/'
check "the checker catches a cycle among the READMEs" \
    catches "$TMP/cycle" "form a cycle"
done_testing
