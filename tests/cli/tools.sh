# Every tool: --help and --version work; every man page renders cleanly.
source tests/cli/lib.bash
for t in "$BIN"/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    name=$(basename "$t")
    check "$name --help" bash -c "$t --help | grep -q '^Usage: $name'"
    check "$name --version" bash -c "$t --version | grep -qx '$name (hyperdas) [0-9.]*'"
    check "$name has a man page" test -f "man/man1/$name.1"
done
# cuBLAS is opened by the first GPU call, never loaded with a tool: linked,
# libcublasLt's relocations alone take ~210 MB of every process's memory
# (kernels/cuda/cublas_lazy.c)
check "no tool loads cuBLAS at start (it is opened on first use)" bash -c "
    for t in $BIN/*; do [ -f \$t ] && [ -x \$t ] || continue
        ! readelf -d \$t | grep -q 'NEEDED.*libcublas' || { echo \$t; exit 1; }; done"
# OpenBLAS's pre-AVX2 kernels on an AVX2 processor (forced here; an old
# OpenBLAS picks them by itself on a processor it does not know)
if grep -qw avx2 /proc/cpuinfo && command -v script > /dev/null &&
    OPENBLAS_CORETYPE=Prescott $BIN/hd-train --version | grep -q '^blas: .*Prescott'; then
    check "generic OpenBLAS kernels on an AVX2 processor: a note on a terminal, none in a pipe" bash -c "
        OPENBLAS_CORETYPE=Prescott script -qec '$BIN/hd-filter --all /dev/null' /dev/null |
            grep -q 'note: OpenBLAS runs its Prescott kernels' &&
        ! OPENBLAS_CORETYPE=Haswell script -qec '$BIN/hd-filter --all /dev/null' /dev/null | grep -q 'note: OpenBLAS' &&
        ! OPENBLAS_CORETYPE=Prescott $BIN/hd-filter --all /dev/null 2>&1 | grep -q 'note: OpenBLAS'"
else
    skip "generic OpenBLAS kernels note" "needs an AVX2 processor, script(1) and a DYNAMIC_ARCH OpenBLAS"
fi
for m in man/man1/*.1 man/man5/*.5 man/man7/*.7; do
    check "$(basename "$m") renders without warnings" bash -c "
        out=\$(groff -man -ww -z '$m' 2>&1); [ -z \"\$out\" ] || { echo \"\$out\"; false; }"
done
done_testing
