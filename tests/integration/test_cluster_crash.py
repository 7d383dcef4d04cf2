"""The crash harness in cluster form (issue 14): 3 primaries, 3 replicas, a
proxy beside each node, writers over every hash slot through the proxies
(tests/integration/cluster_traffic.py records exactly which writes were
acknowledged).  Faults on one primary while the writers run:

  - the node killed with -9 and started again empty on its own directory
    (nodes.conf kept) before its replica takes over: its proxy restores it
    (DEBUG LOADAOF, proxy/recovery/CLUSTER_RESTORE.md) before serving;
  - its proxy killed with -9 and started again on its log;
  - both at once.

Each time: every acknowledged write reads back, a watcher reading keys
acknowledged before the fault through the victim's proxy never saw one
missing or wrong (nothing is served before the restore), the other shards
kept acknowledging writes during the fault, and the node is still the
slots' primary with its replica resynced.

Failover (a primary killed and not restarted in time, its replica
promoted) loses the writes the old primary acknowledged and had not yet
replicated: the README's contract says so.  The last test measures that
loss and checks every lost write is in the old primary's proxy log."""
import os

import pytest

import harness
import cluster_util
import cluster_traffic
from cluster_traffic import Traffic

pytestmark = [pytest.mark.proxy_only,
              pytest.mark.skipif(harness.server_version()[0] != "valkey",
                                 reason="cluster suite: Valkey only (%s)" % harness.server_label())]

# Long enough that a replica never takes over while its primary restarts
# (a restore here takes about a second).
NO_FAILOVER_MS = 30000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = cluster_util.ValkeyCluster(tmp_path_factory.mktemp("crash"), node_timeout_ms=NO_FAILOVER_MS,
                                   server_args=["--enable-debug-command", "local"])
    print("cluster of %d nodes on %s (%s)" % (len(c.nodes), harness.server_label(c.binary), c.mode))
    yield c
    c.stop()


def victim_for(cluster, index):
    """The index-th primary (by node index), so each test faults another."""
    return sorted(cluster.primaries(), key=lambda n: n.index)[index]


@pytest.mark.parametrize("index,fault", [(0, "node-restart"), (1, "proxy-kill"), (2, "both-kill")])
def test_every_acknowledged_write_survives_under_traffic(cluster, index, fault):
    """node-restart: the node killed and started again empty, its proxy
    restores it (DEBUG LOADAOF) before serving; proxy-kill: its proxy
    killed and started again on its log; both-kill: both at once."""
    victim = victim_for(cluster, index)
    node_id = victim.node_id()
    loads = cluster_traffic.proxy_log(victim, 10 ** 9).count(cluster_traffic.LOADAOF_SENT)
    with Traffic(cluster, prefix=fault) as t:
        cluster_traffic.fault_round(cluster, t, victim, fault)
    if fault != "proxy-kill":
        assert cluster_traffic.proxy_log(victim, 10 ** 9).count(cluster_traffic.LOADAOF_SENT) == loads + 1, \
            "the node came back empty: its proxy restores it by DEBUG LOADAOF"
    cluster_traffic.check_round(cluster, t, victim, node_id)


@pytest.fixture(scope="module")
def quick_failover(tmp_path_factory):
    # limits.client_buffer 1mb: a stalled replica's raw pipe holds at most
    # that in its primary's proxy (test_a_failover_to_a_lagging_replica...).
    c = cluster_util.ValkeyCluster(tmp_path_factory.mktemp("failover"), node_timeout_ms=3000,
                                   # a replica stopped for the lag test stays electable
                                   server_args=["--enable-debug-command", "local",
                                                "--cluster-replica-validity-factor", "0"],
                                   proxy_config="limits:\n  client_buffer: 1mb\n")
    yield c
    c.stop()


def test_failover_loses_only_writes_the_old_primarys_proxy_logged(quick_failover):
    """A primary killed and not restarted: its replica is promoted.  The
    writes it acknowledged that had not reached the replica are lost
    (measured and printed); each lost write is in the old primary's proxy
    log, nothing acknowledged by the promoted node is lost, and the old
    node, restarted empty, rejoins as the new primary's replica without its
    proxy restoring the old data into it.

    Before that, a restore of the primary made its replica resync while it
    held data: that sync goes through dump.rdb, which the replica must not
    keep (rdb-del-sync-files), or the promoted replica, restarted, would
    load it and not come back empty (found by the cluster soak).  So last,
    the promoted node is restarted empty: restored like any primary."""
    c = quick_failover
    victim = victim_for(c, 0)
    replica = cluster_traffic.replica_of(c, victim)
    with Traffic(c, prefix="fo") as t:
        cluster_traffic.fault_round(c, t, victim, "node-restart")
        cluster_traffic.check_round(c, t, victim, victim.node_id())
        sync_file = os.path.join(os.path.dirname(replica.server.log_path), "dump.rdb")
        harness.wait_until(lambda: not os.path.exists(sync_file), 30,
                           "node %d's sync file %s to be deleted after its load" % (replica.index, sync_file))
        lost, before, _ = cluster_traffic.failover_round(c, t, victim)
        assert before > 0
        promoted_id = replica.node_id()
        cluster_traffic.fault_round(c, t, replica, "node-restart")
    cluster_traffic.check_round(c, t, replica, promoted_id)


def test_a_failover_to_a_lagging_replica_loses_exactly_what_it_lacked(quick_failover):
    """The contract's failover loss, made certain: the replica is stopped
    while its primary acknowledges 640 writes of 64 KB (40 MB: more than
    the loopback socket buffers and the proxy's 1 MB pipe buffer hold for
    the stopped replica), then the
    primary dies and the replica, continued, is promoted.  Most of those
    writes are lost (the test's accounting sees a loss that is there),
    every lost one is in the old primary's proxy log, nothing else is."""
    c = quick_failover
    victim = victim_for(c, 1)
    with Traffic(c, prefix="lag") as t:
        lost, before, _ = cluster_traffic.failover_round(c, t, victim, stall_replica=640)
    big = [k for k in lost if k.startswith("big:")]
    assert len(big) >= 320, ("only %d of the 640 big writes lost: the stopped replica cannot have taken more "
                             "than its socket buffers hold" % len(big))
    again = t.missing()
    assert not again, "acknowledged writes lost beyond the failover's: %r" % again[:5]
