"""Sum Nsight Compute's kernel durations per kernel name (bench/gpu-profile.sh).

  python3 bench/ncu_sum.py NCU_CSV [STEPS]

NCU_CSV: ncu --csv --metrics gpu__time_duration.sum output (lines before the
CSV header, ncu's own ==PROF== lines, are skipped).  Prints the total GPU
time, the launches, and the kernels that take the most of it; STEPS divides
the totals into a per-step figure (set-up kernels included).
"""
import csv
import sys
from collections import defaultdict

UNIT = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def main():
    path = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with open(path, newline="", errors="replace") as f:
        lines = f.readlines()
    start = next((i for i, l in enumerate(lines) if '"Kernel Name"' in l), None)
    if start is None:
        sys.exit(f"{path}: no ncu CSV header (\"Kernel Name\") found")
    total, count = defaultdict(float), defaultdict(int)
    for row in csv.DictReader(lines[start:]):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        try:
            us = float(row["Metric Value"].replace(",", "")) * UNIT.get(row["Metric Unit"], float("nan"))
        except (KeyError, ValueError):
            continue
        name = row["Kernel Name"]
        total[name] += us
        count[name] += 1
    all_us = sum(total.values())
    n = sum(count.values())
    print(f"kernels: {n} launches, {all_us / 1e3:.2f} ms of GPU time in all; per step ({steps}): "
          f"{n / steps:.0f} launches, {all_us / 1e3 / steps:.2f} ms")
    print("share  ms_total  launches  us_each  kernel")
    for name, us in sorted(total.items(), key=lambda kv: -kv[1])[:30]:
        print(f"{100 * us / all_us:5.1f}  {us / 1e3:8.2f}  {count[name]:8d}  {us / count[name]:7.1f}  {name[:150]}")


if __name__ == "__main__":
    main()
