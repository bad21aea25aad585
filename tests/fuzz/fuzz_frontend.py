#!/usr/bin/env python3
"""fuzz_frontend.py: feeds mutated and generated .hpo inputs to `hpoc check` and reports crashes and hangs.

Usage:
  fuzz_frontend.py --hpoc PATH --count N --seed S [--timeout 5] [--save DIR] SEED_DIRS...

Every *.hpo under the seed folders (recursively) is a seed. For each of the N inputs a strategy is
picked (byte flips/insertions/deletions, token mutations, splicing two seeds, truncation, random
bytes, huge numbers, deep nesting, long operator chains, very long lines, random unicode, randomly
generated models), the input is written to a temporary file and `hpoc check FILE` is run. Exit
status 0 or 1 is a pass (accepted or diagnosed); anything else (a signal, an internal error 3, ...)
or running past --timeout is a FAILURE. Failing inputs are saved and printed with a command that
reproduces them. Input i of seed S depends only on (S, i) and the seed files, so a run is
deterministic, and `--only I` regenerates and reruns one input. The last line printed is
`fuzz: N passed, M failed`; the exit status is 1 if anything failed.
"""
import argparse
import concurrent.futures
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------------------------
# The language's vocabulary (docs/language.md, grammar/Hpo.g4).

KEYWORDS = ("model module import const param state action noise observe horizon discount step fn "
            "return let if then else for in choice real int bool true false inf and or not").split()
OPERATORS = ("+ - * / % @ == != < <= > >= ! && || = += ' -> .. . ~ : , ; ( ) [ ] { }").split()
BUILTINS = "relu abs exp log sqrt sin cos tanh sigmoid softplus max min pow clamp sum mean dot real eye div".split()
DISTRIBUTIONS = "normal uniform poisson bernoulli categorical".split()
IDENTIFIERS = ["x", "y", "u", "k", "i", "j", "n", "N", "D", "A", "B", "Q", "cost", "mode", "level",
               "demand", "std", "inventory", "_", "_tmp", "x0", "f", "g", "m"]
NUMBERS = ["0", "1", "2", "3", "10", "0.5", "1.0", "2.5e2", "1e-3", "6E10", "100"]
# Values at and around the limits of the compiler's integers, reals and size checks.
EDGE_NUMBERS = [
    "0", "1", "2", "400", "401", "1000000", "1000001", "1048576", "1048577", "10000000", "10000001",
    "20000000", "2147483647", "2147483648", "4294967295", "4294967296", "3037000499", "3037000500",
    "9223372036854775806", "9223372036854775807", "9223372036854775808", "18446744073709551616",
    "99999999999999999999999999999999", "1" + "0" * 400, "1e308", "1.7976931348623157e308", "1e309",
    "1e-308", "4.9e-324", "1e-400", "1e999999999999", "0.0", "0e0", "1e0", "00000000000000000001",
    "1.", ".5", "1e", "1e+", "0x10", "1_000", "1..2",
]
EDGE_EXPRESSIONS = [
    "-9223372036854775807 - 1", "(-9223372036854775807 - 1) % -1", "div(-9223372036854775807 - 1, -1)",
    "9223372036854775807 + 1", "9223372036854775807 * 2", "1 % 9223372036854775807",
    "5 % -9223372036854775807", "div(1, 0)", "1 % 0", "eye(4294967296)", "eye(3037000500)", "eye(1024)",
    "eye(0)", "eye(-1)", "[1.0 for i in -9223372036854775807..9223372036854775807]",
    "[1.0 for i in 0..1048576]", "[1.0 for i in 0..1048577]", "[1.0 for i in 3..1]",
    "1.0 / 0.0", "0.0 / 0.0", "log(0.0)", "sqrt(-1.0)", "exp(1000.0)", "pow(0.0, -1.0)", "-inf", "inf",
]

LEXEME_RE = re.compile(
    rb"//[^\n]*|/\*.*?\*/|[ \t\r\n]+|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
    rb"|\.\.|->|==|!=|<=|>=|&&|\|\||\+=|.", re.S)

FALLBACK_SEED = b"""model fallback
const N = 2
param w[N] = [1.0, 0.5]
state x[N] = 0.0
action u[N] : real in [0, 1]
action k : choice(2)
noise e[N] ~ normal(0.0, 1.0)
horizon 10
step {
  for i in 0..N {
    x'[i] = if k == 1 then x[i] + u[i] else w[i] * e[i]
    cost += x'[i] * x'[i]
  }
}
"""

MAX_INPUT_BYTES = 1 << 20


def tokens(data):
    return LEXEME_RE.findall(data)


def is_blank(tok):
    return tok.isspace() or tok.startswith(b"//") or tok.startswith(b"/*")


def random_token(r, seed_words=()):
    pick = r.random()
    if pick < 0.25:
        return r.choice(KEYWORDS)
    if pick < 0.5:
        return r.choice(OPERATORS)
    if pick < 0.65:
        return r.choice(BUILTINS + DISTRIBUTIONS)
    if pick < 0.8:
        return r.choice(list(seed_words) or IDENTIFIERS) if r.random() < 0.6 else r.choice(IDENTIFIERS)
    if pick < 0.95:
        return r.choice(NUMBERS)
    return r.choice(EDGE_NUMBERS)


# ---------------------------------------------------------------------------------------------
# Mutation strategies. Each takes (r, seeds) and returns bytes.

def byte_mutations(r, seeds):
    data = bytearray(r.choice(seeds))
    interesting = b"()[]{}'=+-*/%@<>!&|.,:;~\"\\\n\t\r \x00\x7f\x80\xbf\xc0\xff\xef\xbb\xbf0123456789eE_"
    for _ in range(r.randint(1, 12)):
        op = r.random()
        if not data:
            data += bytes([r.randrange(256)])
            continue
        pos = r.randrange(len(data) + 1)
        if op < 0.35 and pos < len(data):
            data[pos] ^= 1 << r.randrange(8)
        elif op < 0.7:
            chunk = bytes(r.choice(interesting) if r.random() < 0.7 else r.randrange(256)
                          for _ in range(r.randint(1, 4)))
            data[pos:pos] = chunk
        else:
            del data[pos:pos + r.randint(1, 16)]
    return bytes(data)


def token_mutations(r, seeds):
    toks = tokens(r.choice(seeds))
    words = sorted({t.decode() for t in toks if re.fullmatch(rb"[A-Za-z_]\w*", t)})
    for _ in range(r.randint(1, 8)):
        solid = [i for i, t in enumerate(toks) if not is_blank(t)]
        op = r.random()
        if not solid or op < 0.3:
            pos = r.randint(0, len(toks))
            toks[pos:pos] = [b" ", random_token(r, words).encode(), b" "]
        elif op < 0.5:
            del toks[r.choice(solid)]
        elif op < 0.65:
            i = r.choice(solid)
            toks[i:i] = [toks[i]] * r.randint(1, 3)
        elif op < 0.8:
            i, j = r.choice(solid), r.choice(solid)
            toks[i], toks[j] = toks[j], toks[i]
        else:
            toks[r.choice(solid)] = random_token(r, words).encode()
    return b"".join(toks)


def splice(r, seeds):
    a, b = tokens(r.choice(seeds)), tokens(r.choice(seeds))
    cut_a = r.randint(0, len(a))
    cut_b = r.randint(0, len(b))
    middle = [b"\n"] if r.random() < 0.5 else []
    return b"".join(a[:cut_a] + middle + b[cut_b:])


def truncate(r, seeds):
    data = r.choice(seeds)
    if r.random() < 0.5:
        return data[:r.randint(0, len(data))]
    toks = tokens(data)
    return b"".join(toks[:r.randint(0, len(toks))])


def random_bytes(r, seeds):
    kind = r.random()
    n = r.choice([0, 1, 2, 8, 64, 512, 4096])
    if kind < 0.3:
        return bytes(r.randrange(256) for _ in range(n))
    if kind < 0.6:
        return bytes(r.randrange(32, 127) if r.random() < 0.95 else 10 for _ in range(n))
    # token soup, sometimes behind a valid header
    soup = " ".join(random_token(r) for _ in range(r.randint(1, 300)))
    return (b"model m\n" if r.random() < 0.5 else b"") + soup.encode()


def huge_numbers(r, seeds):
    toks = tokens(r.choice(seeds))
    numeric = [i for i, t in enumerate(toks) if t[:1].isdigit()]
    if numeric:
        for i in r.sample(numeric, min(len(numeric), r.randint(1, 4))):
            toks[i] = (r.choice(EDGE_NUMBERS) if r.random() < 0.7 else "(" + r.choice(EDGE_EXPRESSIONS) + ")").encode()
        return b"".join(toks)
    return template(r, "(" + r.choice(EDGE_EXPRESSIONS) + ")")


# Models with a hole where an expression or statements go.
EXPR_TEMPLATES = [
    "model m\nconst N = 3\nparam p[N] = 1.0\nstate x = 0.0\naction k : choice(2)\nhorizon 5\nstep {\n  x' = HOLE\n}\n",
    "model m\nconst N = 3\nparam w = HOLE\nstate x = 0.0\nhorizon 5\nstep {\n  x' = x + w\n}\n",
    "model m\nstate x = 0.0\nhorizon 5\nstep {\n  x' = x\n  cost += HOLE\n}\n",
    "model m\nconst C = HOLE\nstate x = 0.0\nhorizon 5\nstep {\n  x' = x\n}\n",
    "model m\nparam p[3] = [1.0, 2.0, 3.0]\nstate x[3] = HOLE\nhorizon 5\nstep {\n  x' = x\n}\n",
    "model m\nstate x = 0.0\nhorizon HOLE\nstep {\n  x' = x\n}\n",
    "model m\nstate x[HOLE] = 0.0\nhorizon 5\nstep {\n  x' = x\n}\n",
    "model m\nstate x = 0.0\naction u : real in [HOLE, inf]\nhorizon 5\nstep {\n  x' = x + u\n}\n",
    "model m\nstate x = 0.0\nnoise e ~ normal(0.0, HOLE)\nhorizon 5\nstep {\n  x' = x + e\n}\n",
    "model m\nfn f(a: real) -> real { return HOLE }\nstate x = 0.0\nhorizon 5\nstep {\n  x' = f(x)\n}\n",
    "model m\nconst N = 4\nparam p[N] = 1.0\nstate x[N] = 0.0\nhorizon 5\nstep {\n  for i in 0..N {\n"
    "    x'[i] = x[i] + p[HOLE]\n  }\n}\n",
]
STMT_TEMPLATE = "model m\nstate x = 0.0\naction k : choice(2)\nhorizon 5\nstep {\n  x' = x\nHOLE\n}\n"


def template(r, hole):
    return r.choice(EXPR_TEMPLATES).replace("HOLE", hole).encode()


def deep_nesting(r, seeds):
    d = r.choice([10, 100, 133, 134, 150, 199, 200, 201, 399, 400, 401, 1000, 2000, 2001, 3000])
    kind = r.randrange(12)
    if kind == 0:
        return template(r, "(" * d + "x" + ")" * d)
    if kind == 1:
        return template(r, "sum(" + "[" * d + "1.0" + "]" * d + ")")
    if kind == 2:
        return template(r, "if x > 0.0 then " * d + "1.0" + " else 0.0" * d)
    if kind == 3:
        return template(r, "if x > 0.0 then (" * d + "1.0" + ") else 0.0" * d)
    if kind == 4:
        return STMT_TEMPLATE.replace("HOLE", "  if x > 0.0 {\n" * d + "  cost += 1.0\n" + "  }\n" * d).encode()
    if kind == 5:
        return STMT_TEMPLATE.replace("HOLE", "  if k {\n" * d + "  cost += 1.0\n" + "  } else { cost += 2.0 }\n" * d).encode()
    if kind == 6:
        return template(r, r.choice(["relu(", "abs(", "real(", "sum(", "max(1.0, "]) * d + "x" + ")" * d)
    if kind == 7:
        return template(r, r.choice(["-", "+", "!", "not ", "- "]) * d + "x")
    if kind == 8:  # nested loops: the unrolled size grows as 2^depth
        d = min(d, r.choice([5, 12, 16, 30, 64, 200]))  # 2^16 is cheap; 2^30 and up must hit the work limit
        body = "".join(f"  for i{n} in 0..2 {{\n" for n in range(d)) + "  cost += 1.0\n" + "  }\n" * d
        return STMT_TEMPLATE.replace("HOLE", body).encode()
    if kind == 9:  # unbalanced
        opener = r.choice("([{")
        return template(r, opener * d + "x")
    if kind == 10:
        return STMT_TEMPLATE.replace("HOLE", "{" * d + "}" * r.choice([0, d, d - 1])).encode()
    inner = "1.0"  # nested comprehensions: the array size grows as 2^depth
    for n in range(min(d, 60)):
        inner = f"[{inner} for i{n} in 0..2]"
    return template(r, "sum(" + inner + ")")


def long_chains(r, seeds):
    n = r.choice([100, 1999, 2000, 2001, 5000, 20000])
    kind = r.randrange(6)
    if kind == 0:
        return template(r, " + ".join(["x"] * n))
    if kind == 1:
        op = r.choice([" * ", " - ", " / ", " @ ", " and ", " or ", " == ", " < ", " % ", "+"])
        return template(r, op.join([r.choice(["x", "1.0", "1", "true", "p"])] * n))
    if kind == 2:  # many statements
        lines = "".join(f"  let v{m} = x + {m}.0\n" for m in range(n))
        return STMT_TEMPLATE.replace("HOLE", lines).encode()
    if kind == 3:  # many declarations
        decls = "".join(f"param p{m} = {m}.0\n" for m in range(n))
        return ("model m\n" + decls + "state x = 0.0\nhorizon 5\nstep {\n  x' = x\n}\n").encode()
    if kind == 4:  # long array literal
        return template(r, "sum([" + ", ".join(["1.0"] * n) + "])")
    return template(r, "x" + "'" * n)


def long_lines(r, seeds):
    n = r.choice([1000, 100000, 500000])
    kind = r.randrange(5)
    if kind == 0:
        return template(r, "x" + " " * n + "+ y")  # an error far to the right
    if kind == 1:
        return template(r, "a" * n)  # a very long identifier
    if kind == 2:
        return template(r, "1" * min(n, 100000))  # a very long number
    if kind == 3:
        return template(r, "x /* " + "*" * n + " */ + 1.0")
    data = r.choice(seeds)
    return data.replace(b"\n", b" ") + b" // " + b"z" * n


UNICODE_PIECES = [
    "\u00e9", "\u03bb", "\u4e2d", "\U0001F600", "\u0301", "\u200b", "\ufeff", "\u202e", "\uffff", "\u00a0",
    "\u2028", "\u2029", "\u0660", "\uff10", "\u2212", "\u2018", "\u2019", "\u201c", "\u00d7",
]
INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3", b"\xe2\x82",
                b"\x80", b"\xfe\xff", b"\x00"]


def random_unicode(r, seeds):
    data = bytearray(r.choice(seeds))
    for _ in range(r.randint(1, 6)):
        pos = r.randint(0, len(data))
        pick = r.random()
        if pick < 0.6:
            piece = r.choice(UNICODE_PIECES).encode()
        elif pick < 0.8:
            piece = chr(r.choice([r.randrange(0x80, 0xD800), r.randrange(0xE000, 0x110000)])).encode()
        else:
            piece = r.choice(INVALID_UTF8)
        data[pos:pos] = piece
    return bytes(data)


# A small random model generator: syntactically valid most of the time, semantically anything.
class ModelGen:
    def __init__(self, r):
        self.r = r
        self.names = {"const": [], "param": [], "state": [], "action": [], "noise": [], "fn": []}
        self.counter = 0

    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def number(self):
        r = self.r
        if r.random() < 0.05:
            return r.choice(EDGE_NUMBERS[:30])
        return r.choice(["0", "1", "2", "3", "0.5", "1.0", "2.0", "0.1", "10.0", "1e-3"])

    def dims(self):
        r = self.r
        if r.random() < 0.5:
            return ""
        sizes = [r.choice(self.names["const"] + ["2", "3", "1"]) if r.random() < 0.9 else self.number()
                 for _ in range(r.choice([1, 1, 2, 3]))]
        return "[" + ", ".join(sizes) + "]"

    def leaf(self, in_fn=False, locals_=()):
        r = self.r
        pool = list(locals_)
        if not in_fn:
            for kind in ("param", "state", "action", "noise"):
                pool += self.names[kind]
        pool += self.names["const"]
        pick = r.random()
        if pool and pick < 0.6:
            name = r.choice(pool)
            if not in_fn and name in self.names["state"] and r.random() < 0.15:
                name += "'"
            if r.random() < 0.3:
                name += "[" + ", ".join(r.choice(["0", "1", "i", "k", "N1", "2"]) for _ in range(r.randint(1, 2))) + "]"
            return name
        if pick < 0.9:
            return self.number()
        return r.choice(["true", "false", "inf", "cost", "x", "i"])

    def expr(self, depth, in_fn=False, locals_=()):
        r = self.r
        if depth <= 0 or r.random() < 0.3:
            return self.leaf(in_fn, locals_)
        sub = lambda: self.expr(depth - 1, in_fn, locals_)
        kind = r.random()
        if kind < 0.4:
            return f"{sub()} {r.choice(['+', '-', '*', '/', '%', '@', '<', '<=', '>', '>=', '==', '!=', 'and', 'or', '&&', '||'])} {sub()}"
        if kind < 0.5:
            return f"{r.choice(['-', '+', 'not ', '!'])}{sub()}"
        if kind < 0.6:
            return f"({sub()})"
        if kind < 0.7:
            return f"if {sub()} then {sub()} else {sub()}"
        if kind < 0.85:
            fn = r.choice(BUILTINS + self.names["fn"])
            return f"{fn}({', '.join(sub() for _ in range(r.choice([1, 1, 2, 3])))})"
        if kind < 0.93:
            return "[" + ", ".join(sub() for _ in range(r.randint(1, 3))) + "]"
        var = self.fresh("c")
        return f"[{self.expr(depth - 1, in_fn, tuple(locals_) + (var,))} for {var} in 0..{r.choice(['2', '3', 'N1'])}]"

    def stmts(self, depth, loop_vars=()):
        r = self.r
        out = []
        for _ in range(r.randint(1, 4)):
            kind = r.random()
            locals_ = tuple(loop_vars)
            if kind < 0.3 and self.names["state"]:
                s = r.choice(self.names["state"])
                idx = "" if r.random() < 0.6 else "[" + r.choice(list(loop_vars) + ["0", "1"]) + "]"
                out.append(f"{s}'{idx} {r.choice(['=', '=', '=', '+='])} {self.expr(3, locals_=locals_)}")
            elif kind < 0.55:
                out.append(f"cost += {self.expr(3, locals_=locals_)}")
            elif kind < 0.65:
                out.append(f"let {self.fresh('t')} = {self.expr(3, locals_=locals_)}")
            elif kind < 0.8 and depth > 0:
                cond = self.expr(2, locals_=locals_)
                text = f"if {cond} {{\n{self.stmts(depth - 1, loop_vars)}\n}}"
                if r.random() < 0.6:
                    text += f" else {{\n{self.stmts(depth - 1, loop_vars)}\n}}"
                out.append(text)
            elif depth > 0:
                var = self.fresh("i")
                hi = r.choice(["2", "3", "N1", self.number()])
                out.append(f"for {var} in 0..{hi} {{\n{self.stmts(depth - 1, tuple(loop_vars) + (var,))}\n}}")
            else:
                out.append(f"cost += {self.leaf(locals_=locals_)}")
        return "\n".join(out)

    def model(self):
        r = self.r
        lines = ["model gen" if r.random() < 0.95 else "module gen"]
        if r.random() < 0.3:
            lines.append(r.choice(["import std.inventory", "import std.control", "import gen", "import std.nothere"]))
        self.names["const"].append("N1")
        lines.append(f"const N1 = {r.choice(['2', '3', '1', '0', '-1', '1000001'])}")
        for _ in range(r.randint(0, 3)):
            name = self.fresh("K")
            lines.append(f"const {name} = {self.expr(2)}")
            self.names["const"].append(name)
        for _ in range(r.randint(0, 3)):
            name = self.fresh("p")
            default = f" = {self.expr(2)}" if r.random() < 0.85 else ""
            lines.append(f"param {name}{self.dims()}{default}")
            self.names["param"].append(name)
        for _ in range(r.randint(0, 3)):
            name = self.fresh("a")
            if r.random() < 0.5:
                lines.append(f"action {name}{self.dims()} : choice({r.choice(['2', '3', 'N1', '0', '1'])})")
            else:
                bounds = r.choice(["", " in [0, 1]", " in [-1, inf]", " in [-inf, 0]", " in [1, 0]", f" in [{self.number()}, {self.number()}]"])
                lines.append(f"action {name}{self.dims()} : real{bounds}")
            self.names["action"].append(name)
        for _ in range(r.randint(0, 2)):
            name = self.fresh("e")
            dist = r.choice(DISTRIBUTIONS)
            nargs = {"normal": 2, "uniform": 2}.get(dist, 1) + (1 if r.random() < 0.05 else 0)
            lines.append(f"noise {name}{self.dims()} ~ {dist}({', '.join(self.expr(1) for _ in range(nargs))})")
            self.names["noise"].append(name)
        for _ in range(r.randint(0, 3)):
            name = self.fresh("s")
            self.names["state"].append(name)
            lines.append(f"state {name}{self.dims()} = {self.expr(2)}")
        for _ in range(r.randint(0, 2)):
            name = self.fresh("f")
            params = [self.fresh("q") for _ in range(r.randint(0, 3))]
            sig = ", ".join(f"{p}: {r.choice(['real', 'real', 'bool', 'int', 'real[2]', 'real[N1]'])}" for p in params)
            ret = r.choice(["", " -> real", " -> bool", " -> real[2]"])
            body = "".join(f"  let {self.fresh('l')} = {self.expr(2, True, params)}\n" for _ in range(r.randint(0, 2)))
            lines.append(f"fn {name}({sig}){ret} {{\n{body}  return {self.expr(3, True, params)}\n}}")
            self.names["fn"].append(name)
        if self.names["state"] and r.random() < 0.5:
            lines.append("observe " + ", ".join(self.expr(1) for _ in range(r.randint(1, 3))))
        if r.random() < 0.95:
            lines.append(f"horizon {r.choice(['10', '1', '0', 'N1', '10000000', '10000001', '2.5'])}")
        if r.random() < 0.3:
            lines.append(f"discount {r.choice(['0.99', '1', '0', '1.5', '-0.5', 'true'])}")
        if r.random() < 0.97:
            lines.append("step {\n" + self.stmts(3) + "\n}")
        if r.random() < 0.3:  # declarations may come in any order
            rest = lines[1:]
            r.shuffle(rest)
            lines = lines[:1] + rest
        return ("\n".join(lines) + "\n").encode()


def generated(r, seeds):
    return ModelGen(r).model()


STRATEGIES = [
    ("bytes", byte_mutations, 12),
    ("tokens", token_mutations, 18),
    ("splice", splice, 8),
    ("truncate", truncate, 5),
    ("random", random_bytes, 5),
    ("numbers", huge_numbers, 8),
    ("nesting", deep_nesting, 8),
    ("chains", long_chains, 5),
    ("lines", long_lines, 3),
    ("unicode", random_unicode, 6),
    ("generated", generated, 22),
]


def make_input(seed, index, seeds):
    """Input number `index` of run `seed`: depends on nothing else, so it can be regenerated."""
    r = random.Random(f"hpo-fuzz:{seed}:{index}")
    names = [s[0] for s in STRATEGIES]
    weights = [s[2] for s in STRATEGIES]
    name = r.choices(names, weights)[0]
    data = dict((s[0], s[1]) for s in STRATEGIES)[name](r, seeds)
    # Sometimes stack a cheap mutation on top.
    if r.random() < 0.2:
        extra = r.choice([byte_mutations, token_mutations])
        data = extra(r, [data or b" "])
        name += "+"
    return name, data[:MAX_INPUT_BYTES]


# ---------------------------------------------------------------------------------------------

def collect_seeds(dirs):
    paths = []
    for d in dirs:
        if os.path.isfile(d) and d.endswith(".hpo"):
            paths.append(d)
            continue
        for root, subdirs, files in os.walk(d):
            subdirs.sort()
            paths += [os.path.join(root, f) for f in sorted(files) if f.endswith(".hpo")]
    seeds = []
    for p in paths:
        with open(p, "rb") as f:
            seeds.append(f.read())
    return paths, seeds


def describe_status(code):
    if code is None:
        return "timed out"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    if code == 3:
        return "exit code 3 (internal error)"
    return f"exit code {code}"


def run_one(hpoc, workdir, index, data, timeout):
    path = os.path.join(workdir, f"input_{index}.hpo")
    with open(path, "wb") as f:
        f.write(data)
    for attempt in range(31):
        start = time.monotonic()
        try:
            proc = subprocess.run([hpoc, "check", os.path.basename(path)], cwd=workdir, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
            code, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as e:
            code, stderr = None, e.stderr or b""
        except OSError as e:  # the binary is missing or being rewritten (a rebuild): wait for it
            if attempt == 30:
                print(f"fuzz_frontend.py: error: cannot run {hpoc}: {e}", file=sys.stderr)
                raise SystemExit(2)
            time.sleep(1)
            continue
        break
    elapsed = time.monotonic() - start
    os.unlink(path)
    return code, stderr, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hpoc", required=True, help="the hpoc binary")
    parser.add_argument("--count", type=int, default=300, help="number of inputs to run")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the run")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a run counts as a hang")
    parser.add_argument("--save", help="folder for failing inputs (default: a new temporary folder)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel hpoc runs")
    parser.add_argument("--only", type=int, help="regenerate and run only input number ONLY")
    parser.add_argument("--dump", help="also write every generated input to this folder")
    parser.add_argument("seed_dirs", nargs="*", help="folders (searched recursively) or files with .hpo seeds")
    args = parser.parse_args()

    hpoc = os.path.abspath(args.hpoc)
    if not (os.path.isfile(hpoc) and os.access(hpoc, os.X_OK)):
        print(f"fuzz_frontend.py: error: {args.hpoc} is not an executable", file=sys.stderr)
        return 2
    paths, seeds = collect_seeds(args.seed_dirs)
    if not seeds:
        print("fuzz_frontend.py: warning: no .hpo seeds found; using a built-in seed", file=sys.stderr)
        seeds = [FALLBACK_SEED]

    indices = [args.only] if args.only is not None else list(range(args.count))
    save_dir = args.save
    workdir = tempfile.mkdtemp(prefix="hpo-fuzz-")
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
    start = time.monotonic()
    passed = failed = 0
    slowest = (0.0, None)
    by_strategy = {}

    def job(index):
        name, data = make_input(args.seed, index, seeds)
        code, stderr, elapsed = run_one(hpoc, workdir, index, data, args.timeout)
        return index, name, data, code, stderr, elapsed

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for index, name, data, code, stderr, elapsed in pool.map(job, indices):
                base = name.rstrip("+")
                by_strategy[base] = by_strategy.get(base, 0) + 1
                if elapsed > slowest[0]:
                    slowest = (elapsed, index)
                if args.dump:
                    with open(os.path.join(args.dump, f"input_{args.seed}_{index}.hpo"), "wb") as f:
                        f.write(data)
                if code in (0, 1):
                    passed += 1
                    continue
                failed += 1
                if save_dir is None:
                    save_dir = tempfile.mkdtemp(prefix="hpo-fuzz-failures-")
                os.makedirs(save_dir, exist_ok=True)
                saved = os.path.abspath(os.path.join(save_dir, f"fail_seed{args.seed}_{index}_{base}.hpo"))
                with open(saved, "wb") as f:
                    f.write(data)
                print(f"FAILURE input {index} ({name}, {len(data)} bytes): {describe_status(code)} after {elapsed:.1f} s")
                print(f"  saved:     {saved}")
                print(f"  reproduce: cd {os.path.dirname(saved)} && {hpoc} check {os.path.basename(saved)}")
                print(f"  regenerate: {sys.argv[0]} --hpoc {args.hpoc} --seed {args.seed} --only {index} "
                      + " ".join(args.seed_dirs))
                for line in stderr.decode("utf-8", "replace").splitlines()[-4:]:
                    print(f"  | {line[:200]}")
                sys.stdout.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    total = time.monotonic() - start
    mix = ", ".join(f"{k} {v}" for k, v in sorted(by_strategy.items()))
    print(f"fuzz-stats: seed {args.seed}, {len(indices)} inputs from {len(seeds)} seed files in {total:.1f} s "
          f"(slowest: input {slowest[1]}, {slowest[0]:.2f} s); {mix}")
    if failed:
        print(f"fuzz-stats: failing inputs saved in {save_dir}")
    print(f"fuzz: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
