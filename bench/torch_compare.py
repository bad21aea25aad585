#!/usr/bin/env python3
"""torch_compare.py: times hpoc's training iterations against the PyTorch reference of the same
algorithm (bench/torch_reference.py), alternating the two in one invocation so that both see the
same machine, and prints the ratio.

    python3 bench/torch_compare.py                       # the issue's configurations, 3 rounds each
    python3 bench/torch_compare.py --configs inventory:4:64,64 --rounds 5 --iterations 10

Each round runs hpoc's bench/train_bench, then the PyTorch reference, then swaps the order in the
next round; the table reports the median over rounds of each side's mean ms per iteration.
PyTorch runs under Debian's /usr/bin/python3 (python3-torch); hpoc needs no Python at all.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CONFIGS = "inventory:4:64,64;inventory:4:512,512;inventory:16:64,64;lqr:8:64,64"


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON line in:\n" + text)


def run(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(command), done.returncode, done.stdout, done.stderr))
    return last_json_line(done.stdout)


TORCH_SGEMM = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 512), torch.randn(512, 512)
for _ in range(3):
    torch.mm(a, b)
start, repeats = time.perf_counter(), 50
for _ in range(repeats):
    torch.mm(a, b)
print(2.0 * 1024 * 512 * 512 * repeats / (time.perf_counter() - start) / 1e9)
"""


def torch_sgemm_gflops(args):
    """PyTorch's own matrix product rate (its BLAS) on the same threads, for the sgemm reference."""
    done = subprocess.run([args.python, "-c", TORCH_SGEMM, str(args.threads)], capture_output=True, text=True)
    return float(done.stdout.strip()) if done.returncode == 0 else 0.0


def hpoc_command(args, problem, size, hidden):
    name = "inventory%d" % size if problem == "inventory" else "lqr%d" % size
    return [os.path.join(args.build, "bench", "train_bench"), "--problems", name, "--hidden", hidden,
            "--precision", args.precision, "--mode", args.mode, "--batch", str(args.batch),
            "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--threads", str(args.threads),
            "--json"]


def torch_command(args, problem, size, hidden):
    return [args.python, os.path.join(HERE, "torch_reference.py"), "--problem", problem, "--size", str(size),
            "--batch", str(args.batch), "--hidden", hidden, "--mode", args.mode,
            "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--threads", str(args.threads),
            "--json"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help="semicolon-separated problem:size:hidden (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations per run")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="hpo-batch-mean", choices=["hpo-batch-mean", "hpo"],
                        help="hpo-batch-mean: one pathwise step per batch (--advantage batch-mean); hpo: the "
                             "default (critic, full-batch step, 4 x 4 PPO minibatches, timed without the KL stop)")
    parser.add_argument("--precision", default="f32", choices=["f32", "f64"], help="hpoc's (PyTorch runs f32)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--python", default="/usr/bin/python3", help="a Python with torch")
    parser.add_argument("--json", help="also write the measurements to this file")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.build, "bench", "train_bench")):
        sys.exit("torch_compare: %s/bench/train_bench is missing; build hpoc first (bash scripts/build.sh)" % args.build)

    rows = []
    blas_gflops = torch_sgemm_gflops(args)
    print("%-11s %-5s %-8s %10s %10s %8s %9s" % ("problem", "size", "hidden", "hpoc ms", "torch ms", "ratio",
                                                "of sgemm"))
    for config in args.configs.split(";"):
        problem, size, hidden = config.split(":")
        size = int(size)
        hpoc, torch = [], []
        for round_index in range(args.rounds):
            order = ["hpoc", "torch"] if round_index % 2 == 0 else ["torch", "hpoc"]
            for side in order:
                if side == "hpoc":
                    hpoc.append(run(hpoc_command(args, problem, size, hidden)))
                else:
                    torch.append(run(torch_command(args, problem, size, hidden)))
        hpoc_ms = statistics.median(r["ms_per_iteration"] for r in hpoc)
        torch_ms = statistics.median(r["ms_per_iteration"] for r in torch)
        # The reference is the fastest sgemm measured here: hpoc's kernel, Eigen's or PyTorch's BLAS.
        fraction = statistics.median(r["policy_gflops"] / max(r["sgemm_gflops"], blas_gflops) for r in hpoc)
        print("%-11s %-5d %-8s %10.1f %10.1f %7.1fx %8.0f%%" % (problem, size, hidden, hpoc_ms, torch_ms,
                                                               torch_ms / hpoc_ms, 100 * fraction))
        sys.stdout.flush()
        rows.append({"problem": problem, "size": size, "hidden": hidden, "hpoc_ms": hpoc_ms, "torch_ms": torch_ms,
                     "ratio": torch_ms / hpoc_ms, "policy_fraction_of_sgemm": fraction,
                     "torch_sgemm_gflops": blas_gflops, "hpoc_runs": hpoc, "torch_runs": torch})
    print("(median over %d alternating rounds of %d timed iterations each; batch %d, %d threads, mode %s, "
          "hpoc in %s, PyTorch in f32; PyTorch's BLAS: %s)" % (
              args.rounds, args.iterations, args.batch, args.threads, args.mode, args.precision,
              rows[0]["torch_runs"][0].get("blas") if rows else "?"))
    if rows:
        sgemm = rows[0]["hpoc_runs"][0]
        print("sgemm on %d threads: hpoc's kernel or Eigen %.0f GFLOP/s, PyTorch's BLAS %.0f GFLOP/s; 'of sgemm' is "
              "the policy networks' rate in hpoc against the faster" % (args.threads, sgemm["sgemm_gflops"],
                                                                          blas_gflops))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
