#!/usr/bin/env python3
"""cli_test.py: one case of the tests of `hpoc train`, `hpoc eval` and `hpoc simulate`.

Usage: cli_test.py --hpoc PATH --work DIR CASE. A case runs hpoc in DIR/CASE (emptied first),
checks exit codes, messages and the files written, and exits 1 with what went wrong (the
commands it ran and their output). Small runs only: every case takes a few seconds at most.
Run one by hand: cli_test.py --hpoc build/tools/hpoc/hpoc --work /tmp/cli CASE.
"""
import argparse
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
INVENTORY = os.path.join(SOURCE, "examples", "inventory.hpo")
NEWSVENDOR = os.path.join(SOURCE, "examples", "newsvendor.hpo")
NAN_MIDWAY = os.path.join(HERE, "nan_midway.hpo")
NAN_FIRST_STEP = os.path.join(HERE, "nan_first_step.hpo")

# Enough for every file and message; a run of this size takes milliseconds.
SMALL = ["--iterations", "3", "--batch", "16", "--dev-episodes", "16", "--test-episodes", "32",
         "--hidden", "16", "--threads", "2", "--quiet"]
METRICS_HEADER = ("iteration,samples,seconds,train_cost,dev_cost,best_dev_cost,grad_norm,entropy,lr,cross_ratio,"
                  "cross_alignment")
NUMBER = r"(-?[0-9][0-9.e+-]*|-?inf|-?nan)"


class Failure(Exception):
    pass


class Case:
    def __init__(self, hpoc, work):
        self.hpoc = hpoc
        self.work = work
        self.log = []

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def run(self, *args, code=None, stderr=(), stdout=(), cwd=None):
        """Runs hpoc; checks the exit code and that each regex is found in stderr / stdout."""
        cmd = [self.hpoc] + [str(a) for a in args]
        proc = subprocess.run(cmd, cwd=cwd or self.work, capture_output=True, text=True, errors="replace",
                              timeout=60)
        self.log.append(f"$ {' '.join(cmd)}\n[exit {proc.returncode}]\n{proc.stdout}{proc.stderr}")
        if proc.returncode < 0 or proc.returncode == 3:
            raise Failure(f"hpoc crashed or failed internally (exit {proc.returncode})")
        if code is not None and proc.returncode != code:
            raise Failure(f"expected exit code {code}, got {proc.returncode}")
        for pattern in [stderr] if isinstance(stderr, str) else stderr:
            if not re.search(pattern, proc.stderr, re.MULTILINE):
                raise Failure(f"stderr does not match {pattern!r}")
        for pattern in [stdout] if isinstance(stdout, str) else stdout:
            if not re.search(pattern, proc.stdout, re.MULTILINE):
                raise Failure(f"stdout does not match {pattern!r}")
        return proc

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)


def check(condition, message):
    if not condition:
        raise Failure(message)


def read_metrics(path):
    with open(path) as f:
        lines = f.read().splitlines()
    check(lines and lines[0] == METRICS_HEADER, f"{path}: header is {lines[:1]}")
    rows = [dict(zip(METRICS_HEADER.split(","), line.split(","))) for line in lines[1:]]
    for i, row in enumerate(rows):
        check(len(row) == 11 and row["iteration"] == str(i + 1), f"{path}: row {i} is {lines[i + 1]!r}")
        check(math.isfinite(float(row["train_cost"])), f"{path}: row {i} has no finite train cost")
    return rows


def check_svg(path, title):
    root = ET.parse(path).getroot()  # raises on a file that is not XML
    check(root.tag == "{http://www.w3.org/2000/svg}svg", f"{path}: the root is {root.tag}, not svg")
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    check(title in texts, f"{path}: no title {title!r} among {texts}")
    check(any(True for _ in root.iter("{http://www.w3.org/2000/svg}polyline")), f"{path}: no curve drawn")


# --- cases -------------------------------------------------------------------------------------


def case_bad_flags(c):
    """Bad options: exit 2 with a message saying what is wrong, and no output folder."""
    out = c.path("out")
    bad = [
        (["--algo", "nope"], r"unknown algorithm 'nope' \(choose from hpo, hpo-decoupled, ppo, reinforce, gumbel-st\)"),
        (["--schedule", "steep"], r"unknown schedule 'steep' \(choose from constant, linear, cosine\)"),
        (["--baseline", "zero"], r"unknown baseline 'zero' \(choose from value, batch-mean\)"),
        (["--iterations", "0"], r"--iterations must be at least 1"),
        (["--iterations", "abc"], r"--iterations"),
        (["--batch", "1"], r"--batch must be at least 2"),
        (["--hidden", "64,x"], r"--hidden takes layer sizes separated by commas, like 64,64; got '64,x'"),
        (["--hidden", "0"], r"--hidden sizes must be between 1 and 65536"),
        (["--lr", "-1"], r"--lr must be a positive number"),
        (["--lr", "nan"], r"--lr must be a positive number"),
        (["--continuous-lr-scale", "0"], r"--continuous-lr-scale must be a positive number"),
        (["--continuous-lr-scale", "inf"], r"--continuous-lr-scale must be a positive number"),
        (["--gae-gamma", "nan"], r"--gae-gamma must be in \[0, 1\]"),
        (["--gae-gamma", "1.5"], r"--gae-gamma must be in \[0, 1\]"),
        (["--param-average", "1"], r"--param-average must be in \[0, 1\)"),
        (["--param-average", "-0.1"], r"--param-average must be in \[0, 1\)"),
        (["--param-average", "nan"], r"--param-average must be in \[0, 1\)"),
        (["--threads", "-1"], r"--threads cannot be negative"),
        (["--eval-every", "-1"], r"--eval-every cannot be negative"),
        (["--dev-seed", str(2**63)], r"--dev-seed: Value 9223372036854775808 not in range 0 to 9223372036854775807"),
        (["--seed", "-1"], r"--seed"),
        (["--hidden", "64,"], r"--hidden takes layer sizes"),
        (["--bogus"], r"--bogus"),
    ]
    for flags, message in bad:
        c.run("train", NEWSVENDOR, "--out", out, *flags, code=2, stderr=message)
        check(not os.path.exists(out), f"{flags}: the output folder was created")
    c.run("train", code=2, stderr=r"file is required")


def case_model_errors(c):
    """Params and model errors: exit 1 with the compiler's file-located diagnostics."""
    out = c.path("out")
    c.run("train", NEWSVENDOR, "--out", out, "--set", "nope=1", code=1,
          stderr=r"^--set nope=1: error: unknown param 'nope' \(the model's params: h, p, mu, sigma\)")
    c.run("train", NEWSVENDOR, "--out", out, "--set", "h=abc", code=1,
          stderr=r"^--set h=abc: error: the value must be a finite number")
    shape = c.write("shape.json", '{\n  "mean_demand": [4.0, 5.0]\n}\n')
    c.run("train", INVENTORY, "--out", out, "--params", shape, code=1,
          stderr=r"^.*shape\.json: error: param 'mean_demand' has shape \[3\] but the value given has shape \[2\]$")
    unknown = c.write("unknown.json", '{"holding": 2.0, "nope": 1}\n')
    c.run("train", INVENTORY, "--out", out, "--params", unknown, code=1,
          stderr=r"^.*unknown\.json: error: unknown param 'nope'")
    syntax = c.write("syntax.json", '{\n  "holding": 2.0,\n')
    c.run("train", INVENTORY, "--out", out, "--params", syntax, code=1,
          stderr=r"^.*syntax\.json:3:1: error: invalid JSON")
    model = c.write("broken.hpo", "model broken\nstate x = 0.0\nhorizon 3\nstep {\n  x' = x +\n}\n")
    c.run("train", model, "--out", out, code=1, stderr=r"^.*broken\.hpo:\d+:\d+: error: ")
    c.run("train", c.path("missing.hpo"), "--out", out, code=1, stderr=r"missing\.hpo: error: cannot open file")
    check(not os.path.exists(out), "a model that did not compile created the output folder")


def case_train_eval_simulate(c):
    """A run writes metrics, curve and checkpoint; eval and simulate reproduce its test cost."""
    out = c.path("out")
    # A param set on the command line is kept in the checkpoint: eval gives the same cost with it.
    proc = c.run("train", INVENTORY, *SMALL, "--set", "penalty=12", "--out", out, code=0,
                 stderr=r"^training inventory with hpo: 3 iterations x 16 episodes x 50 steps",
                 stdout=[r"^  checkpoint .*policy\.ckpt$", r"^  metrics    .*metrics\.csv$",
                         r"^  curve      .*learning_curve\.svg$"])
    trained = re.search(rf"^inventory: test cost {NUMBER} \+- {NUMBER} \(95% CI, 32 episodes, seed 1001\) "
                        rf"from iteration (\d+) \(dev {NUMBER}\); hpo in \d+s$", proc.stdout, re.MULTILINE)
    check(trained, "no test cost line in train's output")
    test_cost, ci, iteration = trained.group(1), trained.group(2), trained.group(3)

    rows = read_metrics(os.path.join(out, "metrics.csv"))
    check(len(rows) == 3, f"metrics.csv has {len(rows)} rows for 3 iterations")
    check([r["samples"] for r in rows] == ["800", "1600", "2400"], "samples are not 16 x 50 per iteration")
    # Dev evaluations after the first iteration and the last (--eval-every 10).
    check([r["dev_cost"] != "" for r in rows] == [True, False, True], "dev costs in the wrong rows")
    check(math.isclose(float(trained.group(4)), min(float(r["dev_cost"]) for r in rows if r["dev_cost"]),
                       rel_tol=1e-5), "the reported dev cost is not the best of metrics.csv")
    check_svg(os.path.join(out, "learning_curve.svg"), "inventory (hpo)")
    with open(os.path.join(out, "policy.ckpt")) as f:
        ckpt = json.load(f)
    check(ckpt["format"] == "hpoc-checkpoint" and ckpt["options"]["iterations"] == 3, "checkpoint contents")
    check(ckpt["model"]["path"] == INVENTORY, f"checkpoint model path {ckpt['model']['path']}")
    check(ckpt["model"]["param_values"][1] == 12, "the checkpoint lost --set penalty=12")
    check(not os.path.exists(os.path.join(out, "policy.ckpt.tmp")), "a temporary checkpoint was left behind")

    ckpt_path = os.path.join(out, "policy.ckpt")
    expected = (rf"^inventory: test cost {re.escape(test_cost)} \+- {re.escape(ci)} \(95% CI, 32 episodes, "
                rf"seed 1001\); trained with hpo, iteration {iteration}$")
    c.run("eval", ckpt_path, code=0, stdout=expected)
    c.run("eval", ckpt_path, "--threads", "1", code=0, stdout=expected)
    c.run("eval", ckpt_path, "--seed", "7", "--episodes", "10", code=0,
          stdout=r"^inventory: test cost \S+ \+- \S+ \(95% CI, 10 episodes, seed 7\)")

    sim = c.path("sim.csv")
    c.run("simulate", ckpt_path, "--episodes", "3", "--csv", sim, code=0,
          stderr=r"^wrote 3 episodes x 50 steps to .*sim\.csv$")
    with open(sim, newline="") as f:
        table = list(csv.reader(f))
    names = (["episode", "t"] + [f"on_hand[{s}]" for s in range(3)] +
             [f"pipeline[{s}, {l}]" for s in range(3) for l in range(2)] +
             [f"order[{s}]" for s in range(3)] + [f"qty[{s}]" for s in range(3)] + ["cost"])
    check(table[0] == names, f"simulate header {table[0]}")
    check(len(table) == 1 + 3 * 50, f"simulate wrote {len(table) - 1} rows, not 3 x 50")
    check(all(len(row) == len(names) for row in table), "a simulate row has the wrong number of columns")
    check([(int(r[0]), int(r[1])) for r in table[1:]] == [(e, t) for e in range(3) for t in range(50)],
          "episodes and steps are not 0..2 x 0..49 in order")
    for row in table[1:]:
        check(all(r in ("0", "1") for r in row[11:14]), f"an order that is not a choice: {row}")
        check(all(0 <= float(q) <= 30 for q in row[14:17]), f"an order size outside [0, 30]: {row}")
    # The trajectories are the ones eval scores: the same test seed gives the same mean cost.
    proc = c.run("simulate", ckpt_path, "--episodes", "32", code=0)
    totals = {}
    for row in list(csv.reader(io.StringIO(proc.stdout)))[1:]:
        totals[row[0]] = totals.get(row[0], 0.0) + float(row[-1])  # inventory's discount is 1
    mean = sum(totals.values()) / len(totals)
    check(len(totals) == 32 and math.isclose(mean, float(test_cost), rel_tol=1e-5),
          f"simulate's mean episode cost {mean} is not the test cost {test_cost}")

    c.run("simulate", ckpt_path, code=2, stderr=r"--episodes is required")
    c.run("simulate", ckpt_path, "--episodes", "0", code=1, stderr=r"--episodes must be at least 1")
    c.run("simulate", ckpt_path, "--episodes", "1", "--csv", c.path("no", "such", "dir.csv"), code=1,
          stderr=r"^hpoc simulate: error: cannot write .*dir\.csv")


def case_checkpoint_before_linear_path(c):
    """Networks have a linear path by default and checkpoints say so; a checkpoint written before
    that option existed (no key) loads as a net without one and evaluates to its cost."""
    with_path, without = c.path("with"), c.path("without")
    c.run("train", INVENTORY, *SMALL, "--out", with_path, code=0)
    with open(os.path.join(with_path, "policy.ckpt")) as f:
        ckpt = json.load(f)
    check(ckpt["policy"]["linear_skip"] is True and ckpt["options"]["linear_skip"] is True,
          "a default run's checkpoint does not record its linear path")
    proc = c.run("train", INVENTORY, *SMALL, "--no-linear-skip", "--continuous-lr-scale", "1", "--out", without,
                 code=0)
    trained = re.search(rf"test cost ({NUMBER} \+- {NUMBER})", proc.stdout)
    check(trained, "no test cost line in train's output")
    path = os.path.join(without, "policy.ckpt")
    with open(path) as f:
        ckpt = json.load(f)
    for section in ("policy", "options"):
        del ckpt[section]["linear_skip"]
    del ckpt["options"]["continuous_lr_scale"]
    with open(path, "w") as f:
        json.dump(ckpt, f)
    c.run("eval", path, code=0, stdout=rf"test cost {re.escape(trained.group(1))} ")


def order_model(name, *body):
    """A one-item order model whose step has the given lines: q is the order, x the stock."""
    lines = [f"model {name}", "state x = 0.0", "action q : real in [0, 10]", "noise d ~ normal(5.0, 1.0)",
             "horizon 5", "step {", *("  " + line for line in body), "}"]
    return "\n".join(lines) + "\n"


# A price with two breaks: jumps hpoc reports but cannot rewrite (one gate per threshold is needed).
TWO_BREAKS = order_model("two_breaks", "let price = if q < 3.0 then 2.0 else if q < 6.0 then 1.5 else 1.0",
                         "x' = x + q - d", "cost += price * q + x * x")
# A fixed cost on an order: a jump hpoc rewrites with a generated gate action unless told not to.
FIXED_COST = order_model("fixed_cost", "x' = x + q - d", "cost += (if q > 0.0 then 5.0 else 0.0) + q + x * x")


def case_jump_warnings(c):
    """train prints the analysis's warnings before training, and --strict makes them errors at their
    file:line:col, as check does; compile flags before the subcommand are refused, not ignored."""
    model, out = c.write("two_breaks.hpo", TWO_BREAKS), c.path("out")
    warning = r"two_breaks\.hpo:7:15: warning: this if jumps with q \(continuous action\)"
    c.run("train", model, *SMALL, "--out", out, code=0, stderr=[warning, r"two_breaks\.hpo:7:40: warning: "])
    shutil.rmtree(out)
    c.run("train", model, *SMALL, "--strict", "--out", out, code=1, stderr=r"two_breaks\.hpo:7:15: error: this if jumps")
    check(not os.path.exists(out), "a model refused by --strict created the output folder")
    for flag in (["--strict"], ["--no-reformulate"], ["--set", "x=1"], ["-O", "0"]):
        c.run(*flag, "train", model, *SMALL, "--out", out, code=2,
              stderr=rf"hpoc: error: {re.escape(flag[0])} before the subcommand is not applied to it")
    check(not os.path.exists(out), "a refused command line created the output folder")
    c.run("train", c.write("fixed_cost.hpo", FIXED_COST), *SMALL, "-O", "0", "--out", out, code=0)


def case_no_reformulate(c):
    """check counts the generated gates; --no-reformulate trains on the model as written (no gate),
    says so in the checkpoint, and eval compiles the model the same way; a checkpoint from before
    the key was reformulated."""
    model = c.write("fixed_cost.hpo", FIXED_COST)
    c.run("check", model, code=0, stdout=r"horizon 5, 1 generated gate action\)$")
    proc = c.run("check", model, "--no-reformulate", code=0, stderr=r"fixed_cost\.hpo:8:12: warning: ")
    check("generated" not in proc.stdout, "check --no-reformulate counts gates it did not generate")
    for name, flags, gates in (("plain", ["--no-reformulate"], []), ("gated", [], [2])):
        out = c.path(name)
        proc = c.run("train", model, *SMALL, *flags, "--out", out, code=0)
        trained = re.search(rf"test cost ({NUMBER} \+- {NUMBER})", proc.stdout)
        check(trained, "no test cost line in train's output")
        path = os.path.join(out, "policy.ckpt")
        with open(path) as f:
            ckpt = json.load(f)
        check(ckpt["model"]["reformulate"] is (name == "gated"), f"{name}: the checkpoint's reformulate is wrong")
        check(ckpt["policy"]["choices"] == gates, f"{name}: the policy's choices are {ckpt['policy']['choices']}")
        c.run("eval", path, code=0, stdout=rf"test cost {re.escape(trained.group(1))} ")
        if name == "gated":
            del ckpt["model"]["reformulate"]
            with open(path, "w") as f:
                json.dump(ckpt, f)
            c.run("eval", path, code=0, stdout=rf"test cost {re.escape(trained.group(1))} ")


def case_default_out(c):
    """Without --out, a run writes to runs/<model> in the working folder."""
    c.run("train", NEWSVENDOR, *SMALL, code=0, stdout=r"checkpoint runs/newsvendor/policy\.ckpt")
    for name in ("policy.ckpt", "metrics.csv", "learning_curve.svg"):
        check(os.path.exists(c.path("runs", "newsvendor", name)), f"runs/newsvendor/{name} is missing")


def case_config(c):
    """--config reads options from a TOML file; flags on the command line override it."""
    config = c.write("run.toml", 'iterations = 3\nbatch = 8\ndev-episodes = 8\ntest-episodes = 8\n'
                     'hidden = "16"\nalgo = "reinforce"\nquiet = true\n')
    c.run("train", NEWSVENDOR, "--config", config, "--out", c.path("a"), code=0,
          stderr=r"with reinforce: 3 iterations x 8 episodes")
    check(len(read_metrics(c.path("a", "metrics.csv"))) == 3, "iterations = 3 in the config was not honored")
    c.run("train", NEWSVENDOR, "--config", config, "--iterations", "2", "--out", c.path("b"), code=0,
          stderr=r"with reinforce: 2 iterations x 8 episodes")
    check(len(read_metrics(c.path("b", "metrics.csv"))) == 2, "--iterations 2 did not override the config")
    # A flag takes a TOML boolean; an option that repeats (--set) takes a TOML array.
    listed = c.write("listed.toml", 'iterations = 2\nbatch = 8\ndev-episodes = 4\ntest-episodes = 4\nquiet = true\n'
                     'set = ["p=9", "h=2"]\n')
    c.run("train", NEWSVENDOR, "--config", listed, "--out", c.path("d"), code=0)
    with open(c.path("d", "policy.ckpt")) as f:
        check(json.load(f)["model"]["param_values"][:2] == [2, 9], "set = [...] in the config was not applied")
    # Mistakes in the file: exit 2 with the file's line and column.
    for text, message in [('bogus = 1\n', r"'bogus' is not an option of hpoc train"),
                          ('iterations = "abc"\n', r"Could not convert: --iterations = abc"),
                          ('iterations =\n', r"")]:
        bad = c.write("bad.toml", text)
        c.run("train", NEWSVENDOR, "--config", bad, "--out", c.path("e"), code=2,
              stderr=r"^hpoc train: error: .*bad\.toml:1:\d+: " + message)
    check(not os.path.exists(c.path("e")), "a bad config created the output folder")
    proc = c.run("train", NEWSVENDOR, "--config", c.path("missing.toml"), "--out", c.path("c"), *SMALL)
    check(proc.returncode != 0 and "missing.toml" in proc.stderr, "a missing config file is not an error")


def case_bad_checkpoints(c):
    """eval and simulate of a missing, damaged or foreign checkpoint: exit 1 naming the file."""
    c.run("train", NEWSVENDOR, *SMALL, "--out", c.path("run"), code=0)
    with open(c.path("run", "policy.ckpt")) as f:
        good = f.read()
    files = {
        "missing.ckpt": (None, r"missing\.ckpt: cannot open the checkpoint"),
        "garbage.ckpt": ("\x01 this is not json", r"garbage\.ckpt: damaged checkpoint"),
        "truncated.ckpt": (good[: len(good) // 2], r"truncated\.ckpt: damaged checkpoint"),
        "foreign.ckpt": ('{"format": "something-else", "version": 1}', r"foreign\.ckpt: not an hpoc checkpoint"),
        "empty.ckpt": ("", r"empty\.ckpt: damaged checkpoint"),
    }
    for name, (text, message) in files.items():
        if text is not None:
            c.write(name, text)
        c.run("eval", c.path(name), code=1, stderr=r"^hpoc eval: error: .*" + message)
        c.run("simulate", c.path(name), "--episodes", "2", code=1, stderr=r"^hpoc simulate: error: .*" + message)
    c.run("eval", c.path("run"), code=1, stderr=r"^hpoc eval: error: .*run")  # a folder


def case_impossible_checkpoint(c):
    """A well-formed checkpoint with impossible sizes: exit 1 naming the file, never a crash."""
    c.run("train", NEWSVENDOR, *SMALL, "--out", c.path("run"), code=0)
    with open(c.path("run", "policy.ckpt")) as f:
        good = json.load(f)
    edits = {
        "negative_obs": lambda j: j["policy"].update(obs=-1),
        "negative_hidden": lambda j: j["policy"].update(hidden=[-3]),
        "few_param_values": lambda j: j["model"].update(param_values=[1.0]),
    }
    for name, edit in edits.items():
        j = json.loads(json.dumps(good))
        edit(j)
        path = c.write(name + ".ckpt", json.dumps(j))
        c.run("eval", path, "--episodes", "2", code=1, stderr=r"^hpoc eval: error: .*" + re.escape(path))


def case_changed_model(c):
    """A checkpoint whose model file changed is refused unless --allow-changed-model."""
    model = c.path("newsvendor.hpo")
    shutil.copy(NEWSVENDOR, model)  # its import std.inventory comes from hpoc's own stdlib
    c.run("train", model, *SMALL, "--out", c.path("run"), code=0)
    ckpt = c.path("run", "policy.ckpt")
    before = c.run("eval", ckpt, code=0).stdout
    with open(model, "a") as f:
        f.write("// an edit after training\n")
    c.run("eval", ckpt, code=1, stderr=r"^hpoc eval: error: the model .*newsvendor\.hpo changed since this "
                                        r"policy was trained")
    c.run("simulate", ckpt, "--episodes", "1", code=1, stderr=r"changed since this policy was trained")
    after = c.run("eval", ckpt, "--allow-changed-model", code=0).stdout
    check(after == before, "a comment changed the test cost")
    os.remove(model)
    c.run("eval", ckpt, "--allow-changed-model", code=1, stderr=r"newsvendor\.hpo: error: cannot open file")


def nan_midway_run(c, *flags, **expect):
    return c.run("train", NAN_MIDWAY, "--lr", "0.01", "--iterations", "60", "--batch", "8", "--dev-episodes", "4",
                 "--test-episodes", "4", "--threads", "1", "--quiet", "--out", c.path("out"), *flags, **expect)


def case_nan_midway(c):
    """A model that turns NaN after a few iterations: exit 1 naming step, episode and state; the
    checkpoint of the dev evaluation before stays, and metrics.csv has the iterations up to it."""
    # Dev evaluations only after iteration 1 and the last: the NaN comes from a training batch.
    proc = nan_midway_run(c, "--eval-every", "1000")
    check(proc.returncode == 1, f"exit code {proc.returncode}")
    check(re.search(r"^.*nan_midway\.hpo: error: training stopped: step \d+ of episode \d+ produced a value that "
                    r"is not finite: state room = -?nan$", proc.stderr, re.MULTILINE), "no NaN message")
    check(re.search(r"^the last good checkpoint is kept: .*out/policy\.ckpt$", proc.stderr, re.MULTILINE),
          "no word of the kept checkpoint")
    check("test cost" not in proc.stdout, "a test cost was printed after the failure")
    rows = read_metrics(c.path("out", "metrics.csv"))
    check(2 <= len(rows) < 60, f"metrics.csv has {len(rows)} rows")
    check(rows[0]["dev_cost"] != "", "no dev cost after the first iteration")
    check_svg(c.path("out", "learning_curve.svg"), "nan_midway (hpo)")
    c.run("eval", c.path("out", "policy.ckpt"), code=0, stdout=r"trained with hpo, iteration 1$")


def case_nan_first_step(c):
    """A model that is NaN from its first step: exit 1 with the step and state, no checkpoint."""
    proc = c.run("train", NAN_FIRST_STEP, *SMALL, "--out", c.path("out"), code=1,
                 stderr=r"^.*nan_first_step\.hpo: error: training stopped: step 0 of episode 0 produced a value that "
                        r"is not finite: state x = -?nan$")
    check("last good checkpoint" not in proc.stderr, "a checkpoint is said to be kept but none was written")
    check(proc.stdout == "", "train printed results")
    check(not os.path.exists(c.path("out", "policy.ckpt")), "a checkpoint was written")
    check(read_metrics(c.path("out", "metrics.csv")) == [], "metrics.csv has rows")


def case_nan_in_dev_evaluation(c):
    """A NaN met by a dev evaluation (not a training batch) is handled like any other NaN."""
    nan_midway_run(c, "--eval-every", "1", code=1,
                   stderr=[r"error: training stopped: the dev evaluation after iteration \d+: step \d+ of episode \d+ "
                           r"produced a value that is not finite",
                           r"^the last good checkpoint is kept: "])
    check_svg(c.path("out", "learning_curve.svg"), "nan_midway (hpo)")


def case_simulate_trained_horizon(c):
    """simulate of a run trained with --horizon writes and reports that many steps per episode."""
    c.run("train", NEWSVENDOR, *SMALL, "--horizon", "3", "--out", c.path("run"), code=0)
    c.run("simulate", c.path("run", "policy.ckpt"), "--episodes", "2", "--csv", c.path("sim.csv"), code=0,
          stderr=r"^wrote 2 episodes x 3 steps to ")
    with open(c.path("sim.csv")) as f:
        check(len(f.read().splitlines()) == 1 + 2 * 3, "not 2 x 3 rows")


def case_simulate_failure_leaves_no_file(c):
    """simulate that meets a NaN exits 1 and leaves neither the CSV nor its temporary file."""
    model = c.path("nan_midway.hpo")
    shutil.copy(NAN_MIDWAY, model)
    c.run("train", model, *SMALL, "--out", c.path("run"), code=0)
    with open(model) as f:
        text = f.read()
    with open(model, "w") as f:
        f.write(text.replace("const LIMIT = 7.0", "const LIMIT = 1.0"))  # NaN within two steps now
    c.run("simulate", c.path("run", "policy.ckpt"), "--episodes", "2", "--csv", c.path("out.csv"),
          "--allow-changed-model", code=1, stderr=r"^hpoc simulate: error: step \d+ of episode \d+ produced a value "
                                                  r"that is not finite: state room")
    check(not os.path.exists(c.path("out.csv")), "a CSV was written")
    check(not os.path.exists(c.path("out.csv.tmp")), "the temporary CSV was left behind")


CASES = {name[len("case_"):]: f for name, f in globals().items() if name.startswith("case_")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hpoc", required=True)
    parser.add_argument("--work", required=True, help="a folder for the runs (each case empties its own)")
    parser.add_argument("case", choices=sorted(CASES))
    args = parser.parse_args()
    work = os.path.join(os.path.abspath(args.work), args.case)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    c = Case(os.path.abspath(args.hpoc), work)
    try:
        CASES[args.case](c)
    except Failure as e:
        print("\n\n".join(c.log))
        print(f"FAILED ({args.case}): {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
