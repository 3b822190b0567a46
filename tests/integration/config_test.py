#!/usr/bin/env python3
"""twinhubd --config (issue 17 item 4) against a real twinhubd: a configuration file on non-default
(free loopback) ports is what the hub serves on, --print-config shows it with secrets redacted,
flags and the environment override it, a bad file stops the start naming file, line and key, and the
start and stop summary lines say what ran.

Usage: config_test.py BIN_DIR   (free loopback ports; no RESOURCE_LOCK)
"""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hubtest import check, failures, free_port, hub, request, sas  # noqa: E402


def main(bin_dir):
    work = tempfile.mkdtemp(prefix="twinhub-config.")
    twinhubd = os.path.join(bin_dir, "twinhubd")
    data = os.path.join(work, "hub")
    https, mqtt, amqp, metrics = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    conf = os.path.join(work, "twinhubd.json")
    with open(conf, "w") as f:
        f.write(f"""// test hub
{{
  "data_dir": "{data}",
  "host_names": ["localhost", "hub.test"],
  "bind": "127.0.0.1",
  "ports": {{ "https": {https}, "mqtt": {mqtt}, "amqp": {amqp} }},
  "threads": 2,
  "log_level": "info",
  "telemetry": {{ "partitions": 3, "retention": "2h", "consumer_groups": ["dashboard"] }},
  "metrics": {{ "port": {metrics}, "token": "metrics-s3cret" }},
  "console": {{ "enabled": false }},
  "store": "sqlite",
}}
""")
    try:
        # --print-config: the effective configuration, redacted, exit 0, nothing started.
        penv = dict(env, TWINHUB_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=acc;"
                                                          "AccountKey=c3RvcmFnZS1rZXk=;EndpointSuffix=core.windows.net",
                    TWINHUB_MQTT_PORT=str(mqtt + 1))
        p = subprocess.run([twinhubd, "--config", conf, "--print-config", "--amqp-port", str(amqp + 1)],
                           capture_output=True, text=True, env=penv, timeout=30)
        check(p.returncode == 0, f"--print-config exits 0 ({p.returncode}: {p.stderr.strip()})")
        printed = json.loads(p.stdout) if p.returncode == 0 else {}
        check(printed.get("ports") == {"https": https, "mqtt": mqtt + 1, "amqp": amqp + 1},
              "--print-config: https from the file, mqtt from the environment, amqp from the flag")
        check(printed.get("telemetry", {}).get("retention") == "2h" and printed["telemetry"].get("partitions") == 3
              and printed["telemetry"].get("consumer_groups") == ["dashboard"], "--print-config shows the telemetry section")
        check(printed.get("metrics", {}).get("token") == "<redacted>", "--print-config redacts the metrics token")
        check("metrics-s3cret" not in p.stdout and "c3RvcmFnZS1rZXk=" not in p.stdout,
              "no secret appears in --print-config's output")
        check("AccountName=acc;AccountKey=<redacted>" in printed.get("file_upload", {}).get("storage_connection_string", ""),
              "the storage connection string keeps its account name and loses its key")
        check(not os.path.exists(data), "--print-config creates nothing")
        p = subprocess.run([twinhubd, "--print-config"], capture_output=True, text=True,
                           env=dict(env, TWINHUB_CONFIG=conf), timeout=30)
        check(p.returncode == 0 and json.loads(p.stdout)["ports"]["https"] == https, "TWINHUB_CONFIG names the file")

        # A file with secrets that others can read gets a warning (not the secret); 0600 none.
        os.chmod(conf, 0o644)
        p = subprocess.run([twinhubd, "--config", conf, "--print-config"], capture_output=True, text=True, env=env, timeout=30)
        check("config.secrets_readable" in p.stderr and "metrics-s3cret" not in p.stderr,
              f"a world-readable file holding the metrics token is warned about: {p.stderr.strip()}")
        os.chmod(conf, 0o600)
        p = subprocess.run([twinhubd, "--config", conf, "--print-config"], capture_output=True, text=True, env=env, timeout=30)
        check(p.returncode == 0 and p.stderr == "", f"a 0600 file gets no warning: {p.stderr.strip()}")

        # A bad file: exit 2, "config error: FILE:LINE: KEY: WHAT".
        bad = os.path.join(work, "bad.json")
        with open(bad, "w") as f:
            f.write('{\n  "data_dir": "x",\n  "ports": {\n    "https": "443"\n  }\n}\n')
        p = subprocess.run([twinhubd, "--config", bad], capture_output=True, text=True, env=env, timeout=30)
        check(p.returncode == 2 and p.stderr.strip() == f"config error: {bad}:4: ports.https: must be an integer, not a string",
              f"a wrong type stops the start naming file, line and key ({p.returncode}: {p.stderr.strip()})")
        with open(bad, "w") as f:
            f.write('{\n  "data_dir": "x",\n  "metrics": { "prot": 1 }\n}\n')
        p = subprocess.run([twinhubd, "--config", bad], capture_output=True, text=True, env=env, timeout=30)
        check(p.returncode == 2 and p.stderr.startswith(f"config error: {bad}:3: metrics.prot: unknown key"),
              f"an unknown key stops the start ({p.stderr.strip()})")

        # Inline routing is checked by the hub at start, with the line of telemetry.routing.
        with open(bad, "w") as f:
            f.write('{\n  "data_dir": "%s",\n  "ports": {"https": %d, "mqtt": %d, "amqp": %d},\n'
                    '  "telemetry": {\n    "routing": {"routes": [{"name": "r", "source": "DeviceMessages", "condition": "true",'
                    ' "endpointNames": ["nowhere"], "isEnabled": true}]}\n  }\n}\n' % (os.path.join(work, "bad-hub"), https, mqtt, amqp))
        p = subprocess.run([twinhubd, "--config", bad], capture_output=True, text=True, env=env, timeout=60)
        last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        check(p.returncode == 2 and last.startswith(f"config error: {bad}:5: telemetry.routing: ") and "nowhere" in last,
              f"a route to an unknown endpoint stops the start naming the routing's line ({p.returncode}: {last})")

        # The hub serves where the file says.
        h = hub(bin_dir, work, ["--config", conf], https, env)
        try:
            check(h.running(), "twinhubd starts from the configuration file")
            if not h.running():
                return
            ctx = ssl.create_default_context(cafile=os.path.join(data, "tls", "ca.pem"))
            s, body, _ = request(f"https://localhost:{https}/health/ready", ctx=ctx)
            check(s == 200, f"HTTPS is served on ports.https {https}")
            for port, what in ((mqtt, "ports.mqtt"), (amqp, "ports.amqp")):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                        with ctx.wrap_socket(raw, server_hostname="hub.test") as tls:
                            ok = tls.version() is not None
                except OSError as e:
                    ok = False
                    print(e)
                check(ok, f"TLS is served on {what} {port} for the configured host name hub.test")
            s, mb, _ = request(f"http://127.0.0.1:{metrics}/metrics")
            check(s == 200 and "twinhub_totalDeviceCount" in mb, f"metrics.port {metrics} serves /metrics")
            s, _, _ = request(f"https://localhost:{https}/metrics", headers={"Authorization": "Bearer metrics-s3cret"}, ctx=ctx)
            check(s == 200, "metrics.token opens /metrics on the HTTPS port")
            auth = {"Authorization": sas(h.cs)}
            s, body, _ = request(f"https://localhost:{https}/eventHubEndpoints/events/consumerGroups/dashboard?api-version=2021-04-12",
                                 headers=auth, ctx=ctx)
            check(s == 200, f"telemetry.consumer_groups created 'dashboard' ({s} {body[:100]})")
            s, body, _ = request(f"https://localhost:{https}/console/", ctx=ctx)
            check(s == 404, f"console.enabled false: no console ({s})")
            log = h.stderr()
            ready = [l for l in log.splitlines() if "server.ready" in l]
            check(len(ready) == 1, "one server.ready line")
            if ready:
                r = ready[0]
                check(f"https_port={https}" in r and f"mqtt_port={mqtt}" in r and f"amqp_port={amqp}" in r,
                      "server.ready names the ports")
                check("localhost,hub.test" in r, "server.ready names the host names")
                check(f"config={conf}" in r and "store=sqlite:" in r and os.path.realpath(data) in r.replace(data, os.path.realpath(data)),
                      "server.ready names the config file, the store and the data directory")
                check("metrics-s3cret" not in log, "the metrics token is not logged")
        finally:
            rc = h.stop()
        check(rc == 0, f"twinhubd exits 0 on SIGTERM ({rc})")
        stopped = [l for l in h.stderr().splitlines() if "server.stopped" in l]
        check(len(stopped) == 1 and re.search(r"uptime_s=\d+", stopped[0]) and "commits_flushed_at_stop=" in stopped[0],
              "server.stopped says the uptime and what was flushed: " + (stopped[0] if stopped else "(none)"))

        # tls.certificate_file / key_file: the hub serves that certificate instead of its CA's.
        cert, key = os.path.join(work, "own.pem"), os.path.join(work, "own.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=own.test",
                        "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        conf2 = os.path.join(work, "tls.json")
        data2 = os.path.join(work, "hub2")
        with open(conf2, "w") as f:
            json.dump({"data_dir": data2, "ports": {"https": https, "mqtt": mqtt, "amqp": amqp},
                       "tls": {"certificate_file": cert, "key_file": key}}, f)
        h2 = hub(bin_dir, os.path.join(work), ["--config", conf2], https, env)
        try:
            check(h2.running(), "twinhubd starts with its own TLS files")
            own = ssl.create_default_context(cafile=cert)
            s, _, _ = request(f"https://localhost:{https}/health/live", ctx=own)
            check(s == 200, "HTTPS serves tls.certificate_file (trusted as its own CA)")
            hub_ca = ssl.create_default_context(cafile=os.path.join(data2, "tls", "ca.pem"))
            try:
                request(f"https://localhost:{https}/health/live", ctx=hub_ca)
                refused = False
            except Exception:  # noqa: BLE001 - the generated CA must not verify the served certificate
                refused = True
            check(refused, "the generated CA's certificate is not the one served")
        finally:
            h2.stop()

        if failures:
            print("twinhubd stderr (last lines):\n" + "\n".join(h.stderr().splitlines()[-20:]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
