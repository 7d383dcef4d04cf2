"""An upstream that is busy (a script past its time limit answers -BUSY to
almost everything) tells the proxy nothing about its data.  The recovery
check must not read INFO's -BUSY as "lost everything, holds no keys" and
restore over the live dataset, and a ROLE probe that got -BUSY must be sent
again, so the replies it covers are released once the script ends instead
of failing at durability.hold_timeout."""
import os
import sys
import threading

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "crash"))
import cluster  # noqa: E402

pytestmark = pytest.mark.proxy_only

BUSY_SCRIPT = "local t = redis.call('TIME') while true do end"


def start_busy_script(addr):
    """EVAL a script that never ends on its own connection; returns the
    thread (it ends when SCRIPT KILL stops the script)."""
    def run():
        with harness.RespConn(addr, timeout=harness.scaled(60)) as c:
            c.call("EVAL", BUSY_SCRIPT, 0)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def wait_busy(d):
    harness.wait_until(lambda: str(d.call("PING")).startswith("BUSY"), 10,
                       "the upstream to answer -BUSY (script past busy-reply-threshold)",
                       state=lambda: d.call("PING"))


def restores(proxy):
    code, body = proxy.admin_get("/metrics")
    return sum(float(l.split()[1]) for l in body.splitlines()
               if l.startswith("durable_proxy_restores_total"))


def test_proxy_restarted_while_upstream_busy_does_not_restore(tmp_path):
    cl = cluster.Cluster(tmp_path, server_args=("--busy-reply-threshold", "100"))
    try:
        with harness.RespConn(cl.addr) as c:
            for i in range(50):
                assert c.call("SET", "k%d" % i, "v%d" % i) == "OK"
        cluster.kill9(cl.proxy)
        with cl.direct() as d:
            # A key the log does not have: a restore would wipe it.
            assert d.call("SET", "direct-only", "1") == "OK"
            t = start_busy_script(cl.upstream.addr)
            wait_busy(d)
            cluster.respawn_proxy(cl.proxy, cl.fsync.env, wait_ready=False)
            # The proxy's recovery check meets -BUSY: it must say so and wait.
            harness.wait_until(lambda: "BUSY" in harness._tail(cl.proxy.log_path, 20000), 20,
                               "the proxy to log the upstream's -BUSY answer",
                               state=lambda: harness._tail(cl.proxy.log_path, 600))
            assert d.call("SCRIPT", "KILL") == "OK"
            t.join(harness.scaled(10))
            cl.proxy.wait_ready(harness.scaled(30))
            assert d.call("GET", "direct-only") == b"1", "the live dataset was overwritten by a restore"
            assert d.call("GET", "k49") == b"v49"
        log = harness._tail(cl.proxy.log_path, 200000)
        # Before the fix the check read -BUSY as "holds no keys" and began a
        # restore (closing every client); only the server's BUSY refusal of
        # REPLICAOF kept the dataset.
        assert "restoring" not in log, log[-4000:]
        assert restores(cl.proxy) == 0, log[-4000:]
    finally:
        cl.stop()


def test_write_reply_during_busy_script_is_released_when_it_ends(tmp_path):
    cl = cluster.Cluster(tmp_path, config_text="durability:\n  hold_timeout: 60s\n",
                         server_args=("--busy-reply-threshold", "100"))
    try:
        with harness.RespConn(cl.addr) as w, cl.direct() as d:
            assert w.call("SET", "before", "1") == "OK"
            t = start_busy_script(cl.upstream.addr)
            wait_busy(d)
            w.send_cmd("SET", "during", "1")  # -BUSY from the server; its probe gets -BUSY too
            harness.wait_until(lambda: "ROLE probe failed" in harness._tail(cl.proxy.log_path, 20000), 10,
                               "a ROLE probe to meet -BUSY",
                               state=lambda: harness._tail(cl.proxy.log_path, 600))
            assert d.call("SCRIPT", "KILL") == "OK"
            t.join(harness.scaled(10))
            raw, reply = w.read_frame(timeout=harness.scaled(20))
            assert isinstance(reply, harness.Error) and str(reply).startswith("BUSY"), raw
            assert w.call("SET", "after", "1") == "OK"
    finally:
        cl.stop()
