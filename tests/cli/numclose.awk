# Compares two files token by token: identical text, numbers within
# rel * |a| + abs of each other.  Usage: awk -v rel=1e-4 -v abs=1e-5 -f numclose.awk A B
function tokens(line, arr) { gsub(/[\[\]{},:"]/, " ", line); return split(line, arr, " ") }
NR == FNR { a[FNR] = $0; na = FNR; next }
{
    if (!(FNR in a)) { print "second file is longer"; bad = 1; exit }
    n = tokens(a[FNR], x); m = tokens($0, y)
    if (n != m) { print "line " FNR ": different structure"; bad = 1; exit }
    for (i = 1; i <= n; i++) {
        if (x[i] == y[i]) continue
        if (x[i] ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ && y[i] ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/) {
            d = x[i] - y[i]; if (d < 0) d = -d
            s = x[i] < 0 ? -x[i] : x[i]
            if (d > rel * s + abs) { print "line " FNR ": " x[i] " vs " y[i]; bad = 1; exit }
        } else { print "line " FNR ": " x[i] " vs " y[i]; bad = 1; exit }
    }
    nb = FNR
}
END { if (!bad && nb != na) { print "first file is longer"; bad = 1 } exit bad }
