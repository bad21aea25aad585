#!/usr/bin/env python3
"""default_vs_ppo.py: the default `hpoc train` (hpo) against `--algo ppo` at the same budget on every
example model with a discrete action, seeds 0-2: test cost, 95% interval, and whether hpo is at
least as good (lower, or inside ppo's interval).

    python3 bench/default_vs_ppo.py                      # every such example, seeds 0 1 2
    python3 bench/default_vs_ppo.py --models gearbox --seeds 0 --extra-hpo --advantage batch-mean

Writes a markdown table to standard output; each run's output folder is under --out.
"""
import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = re.compile(r"test cost ([-0-9.e+]+) \+- ([0-9.e+-]+)")


def models_with_choices():
    return sorted(p.stem for p in (ROOT / "examples").glob("*.hpo") if "choice(" in p.read_text())


def train(args, model, algo, seed, extra):
    out = Path(args.out) / f"{model}-{algo}-{seed}"
    cmd = [args.hpoc, "train", str(ROOT / "examples" / f"{model}.hpo"), "--algo", algo, "--seed", str(seed),
           "--quiet", "--out", str(out)] + extra
    params = ROOT / "examples" / f"{model}_params.json"
    if params.exists():
        cmd += ["--params", str(params)]
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    match = TEST.search(done.stdout + done.stderr)
    if done.returncode != 0 or not match:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return float(match.group(1)), float(match.group(2)), time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=models_with_choices())
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--hpoc", default=str(ROOT / "build" / "tools" / "hpoc" / "hpoc"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "default_vs_ppo"))
    parser.add_argument("--extra-hpo", nargs=argparse.REMAINDER, default=[], help="flags for the hpo runs")
    args = parser.parse_args()
    print("| model | seed | hpo (default) | ppo | hpo at least as good | hpo s | ppo s |")
    print("|---|---|---:|---:|---|---:|---:|")
    wins = 0
    for model in args.models:
        for seed in args.seeds:
            h, hci, hs = train(args, model, "hpo", seed, args.extra_hpo)
            p, pci, ps = train(args, model, "ppo", seed, [])
            ok = h <= p + pci
            wins += ok
            print(f"| {model} | {seed} | {h:.4g} +- {hci:.2g} | {p:.4g} +- {pci:.2g} | {'yes' if ok else 'NO'} "
                  f"| {hs:.0f} | {ps:.0f} |", flush=True)
    print(f"\nhpo at least as good in {wins} of {len(args.models) * len(args.seeds)} runs")


if __name__ == "__main__":
    main()
