"""Cluster restore benchmark (issue 14): how long a cluster primary that
came back empty takes to get its data back through its proxy (a multi-part
AOF loaded by DEBUG LOADAOF: proxy/recovery/aof_restorer.h), against an AOF
reload of the same node (DEBUG LOADAOF of an AOF the node wrote itself).

One cluster-enabled node owning every slot, a proxy beside it.  N keys
(SET k:<i> <64 bytes>) are written through the proxy, then:
  1. restore from the log: kill -9 the node, start it on its own directory,
     time until the proxy is ready (checkpoint 0 is empty: every key comes
     from the log's increment, replayed as commands);
  2. restore from a checkpoint: POST /checkpoint, then the same (the keys
     come from the RDB base);
  3. the node's own AOF: CONFIG SET appendonly yes (a rewrite: RDB preamble),
     then DEBUG LOADAOF of it, timed.
Not part of the test suite: run it on a quiet machine.

  tests/bench/cluster_restore_bench.sh [--keys 1000000]

"Kill to ready" also holds the node's start, the proxy's reconnect and
decision, and the new log history's full sync; "the restore step" is the
proxy's own figure (AOF written, DEBUG LOADAOF), comparable to 3.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
import harness  # noqa: E402
from cluster_util import kill9  # noqa: E402


def wait(pred, timeout, what):
    deadline = time.monotonic() + harness.scaled(timeout)
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("cluster_restore_bench: timed out waiting for " + what)
        time.sleep(0.01)


def fill(addr, n, batch=2000):
    """n SETs through addr, pipelined; every reply checked."""
    s = socket.create_connection(addr)
    value = b"v" * 64
    buf = b""
    for start in range(0, n, batch):
        cmds = []
        for i in range(start, min(n, start + batch)):
            k = b"k:%d" % i
            cmds.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n" % (len(k), k, value))
        s.sendall(b"".join(cmds))
        want = len(cmds) * 5  # "+OK\r\n" each
        while len(buf) < want:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise SystemExit("cluster_restore_bench: the proxy closed the connection")
            buf += chunk
        if buf[:want] != b"+OK\r\n" * len(cmds):
            raise SystemExit("cluster_restore_bench: a SET was not acknowledged: %r" % buf[:200])
        buf = buf[want:]
    s.close()


def dbsize(addr):
    with harness.RespConn(addr) as c:
        return c.call("DBSIZE")


def cluster_ok(addr):
    with harness.RespConn(addr) as c:
        return b"cluster_state:ok" in bytes(c.call("CLUSTER", "INFO"))


def restore_once(node, proxy, n):
    kill9(node)
    t0 = time.monotonic()
    node.start(port=node.port)
    wait(lambda: proxy.readyz() == 200, 600, "the proxy to restore the node")
    took = time.monotonic() - t0
    wait(lambda: cluster_ok(node.addr), 60, "cluster state ok")
    got = dbsize(node.addr)
    if got != n:
        raise SystemExit("cluster_restore_bench: %d keys after the restore, want %d" % (got, n))
    # The restore step alone (AOF written + DEBUG LOADAOF), as the proxy logged it.
    steps = re.findall(r"restore of upstream \S+ done in ([0-9.]+) s", open(proxy.log_path, errors="replace").read())
    return took, float(steps[-1]) if steps else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=1000000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dp-cluster-restore-bench-")
    node = proxy = None
    try:
        node = harness.Server(tmp, ["--cluster-enabled", "yes", "--cluster-port", str(harness.free_port()),
                                    "--enable-debug-command", "local"], name="node")
        with harness.RespConn(node.addr) as c:
            assert c.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == "OK"
        wait(lambda: cluster_ok(node.addr), 30, "cluster state ok")
        proxy = harness.Proxy(tmp, node.port, "always")
        print("cluster_restore_bench: %s %s, %d keys of 64 bytes, load %s" % (
            harness.server_version()[0], harness.server_version()[1], args.keys,
            open("/proc/loadavg").read().split()[0]), flush=True)
        t0 = time.monotonic()
        fill(proxy.addr, args.keys)
        print("  filled through the proxy in %.1f s" % (time.monotonic() - t0), flush=True)
        from_log, step_log = restore_once(node, proxy, args.keys)
        print("  1. restore from the log (AOF increment): %.2f s kill to ready; the restore step %.2f s"
              % (from_log, step_log), flush=True)
        req = urllib.request.Request("http://127.0.0.1:%d/checkpoint" % proxy.admin_port, data=b"", method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        wait(lambda: b'"running":false' in urllib.request.urlopen(
            "http://127.0.0.1:%d/status" % proxy.admin_port, timeout=5).read().replace(b" ", b""), 300,
             "the checkpoint")
        from_cp, step_cp = restore_once(node, proxy, args.keys)
        print("  2. restore from a checkpoint (AOF base): %.2f s kill to ready; the restore step %.2f s"
              % (from_cp, step_cp), flush=True)
        with harness.RespConn(node.addr, timeout=600) as c:
            assert c.call("CONFIG", "SET", "appendonly", "yes") == "OK"
            wait(lambda: harness.info_fields(c, "persistence").get("aof_rewrite_in_progress") == "0" and
                 harness.info_fields(c, "persistence").get("aof_rewrite_scheduled") == "0" and
                 harness.info_fields(c, "persistence").get("aof_enabled") == "1", 300, "the node's AOF rewrite")
            t1 = time.monotonic()
            assert c.call("DEBUG", "LOADAOF") == "OK"
            own = time.monotonic() - t1
            assert c.call("DBSIZE") == args.keys
            assert c.call("CONFIG", "SET", "appendonly", "no") == "OK"
        print("  3. the node's own AOF (rewritten, RDB preamble), DEBUG LOADAOF: %.2f s" % own)
        print("ratios, the restore step / the node's own AOF reload: from the log %.2fx, from a checkpoint %.2fx"
              % (step_log / own, step_cp / own))
    finally:
        for p in (proxy, node):
            if p:
                p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
