"""Recovery (DESIGN.md §6): an upstream that restarted empty is restored
from the checkpoint and the log before the proxy serves again; a restarted
proxy continues from the upstream's backlog; a clean shutdown leaves
nothing to restore; an upstream holding another dataset is refused unless
recovery.on_unknown_dataset says restore or adopt.  Real redis-server
processes, killed with SIGKILL."""
import os
import threading
import time

import pytest

import harness
from recovery_util import (assert_same_dataset, cluster, metric, pipeline, set_config, snapshot,
                           wait_restored, write_mixed)

pytestmark = pytest.mark.proxy_only


@pytest.fixture
def cl(tmp_path):
    c = cluster.Cluster(tmp_path)
    yield c
    c.stop()


def info(conn, section):
    return harness.info_fields(conn, section)


def test_upstream_killed_is_restored_with_every_acknowledged_write(cl):
    with harness.RespConn(cl.addr) as c:
        write_mixed(c, 600)
        assert c.call("INCR", "counter") == 1
        assert c.call("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", 1, "lua", "x") == "OK"
    log_replid = cl.status()["replid"]
    with cl.direct() as d:
        before = snapshot(d, (0, 1, 2))
    assert len(before) > 600

    cl.kill_upstream()
    wait_restored(cl.proxy)

    with cl.direct() as d:
        assert_same_dataset(snapshot(d, (0, 1, 2)), before)
        repl = info(d, "replication")
        # Promoted again: our history is its replid2, so the link continued.
        assert repl["role"] == "master"
        assert repl["master_replid2"] == log_replid
        assert d.call("CONFIG", "GET", "masterauth") == [b"masterauth", b""]
        # Loaded from the socket during the restore, then put back.
        assert d.call("CONFIG", "GET", "repl-diskless-load") == [b"repl-diskless-load", b"disabled"]
    with open(cl.proxy.log_path) as f:
        text = f.read()
    assert "restore of upstream" in text and "done in" in text
    assert "continuing from offset" in text
    assert metric(cl.proxy, "restore_in_progress") == 0
    with harness.RespConn(cl.addr) as c:  # serving: writes work and are logged
        assert c.call("SET", "after", "1") == "OK"
        assert c.call("GET", "counter") == b"1"
    # A second crash restores the history that now spans the first restore.
    with cl.direct() as d:
        before = snapshot(d, (0, 1, 2))
    cl.kill_upstream()
    wait_restored(cl.proxy, 2)
    with cl.direct() as d:
        assert_same_dataset(snapshot(d, (0, 1, 2)), before)


def test_commands_during_restore_get_loading_never_missing_data(cl):
    """20k keys in three databases with TTLs, streams and functions: a
    checkpoint (POST /checkpoint when available) plus a log tail; a client
    polling during the restore sees -LOADING or the right value, never a
    missing key; afterwards the dataset equals the one before the crash."""
    with harness.RespConn(cl.addr) as c:
        write_mixed(c, 10000, prefix="a")
    try:
        import http.client
        h = http.client.HTTPConnection("127.0.0.1", cl.proxy.admin_port, timeout=30)
        h.request("POST", "/checkpoint")
        code = h.getresponse().status
        h.close()
    except OSError:
        code = None
    if code is not None and code < 300:
        harness.wait_until(lambda: cl.status().get("checkpoint", {}).get("offset", 0) > 0, 60,
                           "a checkpoint after POST /checkpoint")
    with harness.RespConn(cl.addr) as c:
        write_mixed(c, 10000, prefix="b", functions=False)
        c.call("SELECT", 2)
        assert c.call("SET", "probe", "here") == "OK"
    with cl.direct() as d:
        before = snapshot(d, (0, 1, 2))

    seen = {"loading": 0, "ok": 0, "bad": []}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                with harness.RespConn(cl.addr, timeout=10) as c:
                    while not stop.is_set():
                        r = c.call("SELECT", 2)
                        if isinstance(r, harness.Error) and r.startswith("LOADING"):
                            seen["loading"] += 1
                            time.sleep(0.005)
                            continue
                        v = c.call("GET", "probe")
                        if v == b"here":
                            seen["ok"] += 1
                        elif isinstance(v, harness.Error) and v.startswith("LOADING"):
                            seen["loading"] += 1
                        else:
                            seen["bad"].append(v)
            except (OSError, harness.Closed):
                time.sleep(0.005)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        harness.wait_until(lambda: seen["ok"] > 0, 10, "the poller to be served before the kill",
                           state=lambda: dict(seen))
        cl.kill_upstream()
        wait_restored(cl.proxy)
        ok_at_restore = seen["ok"]
        harness.wait_until(lambda: seen["ok"] > ok_at_restore, 10,
                           "the poller to be served after the restore", state=lambda: dict(seen))
    finally:
        stop.set()
        t.join(10)
    assert seen["bad"] == [], "a command was served before the restore finished: %r" % seen["bad"][:5]
    assert seen["loading"] > 0 and seen["ok"] > 0, seen
    with cl.direct() as d:
        assert_same_dataset(snapshot(d, (0, 1, 2)), before)
    with open(cl.proxy.log_path) as f:
        assert "restoring upstream" in f.read()


def test_proxy_restart_continues_from_upstream_backlog(cl):
    """kill -9 of the proxy while fsync is blocked: writes the upstream
    executed but the log never made durable are received again from the
    upstream's backlog (PSYNC +CONTINUE), not lost and not restored."""
    with harness.RespConn(cl.addr) as c:
        assert c.call("SET", "acked", "1") == "OK"
    cl.fsync.block()
    try:
        with cl.direct() as d:  # executed, never durable in the proxy's log
            for i in range(50):
                assert d.call("SET", "direct:%d" % i, i) == "OK"
            up = int(info(d, "replication")["master_repl_offset"])
        harness.wait_until(lambda: cl.status()["offsets"]["received"] >= up, 5, "the stream to arrive")
        assert cl.status()["offsets"]["fsynced"] < up
        cluster.kill9(cl.proxy)
    finally:
        cl.fsync.unblock()
    cluster.respawn_proxy(cl.proxy, cl.fsync.env)
    harness.wait_until(lambda: cl.status()["offsets"]["fsynced"] >= up, 10, "the backlog to be re-received")
    assert metric(cl.proxy, "restores_total") == 0
    with open(cl.proxy.log_path) as f:
        text = f.read()
    assert "continuing the stream" in text
    # Proof that the log holds them now: lose the upstream and restore.
    cl.kill_upstream()
    wait_restored(cl.proxy)
    with harness.RespConn(cl.addr) as c:
        assert c.call("GET", "acked") == b"1"
        assert [c.call("GET", "direct:%d" % i) for i in range(50)] == [b"%d" % i for i in range(50)]


def test_clean_shutdown_restart_serves_at_once(cl):
    with harness.RespConn(cl.addr) as c:
        for i in range(100):
            assert c.call("SET", "k%d" % i, i) == "OK"
    assert cl.proxy.stop() == 0
    t0 = time.monotonic()
    cluster.respawn_proxy(cl.proxy, cl.fsync.env)
    # "At once" is proved by what the restart did, not by a clock (a busy
    # machine stretches any bound): it continued the stream, with no full
    # resync and no restore.  The time is printed for the record.
    print("restart after a clean shutdown served after %.2f s" % (time.monotonic() - t0))
    with open(cl.proxy.log_path) as f:
        text = f.read()
    assert text.count("full resync") == 1, "a restart after a clean shutdown needed a full resync"
    assert text.count("continuing the stream") == 1, "the restart did not continue the log's stream"
    assert metric(cl.proxy, "restores_total") == 0
    with harness.RespConn(cl.addr) as c:
        assert c.call("GET", "k99") == b"99"
        assert c.call("SET", "k100", 100) == "OK"


def test_power_loss_truncates_torn_tail_and_keeps_acknowledged_writes(cl):
    acked = []
    with harness.RespConn(cl.addr) as c:
        for i in range(300):
            assert c.call("SET", "p%d" % i, i) == "OK"
            acked.append(i)
    cl.power_loss()
    with open(cl.proxy.log_path) as f:
        text = f.read()
    assert metric(cl.proxy, "restores_total") == 1
    with harness.RespConn(cl.addr) as c:
        got = [c.call("GET", "p%d" % i) for i in acked]
    assert got == [b"%d" % i for i in acked]
    assert "torn tail" in text or "offsets 0.." in text


def test_unknown_dataset_refused_by_default_then_restore_or_adopt(cl):
    with harness.RespConn(cl.addr) as c:
        assert c.call("SET", "ours", "1") == "OK"
    assert cl.proxy.stop() == 0
    cluster.kill9(cl.upstream)
    cl.restart_upstream()
    with cl.direct() as d:
        assert d.call("SET", "foreign", "1") == "OK"
    cluster.respawn_proxy(cl.proxy, cl.fsync.env, wait_ready=False)
    def reason():
        try:
            return cl.status().get("not_ready_reason", "")
        except OSError:  # the admin port is not open yet
            return ""
    harness.wait_until(lambda: "on_unknown_dataset" in reason(), 10, "the refusal")
    reason = cl.status()["not_ready_reason"]
    assert "1 keys from another history" in reason and "'restore'" in reason and "'adopt'" in reason
    assert cl.proxy.readyz() == 503
    with harness.RespConn(cl.addr) as c:
        r = c.call("GET", "ours")
        assert isinstance(r, harness.Error) and r.startswith("LOADING"), r

    cl.proxy.stop()
    set_config(cl.proxy, "recovery:\n  on_unknown_dataset: restore\n")
    cluster.respawn_proxy(cl.proxy, cl.fsync.env)
    with harness.RespConn(cl.addr) as c:
        assert c.call("GET", "ours") == b"1"
        assert c.call("GET", "foreign") is None

    cl.proxy.stop()
    cluster.kill9(cl.upstream)
    cl.restart_upstream()
    with cl.direct() as d:
        assert d.call("SET", "foreign2", "2") == "OK"
    set_config(cl.proxy, "recovery:\n  on_unknown_dataset: adopt\n")
    cluster.respawn_proxy(cl.proxy, cl.fsync.env)
    with harness.RespConn(cl.addr) as c:
        assert c.call("GET", "foreign2") == b"2"
        assert c.call("GET", "ours") is None
        assert c.call("SET", "new", "1") == "OK"


def test_restore_failure_is_retried_with_backoff_and_never_serves(tmp_path):
    import socket
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    c = cluster.Cluster(tmp_path, config_text='recovery:\n  restore_listen: "127.0.0.1:%d"\n' % port)
    try:
        with harness.RespConn(c.addr) as conn:
            assert conn.call("SET", "k", "1") == "OK"
        cluster.kill9(c.upstream)
        c.restart_upstream()
        harness.wait_until(lambda: metric(c.proxy, 'errors_total{cause="restore"}') >= 2, 15,
                           "two failed restore attempts")
        assert c.proxy.readyz() == 503
        reason = c.status()["not_ready_reason"]
        assert "restore of upstream" in reason and "cannot listen on 127.0.0.1:%d" % port in reason, reason
        with harness.RespConn(c.addr) as conn:
            r = conn.call("GET", "k")
            assert isinstance(r, harness.Error) and r.startswith("LOADING"), r
        with c.direct() as d:  # each failed attempt puts the upstream back as it was
            harness.wait_until(lambda: d.call("CONFIG", "GET", "masterauth") == [b"masterauth", b""], 5,
                               "masterauth put back between attempts")
            assert harness.info_fields(d, "replication")["role"] == "master"
        blocker.close()
        wait_restored(c.proxy, 1, timeout=30)
        with harness.RespConn(c.addr) as conn:
            assert conn.call("GET", "k") == b"1"
    finally:
        blocker.close()
        c.stop()


def test_proxy_killed_mid_restore_restores_again_after_restart(cl):
    with harness.RespConn(cl.addr) as c:
        write_mixed(c, 3000)
    with cl.direct() as d:
        before = snapshot(d, (0, 1, 2))
    cluster.kill9(cl.upstream)
    cl.restart_upstream()

    def replicaof_sent():
        with open(cl.proxy.log_path) as f:
            return "is now a replica of the restore listener" in f.read()
    harness.wait_until(replicaof_sent, 15, "the restore to begin")
    cluster.kill9(cl.proxy)
    with cl.direct() as d:  # left following a listener that is gone
        assert harness.info_fields(d, "replication")["role"] == "slave"
    cluster.respawn_proxy(cl.proxy, cl.fsync.env)
    with open(cl.proxy.log_path) as f:
        assert "still follows the restore listener of an earlier run" in f.read()
    with cl.direct() as d:
        assert_same_dataset(snapshot(d, (0, 1, 2)), before)
        assert harness.info_fields(d, "replication")["role"] == "master"
        assert d.call("CONFIG", "GET", "masterauth") == [b"masterauth", b""]
    with harness.RespConn(cl.addr) as c:
        assert c.call("SET", "after", "1") == "OK"


def test_restore_reads_the_log_across_many_segments(tmp_path):
    c = cluster.Cluster(tmp_path, config_text="log:\n  segment_size: 1mb\n")
    try:
        value = "v" * 4000
        with harness.RespConn(c.addr) as conn:
            cmds = [["SET", "big:%d" % i, value + str(i)] for i in range(3000)]  # ~12 MB of log
            for r in pipeline(conn, cmds, batch=200):
                assert r == "OK", r
        segments = [n for n in os.listdir(c.proxy.log_dir) if n.endswith(".seg")]
        assert len(segments) > 5, segments
        c.kill_upstream()
        wait_restored(c.proxy)
        with harness.RespConn(c.addr) as conn:
            assert conn.call("DBSIZE") == 3000
            assert conn.call("GET", "big:0") == (value + "0").encode()
            assert conn.call("GET", "big:2999") == (value + "2999").encode()
    finally:
        c.stop()
