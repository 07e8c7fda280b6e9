# Compares two dumps of tensors, lines "NAME VALUE" in the same order (the
# st_values function of hd-train-mpi.sh writes them from safetensors): the
# same names, and every value within abs + rel * max|A| of its tensor.
# A tensor named by -v loose=NAME is held to loose_abs instead.  Prints the
# worst tensor (the one whose largest difference is largest against its
# tolerance) and exits 1 when any value is outside.
#   awk -v rel=1e-4 -v abs=0 [-v loose=NAME -v loose_abs=X] -f tensorclose.awk A B
NR == FNR { name[FNR] = $1; a[FNR] = $2; n = FNR; m = $2 < 0 ? -$2 : $2; if (m > amax[$1]) amax[$1] = m; next }
{
    if (FNR > n || $1 != name[FNR]) { print "line " FNR ": " $1 " vs " name[FNR]; bad = 1; exit }
    d = $2 - a[FNR]; if (d < 0) d = -d
    tol = $1 == loose ? loose_abs : abs + rel * amax[$1]
    if (d > dmax[$1]) dmax[$1] = d
    if (tol > 0 && d / tol > worst) { worst = d / tol; wname = $1 }
    if (d > tol && !bad) { print $1 " element " FNR ": " a[FNR] " vs " $2 " (tolerance " tol ")"; bad = 1 }
    nb = FNR
}
END {
    if (!bad && nb != n) { print "the dumps differ in length"; bad = 1 }
    if (wname != "") printf "worst: %s differs by %g (max|A| %g, %.3g of its tolerance)\n", wname, dmax[wname], amax[wname], worst
    exit bad
}
