"""Valkey Cluster with a durable-proxy beside every node (issue 14, first
part): 3 primaries, 3 replicas, created by `valkey-cli --cluster create`;
cluster clients start at a proxy and only ever reach proxies.  Addressing and
the per-node log: tests/integration/cluster_util.py and
proxy/upstream/COMPATIBILITY.md §6."""
import pytest

import harness
import cluster_util

pytestmark = [pytest.mark.proxy_only,
              pytest.mark.skipif(harness.server_version()[0] != "valkey",
                                 reason="cluster suite: Valkey only (%s)" % harness.server_label())]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = cluster_util.ValkeyCluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def keys():
    return cluster_util.key_per_slot()


def redis_cluster_client(node):
    from redis.cluster import RedisCluster
    return RedisCluster(host="127.0.0.1", port=node.proxy.port, socket_timeout=harness.scaled(10))


def test_topology_names_proxies_only(cluster):
    """CLUSTER SLOTS / SHARDS / NODES through any proxy name the proxies'
    ports, never a node's own."""
    proxies, nodes = cluster.proxy_ports(), cluster.node_ports()
    primaries = {p.proxy.port for p in cluster.primaries()}
    for n in cluster.nodes:
        with n.conn() as c:
            slots = c.call("CLUSTER", "SLOTS")
            shards = c.call("CLUSTER", "SHARDS")
            listed = cluster_util.parse_nodes(bytes(c.call("CLUSTER", "NODES")).decode())
        # (CLUSTER SLOTS leaves out replicas that have no data yet, 8.0.1:
        # every primary is there, and nothing but proxies.)
        assert primaries <= cluster_util.slots_ports(slots) <= proxies, (n.index, slots)
        assert cluster_util.shards_ports(shards) == proxies, (n.index, shards)
        assert {x["port"] for x in listed} == proxies, (n.index, listed)
        assert not ({x["port"] for x in listed} & nodes)
        covered = sum(e[1] - e[0] + 1 for e in slots)
        assert covered == cluster_util.CLUSTER_SLOTS


def test_replicas_replicate_by_the_announced_route(cluster):
    """Each replica node's link is up, to its primary's node port on 9.x
    (cluster-announce-client-port leaves replication alone), to its
    primary's proxy on 8.x (the one announced port: a raw SYNC pipe)."""
    by_id = {n.node_id(): n for n in cluster.nodes}
    replicas = [n for n in cluster.nodes if n.role() == "slave"]
    assert len(replicas) == len(cluster.nodes) // 2
    for r in replicas:
        primary = by_id[cluster.primary_id(r)]
        with r.direct() as d:
            repl = harness.info_fields(d, "replication")
        want = primary.server.port if cluster.mode == "client-port" else primary.proxy.port
        assert repl["master_link_status"] == "up" and int(repl["master_port"]) == want, (
            cluster.mode, r.index, primary.index, repl)


def test_moved_names_the_owners_proxy(cluster, keys):
    """A key of another node's slot gets MOVED with that node's proxy."""
    first = cluster.nodes[0]
    slot = next(s for s in range(cluster_util.CLUSTER_SLOTS)
                if cluster.owner(s) is not first)
    owner = cluster.owner(slot)
    with first.conn() as c:
        reply = c.call("SET", keys[slot], "x")
    assert isinstance(reply, harness.Error) and reply == "MOVED %d 127.0.0.1:%d" % (slot, owner.proxy.port), reply


def test_valkey_cli_follows_redirects_through_proxies(cluster, keys):
    """valkey-cli -c at one proxy writes and reads keys of every primary."""
    for p in cluster.primaries():
        with p.direct() as d:
            start = int(next(e for e in d.call("CLUSTER", "SLOTS") if int(e[2][1]) == p.proxy.port)[0])
        key = keys[start]
        res = cluster.cli(cluster.nodes[0], ["SET", key, "cli-%d" % p.index])
        assert res.returncode == 0 and res.stdout.strip() == b"OK", (res.stdout, res.stderr)
        res = cluster.cli(cluster.nodes[-1], ["GET", key])
        assert res.stdout.strip() == b"cli-%d" % p.index, (res.stdout, res.stderr)
        with p.direct() as d:
            assert d.call("GET", key) == b"cli-%d" % p.index, "the key lives on the slot's owner"


def test_writes_over_all_slots_are_acknowledged_and_read_back(cluster, keys):
    """redis-py's cluster client at a proxy: one write per hash slot, every
    one acknowledged (after its node's proxy fsynced it), all read back, and
    each node holds exactly its slots' keys."""
    rc = redis_cluster_client(cluster.nodes[1])
    try:
        for i in range(0, len(keys), 2048):
            pipe = rc.pipeline()
            for k in keys[i:i + 2048]:
                pipe.set(k, "v-" + k)
            assert all(pipe.execute()), "every SET acknowledged"
        for i in range(0, len(keys), 2048):
            pipe = rc.pipeline()
            for k in keys[i:i + 2048]:
                pipe.get(k)
            got = pipe.execute()
            bad = [(k, v) for k, v in zip(keys[i:i + 2048], got) if v != ("v-" + k).encode()]
            assert not bad, "%d keys read back wrong, e.g. %r" % (len(bad), bad[:3])
        # Every connection the client opened went to a proxy.
        used = {n.port for n in rc.get_nodes()}
        assert used <= cluster.proxy_ports(), used
    finally:
        rc.close()
    total = 0
    for p in cluster.primaries():
        with p.direct() as d:
            total += d.call("DBSIZE")
    assert total >= cluster_util.CLUSTER_SLOTS


def test_write_is_in_its_nodes_proxy_log(cluster, keys):
    """A write acknowledged through the owner's proxy is in that proxy's log
    (and, replicated, in its replica's proxy's log); the proxy's fsynced
    offset covers it; no other primary's proxy logged it."""
    slot = 4242
    owner = cluster.owner(slot)
    marker = "logged-%s" % keys[slot]
    before = owner.metric("durable_proxy_offset_fsynced_bytes")
    with owner.conn() as c:
        assert c.call("SET", keys[slot], marker) == "OK"
    # durability always: the reply came after the fsync, so the log has it now,
    # below the fsynced offset the proxy reports.
    first, stream = harness.read_log_stream(owner.proxy.log_dir)
    at = stream.find(marker.encode())
    assert at >= 0, "the owner's proxy log holds the acknowledged write"
    fsynced = owner.metric("durable_proxy_offset_fsynced_bytes")
    assert before < fsynced and first + at + len(marker) <= fsynced, (before, first + at, fsynced)
    owner_id = owner.node_id()
    for n in cluster.nodes:
        if n is owner:
            continue
        if cluster.primary_id(n) == owner_id:
            harness.wait_until(lambda: marker.encode() in harness.read_log_stream(n.proxy.log_dir)[1], 10,
                               "node %d (the owner's replica) to have its proxy log the replicated write"
                               % n.index)
        else:
            _, other = harness.read_log_stream(n.proxy.log_dir)
            assert marker.encode() not in other, "node %d's proxy logged another shard's write" % n.index


def test_proxy_killed_and_restarted_serves_every_acknowledged_write(cluster, keys):
    """kill -9 one primary's proxy, start it again on the same log: it
    becomes ready, the cluster client goes on, every acknowledged write is
    there."""
    victim = cluster.owner(0)
    acked = {}
    rc = redis_cluster_client(cluster.nodes[2] if cluster.nodes[2] is not victim else cluster.nodes[3])
    try:
        pipe = rc.pipeline()
        for s in range(0, cluster_util.CLUSTER_SLOTS, 7):
            acked[keys[s]] = "before-%d" % s
            pipe.set(keys[s], acked[keys[s]])
        assert all(pipe.execute())
        cluster.kill_proxy(victim)
        harness.wait_until(lambda: victim.proxy.readyz() == 200, 30, "the restarted proxy to be ready")
        pipe = rc.pipeline()
        for s in range(3, cluster_util.CLUSTER_SLOTS, 7):
            acked[keys[s]] = "after-%d" % s
            pipe.set(keys[s], acked[keys[s]])
        assert all(pipe.execute())
    finally:
        rc.close()
    rc = redis_cluster_client(victim)
    try:
        names = list(acked)
        pipe = rc.pipeline()
        for k in names:
            pipe.get(k)
        got = pipe.execute()
    finally:
        rc.close()
    lost = [k for k, v in zip(names, got) if v != acked[k].encode()]
    assert not lost, "%d acknowledged writes missing after the proxy restart, e.g. %r" % (len(lost), lost[:3])
    # The restarted proxy logged the writes made through it after the restart.
    _, stream = harness.read_log_stream(victim.proxy.log_dir)
    assert b"after-3" in stream, "the restarted proxy's log holds slot 3's write"


def test_ask_during_a_migration_names_the_target_proxy_and_asking_passes(cluster, keys):
    """A slot MIGRATING from one primary to another: a missing key gets ASK
    with the target's proxy; ASKING through that proxy lets the command run
    there; valkey-cli -c follows the ASK by itself."""
    slot = 100
    src = cluster.owner(slot)
    dst = next(p for p in cluster.primaries() if p is not src)
    key = "{%s}ask" % keys[slot]  # the hash tag puts it in `slot`
    with dst.direct() as d:
        assert d.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src.node_id()) == "OK"
    with src.direct() as d:
        assert d.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.node_id()) == "OK"
    try:
        with src.conn() as c:
            reply = c.call("GET", key)
        assert isinstance(reply, harness.Error) and reply == "ASK %d 127.0.0.1:%d" % (slot, dst.proxy.port), reply
        with dst.conn() as c:
            assert str(c.call("SET", key, "x")).startswith("MOVED %d 127.0.0.1:%d" % (slot, src.proxy.port))
            assert c.call("ASKING") == "OK"
            assert c.call("SET", key, "asked") == "OK"
        _, stream = harness.read_log_stream(dst.proxy.log_dir)
        assert b"asked" in stream, "the write after ASKING is in the target's proxy log"
        res = cluster.cli(src, ["GET", key])
        assert res.stdout.strip() == b"asked", (res.stdout, res.stderr)
        with dst.conn() as c:
            assert c.call("ASKING") == "OK"
            assert c.call("DEL", key) == 1
    finally:
        for n in (src, dst):
            with n.direct() as d:
                d.call("CLUSTER", "SETSLOT", slot, "STABLE")


def test_readonly_reads_through_a_replicas_proxy(cluster, keys):
    """READONLY through a replica node's proxy: its reads are served there
    (before it, MOVED to the primary's proxy)."""
    slot = 200
    owner = cluster.owner(slot)
    owner_id = owner.node_id()
    replica = next(n for n in cluster.nodes if cluster.primary_id(n) == owner_id)
    with owner.conn() as c:
        assert c.call("SET", keys[slot], "read-on-replica") == "OK"
    with replica.conn() as c:
        assert c.call("GET", keys[slot]) == "MOVED %d 127.0.0.1:%d" % (slot, owner.proxy.port)
        assert c.call("READONLY") == "OK"
        harness.wait_until(lambda: c.call("GET", keys[slot]) == b"read-on-replica", 10,
                           "the replica's proxy to serve the replicated write after READONLY",
                           state=lambda: c.call("GET", keys[slot]))
