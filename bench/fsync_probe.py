#!/usr/bin/env python3
"""The disk's fdatasync latency, as a reference for the durable benchmarks (bench/mqtt_bench.sh).

Usage: fsync_probe.py DIR [SECONDS]. Rewrites 32 KB and calls fdatasync in a loop for SECONDS
(default 5) in DIR, then prints one key=value line: count, p50/p99/max in ms, and the stalls (a
single fdatasync over 20 ms) with the total time spent in them. Every durable write waits for one
of these, so a stall delays every acknowledgement queued behind it.
"""
import os
import sys
import time

directory = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
path = os.path.join(directory, "fsync-probe.bin")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
block = b"x" * 32768
times = []
stalls = []
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    os.pwrite(fd, block, (i % 16) * len(block))
    i += 1
    t = time.perf_counter()
    os.fdatasync(fd)
    ms = (time.perf_counter() - t) * 1000
    times.append(ms)
    if ms > 20:
        stalls.append(ms)
os.close(fd)
os.unlink(path)
times.sort()
n = len(times)
print("fsync_probe seconds=%.0f n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.0f stalls_over_20ms=%d stalled_ms=%.0f"
      % (seconds, n, times[n // 2], times[min(n - 1, int(n * 0.99))], times[-1], len(stalls), sum(stalls)))
