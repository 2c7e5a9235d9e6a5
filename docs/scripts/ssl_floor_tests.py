"""Each SSL study row against its floor: trained minus untrained (the run's own step-0 weights)
per seed, paired over the seeds, for the floor-hue kNN and the linear probe; two-sided paired
t-test (scipy.stats.ttest_rel). Prints a markdown table.

    python3 docs/scripts/ssl_floor_tests.py docs/ssl-study/runs
"""

import json
import os
import re
import sys
from collections import defaultdict

from scipy import stats

root = sys.argv[1]
groups = defaultdict(list)
for name in sorted(os.listdir(root)):
    match = re.fullmatch(r"(.+)-seed(\d+)", name)
    path = os.path.join(root, name, "metrics.json")
    if match and os.path.exists(path):
        groups[match.group(1)].append(json.load(open(path)))

print("| row | n | kNN floor hue − untrained (paired p) | linear probe − untrained (paired p) |")
print("|---|---|---|---|")
for group, runs in groups.items():
    cells = []
    for trained, untrained in (
        (lambda m: m["factor_knn"][0]["knn_accuracy"], lambda m: m["factor_knn"][0]["untrained_knn_accuracy"]),
        (lambda m: m["linear_probe"]["test_accuracy"], lambda m: m["untrained_linear_probe_accuracy"]),
    ):
        a = [trained(m) for m in runs]
        b = [untrained(m) for m in runs]
        diff = sum(x - y for x, y in zip(a, b)) / len(a)
        p = stats.ttest_rel(a, b).pvalue if len(a) > 1 else float("nan")
        cells.append(f"{diff:+.3f} (p={p:.2g})")
    print(f"| {group} | {len(runs)} | {cells[0]} | {cells[1]} |")
