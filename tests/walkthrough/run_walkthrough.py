#!/usr/bin/env python3
"""Runs the README's module-twin walkthrough exactly as written and checks every printed result.

The section between <!-- walkthrough:begin --> and <!-- walkthrough:end --> of README.md is a
sequence of ```sh blocks, each optionally followed by a ```text block with the output it prints.
All sh blocks run, in order, in one bash session (set -e) in a fresh directory where build/bin
points at BIN_DIR; each block's stdout is compared line by line with its text block, where
<anything in angle brackets> matches any non-empty text.

Usage: run_walkthrough.py BIN_DIR README.md
Needs ports 443 and 8883 (the README uses the SDKs' default ports): ctest RESOURCE_LOCK hubports.
"""
import os
import re
import subprocess
import sys
import tempfile

MARK = "@@twinhub-walkthrough-block@@"


def blocks(readme):
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"<!-- walkthrough:begin -->(.*)<!-- walkthrough:end -->", text, re.S)
    if not m:
        sys.exit("no walkthrough section in " + readme)
    out = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", m.group(1), re.S):
        if lang == "sh":
            out.append([body, None])
        elif lang == "text" and out and out[-1][1] is None:
            out[-1][1] = body
    return out


def pattern(line):
    parts = re.split(r"(<[^>]+>)", line)
    return "^" + "".join(".+" if p.startswith("<") and p.endswith(">") else re.escape(p) for p in parts) + "$"


def main():
    bin_dir, readme = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    steps = blocks(readme)
    work = tempfile.mkdtemp(prefix="twinhub-walkthrough-")
    os.makedirs(os.path.join(work, "build"))
    os.symlink(bin_dir, os.path.join(work, "build", "bin"))
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for i, (code, _) in enumerate(steps):
        script.append(f"echo '{MARK} {i}'")
        script.append(code)
    script.append(f"echo '{MARK} end'")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=240)
    outputs = {}
    current = None
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            current = line.split()[1]
            outputs[current] = []
        elif current is not None:
            outputs[current].append(line)
    failures = []
    if proc.returncode != 0 or "end" not in outputs:
        failures.append(f"the walkthrough script failed with exit code {proc.returncode}")
    for i, (code, expected) in enumerate(steps):
        got = outputs.get(str(i))
        if got is None:
            failures.append(f"block {i} did not run:\n{code}")
            break
        if expected is None:
            continue
        want = expected.rstrip("\n").split("\n")
        if len(got) != len(want) or not all(re.match(pattern(w), g) for w, g in zip(want, got)):
            failures.append(f"block {i}:\n{code}\nexpected:\n" + "\n".join(want) + "\ngot:\n" + "\n".join(got))
    if failures:
        print("\n\n".join(failures))
        print("\n--- stderr ---\n" + proc.stderr)
        for log in ("twinhubd.log", "listener.log"):
            p = os.path.join(work, log)
            if os.path.exists(p):
                print(f"--- {log} ---\n" + open(p).read()[-4000:])
        return 1
    print(f"walkthrough: {len(steps)} blocks ran, every printed result matched ({work})")
    subprocess.run(["rm", "-rf", work])
    return 0


if __name__ == "__main__":
    sys.exit(main())
