#!/usr/bin/env python3
"""run_stage_test.py: runs one golden or error test of hpoc.

golden: `hpoc --emit=STAGE FILE` must exit 0 and print exactly FILE's .STAGE file
        (HPOC_UPDATE_GOLDEN=1 rewrites the expected file instead).
error:  `hpoc check FILE [ARGS]` must exit 1 (not crash), and its diagnostics must match the
        file's `// CHECK:` lines (FileCheck). A line `// ARGS: ...` adds arguments.
check:  `hpoc --emit=STAGE FILE` must exit 0 and its output match the file's CHECK lines (for
        output that varies with the host, such as the vector width of optimized LLVM IR).
"""
import argparse
import os
import shlex
import subprocess
import sys
import difflib


def run_golden(args):
    folder, name = os.path.split(os.path.abspath(args.file))
    expected_path = os.path.join(folder, os.path.splitext(name)[0] + "." + args.stage)
    proc = subprocess.run([args.hpoc, "--emit=" + args.stage, name], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        print(f"hpoc exited with {proc.returncode}\n{proc.stderr}")
        return 1
    if os.environ.get("HPOC_UPDATE_GOLDEN") == "1":
        with open(expected_path, "w") as f:
            f.write(proc.stdout)
        print(f"updated {expected_path}")
        return 0
    with open(expected_path) as f:
        expected = f.read()
    if proc.stdout == expected:
        return 0
    sys.stdout.writelines(difflib.unified_diff(expected.splitlines(True), proc.stdout.splitlines(True),
                                               expected_path, "hpoc output"))
    print("\n(rerun with HPOC_UPDATE_GOLDEN=1 to accept the new output)")
    return 1


def run_error(args):
    folder, name = os.path.split(os.path.abspath(args.file))
    with open(args.file, encoding="utf-8", errors="replace") as f:
        text = f.read()
    extra = []
    for line in text.splitlines():
        if line.startswith("// ARGS:"):
            extra += shlex.split(line[len("// ARGS:"):])
    if "// CHECK" not in text:
        print("an error test needs at least one // CHECK: line")
        return 1
    proc = subprocess.run([args.hpoc, "check", name] + extra, cwd=folder, capture_output=True,
                          text=True, errors="replace", timeout=120)
    if proc.returncode != 1:
        print(f"expected exit code 1 (errors reported), got {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return 1
    return filecheck(args, proc.stderr)


def filecheck(args, text):
    """Matches text against the test file's CHECK lines; 0 when they match."""
    check = subprocess.run([args.filecheck, args.file, "--dump-input=fail"], input=text,
                           capture_output=True, text=True)
    if check.returncode != 0:
        print(check.stdout + check.stderr)
        return 1
    return 0


def run_check(args):
    folder, name = os.path.split(os.path.abspath(args.file))
    proc = subprocess.run([args.hpoc, "--emit=" + args.stage, name], cwd=folder, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        print(f"hpoc exited with {proc.returncode}\n{proc.stderr}")
        return 1
    return filecheck(args, proc.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["golden", "error", "check"])
    parser.add_argument("--hpoc", required=True)
    parser.add_argument("--filecheck")
    parser.add_argument("--stage", default="ast")
    parser.add_argument("file")
    args = parser.parse_args()
    args.hpoc = os.path.abspath(args.hpoc)  # the tests run from the test file's folder
    runners = {"golden": run_golden, "error": run_error, "check": run_check}
    sys.exit(runners[args.mode](args))


if __name__ == "__main__":
    main()
