#!/usr/bin/env python3
"""twinhub's progress on long work (issue 17 item 5) against a real twinhubd: `device-identity
import` and `query` draw progress on stderr when stderr is a terminal (a pseudo-terminal here) and
write nothing there when it is a pipe; stdout is the same plain JSON either way.

Usage: cli_progress_test.py BIN_DIR   (free loopback ports; no RESOURCE_LOCK)
"""
import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hubtest import check, failures, free_port, hub  # noqa: E402


def run_cli(bin_dir, args, env, stderr_tty):
    """Runs twinhub with stdout a pipe and stderr a pty (stderr_tty) or a pipe; (rc, stdout, stderr)."""
    cmd = [os.path.join(bin_dir, "twinhub")] + args
    if not stderr_tty:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read().decode()
    rc = p.wait(120)
    os.close(master)
    return rc, out, err.decode(errors="replace")


def main(bin_dir):
    work = tempfile.mkdtemp(prefix="twinhub-progress.")
    data = os.path.join(work, "hub")
    https, mqtt, amqp = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    h = hub(bin_dir, work, ["--data-dir", data, "--https-port", str(https), "--mqtt-port", str(mqtt),
                            "--amqp-port", str(amqp), "--log-level", "warn", "--no-console"], https, env)
    try:
        check(h.running(), "twinhubd started")
        if not h.running():
            return
        cenv = dict(env, TWINHUB_CONNECTION_STRING=h.cs, TWINHUB_CA_FILE=os.path.join(data, "tls", "ca.pem"),
                    TWINHUB_PORT=str(https))
        n = 250
        tty_file = os.path.join(work, "tty.json")
        with open(tty_file, "w") as f:
            json.dump([{"id": f"tty-{i}"} for i in range(n)], f)
        pipe_file = os.path.join(work, "pipe.jsonl")
        with open(pipe_file, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"pipe-{i}", "importMode": "create"}) + "\n")

        rc, out, err = run_cli(bin_dir, ["device-identity", "import", "--input", tty_file, "--batch-size", "50"], cenv, True)
        check(rc == 0, f"import exits 0 on a terminal ({rc}: {err[-200:]!r})")
        try:
            res = json.loads(out)
        except ValueError:
            res = None
        check(res == {"total": n, "succeeded": n, "failed": 0, "errors": []}, f"stdout is the plain JSON summary: {out[:200]!r}")
        check("import: 50/250 devices (20%)" in err, f"progress counts each batch on the terminal: {err[:300]!r}")
        check(f"import: {n} devices in " in err, "the terminal gets a closing line with the count")

        rc, out, err = run_cli(bin_dir, ["device-identity", "import", "--input", pipe_file], cenv, False)
        check(rc == 0 and json.loads(out)["succeeded"] == n, "import from JSON lines exits 0 with the same summary when piped")
        check(err == "", f"nothing on stderr when it is a pipe: {err[:200]!r}")

        rc, out, err = run_cli(bin_dir, ["device-identity", "import", "--input", pipe_file], cenv, False)
        res = json.loads(out) if out else {}
        check(rc == 1 and res.get("failed") == n and res["errors"][0].get("errorCode") == "DeviceAlreadyExists",
              f"importing existing devices again reports each failure and exits 1 ({rc}, {str(res)[:200]})")

        sql = "SELECT deviceId FROM devices"
        rc, out, err = run_cli(bin_dir, ["query", "-q", sql], cenv, True)
        rows = json.loads(out) if rc == 0 else []
        check(rc == 0 and len(rows) == 2 * n, f"query prints every row as a JSON array on stdout ({rc}, {len(rows)})")
        check(f"query: {2 * n} rows in " in err and "query: 100 rows" in err,
              f"query shows rows arriving page by page on the terminal: {err[:300]!r}")
        rc, out2, err = run_cli(bin_dir, ["query", "-q", sql], cenv, False)
        check(rc == 0 and json.loads(out2) == rows and err == "", "piped, query's stdout is the same JSON and stderr is empty")
    finally:
        h.stop()
        if failures:
            print("twinhubd stderr (last lines):\n" + "\n".join(h.stderr().splitlines()[-20:]))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
