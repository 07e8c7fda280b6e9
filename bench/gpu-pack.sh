#!/bin/bash
# Pack what a lent GPU machine needs to run bench/gpu-run.sh, into .gpu/
# (ignored; name it in the device tool's carry):
#
#   bash bench/gpu-pack.sh [TOKENIZERS_DIR]
#
# Such a machine has CUDA, a driver and Python with numpy, but none of the
# Debian libraries the tools link (msgpack-c, jansson, OpenBLAS, cmocka) and
# no network: the tools and tests are built here, and go there with those
# libraries, xz-compressed (OpenBLAS alone is 36 MB), in .gpu/pack.tar.xz.
# The CUDA libraries are not packed: the binaries find the machine's own
# (rpath /usr/local/cuda/lib64, else what gpu-run.sh finds).  TOKENIZERS_DIR
# holds llama2/ and llama3.1/ with their tokenizer.json, for the random
# models of gpu-bench.sh (default ../shared/tokenizers).
set -euo pipefail
TOKS=${1:-../shared/tokenizers}
make -j"$(nproc)" $(bash bench/gpu-check.sh --targets) bin/hd-filter
rm -rf .gpu
mkdir -p .gpu/stage/.gpu/lib .gpu/stage/.gpu/tok
bins="$(bash bench/gpu-check.sh --targets) bin/hd-filter"
for b in $bins; do
    mkdir -p ".gpu/stage/$(dirname "$b")"
    cp "$b" ".gpu/stage/$b"
done
# the shared libraries the binaries need that are not glibc's, gcc's or CUDA's
for b in $bins; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -v -e '/libc\.so' -e '/libm\.so' -e '/libpthread' -e '/libdl\.' -e '/librt\.' -e '/libgcc_s' \
        -e '/libstdc++' -e '/libz\.so' -e '/cuda' -e 'libcublas' -e 'libcudart' -e 'libnccl' |
    while read -r lib; do cp -L "$lib" .gpu/stage/.gpu/lib/; done
for t in llama2 llama3.1; do
    mkdir -p ".gpu/stage/.gpu/tok/$t"
    cp "$TOKS/$t"/tokenizer*.json ".gpu/stage/.gpu/tok/$t/"
done
tar -C .gpu/stage -cJf .gpu/pack.tar.xz .
rm -rf .gpu/stage
ls -l .gpu/pack.tar.xz
