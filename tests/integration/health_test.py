#!/usr/bin/env python3
"""GET /health, /health/live, /health/ready and the plain /metrics listener against a real
twinhubd whose data directory lives on a small tmpfs that the test really fills up.

The test re-executes itself in a new user and mount namespace (`unshare -Urm`, no privileges
needed where user namespaces are allowed; root works too) and mounts a 32 MiB tmpfs there. With the
file system full, readiness must answer 503 naming the disk and the store (a probe write that SQLite
refuses with SQLITE_FULL), a real REST write must fail without taking the hub down, and once space
is freed readiness must recover and the write must succeed. Liveness stays 200 throughout.

Usage: health_test.py BIN_DIR   (free loopback ports; no RESOURCE_LOCK)
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
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


def poll(fn, pred, timeout=15.0):
    """Calls fn until pred(result) holds (the readiness answer is reused for 1 s, so a change shows
    at the next probe); returns the last result."""
    end = time.monotonic() + timeout
    while True:
        r = fn()
        if pred(r) or time.monotonic() > end:
            return r
        time.sleep(0.2)


def main(bin_dir):
    work = tempfile.mkdtemp(prefix="twinhub-health.")
    fs = os.path.join(work, "fs")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", fs], check=True)
    data = os.path.join(fs, "hub")
    https, mqtt, amqp, metrics = free_port(), free_port(), free_port(), free_port()
    out = open(os.path.join(work, "stdout"), "w+")
    err = open(os.path.join(work, "stderr"), "w+")
    hub = subprocess.Popen([os.path.join(bin_dir, "twinhubd"), "--data-dir", data, "--https-port", str(https),
                            "--mqtt-port", str(mqtt), "--amqp-port", str(amqp), "--metrics-port", str(metrics),
                            "--log-level", "warn"], stdout=out, stderr=err)
    try:
        cs = None
        for _ in range(300):
            out.seek(0)
            for line in out.read().splitlines():
                if line.startswith("Connection string (iothubowner): "):
                    cs = line.split(": ", 1)[1]
            if cs:
                try:
                    socket.create_connection(("127.0.0.1", https), timeout=1).close()
                    break
                except OSError:
                    pass
            if hub.poll() is not None:
                break
            time.sleep(0.1)
        check(cs is not None and hub.poll() is None, "twinhubd started on a tmpfs data directory")
        if cs is None:
            return
        ctx = ssl.create_default_context(cafile=os.path.join(data, "tls", "ca.pem"))
        base = f"https://localhost:{https}"
        auth = {"Authorization": sas(cs), "Content-Type": "application/json"}

        def health(path="/health"):
            s, b, h = request(base + path, ctx=ctx)
            return s, json.loads(b), h

        s, b, h = health("/health/live")
        check(s == 200 and b["status"] == "Healthy", "/health/live answers 200 Healthy")
        s, b, h = health()
        check(s == 200 and b["status"] == "Healthy", "/health answers 200 Healthy on a fresh hub")
        for name in ("process", "listeners", "disk", "store"):
            check(b["checks"].get(name, {}).get("status") == "Healthy", f"check {name} is Healthy")
        check(b["checks"]["listeners"] == {**b["checks"]["listeners"], "https": True, "mqtt": True, "amqp": True},
              "the HTTPS, MQTT and AMQP listeners are reported bound")
        check(h.get("Cache-Control") == "no-store", "health answers are not cached")
        s, b, h = health("/health/ready")
        check(s == 200 and b["status"] == "Healthy", "/health/ready answers 200")
        s, _, h = request(base + "/health", method="POST", body=b"", ctx=ctx)
        check(s == 405 and h.get("Allow") == "GET", "POST /health is 405 with Allow: GET")

        s, _, _ = request(f"{base}/devices/before-full?api-version=2021-04-12", "PUT",
                          json.dumps({"deviceId": "before-full"}).encode(), auth, ctx)
        check(s == 200, "a device can be created while the disk has room")

        # Fill the file system for real.
        fill = os.path.join(fs, "fill")
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        check(shutil.disk_usage(fs).free < (1 << 20), "the tmpfs is full")

        s, b, _ = poll(health, lambda r: r[1]["checks"]["store"]["status"] == "Unhealthy")
        check(s == 503 and b["status"] == "Unhealthy", "/health answers 503 Unhealthy with the disk full")
        check(b["checks"]["disk"]["status"] == "Unhealthy" and b["checks"]["disk"]["freeBytes"] < (1 << 20),
              "the disk check names the full file system")
        check(b["checks"]["store"]["status"] == "Unhealthy" and "cannot commit" in b["checks"]["store"]["description"],
              "the store check fails: the probe write was refused (" + b["checks"]["store"]["description"] + ")")
        s2, _, _ = health("/health/ready")
        check(s2 == 503, "/health/ready answers 503 with the disk full")
        s, b, _ = health("/health/live")
        check(s == 200, "/health/live still answers 200 (the process is up)")
        s, body, _ = request(f"{base}/devices/while-full?api-version=2021-04-12", "PUT",
                             json.dumps({"deviceId": "while-full"}).encode(), auth, ctx)
        check(s >= 500, f"a REST write fails while the disk is full (HTTP {s})")
        check(hub.poll() is None, "twinhubd is still running")
        ms, mb, _ = request(f"http://127.0.0.1:{metrics}/metrics")
        check(ms == 200 and "twinhub_store_commit_failures_total" in mb and
              not "\ntwinhub_store_commit_failures_total 0\n" in mb, "/metrics counts the failed commits")

        os.remove(fill)
        s, b, _ = poll(health, lambda r: r[0] == 200)
        check(s == 200 and b["status"] == "Healthy", "/health answers 200 again once space is freed")
        s, _, _ = request(f"{base}/devices/after-full?api-version=2021-04-12", "PUT",
                          json.dumps({"deviceId": "after-full"}).encode(), auth, ctx)
        check(s == 200, "a device can be created again")
        s, body, _ = request(f"{base}/devices/before-full?api-version=2021-04-12", headers=auth, ctx=ctx)
        check(s == 200, "the device created before the disk filled is still there")
        s, body, _ = request(f"{base}/devices/while-full?api-version=2021-04-12", headers=auth, ctx=ctx)
        check(s == 404, "the write refused while full left nothing half-written")

        ms, mb, mh = request(f"http://127.0.0.1:{metrics}/metrics")
        check(ms == 200 and mh.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
              "the --metrics-port listener serves Prometheus text")
        s, _, _ = request(f"http://127.0.0.1:{metrics}/other")
        check(s == 404, "the metrics listener serves nothing else")
        s, _, _ = request(base + "/metrics", ctx=ctx)
        check(s == 401, "/metrics on the HTTPS port needs a token")
        s, mb, _ = request(base + "/metrics", headers={"Authorization": sas(cs)}, ctx=ctx)
        check(s == 200 and "twinhub_totalDeviceCount 2" in mb, "/metrics on HTTPS takes a service SAS token")
    finally:
        hub.terminate()
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()
        if failures:
            err.seek(0)
            print("twinhubd stderr (last lines):\n" + "".join(err.readlines()[-20:]))
        subprocess.run(["umount", fs])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if os.environ.get("TWINHUB_HEALTH_NS") != "1":
        env = dict(os.environ, TWINHUB_HEALTH_NS="1")
        # Fails (not skips) where user namespaces are not allowed: the disk-full case needs a mount.
        r = subprocess.run(["unshare", "-Urm", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env=env)
        sys.exit(r.returncode)
    main(os.path.abspath(sys.argv[1]))
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
