"""Restore in cluster mode (proxy/recovery/aof_restorer.h, design in
proxy/recovery/CLUSTER_RESTORE.md): a cluster primary refuses REPLICAOF, so
when it comes back empty its proxy writes the log as a multi-part AOF into
the node's data directory and the node loads it with DEBUG LOADAOF.

One cluster-enabled node owning every slot, its proxy beside it (the
restore is per node: each proxy restores its own node); killed with -9 and
started again on its own directory, so nodes.conf (its id, its slots) is
kept and only the data is gone."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import checkpoint_util  # noqa: E402
from cluster_util import kill9, respawn_proxy  # noqa: E402

pytestmark = [pytest.mark.proxy_only,
              pytest.mark.skipif(harness.server_version()[0] != "valkey",
                                 reason="Valkey Cluster: the matrix's Valkey servers")]


def cluster_node(tmp, extra=()):
    """A cluster-enabled server with its bus on a port of its own (the
    default, port + 10000, does not exist for ports above 55535)."""
    return harness.Server(tmp, ["--cluster-enabled", "yes", "--cluster-port", str(harness.free_port())] + list(extra),
                          name="node")


def cluster_info(addr):
    with harness.RespConn(addr) as c:
        return dict(l.split(":", 1) for l in bytes(c.call("CLUSTER", "INFO")).decode().split("\r\n") if ":" in l)


class OneNodeCluster:
    def __init__(self, tmp):
        self.node = cluster_node(tmp, ["--enable-debug-command", "local"])
        try:
            with harness.RespConn(self.node.addr) as c:
                assert c.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == "OK"
            harness.wait_until(lambda: cluster_info(self.node.addr).get("cluster_state") == "ok", 30,
                               "the one-node cluster's state to be ok",
                               state=lambda: cluster_info(self.node.addr))
            self.proxy = harness.Proxy(tmp, self.node.port, "always")
        except Exception:
            self.node.stop()
            raise

    def stop(self):
        self.proxy.stop()
        self.node.stop()


@pytest.fixture
def one(tmp_path):
    c = OneNodeCluster(tmp_path)
    yield c
    c.stop()


def settle(proxy, node):
    """Until the proxy's log has fsynced everything the node executed."""
    with harness.RespConn(node.addr) as d:
        target = int(harness.info_fields(d, "replication")["master_repl_offset"])

    def fsynced():
        with harness.RespConn(proxy.addr) as c:
            return int(harness.info_fields(c, "durability")["fsynced_offset"])
    harness.wait_until(lambda: fsynced() >= target, 10, "the log fsynced through offset %d" % target)


def write_some(conn, tag, n):
    """n acknowledged writes of several kinds; returns what each key holds."""
    want = {}
    for i in range(n):
        k = "%s:s:%d" % (tag, i)
        assert conn.call("SET", k, "v%d" % i) == "OK"
        want[k] = b"v%d" % i
    assert conn.call("HSET", "%s:h" % tag, "f", "1", "g", "2") == 2
    assert conn.call("SET", "%s:ttl" % tag, "x", "EX", "100000") == "OK"
    # A transaction (MULTI/EXEC in the stream) on one slot.
    assert conn.call("MULTI") == "OK"
    assert conn.call("INCR", "{%s}n" % tag) == "QUEUED"
    assert conn.call("INCR", "{%s}n" % tag) == "QUEUED"
    assert conn.call("EXEC") == [1, 2]
    return want


def check(conn, tag, want):
    for k, v in want.items():
        assert conn.call("GET", k) == v, k
    assert conn.call("HGETALL", "%s:h" % tag) == [b"f", b"1", b"g", b"2"]
    ttl = conn.call("TTL", "%s:ttl" % tag)
    assert 0 < ttl <= 100000, ttl
    assert conn.call("GET", "{%s}n" % tag) == b"2"


def test_a_cluster_primary_that_came_back_empty_gets_every_acknowledged_write_back(one):
    p = one.proxy
    with harness.RespConn(p.addr) as c:
        before = write_some(c, "a", 50)  # in the checkpoint below (the AOF's base)
    code, _ = checkpoint_util.admin_post(p)
    assert code == 202 or code == 200, code
    checkpoint_util.wait_completed(p, 1)
    with harness.RespConn(p.addr) as c:
        after = write_some(c, "b", 50)   # only in the log (the AOF's increment)
        # A stream write the proxy did not forward: logged all the same.
    with harness.RespConn(one.node.addr) as d:
        assert d.call("SET", "direct", "1") == "OK"
        node_id = bytes(d.call("CLUSTER", "MYID")).decode()
    settle(p, one.node)

    kill9(one.node)
    t0 = time.monotonic()
    one.node.start(port=one.node.port)  # its own directory: nodes.conf kept, data gone
    harness.wait_until(lambda: p.readyz() == 200, 60, "the proxy to restore the node and serve again",
                       state=lambda: open(p.log_path, errors="replace").read()[-3000:])
    restore_s = time.monotonic() - t0
    # (A restarted node answers -CLUSTERDOWN until its state is ok again.)
    harness.wait_until(lambda: cluster_info(one.node.addr).get("cluster_state") == "ok", 30,
                       "the restarted node's cluster state to be ok")
    log = open(p.log_path, errors="replace").read()
    assert "DEBUG LOADAOF" in log, log[-3000:]
    with harness.RespConn(p.addr) as c:
        check(c, "a", before)
        check(c, "b", after)
        assert c.call("GET", "direct") == b"1"
    # The node is the same cluster node, still the slots' owner; the AOF
    # files are gone again.
    with harness.RespConn(one.node.addr) as d:
        assert bytes(d.call("CLUSTER", "MYID")).decode() == node_id
        dir_ = bytes(d.call("CONFIG", "GET", "dir")[1]).decode()
        aofdir = os.path.join(dir_, bytes(d.call("CONFIG", "GET", "appenddirname")[1]).decode())
        assert d.call("CONFIG", "GET", "appendonly")[1] == b"no"
    assert cluster_info(one.node.addr)["cluster_slots_assigned"] == "16384"
    assert not os.path.exists(os.path.join(aofdir, "appendonly.aof.manifest")), os.listdir(aofdir)
    print("restore of %d keys took %.2f s (kill to ready)" % (len(before) + len(after) + 7, restore_s))

    # Writes after the restore go to the new log history, and a proxy
    # restart resumes it.
    with harness.RespConn(p.addr) as c:
        assert c.call("SET", "later", "1") == "OK"
    kill9(p)
    respawn_proxy(p)
    with harness.RespConn(p.addr) as c:
        assert c.call("GET", "later") == b"1"
        check(c, "b", after)


def test_without_debug_command_the_restore_fails_naming_the_setting(tmp_path):
    """A node without enable-debug-command cannot load the AOF: the proxy
    stays unready (nothing is served from the empty node) and says why."""
    node = cluster_node(tmp_path)
    try:
        with harness.RespConn(node.addr) as c:
            assert c.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == "OK"
        harness.wait_until(lambda: cluster_info(node.addr).get("cluster_state") == "ok", 30, "cluster state ok")
        p = harness.Proxy(tmp_path, node.port, "always")
        try:
            with harness.RespConn(p.addr) as c:
                assert c.call("SET", "k", "1") == "OK"
            kill9(node)
            node.start(port=node.port)
            harness.wait_until(lambda: "enable-debug-command" in open(p.log_path, errors="replace").read(), 60,
                               "the proxy to name enable-debug-command",
                               state=lambda: open(p.log_path, errors="replace").read()[-2000:])
            assert p.readyz() == 503
            with harness.RespConn(p.addr) as c:
                r = c.call("GET", "k")
                assert isinstance(r, harness.Error) and "LOADING" in r, r
            # The operator allows it (a setting of the node's start): the
            # node restarts, empty again, and the proxy restores it.
            kill9(node)
            node.extra_args.extend(["--enable-debug-command", "local"])
            node.start(port=node.port)
            harness.wait_until(lambda: p.readyz() == 200, 60, "the restore to succeed once allowed",
                               state=lambda: open(p.log_path, errors="replace").read()[-2000:])
            harness.wait_until(lambda: cluster_info(node.addr).get("cluster_state") == "ok", 30,
                               "the restarted node's cluster state to be ok")
            with harness.RespConn(p.addr) as c:
                assert c.call("GET", "k") == b"1"
        finally:
            p.stop()
    finally:
        node.stop()


def test_a_node_that_lost_nodes_conf_too_is_not_restored_into(one):
    """Data and nodes.conf gone: the node starts as a new node (new id, no
    slots).  The log's keys belong to slots it does not own, so the proxy
    refuses (stays unready) and names the node id the log came from."""
    p = one.proxy
    with harness.RespConn(p.addr) as c:
        assert c.call("SET", "k", "1") == "OK"
    with harness.RespConn(one.node.addr) as d:
        old_id = bytes(d.call("CLUSTER", "MYID")).decode()
        dir_ = bytes(d.call("CONFIG", "GET", "dir")[1]).decode()
    kill9(one.node)
    os.remove(os.path.join(dir_, "nodes.conf"))
    one.node.start(port=one.node.port)
    with harness.RespConn(one.node.addr) as d:
        new_id = bytes(d.call("CLUSTER", "MYID")).decode()
    assert new_id != old_id
    harness.wait_until(lambda: "not node %s" % old_id in open(p.log_path, errors="replace").read(), 60,
                       "the proxy to refuse the new node, naming the old id",
                       state=lambda: open(p.log_path, errors="replace").read()[-2000:])
    assert p.readyz() == 503
    log = open(p.log_path, errors="replace").read()
    assert "DEBUG LOADAOF" not in log, "restored into a node that owns none of the log's slots"
    with harness.RespConn(one.node.addr) as d:
        assert d.call("DBSIZE") == 0
