#!/usr/bin/env bash
# Every long option a tool accepts is documented where a user looks: its
# --help lists it on an option line and its man page has it in an item's
# tag (the line after .TP).  The options are read from the getopt_long
# table in the tool's source, so a new option with no help or man entry,
# or one dropped from either, fails here; and the other way round, an
# option the help or the man page documents must be in the table (one
# removed from the code is removed from the documentation too).  Last,
# the checker is shown to catch an option left out of --help, one left out
# of the man page, and one documented that the tool does not take.
cd "$(dirname "$0")/../.."
source tests/cli/lib.bash

# The file holding a tool's `struct option` table: the tool's own source,
# or, for the two tools that parse their options in the library, that
# file.
options_source() {
    case "$1" in
        ravel-pairs) echo common/ravel/ravel_options.c ;;
        hd-train) echo common/train/train_cli.c ;;
        *) echo "tools/$1.c" ;;
    esac
}

# The long option names of the table in FILE, one a line.
long_options() {
    awk '/struct option/ { in_table = 1 }
         in_table {
             line = $0
             while (match(line, /\{"[a-z0-9][a-z0-9-]*",/)) {
                 print substr(line, RSTART + 2, RLENGTH - 4)
                 line = substr(line, RSTART + RLENGTH)
             }
         }
         in_table && /};/ { in_table = 0 }' "$1"
}

# Option lines of a --help text: a line that starts, indented by at most
# eight spaces, with a dash (a description's continuation is indented
# further, so an option it mentions does not count).
help_option_lines() { grep -E '^ {0,8}-' "$1"; }

# Item tags of a man page (the line after each .TP), with roff's \- made
# plain dashes and font escapes removed.
man_option_lines() {
    awk 'tag { print; tag = 0 } /^\.TP/ { tag = 1 }' "$1" |
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g'
}

# has_option FILE NAME: --NAME occurs in FILE as a whole option name
# (--max does not match --max-len).
has_option() { grep -qE -- "--$2([^a-z0-9-]|\$)" "$1"; }

# undocumented TOOL HELP_FILE MAN_FILE: one line per option of TOOL's
# table missing from the help text or from the man page.
undocumented() {
    local tool=$1 help=$2 man=$3 opt
    help_option_lines "$help" >"$TMP/help.lines"
    man_option_lines "$man" >"$TMP/man.lines"
    while IFS= read -r opt; do
        has_option "$TMP/help.lines" "$opt" || echo "$tool: --$opt is not in --help"
        has_option "$TMP/man.lines" "$opt" || echo "$tool: --$opt is not in man/man1/$tool.1"
    done < <(long_options "$(options_source "$tool")")
}

# stale TOOL HELP_FILE MAN_FILE: one line per option documented but not in
# the table: the first long option of each help option line (the rest of
# such a line may mention another tool's option), every one in a man
# page's item tags.
stale() {
    local tool=$1 help=$2 man=$3 opt
    long_options "$(options_source "$tool")" >"$TMP/table"
    while IFS= read -r opt; do
        grep -qxF -- "$opt" "$TMP/table" || echo "$tool: --help documents --$opt, which it does not take"
    done < <(help_option_lines "$help" | sed -nE 's/^[^-]*(-[A-Za-z0-9], )?--([a-z0-9][a-z0-9-]*).*/\2/p' | sort -u)
    while IFS= read -r opt; do
        grep -qxF -- "$opt" "$TMP/table" || echo "$tool: man/man1/$tool.1 documents --$opt, which it does not take"
    done < <(man_option_lines "$man" | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sed 's/^--//' | sort -u)
}

none_in() { cat "$1"; test ! -s "$1"; }

tools=$(cd tools && ls *.c | sed 's/\.c$//')
for tool in $tools; do
    src=$(options_source "$tool")
    long_options "$src" >"$TMP/$tool.options"
    check "$tool: $src has a getopt_long table" test -s "$TMP/$tool.options"
    check "$tool: the man page exists" test -f "man/man1/$tool.1"
    "$BIN/$tool" --help >"$TMP/$tool.help" 2>&1
    undocumented "$tool" "$TMP/$tool.help" "man/man1/$tool.1" >"$TMP/$tool.missing"
    check "$tool: every long option is in --help and man/man1/$tool.1" none_in "$TMP/$tool.missing"
    stale "$tool" "$TMP/$tool.help" "man/man1/$tool.1" >"$TMP/$tool.stale"
    check "$tool: --help and man/man1/$tool.1 document only options it takes" none_in "$TMP/$tool.stale"
done

# The checker itself: an option line dropped from the help text, an item
# tag dropped from the man page, and an option documented that the table
# lacks, are each reported.
export -f long_options options_source help_option_lines man_option_lines has_option undocumented stale
export TMP
grep -vE -- '--known-out' "$TMP/hd-filter.help" >"$TMP/broken.help"
awk '/^\.TP/ { held = $0; next }
     held != "" { if ($0 !~ /known-out/) print held "\n" $0; held = ""; next }
     { print }' man/man1/hd-filter.1 >"$TMP/broken.1"
check "the checker catches an option missing from --help" \
    bash -c 'undocumented hd-filter "$1" man/man1/hd-filter.1 | grep -qx "hd-filter: --known-out is not in --help"' \
    _ "$TMP/broken.help"
check "the checker catches an option missing from the man page" \
    bash -c 'undocumented hd-filter "$1" "$2" | grep -qx "hd-filter: --known-out is not in man/man1/hd-filter.1"' \
    _ "$TMP/hd-filter.help" "$TMP/broken.1"
{ cat "$TMP/hd-filter.help"; echo "      --bogus N         not an option"; } >"$TMP/stale.help"
check "the checker catches an option documented in --help that the table lacks" \
    bash -c 'stale hd-filter "$1" man/man1/hd-filter.1 | grep -qx "hd-filter: --help documents --bogus, which it does not take"' \
    _ "$TMP/stale.help"
done_testing
