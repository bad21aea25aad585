#!/usr/bin/env python3
"""paper.py: reruns the HPO paper's comparison (HPO, HPO-decoupled, PPO, Gumbel-ST) on its two
problems (joint replenishment, switched LQR) across sizes and seeds at the paper's budgets, and on
our own models, with references and the paper's numbers beside ours; writes docs/results.md plus
its SVG plots.

    python3 bench/paper.py            # the full run (about 3 hours on 2 cores)
    python3 bench/paper.py --quick    # 2 sizes per problem, one seed, 100 iterations (under 10
                                      # minutes), into runs/paper-quick/results.md: a check, not
                                      # the published table

Every training run and reference writes a JSON record under --work; a rerun reuses the records
whose command is unchanged (--fresh ignores them), so an interrupted run resumes where it stopped.
"""
import argparse
import concurrent.futures
import csv
import datetime
import functools
import hashlib
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALGOS = ["hpo", "hpo-decoupled", "ppo", "gumbel-st"]
ALGO_LABELS = {"hpo": "HPO", "hpo-decoupled": "HPO-decoupled", "ppo": "PPO", "gumbel-st": "Gumbel-ST"}
COLORS = {"hpo": "#1f77b4", "hpo-decoupled": "#17becf", "ppo": "#d62728", "gumbel-st": "#ff7f0e"}

def switched_lqr_problem(k, sizes, quick_sizes, compile_cost, paper):
    """The paper's switched LQR with k modes, sized by D (M = D)."""
    return {
        "name": "switched_lqr" if k == 2 else f"switched_lqr_k{k}",
        "title": f"Switched LQR, K = {k} modes (examples/switched_lqr_paper.hpo, M = D)",
        "model": "examples/switched_lqr_paper.hpo",
        "dimension": "state and control dimension D",
        "unit": "cost per episode",
        "sets": lambda d: [f"D={d}", f"K={k}"],
        "sizes": sizes,
        "quick_sizes": quick_sizes,
        "iterations": 4000,
        "batch": 128,
        "flags": {"gumbel-st": ["--entropy", "0.0003"]},
        "reference": "lqr",
        "paper": paper,
        "cost_of_run": lambda d: 0.3 + compile_cost + 0.05 * d,
    }


# Per problem: the model, how a size is set, the sizes, the budget (iterations x batch, the same
# for every algorithm), flags given to every algorithm, the reference and the paper's own numbers
# (PAPER.md: HPO, HPO-decoupled, PPO per size; its draws of the instances are not ours). Budgets:
# LQR the paper's (4,000 updates x 128 episodes x 20 steps = 10 M steps), jrp three quarters of its
# (1,200 x 128 x 100 = 15 M of 20 M), with [64, 64] networks instead of its [512, 512] sweeps, so
# that the full grid (3 seeds) fits in about 3 hours on 2 cores: measured at n = 70, one jrp run
# takes about 0.2 s per iteration on one thread; the LQR grid with K = 2 took 53 minutes.
# gumbel-st's entropy bonus, in cost units, is scaled to LQR's costs (its default, 0.03 of the
# first batch's cost per step, is far too strong when an untrained controller's first batch costs
# 1000x a good one's).
PROBLEMS = [
    {
        "name": "jrp",
        "title": "Joint replenishment, the paper's inventory problem (examples/jrp.hpo)",
        "model": "examples/jrp.hpo",
        "dimension": "items n",
        "unit": "cost per period per item over periods 16-99 (the paper's metric)",
        "per_period": True,
        "sets": lambda n: [f"N={n}"],
        "sizes": [1, 3, 5, 10, 20, 30, 50, 70],
        "quick_sizes": [1, 10],
        "iterations": 1200,
        "batch": 128,
        "flags": {},
        "reference": "jrp",
        "paper": {1: (34.96, 34.97, 34.94), 3: (37.24, 37.27, 37.18), 5: (38.82, 38.77, 38.56),
                  10: (38.79, 38.85, 38.68), 20: (39.08, 39.26, 39.23), 30: (39.43, 39.54, 51.67),
                  40: (40.40, 40.82, 70.37), 50: (43.47, 42.95, 81.36), 60: (50.28, 49.92, 89.29),
                  70: (56.76, 58.37, 98.64)},
        "cost_of_run": lambda n: 0.6 + 0.03 * n,
    },
    switched_lqr_problem(2, sizes=[1, 8, 16, 32, 48], quick_sizes=[1, 8], compile_cost=0.0,
                         paper={8: (49.05, 48.95, 70.66), 16: (52.14, 52.01, 76.36), 32: (53.19, 52.86, 81.43),
                                48: (53.89, 53.24, 79.36)}),
    # Compiling the model at D = 48, K = 8 takes about 55 s.
    switched_lqr_problem(8, sizes=[48], quick_sizes=[], compile_cost=1.0, paper={48: (97.49, 96.41, 109.86)}),
]
# Our own models: one size each, the defaults of the model file and of hpoc train.
OWN_MODELS = [
    {"name": "inventory", "title": "Inventory, a fixed cost per store (examples/inventory.hpo)",
     "model": "examples/inventory.hpo"},
    {"name": "gearbox", "title": "Vehicle with gear selection (examples/gearbox.hpo)", "model": "examples/gearbox.hpo"},
    {"name": "machine_repair", "title": "Machines to run or repair (examples/machine_repair.hpo)",
     "model": "examples/machine_repair.hpo"},
]
TEST_LINE = re.compile(r"test cost (\S+) \+- (\S+) \(95% CI.*?\).*?; (\S+) in (\S+)s")
PER_PERIOD_LINE = re.compile(r"per period (\S+) \+- (\S+) ")


@functools.lru_cache(maxsize=None)
def binary_digest(path):
    """A digest of what the binary runs: its code and data without debug information or build ID,
    which change with every moved line of a comment. The whole file when objcopy is missing."""
    try:
        with tempfile.TemporaryDirectory() as scratch:
            stripped = Path(scratch) / "stripped"
            subprocess.run(["objcopy", "--strip-debug", "--remove-section=.note.gnu.build-id", path, str(stripped)],
                           check=True, capture_output=True)
            return hashlib.sha1(stripped.read_bytes()).hexdigest()
    except (OSError, subprocess.CalledProcessError):
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def run_command(cmd, record_path, fresh, timeout):
    """Runs cmd once (or reuses its record) and returns the record with its stdout and seconds. A
    record is reused only for the same command run by the same binary (a rebuilt hpoc reruns)."""
    key = hashlib.sha1(json.dumps([os.path.basename(cmd[0])] + cmd[1:]).encode() +
                       binary_digest(cmd[0]).encode()).hexdigest()
    if record_path.exists() and not fresh:
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {}  # unreadable: run again
        if record.get("key") == key and record.get("returncode") == 0:
            return {**record, "reused": True}
    record_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as e:
        returncode, stdout, stderr = -1, e.stdout or "", f"timed out after {timeout} s"
    record = {"key": key, "cmd": cmd, "returncode": returncode, "stdout": stdout, "stderr": stderr[-4000:],
              "seconds": time.monotonic() - start}
    # Written whole and renamed into place, so that an interrupted run leaves no half record.
    partial = record_path.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=1))
    partial.replace(record_path)
    return record


def train_job(args, problem, size, algo, seed):
    out = Path(args.work) / problem["name"] / f"{size}" / f"{algo}-seed{seed}"
    cmd = [args.hpoc, "train", problem["model"], "--algo", algo, "--seed", str(seed),
           "--threads", "1", "--quiet", "--out", str(out)]
    if args.iterations or problem.get("iterations"):
        cmd += ["--iterations", str(args.iterations or problem["iterations"])]
    if problem.get("batch"):
        cmd += ["--batch", str(problem["batch"])]
    for assignment in problem["sets"](size) if size is not None else []:
        cmd += ["--set", assignment]
    cmd += problem.get("flags", {}).get(algo, [])
    record = run_command(cmd, out / "record.json", args.fresh, args.timeout)
    result = {"problem": problem["name"], "size": size, "algo": algo, "seed": seed, "seconds": record["seconds"],
              "cmd": cmd, "ok": False, "reused": record.get("reused", False)}
    match = TEST_LINE.search(record["stdout"])
    if problem.get("per_period") and match:
        match = PER_PERIOD_LINE.search(record["stdout"])
    if record["returncode"] == 0 and match:
        result.update(ok=True, cost=float(match.group(1)), ci95=float(match.group(2)))
        result["cross"] = read_cross_term(out / "metrics.csv")
    else:
        result["error"] = (record["stderr"] or record["stdout"]).strip().splitlines()[-1:] or ["no output"]
    return result


def read_cross_term(metrics_path):
    """The hpo run's cross-term measurements: (fraction of training, |cross|/|grad|, alignment)."""
    if not metrics_path.exists():
        return []
    rows = list(csv.DictReader(metrics_path.open()))
    if not rows:
        return []
    last = float(rows[-1]["iteration"])
    points = []
    for row in rows:
        if row.get("cross_ratio"):
            points.append((float(row["iteration"]) / last, float(row["cross_ratio"]),
                           float(row["cross_alignment"]) if row.get("cross_alignment") else float("nan")))
    return points


def reference_job(args, problem, size):
    out = Path(args.work) / problem["name"] / f"{size}" / "reference"
    sets = []
    for assignment in problem["sets"](size):
        sets += ["--set", assignment]
    if problem["reference"] == "jrp":
        cmd = [args.jrp_reference, problem["model"], *sets, "--threads", "1", "--json", "--lower-bound"]
        record = run_command(cmd, out / "record.json", args.fresh, args.timeout)
        if record["returncode"] != 0:
            return {"ok": False, "error": record["stderr"][-300:], "seconds": record["seconds"]}
        data = json.loads(record["stdout"].strip().splitlines()[-1])
        return {"ok": True, "seconds": record["seconds"], "cmd": cmd, "name": "tuned joint order-up-to heuristic",
                "cost": data["test"]["window"], "ci95": data["test"]["window_ci95"],
                "lower_bound": data["lower_bound"]["window"]}
    json_path = out / "lqr.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [args.lqr_reference, problem["model"], *sets, "--json", str(json_path)]
    record = run_command(cmd, out / "record.json", args.fresh, args.timeout)
    if record["returncode"] != 0 or not json_path.exists():
        return {"ok": False, "error": record["stderr"][-300:], "seconds": record["seconds"]}
    data = json.loads(json_path.read_text())
    return {"ok": True, "seconds": record["seconds"], "cmd": cmd, "lqr": data, **best_lqr_reference(data)}


def best_lqr_reference(data):
    """The strongest of lqr_reference's controllers: the one with the lowest test cost."""
    candidates = []
    # The DP first: on a tie (D = 1, where switching cannot help) the exact optimum is named.
    for key, label in (("switched_riccati", "switched Riccati DP"), ("switching_rule", "LQR-value switching rule"),
                       ("single_mode", "best single-mode LQR")):
        entry = data.get(key)
        if isinstance(entry, dict) and entry.get("test_cost") is not None:
            candidates.append((entry["test_cost"], entry.get("ci95", float("nan")), label, entry))
    if not candidates:
        return {"name": "none", "cost": float("nan"), "ci95": float("nan")}
    cost, ci95, label, entry = min(candidates, key=lambda c: c[0])
    if "exact" in entry:
        label += ", exact" if entry["exact"] else ", capped: not certified optimal"
    return {"name": label, "cost": cost, "ci95": ci95}


def mean_ci(values):
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}.get(n, 1.96)
    return mean, t95 * sd / math.sqrt(n)


def fmt(x, digits=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


# ----------------------------------------------------------------------------------------------
# Plots: small hand-written SVG, so that the runner needs nothing beyond Python's standard library.

def svg_line_chart(path, title, x_label, y_label, series, log2_x=False, x_ticks=None):
    """series: list of (label, color, [(x, y)])."""
    width, height, left, right, top, bottom = 640, 400, 70, 170, 40, 50
    points = [(x, y) for _, _, pts in series for x, y in pts if math.isfinite(y)]
    if not points:
        return
    tx = (lambda x: math.log2(x)) if log2_x else (lambda x: x)
    xs = [tx(x) for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    y1 += 0.05 * (y1 - y0)

    def px(x):
        return left + (tx(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y):
        return top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2 - right / 2 + left / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    step = nice_step((y1 - y0) / 6)
    tick = math.ceil(y0 / step) * step
    while tick <= y1:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += step
    for x in x_ticks or sorted({x for x, _ in points}):
        out.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:g}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="#000"/>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="#000"/>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">{x_label}</text>')
    out.append(f'<text x="16" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + height - bottom) / 2})">{y_label}</text>')
    for i, (label, color, pts) in enumerate(series):
        pts = [(x, y) for x, y in pts if math.isfinite(y)]
        if pts:
            path_d = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(pts))
            out.append(f'<path d="{path_d}" fill="none" stroke="{color}" stroke-width="2"/>')
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>' for x, y in pts]
        ly = top + 10 + 18 * i
        out.append(f'<line x1="{width - right + 12}" x2="{width - right + 32}" y1="{ly}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{width - right + 38}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def nice_step(raw):
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


# ----------------------------------------------------------------------------------------------

def summarize(results, problem, sizes, refs, seeds):
    """Rows per size: per algorithm the mean test cost over seeds, its CI, gap and time."""
    rows = []
    for size in sizes:
        row = {"size": size, "ref": refs.get(size), "algos": {}}
        for algo in ALGOS:
            runs = [r for r in results if r["problem"] == problem["name"] and r["size"] == size and r["algo"] == algo]
            good = [r for r in runs if r["ok"]]
            mean, ci = mean_ci([r["cost"] for r in good])
            ref_cost = row["ref"]["cost"] if row["ref"] and row["ref"].get("ok") else float("nan")
            row["algos"][algo] = {
                "mean": mean, "ci95": ci, "runs": len(runs), "ok": len(good),
                "gap": 100.0 * (mean - ref_cost) / ref_cost if math.isfinite(ref_cost) and ref_cost else float("nan"),
                "seconds": sum(r["seconds"] for r in runs) / len(runs) if runs else float("nan"),
                "errors": [r.get("error") for r in runs if not r["ok"]],
            }
        rows.append(row)
    return rows


def cross_summary(results, problem_name, size):
    """Mean |cross|/|grad| and alignment over thirds of training, over the hpo runs' seeds."""
    thirds = [[], [], []]
    for r in results:
        if r["problem"] == problem_name and r["size"] == size and r["algo"] == "hpo" and r["ok"]:
            for frac, ratio, align in r.get("cross", []):
                thirds[min(2, int(frac * 3 - 1e-9))].append((ratio, align))
    out = []
    for part in thirds:
        ratios = [p[0] for p in part]
        aligns = [p[1] for p in part if math.isfinite(p[1])]
        out.append((sum(ratios) / len(ratios) if ratios else float("nan"),
                    sum(aligns) / len(aligns) if aligns else float("nan")))
    return out


def write_report(args, results, refs_by_problem, problems, own, seeds, wall_seconds, plot_dir):
    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mode = "quick" if args.quick else "full"
    command = "python3 bench/paper.py" + (" --quick" if args.quick else "")
    lines += [
        "# Results: reproducing the HPO paper's comparison",
        "",
        f"Generated by `{command}` ({mode} mode) on {now}, commit `{commit}`, in "
        f"{wall_seconds / 60:.1f} minutes on {os.cpu_count()} cores ({cpu}, {platform.system()}), "
        f"{args.jobs} training runs at a time, each on 1 thread. " + reuse_note(results, args.jobs) +
        "Do not edit by hand: rerun the command.",
        "",
        "Each cell is the mean over seeds " + ", ".join(str(s) for s in seeds) +
        " of the test cost in the problem's unit (1024 test episodes, seed 1001, the same scenarios for "
        "every algorithm and reference), ± the 95% confidence interval of that mean across seeds "
        "(Student t; – with one seed). *Gap* is relative to the reference. *Time* is the wall time "
        "of one training run on one thread (compilation, training, dev evaluations, test). Every "
        "algorithm gets the same simulated-sample budget: iterations × batch × horizon. *Paper* is "
        "the paper's own result (HPO / HPO-decoupled / PPO) on its own draw of the instance, for "
        "comparison of levels and of the gaps between algorithms, not of digits.",
        "",
    ]
    for problem in problems:
        rows = summarize(results, problem, problem["run_sizes"], refs_by_problem[problem["name"]], seeds)
        iterations = args.iterations or problem["iterations"]
        paper = problem.get("paper", {})
        lines += [f"## {problem['title']}", "",
                  f"Budget: {iterations} iterations × {problem['batch']} episodes per algorithm and seed. "
                  f"Unit: {problem['unit']}. Sizes via `--set {' --set '.join(problem['sets']('N'))}`. "
                  "Flags beyond the budget: " +
                  (", ".join(f"{a}: `{' '.join(f)}`" for a, f in problem["flags"].items()) or "none") + ".", ""]
        header = (f"| {problem['dimension']} | reference | " + " | ".join(ALGO_LABELS[a] for a in ALGOS) +
                  " | paper: HPO / HPO-dec. / PPO |")
        lines += [header, "|" + "---|" * (3 + len(ALGOS))]
        for row in rows:
            ref = row["ref"]
            if ref and ref.get("ok"):
                ref_text = f"{fmt(ref['cost'])} ± {fmt(ref['ci95'], 2)} ({ref['name']}"
                if "lower_bound" in ref:
                    ref_text += f"; lower bound {fmt(ref['lower_bound'])}"
                ref_text += ")"
            else:
                ref_text = "failed" if ref else "–"
            cells = []
            for algo in ALGOS:
                a = row["algos"][algo]
                if a["ok"] == 0:
                    cells.append(f"failed ({a['runs']} runs)")
                    continue
                cell = f"{fmt(a['mean'])} ± {fmt(a['ci95'], 2)}"
                if math.isfinite(a["gap"]):
                    cell += f" ({a['gap']:+.1f}%)"
                cell += f", {a['seconds']:.0f} s"
                if a["ok"] < a["runs"]:
                    cell += f", {a['runs'] - a['ok']} failed"
                cells.append(cell)
            paper_text = " / ".join(fmt(x) for x in paper[row["size"]]) if row["size"] in paper else "–"
            lines.append(f"| {row['size']} | {ref_text} | " + " | ".join(cells) + f" | {paper_text} |")
        lines.append("")
        plot_name = f"gap_{problem['name']}.svg"
        series = [(ALGO_LABELS[a], COLORS[a], [(row["size"], row["algos"][a]["gap"]) for row in rows])
                  for a in ALGOS]
        svg_line_chart(plot_dir / plot_name, f"{problem['name']}: gap to the reference vs size",
                       problem["dimension"], "gap to reference (%)", series, log2_x=True,
                       x_ticks=problem["run_sizes"])
        lines += [f"![gap vs size]({plot_dir.name}/{plot_name})", ""]
        lines += hpo_vs_ppo_findings(rows, problem)
        lines += cross_term_section(results, problem, plot_dir)
        lines += reference_details(problem, refs_by_problem[problem["name"]])
    if own:
        lines += ["## Our own hybrid models", "",
                  "No reference policy: the table compares the four estimators with each other at the "
                  "model's default size and the default budget.", "",
                  "| model | " + " | ".join(ALGO_LABELS[a] for a in ALGOS) + " |", "|" + "---|" * (1 + len(ALGOS))]
        for model in own:
            rows = summarize(results, model, [None], {}, seeds)
            cells = []
            for algo in ALGOS:
                a = rows[0]["algos"][algo]
                cells.append(f"{fmt(a['mean'])} ± {fmt(a['ci95'], 2)}, {a['seconds']:.0f} s" if a["ok"] else "failed")
            lines.append(f"| {model['title']} | " + " | ".join(cells) + " |")
        lines.append("")
    failures = [r for r in results if not r["ok"]]
    if failures:
        lines += ["## Failed runs", ""]
        lines += [f"- {r['problem']} size {r['size']} {r['algo']} seed {r['seed']}: {' '.join(r['error'])}"
                  for r in failures]
        lines.append("")
    discussion = ROOT / "bench" / "paper_discussion.md"
    if discussion.exists():
        lines += [discussion.read_text().rstrip(), ""]
    lines += ["## Reproduce", "", "```", "bash scripts/build.sh", command, "```", "",
              "One training run by hand (any row): " +
              f"`{' '.join(shlex.quote(c) for c in example_command(results))}`", ""]
    Path(args.out).write_text("\n".join(lines))


def reuse_note(results, jobs):
    """Says how much of the report comes from earlier records, and what a fresh run costs."""
    reused = sum(1 for r in results if r.get("reused"))
    if not reused:
        return ""
    run_minutes = sum(r["seconds"] for r in results) / 60
    return (f"{reused} of {len(results)} training runs were reused from the records of an earlier "
            f"invocation; all runs together took {run_minutes:.0f} minutes, about {run_minutes / jobs:.0f} "
            f"minutes of wall time at {jobs} at a time (references not counted). ")


def example_command(results):
    """One hpo training command of the report, so that a reader can rerun a single cell."""
    chosen = next((r["cmd"] for r in results if r["algo"] == "hpo" and r["problem"] == "switched_lqr"),
                  results[0]["cmd"] if results else [])
    return [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in chosen]


def hpo_vs_ppo_findings(rows, problem):
    """Plain statements of where HPO beats PPO, from the numbers above (not written by hand)."""
    out = ["**HPO against PPO**, from the table:", ""]
    diffs = []
    for row in rows:
        hpo, ppo = row["algos"]["hpo"], row["algos"]["ppo"]
        if not (hpo["ok"] and ppo["ok"]):
            continue
        diff = 100.0 * (ppo["mean"] - hpo["mean"]) / abs(hpo["mean"])
        overlap = (math.isfinite(hpo["ci95"]) and math.isfinite(ppo["ci95"]) and
                   abs(ppo["mean"] - hpo["mean"]) < hpo["ci95"] + ppo["ci95"])
        verdict = "better" if ppo["mean"] > hpo["mean"] else "worse" if ppo["mean"] < hpo["mean"] else "equal"
        if overlap:
            verdict += " (within the seeds' confidence intervals)"
        diffs.append((row["size"], diff))
        out.append(f"- {problem['dimension']} = {row['size']}: HPO is {verdict}: PPO costs {diff:+.1f}% relative to HPO.")
    if len(diffs) >= 2:
        growing = all(b[1] >= a[1] for a, b in zip(diffs, diffs[1:]))
        out.append(f"- PPO's excess over HPO {'grows with every' if growing else 'does not grow monotonically with'} "
                   f"size: {', '.join(f'{d:+.1f}%' for _, d in diffs)}.")
    out.append("")
    return out


def cross_term_section(results, problem, plot_dir):
    out = ["**Cross term** (hpo runs): |cross| / |whole gradient| and the alignment of the cross term "
           "between two halves of the batch, measured at the dev evaluations, averaged over each third "
           "of training and over seeds.", "",
           "| " + problem["dimension"] + " | first third | middle third | last third |", "|---|---|---|---|"]
    series = []
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    for i, size in enumerate(problem["run_sizes"]):
        parts = cross_summary(results, problem["name"], size)
        out.append(f"| {size} | " + " | ".join(f"{fmt(r, 2)} (align {fmt(a, 2)})" for r, a in parts) + " |")
        runs = [r for r in results if r["problem"] == problem["name"] and r["size"] == size and r["algo"] == "hpo"
                and r["ok"] and r.get("cross")]
        if runs:
            series.append((f"{problem['dimension'].split()[-1]} = {size}", palette[i % len(palette)],
                           [(frac, ratio) for frac, ratio, _ in runs[0]["cross"]]))
    out.append("")
    if series:
        name = f"cross_{problem['name']}.svg"
        svg_line_chart(plot_dir / name, f"{problem['name']}: cross term relative to the gradient (hpo, first seed)",
                       "fraction of training", "|cross| / |gradient|", series, x_ticks=[0.25, 0.5, 0.75, 1.0])
        out += [f"![cross term]({plot_dir.name}/{name})", ""]
    return out


def reference_details(problem, refs):
    out = ["References:", ""]
    for size, ref in sorted(refs.items()):
        if not ref.get("ok"):
            out.append(f"- {size}: failed: {ref.get('error', '')}")
            continue
        if problem["reference"] == "lqr":
            data = ref["lqr"]
            parts = []
            for key, label in (("single_mode", "best single mode"), ("switching_rule", "switching rule"),
                               ("switched_riccati", "switched Riccati DP")):
                entry = data.get(key)
                if isinstance(entry, dict) and entry.get("test_cost") is not None:
                    extra = ""
                    if key == "switched_riccati":
                        extra = " exact" if entry.get("exact") else " pruned/capped"
                    parts.append(f"{label} {fmt(entry['test_cost'])}{extra}")
            out.append(f"- {size}: " + "; ".join(parts) + f" ({ref['seconds']:.0f} s)")
        else:
            out.append(f"- {size}: {ref['name']} {fmt(ref['cost'])} ± {fmt(ref['ci95'], 2)}, clairvoyant lower "
                       f"bound {fmt(ref['lower_bound'])} ({ref['seconds']:.0f} s)")
    out.append("")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 sizes, 1 seed, 100 iterations (< 10 min)")
    parser.add_argument("--seeds", type=int, help="training seeds per cell (default 3; 1 with --quick)")
    parser.add_argument("--iterations", type=int, help="override every problem's iterations")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="training runs at a time")
    parser.add_argument("--out", help="the report (default docs/results.md; --quick: runs/paper-quick/results.md)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "paper"), help="where runs and records go")
    parser.add_argument("--fresh", action="store_true", help="rerun everything, ignoring earlier records")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one run is abandoned")
    parser.add_argument("--only", help="comma-separated problem names to run")
    parser.add_argument("--sizes", help="comma-separated sizes for every problem (a smoke test)")
    parser.add_argument("--build", default=str(ROOT / "build"))
    args = parser.parse_args()
    build = Path(args.build)
    args.hpoc = str(build / "tools" / "hpoc" / "hpoc")
    args.jrp_reference = str(build / "bench" / "jrp_reference")
    args.lqr_reference = str(build / "bench" / "lqr_reference")
    for tool in (args.hpoc, args.jrp_reference, args.lqr_reference):
        if not os.access(tool, os.X_OK):
            sys.exit(f"paper.py: {tool} is missing; build first (bash scripts/build.sh)")
    if args.out is None:
        # A quick run checks that everything works; it must not replace the full report.
        args.out = str(ROOT / "runs" / "paper-quick" / "results.md") if args.quick else str(ROOT / "docs" / "results.md")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.work = args.work.rstrip("/") + "-quick"
        if args.iterations is None:
            args.iterations = 100
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    only = set(args.only.split(",")) if args.only else None
    problems = [p for p in PROBLEMS if not only or p["name"] in only]
    own = [m for m in OWN_MODELS if (not only or m["name"] in only) and (ROOT / m["model"]).exists()]
    for p in problems:
        p["run_sizes"] = p["quick_sizes"] if args.quick else p["sizes"]
        if args.sizes:
            p["run_sizes"] = [int(s) for s in args.sizes.split(",")]
    for m in own:
        m.update(sets=lambda _: [], flags={})

    jobs = []  # (estimated cost, what to run)
    for p in problems:
        for size in p["run_sizes"]:
            jobs.append((p["cost_of_run"](size), ("ref", p, size)))
            for algo in ALGOS:
                for seed in seeds:
                    jobs.append((p["cost_of_run"](size), ("train", p, size, algo, seed)))
    for m in own:
        for algo in ALGOS:
            for seed in seeds:
                jobs.append((0.5, ("train", m, None, algo, seed)))
    jobs.sort(key=lambda j: -j[0])  # longest first, so that the two workers finish together

    start = time.monotonic()
    results, refs = [], {p["name"]: {} for p in problems}
    total = len(jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {}
        for _, job in jobs:
            if job[0] == "ref":
                futures[pool.submit(reference_job, args, job[1], job[2])] = job
            else:
                futures[pool.submit(train_job, args, *job[1:])] = job
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            job = futures[future]
            value = future.result()
            if job[0] == "ref":
                refs[job[1]["name"]][job[2]] = value
                what = f"{job[1]['name']} {job[2]} reference"
            else:
                results.append(value)
                what = f"{job[1]['name']} {job[2]} {job[3]} seed {job[4]}"
            status = "ok" if value.get("ok") else "FAILED"
            cost = f" {value['cost']:.4g}" if value.get("ok") and "cost" in value else ""
            print(f"[{done}/{total} {time.monotonic() - start:6.0f} s] {what}: {status}{cost}", flush=True)
    wall = time.monotonic() - start
    plot_dir = Path(args.out).parent / ("results-quick" if args.quick else "results")
    plot_dir.mkdir(parents=True, exist_ok=True)
    results.sort(key=lambda r: (r["problem"], r["size"] or 0, ALGOS.index(r["algo"]), r["seed"]))
    write_report(args, results, refs, problems, own, seeds, wall, plot_dir)
    (plot_dir / "runs.json").write_text(json.dumps({"results": results, "references": refs}, indent=1, default=str))
    failed = [r for r in results if not r["ok"]] + [r for p in refs.values() for r in p.values() if not r.get("ok")]
    print(f"wrote {args.out} in {wall / 60:.1f} minutes" + (f"; {len(failed)} runs FAILED" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
