"""Helpers for the checkpoint tests: the admin port, the checkpoint store on
disk (log/FORMAT.md: <log dir>/checkpoints/<20-digit offset>.rdb + MANIFEST)
and the size of the log directory."""
import http.client
import json
import os
import subprocess
import time

import harness


def proxy_config(segment_size="64kb", max_log_bytes="1gb", interval="0s", extra=""):
    """proxy.yaml text for a test proxy (the harness adds the addresses)."""
    return ("log:\n  segment_size: %s\ncheckpoint:\n  max_log_bytes: %s\n  interval: %s\n%s"
            % (segment_size, max_log_bytes, interval, extra))


def admin_post(proxy, path="/checkpoint", timeout=5):
    """(status, decoded JSON body) of a POST on the proxy's admin port."""
    c = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=timeout)
    try:
        c.request("POST", path, body=b"")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        return r.status, json.loads(body)
    finally:
        c.close()


def status(proxy):
    code, body = proxy.admin_get("/status")
    assert code == 200, "GET /status answered %d: %s" % (code, body)
    return json.loads(body)


def checkpointer(proxy):
    s = status(proxy)
    assert "checkpointer" in s, "/status has no checkpointer section: %r" % s
    return s["checkpointer"]


def metrics(proxy):
    """{sample name (with labels): value} from /metrics."""
    code, body = proxy.admin_get("/metrics")
    assert code == 200, body
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def wait_completed(proxy, count, timeout=60):
    """Waits until `count` checkpoints completed; fails early on a failure."""
    def done():
        c = checkpointer(proxy)
        if c["failed"] and not c["running"]:
            raise AssertionError("checkpoint failed: %s" % c.get("last_error"))
        return c["completed"] >= count and not c["running"]
    harness.wait_until(done, timeout, "%d checkpoint(s) to complete" % count, interval=0.05)
    return checkpointer(proxy)


def checkpoint_dir(proxy):
    return os.path.join(proxy.log_dir, "checkpoints")


def manifest(proxy):
    """The MANIFEST as a dict (replid, checkpoint_offset, log_start, rdb)."""
    with open(os.path.join(checkpoint_dir(proxy), "MANIFEST")) as f:
        fields = dict(line.split(" ", 1) for line in f.read().splitlines() if " " in line)
    for k in ("checkpoint_offset", "log_start"):
        fields[k] = int(fields[k])
    return fields


def rdb_files(proxy):
    """{offset: size} of the checkpoint RDB files on disk."""
    out = {}
    for name in os.listdir(checkpoint_dir(proxy)):
        if name.endswith(".rdb") and len(name) == 24:
            out[int(name[:20])] = os.path.getsize(os.path.join(checkpoint_dir(proxy), name))
    return out


def segments(proxy):
    """Sorted first offsets of the log's segment files."""
    return sorted(int(n[:20]) for n in os.listdir(proxy.log_dir)
                  if n.endswith(".seg") and len(n) == 24)


def disk_bytes(path):
    """Bytes allocated on disk (st_blocks) by every file under path."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass  # deleted while we walked
    return total


def fill(addr, count, value_size=100, prefix="k", db=None, batch=2000):
    """SET prefix:0..count-1 to a value naming the key, pipelined."""
    with harness.RespConn(addr, timeout=60) as c:
        if db is not None:
            assert c.call("SELECT", str(db)) == "OK"
        for start in range(0, count, batch):
            n = min(batch, count - start)
            c.send(b"".join(harness.encode("SET", "%s:%d" % (prefix, i), value_of(prefix, i, value_size))
                            for i in range(start, start + n)))
            for _ in range(n):
                reply = c.read_frame()[1]
                assert reply == "OK", reply


def value_of(prefix, i, size):
    v = ("%s:%d:" % (prefix, i)).encode()
    return (v * (size // len(v) + 1))[:size]


def run_cli_checkpoint(args, timeout=30):
    return subprocess.run([harness.DP_BINARY, "--checkpoint"] + list(args), capture_output=True,
                          timeout=timeout)


def latencies_while(addr, stop, key="lat"):
    """SET/GET pairs on one connection until stop() is true; list of seconds
    per command."""
    out = []
    with harness.RespConn(addr, timeout=10) as c:
        i = 0
        while not stop():
            t0 = time.perf_counter()
            assert c.call("SET", "%s:%d" % (key, i % 1000), str(i)) == "OK"
            t1 = time.perf_counter()
            assert c.call("GET", "%s:%d" % (key, i % 1000)) == str(i).encode()
            t2 = time.perf_counter()
            out += [t1 - t0, t2 - t1]
            i += 1
    return out


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100.0))]
