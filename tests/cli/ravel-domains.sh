#!/usr/bin/env bash
# ravel-pairs on a domain of one's own (data/country, and damaged copies of
# it): optional split and Wikipedia files, the hash split, clear errors;
# and RAVEL's five domains byte for byte as before custom domains existed.
source tests/cli/lib.bash
RP=$BIN/ravel-pairs
export SOURCE_DATE_EPOCH=1700000000
set -o pipefail

# The exact bytes of fixed commands on the bundled RAVEL data.  The sums
# were taken with the ravel-pairs of commit 4d7340c (the last one before
# domains of one's own), run as below: argv[0] fixed (the header records
# the command line) and the version string masked (the header records it
# too), so that only the records and the rest of the header count.
ravel_sum() {
    ( exec -a ravel-pairs "$RP" --data data/ravel "$@" ) | LC_ALL=C sed 's/0\.1\.0/VERSION/g' |
        sha256sum | cut -c1-64
}
same_as_before() {
    local want=$1
    shift
    local got
    got=$(ravel_sum "$@") || { echo "ravel-pairs $* failed"; return 1; }
    [ "$got" = "$want" ] || { echo "ravel-pairs $*: sha256 $got, before $want"; return 1; }
}
check "city, three splits: the same bytes as before" same_as_before \
    bdadad3d55f4d350f1b39e5c9cc43f5a327b4a3d40033e6530d33d2d6a3a0ade \
    --domain city -n 40 --split train,val,test --seed 7
check "nobel_prize_winner, split type both, val as test: the same bytes" same_as_before \
    4c603cb62de0e6ee1f2b45741a252394cea676072b69dc4eb94fd4e3d9ba7273 \
    --domain nobel_prize_winner -n 30 --split-type both --split test --val-as-test
check "occupation, every val pair of the entity split: the same bytes" same_as_before \
    fa3e3d270b224bdd9072fe7c259f881e6aef47308c5c6221ac902b8b9400934e \
    --domain occupation -n all --split val --split-type entity
check "physical_object queries: the same bytes" same_as_before \
    c4059a5959ce15977712eb712dec4390ff30866b1e30f07a06e24c34449473cf \
    --domain physical_object --queries -n 50 --split train,test
check "verb with Wikipedia sources: the same bytes" same_as_before \
    b1df03f48fef877fab9e36ba793af294faebecd4dc85b6d38a9bfef14f096efd \
    --domain verb -n 30 --prompts wikipedia
check "two domains, iso ratio 2:1, different targets: the same bytes" same_as_before \
    8a279c00f4202df3cbc576b2cdb1b3a1dbba7db3d912577677d4cd7065370fb7 \
    --domain city,verb -n 20 --iso-ratio 2:1 --iso-require-diff-target
check "--count-only over the five domains: the same bytes" same_as_before \
    f1b0b12855ae7cb35f9e04f9ba6a198f34edfae6166d49ecceeec973611b15c4 \
    --count-only --domain city,nobel_prize_winner,occupation,physical_object,verb --split train,val,test

C=data/country
records() { $BIN/hd-cat "$@" | grep -v '"t":"header"'; }

country_pairs() {
    $RP --data $C --domain country -n 20 --split train,val,test -o "$TMP/c.mp" || return 1
    # 2 targets x 20 records x 3 splits
    [ "$($BIN/hd-cat --count "$TMP/c.mp")" = 120 ] || { echo "not 120 records"; return 1; }
    $BIN/hd-cat --header "$TMP/c.mp" >"$TMP/h.json"
    jq -e '.data_files["ravel_country_entity_to_split.json"] == null and
           .data_files["wikipedia_country_entity_prompts.json"] == null and
           (.data_files["ravel_country_entity_attributes.json"] | length) == 64 and
           .hash_split.val == 0.2 and .hash_split.test == 0.2' "$TMP/h.json" >/dev/null ||
        { cat "$TMP/h.json"; return 1; }
    $BIN/hd-cat "$TMP/c.mp" | grep '"t":"pair"' >"$TMP/c.jsonl"
    # the records name the domain; labels are the entities' values
    jq -e -s --slurpfile e $C/ravel_country_entity_attributes.json \
        'all(.[]; .domain == "country" and .source_template_kind == "attribute" and
                  .instruction == (.base_entity + " ; " + .source_entity + " - " + .target_attribute) and
                  (if .kind == "causal" then .label == $e[0][.source_entity][.target_attribute]
                   else .label == $e[0][.base_entity][.queried_attribute] end))' \
        "$TMP/c.jsonl" >/dev/null || { head -2 "$TMP/c.jsonl"; return 1; }
}
check "a domain of one's own: pairs, labels, header" country_pairs

# The hash split sends no template to two splits, and with the defaults
# each attribute's six templates split 4 / 1 / 1.
hash_split() {
    $RP --data $C --domain country --queries --split train,val,test | $BIN/hd-cat | grep '"t":"query"' |
        jq -r '[.split, .attribute, .template] | @tsv' | sort -u >"$TMP/t.tsv" || return 1
    [ "$(cut -f3 "$TMP/t.tsv" | sort | uniq -d | wc -l)" = 0 ] || { echo "a template in two splits"; return 1; }
    [ "$(cut -f1,2 "$TMP/t.tsv" | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')" = "1 1 4 4 1 1 " ] ||
        { cat "$TMP/t.tsv"; return 1; }
    # --test-frac 0.5: three test templates per attribute
    [ "$($RP --data $C --domain country --queries --split test --test-frac 0.5 | $BIN/hd-cat |
         grep '"t":"query"' | jq -r .template | sort -u | wc -l)" = 6 ] || return 1
    # entities: --split-type entity, 45 entities -> 27 / 9 / 9
    $RP --data $C --domain country --count-only --split-type entity --split train,val,test |
        awk -F'\t' '$4 == "causal" && $3 == "Capital" { printf "%s ", $6 }' | grep -qx '27 9 9 '
}
check "the hash split: disjoint, the documented counts, --test-frac" hash_split

# Split files written to agree with the hash split give the same records:
# the files are optional, and when present they rule.
split_files_agree() {
    rm -rf "$TMP/cd" && cp -r $C "$TMP/cd" && chmod -R u+w "$TMP/cd"
    $RP --data $C --domain country --count-only --split-type entity --split train,val,test >/dev/null || return 1
    # write the hash split out as split files, via the queries of each split
    for s in train val test; do
        $RP --data $C --domain country --queries --split-type both --split $s | $BIN/hd-cat | grep '"t":"query"' |
            jq -r --arg s "$s" '[.entity, .template, $s] | @tsv'
    done >"$TMP/splits.tsv"
    jq -R -s 'split("\n") | map(select(length > 0) | split("\t")) | map({(.[0]): .[2]}) | add' \
        "$TMP/splits.tsv" >"$TMP/cd/ravel_country_entity_to_split.json" || return 1
    jq -R -s 'split("\n") | map(select(length > 0) | split("\t")) | map({(.[1]): .[2]}) | add' \
        "$TMP/splits.tsv" >"$TMP/cd/ravel_country_prompt_to_split.json" || return 1
    records <($RP --data $C --domain country -n 30 --split-type both --split train,test) >"$TMP/a.jsonl" || return 1
    records <($RP --data "$TMP/cd" --domain country -n 30 --split-type both --split train,test) | cmp - "$TMP/a.jsonl" ||
        return 1
    # and a split file that says otherwise changes them
    sed -i 's/"val"/"train"/' "$TMP/cd/ravel_country_entity_to_split.json"
    ! records <($RP --data "$TMP/cd" --domain country -n 30 --split-type both --split train,test) |
        cmp -s - "$TMP/a.jsonl"
}
check "split files that agree with the hash split give the same records" split_files_agree

# The same domain written in another key order gives the same records
# (the header differs: it has the files' checksums).
key_order() {
    rm -rf "$TMP/co" && mkdir "$TMP/co"
    for f in $C/ravel_country_*.json; do
        jq 'to_entries | reverse | map(.value |= (if type == "array" then reverse else . end)) | from_entries' \
            "$f" >"$TMP/co/$(basename "$f")" || return 1
    done
    cmp -s $C/ravel_country_entity_attributes.json "$TMP/co/ravel_country_entity_attributes.json" && return 1
    records <($RP --data $C --domain country -n 40 --split train,test) >"$TMP/a.jsonl" &&
    records <($RP --data "$TMP/co" --domain country -n 40 --split train,test) | cmp - "$TMP/a.jsonl"
}
check "file order does not matter" key_order

one_line_error() {   # status pattern command...
    local want=$1 pattern=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local st=$?
    cat "$TMP/err"
    [ "$st" -eq "$want" ] || { echo "exit status $st, wanted $want"; return 1; }
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || { echo "stderr is not one line"; return 1; }
    grep -q -- "$pattern" "$TMP/err" || { echo "no match for: $pattern"; return 1; }
}
damaged() {   # jq-filter file-suffix: a copy of data/country with one file changed
    rm -rf "$TMP/bad" && cp -r $C "$TMP/bad" && chmod -R u+w "$TMP/bad"
    jq "$1" "$C/ravel_country_$2.json" >"$TMP/bad/ravel_country_$2.json"
}

check "an unknown domain lists the domains of the directory" one_line_error 2 \
    "unknown domain 'fruit' (valid: country): no ravel_fruit_entity_attributes.json in $C" \
    $RP --data $C --domain fruit
missing_value() {
    damaged 'del(.France.Language)' entity_attributes
    one_line_error 1 "ravel_country_entity_attributes.json: entity 'France' has no value for attribute 'Language'" \
        $RP --data "$TMP/bad" --domain country
}
check "an entity without a value names the file, entity and attribute" missing_value
no_slot() {
    damaged '.Capital[0] = "The capital is"' attribute_to_prompts
    one_line_error 1 "ravel_country_attribute_to_prompts.json: attribute 'Capital': template 'The capital is' does not contain exactly one %s" \
        $RP --data "$TMP/bad" --domain country
}
check "a template without %s names the file and template" no_slot
one_value() {
    damaged 'map_values(.Language = "Esperanto")' entity_attributes
    one_line_error 1 "ravel_country_entity_attributes.json: attribute 'Language' has one value ('Esperanto') for every entity" \
        $RP --data "$TMP/bad" --domain country
}
check "an attribute with one value is refused" one_value
typo() {
    damaged '{Capital: .Capital, Lingo: .Language}' attribute_to_prompts
    one_line_error 1 "ravel_country_attribute_to_prompts.json: no template for attribute 'Language'" \
        $RP --data "$TMP/bad" --domain country
}
check "values without templates (a misspelt attribute) are refused" typo
usage_error() {   # pattern command...: status 2, the message first on stderr (then "try --help")
    local pattern=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local st=$?
    cat "$TMP/err"
    [ "$st" -eq 2 ] && head -1 "$TMP/err" | grep -q -- "$pattern" && [ ! -s "$TMP/out" ]
}
check "a fraction out of range" usage_error "--val-frac: expected a fraction" \
    $RP --data $C --domain country --val-frac 1.5
check "--val-frac + --test-frac leave nothing for train" usage_error "must leave a share for train" \
    $RP --data $C --domain country --val-frac 0.5 --test-frac 0.5
no_val() {
    one_line_error 1 "ravel_country_entity_attributes.json (hash split: --val-frac 0 --test-frac 0.2): no entity of split 'val'" \
        $RP --data $C --domain country --val-frac 0 --split val --split-type entity
}
check "an empty hash split names the rule that emptied it" no_val

done_testing
