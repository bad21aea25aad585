#!/usr/bin/env python3
"""compare_estimators.py: train one model with several estimators on the same budget (iterations x
batch x horizon simulated steps) and compare their test costs with the best (s, S) policy.

    python3 bench/compare_estimators.py examples/inventory.hpo --algos hpo ppo
    python3 bench/compare_estimators.py examples/inventory.hpo --set STORES=20 --ss-args '--s-range 9:19 --S-range 16:29'

Prints a table (markdown) of test cost, 95% interval, gap to (s, S) and wall time per estimator.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout, time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--algos", nargs="+", default=["hpo", "hpo-decoupled", "ppo"])
    parser.add_argument("--iterations", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "compare"))
    parser.add_argument("--no-ss", action="store_true", help="skip the (s, S) grid search")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE for the model (consts too)")
    parser.add_argument("--ss-args", default="", help="ss_grid flags, e.g. '--s-range 9:19 --S-range 16:29'")
    args, extra = parser.parse_known_args()  # flags it does not know go to hpoc train
    hpoc = os.path.join(args.build, "tools", "hpoc", "hpoc")

    rows = []
    ss_cost = None
    if not args.no_ss:
        sets = [a for s in args.set for a in ("--set", s)]
        out, seconds = run([os.path.join(args.build, "bench", "ss_grid"), args.model] + sets + shlex.split(args.ss_args))
        ss_cost = float(re.search(r"test cost \(seed \d+, \d+ episodes\): ([\d.]+) \+- ([\d.]+)", out).group(1))
        ci = float(re.search(r"test cost \(seed \d+, \d+ episodes\): [\d.]+ \+- ([\d.]+)", out).group(1))
        rows.append(("(s, S) grid search", ss_cost, ci, seconds))
    for algo in args.algos:
        out, seconds = run([hpoc, "train", args.model, "--algo", algo, "--iterations", str(args.iterations),
                            "--batch", str(args.batch), "--seed", str(args.seed), "--quiet",
                            "--out", os.path.join(args.out, algo)] + [a for s in args.set for a in ("--set", s)] + extra)
        match = re.search(r"test cost ([\d.e+-]+) \+- ([\d.e+-]+)", out)
        rows.append((algo, float(match.group(1)), float(match.group(2)), seconds))

    print(f"{args.model}: {args.iterations} iterations x {args.batch} episodes per estimator")
    print("| policy | test cost | 95% CI | vs (s, S) | wall time |")
    print("|---|---|---|---|---|")
    for name, cost, ci, seconds in rows:
        gap = f"{100 * (cost / ss_cost - 1):+.2f}%" if ss_cost else "-"
        print(f"| {name} | {cost:.2f} | {ci:.2f} | {gap} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
