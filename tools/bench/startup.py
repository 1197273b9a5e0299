#!/usr/bin/env python3
"""Start-up cost of netctl and cnetd-cni next to a trivial C++ program (issue 20).

Usage: startup.py --netctl PATH --cni PATH --work DIR [--runs N]
       startup.py --netctl PATH --cni PATH --work DIR --check

Compiles the trivial program (iostream + std::string, `g++ -O2`, dynamically linked like any
Debian C++ program) into DIR, then measures each command two ways:
  - wall time with hyperfine (-N: no shell; median and minimum of --runs after 50 warm-ups;
    the minimum is the figure least disturbed by other load);
  - instructions with valgrind's callgrind (start to exit, dynamic loader included): exact and
    independent of the machine's load, which the wall times on a shared machine are not.
Prints a markdown table with the ratio of each to the trivial program and whether it is within
the issue's 1.5x. Nothing here touches the network: cnetd-cni answers VERSION without cnetd.

--check (the unit test `startup`, tests/cli/meson.build): instruction counts only, exit 1 when one
is above 1.5x the trivial program's, 77 (skipped) without valgrind.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

TRIVIAL = r"""#include <iostream>
#include <string>
int main(int argc, char**) {
    std::string s = argc > 1 ? "hello, world" : "hello";
    std::cout << s << '\n';
    return 0;
}
"""
LIMIT = 1.5


def instructions(cmd, env):
    """Instructions callgrind counts for one run of cmd (None without valgrind)."""
    if not shutil.which("valgrind"):
        return None
    with tempfile.NamedTemporaryFile() as out:
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}"]
                           + cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, check=False)
    m = re.search(r"Collected : (\d+)", r.stderr)
    return int(m.group(1)) if m else None


def wall_ms(cmds, env, runs, work):
    """{command line: (median ms, min ms)} from one hyperfine run over every command."""
    out = os.path.join(work, "startup-hyperfine.json")
    subprocess.run(["hyperfine", "-N", "--warmup", "50", "--runs", str(runs), "--export-json",
                    out, "--style", "none"] + [" ".join(c) for c in cmds], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        results = json.load(f)["results"]
    return {r["command"]: (r["median"] * 1e3, r["min"] * 1e3) for r in results}


def check(cmds, env):
    """Exit status of --check: every measured command within LIMIT x the trivial program."""
    if not shutil.which("valgrind"):
        print("valgrind not installed: skipped")
        return 77
    base = instructions(cmds[0], env)
    bad = 0
    for c in cmds[2:]:
        n = instructions(c, env)
        ok = n is not None and n <= LIMIT * base
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {' '.join(c)}: {n} instructions, "
              f"{n / base if n else float('nan'):.2f}x the trivial program's {base}")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netctl", required=True)
    ap.add_argument("--cni", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    src = os.path.join(a.work, "trivial.cpp")
    trivial = os.path.join(a.work, "trivial")
    with open(src, "w") as f:
        f.write(TRIVIAL)
    subprocess.run([os.environ.get("CXX", "g++"), "-O2", "-o", trivial, src], check=True)
    # cnetd-cni reads its command from the environment; the others ignore it.
    env = dict(os.environ, CNI_COMMAND="VERSION")
    cmds = [[trivial], ["/bin/true"], [a.netctl, "--version"], [a.netctl, "--help"],
            [a.netctl, "network", "ls", "--help"], [a.cni]]
    if a.check:
        return check(cmds, env)
    wall = wall_ms(cmds, env, a.runs, a.work)
    ir = {" ".join(c): instructions(c, env) for c in cmds}
    base_cmd = " ".join(cmds[0])
    base_ms, base_ir = wall[base_cmd][0], ir[base_cmd]
    print("| command | wall ms median (min) | × trivial (median) | instructions | × trivial "
          "| within 1.5× |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for c in cmds:
        line = " ".join(c)
        ms, low = wall[line]
        name = line.replace(os.path.dirname(trivial) + "/", "").replace(
            os.path.dirname(a.netctl) + "/", "").replace(os.path.dirname(a.cni) + "/", "")
        if c[0] == a.cni:
            name = "CNI_COMMAND=VERSION " + name
        r_ms = ms / base_ms
        n = ir[line]
        r_ir = n / base_ir if n and base_ir else None
        measured = c[0] in (a.netctl, a.cni)
        # The verdict on the instruction ratio (exact) when valgrind is there, else on wall time.
        verdict = r_ir or r_ms
        if measured:
            worst = max(worst, verdict)
        ok = ("yes" if verdict <= LIMIT else "NO") if measured else ""
        print(f"| `{name}` | {ms:.2f} ({low:.2f}) | {r_ms:.2f} | "
              f"{n if n is not None else 'n/a'} | {f'{r_ir:.2f}' if r_ir else 'n/a'} | {ok} |")
    print()
    print(f"trivial: a C++ hello world (iostream, std::string), g++ -O2; worst ratio {worst:.2f} "
          f"(target <= {LIMIT}; instructions, or wall time without valgrind: wall times on a "
          f"loaded machine vary by 2x between runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
