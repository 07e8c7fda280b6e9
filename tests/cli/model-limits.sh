# A model whose config.json implies more weights than its shards hold, and
# lengths beyond the model's positions: each refused at once with one line
# naming the file or the option, never after allocating for them.
source tests/cli/lib.bash
FIX=tests/fixtures/tiny-llama-f32
# 4 GB of address space: far below the 31 GB the wide config implies, yet
# room for the CUDA libraries a default build maps at start (libcublasLt
# alone fails to load under 600 MB).  AddressSanitizer reserves terabytes
# of address space: no ulimit under it.
VLIMIT="ulimit -v 4000000"
ldd $BIN/hd-generate 2> /dev/null | grep -q libasan && VLIMIT=:
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# hidden_size 16384 and intermediate_size 53248 over the 64-wide shards:
# about 31 GB of fp32 weights the loader would otherwise calloc first
cp -r $FIX $TMP/big
jq '.hidden_size = 16384 | .intermediate_size = 53248' $FIX/config.json > $TMP/big/config.json
check "a config wider than its shards: refused before allocating, naming the files" bash -c "
    ($VLIMIT; timeout 60 $BIN/hd-generate --model $TMP/big hello) > /dev/null 2> $TMP/err; [ \$? = 1 ] &&
    cat $TMP/err && [ \$(wc -l < $TMP/err) = 1 ] &&
    grep -qx \"hd-generate: $TMP/big/config.json does not match the weights: $TMP/big/model-00001-of-00003.safetensors: tensor 'model.embed_tokens.weight' has shape \\[256, 64\\], but config.json implies \\[256, 16384\\]\" $TMP/err"
# one layer more than the shards hold: named as the missing tensor
jq '.num_hidden_layers = 4' $FIX/config.json > $TMP/big/config.json
check "a config with more layers than the shards: the missing tensor, before allocating" bash -c "
    ($VLIMIT; timeout 60 $BIN/hd-generate --model $TMP/big hello) > /dev/null 2> $TMP/err; [ \$? = 1 ] &&
    cat $TMP/err && grep -q \"config.json does not match the weights: $TMP/big: no tensor 'model.layers.3.input_layernorm.weight'\" $TMP/err"

# max_position_embeddings 32: longer sequences are refused by option name
cp -r $FIX $TMP/short
jq '.max_position_embeddings = 32' $FIX/config.json > $TMP/short/config.json
check "hd-generate --tokens beyond max_position_embeddings: refused, naming the option" bash -c "
    ! $BIN/hd-generate --model $TMP/short --tokens 100 hello > /dev/null 2> $TMP/err && cat $TMP/err &&
    grep -q -- '--tokens 100 is beyond the model.s max_position_embeddings 32 ($TMP/short/config.json)' $TMP/err"
check "hd-generate: a prompt plus --tokens beyond max_position_embeddings is refused" bash -c "
    ! $BIN/hd-generate --model $TMP/short --tokens 30 'a longer prompt' > /dev/null 2> $TMP/err && cat $TMP/err &&
    grep -q -- 'prompt 1: .* tokens: the prompt plus --tokens .* is beyond the model.s max_position_embeddings 32' $TMP/err"
check "hd-generate within max_position_embeddings still runs" bash -c "
    $BIN/hd-generate --model $TMP/short --tokens 4 hi > /dev/null"
check "cache-acts --max-len beyond max_position_embeddings: refused, naming the option" bash -c "
    ! $BIN/cache-acts --model $TMP/short --max-len 64 < /dev/null > /dev/null 2> $TMP/err && cat $TMP/err &&
    grep -q -- '--max-len 64 is beyond the model.s max_position_embeddings 32' $TMP/err"
check "hd-filter --max-len beyond max_position_embeddings: refused, naming the option" bash -c "
    ! $BIN/hd-filter --model $TMP/short --max-len 64 < /dev/null > /dev/null 2> $TMP/err && cat $TMP/err &&
    grep -q -- '--max-len 64 is beyond the model.s max_position_embeddings 32' $TMP/err"
cp -r $FIX $TMP/long
jq '.max_position_embeddings = 100000000' $FIX/config.json > $TMP/long/config.json
check "hd-filter --max-len beyond any model: refused whatever the config says" bash -c "
    ! $BIN/hd-filter --model $TMP/long --max-len 2000000 < /dev/null > /dev/null 2> $TMP/err && cat $TMP/err &&
    grep -q -- '--max-len 2000000 is beyond the limit of 1048576 tokens' $TMP/err"
done_testing
