"""Helpers shared by the Python integration tests that start a real twinhubd on free loopback
ports (config_test.py, cli_progress_test.py)."""
import base64
import hashlib
import hmac
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sas(cs):
    parts = dict(p.split("=", 1) for p in cs.split(";"))
    se = str(int(time.time()) + 3600)
    sr = urllib.parse.quote(parts["HostName"], safe="")
    sig = base64.b64encode(hmac.new(base64.b64decode(parts["SharedAccessKey"]), f"{sr}\n{se}".encode(),
                                    hashlib.sha256).digest()).decode()
    return (f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig, safe='')}&se={se}"
            f"&skn={parts['SharedAccessKeyName']}")


def request(url, method="GET", body=None, headers=None, ctx=None):
    req = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


class hub:
    """twinhubd started with `args`; waits for the first-start connection string and the HTTPS port."""

    def __init__(self, bin_dir, work, args, https_port, env=None):
        self.out = open(os.path.join(work, "stdout"), "w+")
        self.err = open(os.path.join(work, "stderr"), "w+")
        self.proc = subprocess.Popen([os.path.join(bin_dir, "twinhubd")] + args, stdout=self.out, stderr=self.err,
                                     env=env)
        self.cs = None
        for _ in range(300):
            self.out.seek(0)
            for line in self.out.read().splitlines():
                if line.startswith("Connection string (iothubowner): "):
                    self.cs = line.split(": ", 1)[1]
            if self.cs:
                try:
                    socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                    break
                except OSError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)

    def running(self):
        return self.cs is not None and self.proc.poll() is None

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
