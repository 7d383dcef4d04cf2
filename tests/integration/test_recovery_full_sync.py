"""A full resync of the proxy's own replica link is a history change: the log
adopts the new history only together with its durable checkpoint, and drops
the old one only after that (log/FORMAT.md "History switch").  Full syncs
are cut by a reset connection (CLIENT KILL TYPE replica) or by killing the
server's RDB child, and the proxy and the upstream are killed with SIGKILL
while the RDB is on its way.  The RDB is made slow with the server's
rdb-key-save-delay (microseconds per key)."""
import os
import signal
import subprocess

import pytest

import harness
from checkpoint_util import manifest, proxy_config
from recovery_util import (assert_same_dataset, cluster, pipeline, snapshot, wait_restored,
                           write_mixed)

pytestmark = pytest.mark.proxy_only

KEYS = 3000


def full_resyncs(proxy):
    with open(proxy.log_path) as f:
        return f.read().count("full resync: replid")


def rdb_child(server):
    """Pid of the server's forked RDB child, or None."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.proc.pid)],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def replica_state(direct):
    return harness.info_fields(direct, "replication").get("slave0", "")


@pytest.mark.parametrize("cut", ["client-kill", "kill-rdb-child"])
def test_first_full_sync_cut_mid_rdb_is_not_adopted(tmp_path, cut):
    """Before: the proxy went on with PSYNC from the FULLRESYNC offset, served
    with no checkpoint stored, and a crash of Valkey then lost every key."""
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = None
    try:
        with harness.RespConn(upstream.addr) as d:
            write_mixed(d, KEYS, functions=False)
            assert d.call("CONFIG", "SET", "rdb-key-save-delay", "2000") == "OK"
        proxy = harness.Proxy(tmp_path, upstream.port, "always", config_text=proxy_config(),
                              wait_ready=False)
        with harness.RespConn(upstream.addr) as d:
            harness.wait_until(lambda: full_resyncs(proxy) >= 1 and "wait_bgsave" in replica_state(d),
                               20, "the proxy's first full sync to be under way",
                               state=lambda: replica_state(d))
            if cut == "client-kill":
                assert d.call("CLIENT", "KILL", "TYPE", "replica") >= 1
            else:
                harness.wait_until(lambda: rdb_child(upstream), 10, "the upstream's RDB child")
                os.kill(rdb_child(upstream), signal.SIGKILL)
            harness.wait_until(lambda: "not adopted" in open(proxy.log_path).read() or proxy.readyz() == 200,
                               20, "the proxy to notice the cut full sync")
            assert d.call("CONFIG", "SET", "rdb-key-save-delay", "0") == "OK"
        proxy.wait_ready(60)
        # Ready means a durable base: the checkpoint of a whole RDB.
        m = manifest(proxy)
        assert m["checkpoint_offset"] >= 0
        assert full_resyncs(proxy) >= 2
        with harness.RespConn(proxy.addr) as c:
            assert c.call("SET", "acked", "1") == "OK"
        with harness.RespConn(upstream.addr) as d:
            before = snapshot(d, (0, 1, 2))
        assert len(before) > KEYS - 10
        cluster.kill9(upstream)
        upstream.start(port=upstream.port)
        wait_restored(proxy)
        with harness.RespConn(upstream.addr) as d:
            assert_same_dataset(snapshot(d, (0, 1, 2)), before)
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.stop()


@pytest.mark.parametrize("crash", ["proxy", "both"])
def test_crash_during_a_later_full_resync_keeps_the_old_history(tmp_path, crash):
    """The link drops, the upstream's backlog no longer covers the log, the
    proxy takes a new full resync, and is killed (alone, or with the
    upstream) while its RDB arrives.  Before: the old segments were already
    gone and the reset offset published; the restart refused ("starts at
    offset ... but the newest checkpoint ... is at ...") and the
    acknowledged writes existed nowhere."""
    cl = cluster.Cluster(tmp_path, config_text=proxy_config())
    try:
        with harness.RespConn(cl.addr) as c:
            write_mixed(c, KEYS, functions=False)  # acknowledged
            acked = snapshot(c, (0, 1, 2))
        with cl.direct() as d:
            assert d.call("CONFIG", "SET", "repl-backlog-size", "16384") == "OK"
            assert d.call("CONFIG", "SET", "client-output-buffer-limit", "replica 65536 0 0") == "OK"
            cl.proxy.signal(signal.SIGSTOP)
            try:
                # Direct writes overflow the stopped replica's output buffer
                # (the upstream drops it) and the 16 KiB backlog.
                # The kernel's socket buffers take megabytes first.
                blob = "x" * 16384
                written = [0]

                def dropped():
                    if harness.info_fields(d, "replication")["connected_slaves"] == "0":
                        return True
                    for r in pipeline(d, [["SET", "direct:%d" % (written[0] + i), blob] for i in range(64)]):
                        assert r == "OK"
                    written[0] += 64
                    return False
                harness.wait_until(dropped, 30, "the upstream to drop the stopped proxy's link",
                                   state=lambda: "%d MiB written" % (written[0] * len(blob) >> 20))
                assert d.call("CONFIG", "SET", "rdb-key-save-delay", "3000") == "OK"
            finally:
                cl.proxy.signal(signal.SIGCONT)
            harness.wait_until(lambda: full_resyncs(cl.proxy) >= 2 and "wait_bgsave" in replica_state(d),
                               20, "a second full resync under way", state=lambda: replica_state(d))
        if crash == "proxy":
            cluster.kill9(cl.proxy)
            with cl.direct() as d:
                assert d.call("CONFIG", "SET", "rdb-key-save-delay", "0") == "OK"
            cluster.respawn_proxy(cl.proxy, cl.fsync.env, timeout=60)
        else:
            cluster.kill9(cl.proxy)
            cluster.kill9(cl.upstream)
            cl.restart_upstream()
            cluster.respawn_proxy(cl.proxy, cl.fsync.env, timeout=60)
        with cl.direct() as d:
            got = snapshot(d, (0, 1, 2))
        for key, value in acked.items():
            assert got.get(key) == value, "acknowledged key %r lost or changed" % (key,)
    finally:
        cl.stop()


def test_replies_during_a_full_resync_wait_then_get_an_error_naming_it(tmp_path):
    """The upstream stays the same process but the backlog no longer covers
    the log: the link comes back with a full resync.  A write sent
    meanwhile is forwarded and its reply held; the RDB takes longer than
    durability.hold_timeout, so the reply is an error naming the full
    resync, never a success before the new checkpoint is durable."""
    cl = cluster.Cluster(tmp_path, config_text=proxy_config(extra="durability:\n  hold_timeout: 1s\n"))
    try:
        with harness.RespConn(cl.addr) as c:
            # The first write waits for the log's first segment (seconds on a
            # busy machine, past the 1 s hold_timeout): until one is acked.
            harness.wait_until(lambda: c.call("SET", "warmup", "1") == "OK", 30,
                               "a first write acknowledged (the log's first segment ready)")
            write_mixed(c, KEYS, functions=False)
        with cl.direct() as d:
            assert d.call("CONFIG", "SET", "repl-backlog-size", "16384") == "OK"
            assert d.call("CONFIG", "SET", "client-output-buffer-limit", "replica 65536 0 0") == "OK"
            assert d.call("CONFIG", "SET", "rdb-key-save-delay", "2000") == "OK"  # about 6 s of RDB
            cl.proxy.signal(signal.SIGSTOP)
            try:
                blob = "x" * 16384
                written = [0]

                def dropped():
                    if harness.info_fields(d, "replication")["connected_slaves"] == "0":
                        return True
                    for r in pipeline(d, [["SET", "direct:%d" % (written[0] + i), blob] for i in range(64)]):
                        assert r == "OK"
                    written[0] += 64
                    return False
                harness.wait_until(dropped, 30, "the upstream to drop the stopped proxy's link")
            finally:
                cl.proxy.signal(signal.SIGCONT)
            harness.wait_until(lambda: full_resyncs(cl.proxy) >= 2 and "wait_bgsave" in replica_state(d),
                               20, "a second full resync under way", state=lambda: replica_state(d))
            with harness.RespConn(cl.addr, timeout=30) as c:
                r = c.call("SET", "during", "1")
            assert isinstance(r, harness.Error), r
            assert "full resync" in r and "checkpoint is durable" in r, r
            assert d.call("CONFIG", "SET", "rdb-key-save-delay", "0") == "OK"
        cl.proxy.wait_ready(60)
        with harness.RespConn(cl.addr) as c:
            assert c.call("SET", "after", "1") == "OK"
    finally:
        cl.stop()
