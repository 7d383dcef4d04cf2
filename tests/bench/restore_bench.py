"""Restore benchmark: time for the proxy to restore N keys into an upstream
that restarted empty (checkpoint RDB of the first half + log tail of the
second half) versus the same redis-server restarting from its own AOF with
the same data (RDB preamble from BGREWRITEAOF after the first half + the
second half as commands), in one run.  Prints both and the ratio.

    tests/bench/restore_bench.sh [keys]     (default 1000000)
"""
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "crash"))
import cluster  # noqa: E402
import harness  # noqa: E402
import recovery_util  # noqa: E402


def proto(first, count, value_size=32):
    """RESP for SET bench:<i> <value> for i in [first, first+count)."""
    val = b"x" * value_size
    out = []
    for i in range(first, first + count):
        k = b"bench:%d" % i
        out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(val), val))
    return b"".join(out)


def pipe(port, data):
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True,
                       timeout=3600)
    if r.returncode != 0 or b"errors: 0" not in r.stdout:
        raise RuntimeError("redis-cli --pipe into port %d failed: %s %s" % (port, r.stdout, r.stderr))


def dbsize(port):
    with harness.RespConn(("127.0.0.1", port), timeout=60) as c:
        return c.call("DBSIZE")


def wait_loaded(port, timeout=3600):
    """Seconds until the server answers PING with PONG (not -LOADING)."""
    t0 = time.monotonic()
    while True:
        try:
            with harness.RespConn(("127.0.0.1", port), timeout=5) as c:
                while True:
                    if c.call("PING") == "PONG":
                        return time.monotonic() - t0
                    time.sleep(0.005)
        except (OSError, harness.Closed):
            if time.monotonic() - t0 > timeout:
                raise
            time.sleep(0.005)


def post_checkpoint(proxy):
    h = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=3600)
    h.request("POST", "/checkpoint")
    r = h.getresponse()
    body = r.read()
    h.close()
    if r.status >= 300:
        raise RuntimeError("POST /checkpoint answered %d: %s" % (r.status, body))


def main():
    tmp = tempfile.mkdtemp(prefix="dp-restore-bench-")
    try:
        return run(tmp, int(sys.argv[1]) if len(sys.argv) > 1 else 1000000)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # RDB, AOF and log files of N keys


def run(tmp, keys):
    half = keys // 2
    first, second = proto(0, half), proto(half, keys - half)
    print("restore_bench: %d keys (%.1f MB of SET commands), dir %s" % (
        keys, (len(first) + len(second)) / 1e6, tmp), flush=True)

    # --- the proxy: checkpoint after the first half, log tail for the second.
    c = cluster.Cluster(os.path.join(tmp, "proxy"))
    aof = None
    try:
        pipe(c.proxy.port, first)
        post_checkpoint(c.proxy)
        harness.wait_until(lambda: c.status().get("checkpoint", {}).get("offset", 0) > 0, 3600, "checkpoint")
        pipe(c.proxy.port, second)
        assert dbsize(c.upstream.port) == keys
        t0 = time.monotonic()
        c.kill_upstream()
        recovery_util.wait_restored(c.proxy, 1, timeout=3600)
        restore_wall = time.monotonic() - t0
        restore_metric = None
        _, body = c.proxy.admin_get("/metrics")
        for line in body.splitlines():
            if line.startswith("durable_proxy_restore_seconds_sum "):
                restore_metric = float(line.split()[1])
        assert dbsize(c.upstream.port) == keys
    finally:
        c.stop()

    # --- the same server with appendonly: BGREWRITEAOF after the first half.
    try:
        aof = harness.Server(os.path.join(tmp, "aof"), ["--appendonly", "yes", "--appendfsync", "everysec"],
                             name="aof")
        pipe(aof.port, first)
        with harness.RespConn(aof.addr) as a:
            a.call("BGREWRITEAOF")
            harness.wait_until(lambda: harness.info_fields(a, "persistence")["aof_rewrite_in_progress"] == "0"
                               and harness.info_fields(a, "persistence")["aof_rewrite_scheduled"] == "0",
                               3600, "BGREWRITEAOF")
        pipe(aof.port, second)
        time.sleep(2)  # appendfsync everysec: let the last second reach the file
        cluster.kill9(aof)
        t0 = time.monotonic()
        aof.start(port=aof.port)  # same dir: loads appendonlydir/
        wait_loaded(aof.port)
        aof_load = time.monotonic() - t0
        assert dbsize(aof.port) == keys
    finally:
        if aof:
            aof.stop()

    print("restore (kill -9 to serving, wall): %.2f s; restore_seconds metric (REPLICAOF .. NO ONE): %s s"
          % (restore_wall, "%.2f" % restore_metric if restore_metric is not None else "?"), flush=True)
    print("AOF reload (restart to PONG):        %.2f s" % aof_load)
    print("ratio restore/AOF: %.2f (wall), %.2f (metric); target <= 1.2" % (
        restore_wall / aof_load, (restore_metric or 0) / aof_load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
