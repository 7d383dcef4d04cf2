"""Cluster clients of another ecosystem through the proxies: ioredis's
Redis.Cluster (RESP2) and valkey-glide's GlideClusterClient (RESP3, a
native core of its own), each started at one proxy of a ValkeyCluster
(cluster_util.py), must work exactly as against the nodes themselves and
never reach a node's own port.

The clients run tests/clients/cluster_clients.js (its header lists the
workload and the report) under tests/tools/libconnectlog.c, which records
every connect() of the process, node's and glide's native threads alike.
The packages are the ones pinned in tests/clients/package-lock.json,
installed by tests/clients/setup.sh.  Without node or the packages the tests
skip, unless DP_REQUIRE_NODE_CLIENTS is set (tests/run-all.sh sets it): then
they fail, naming the setup step."""
import json
import os
import shutil
import subprocess

import pytest

import harness
import cluster_util

pytestmark = [pytest.mark.proxy_only,
              pytest.mark.skipif(harness.server_version()[0] != "valkey",
                                 reason="cluster suite: Valkey only (%s)" % harness.server_label())]

CLIENTS_DIR = os.path.join(harness.REPO, "tests", "clients")
SCRIPT = os.path.join(CLIENTS_DIR, "cluster_clients.js")
PACKAGES = {"ioredis": "ioredis", "glide": "@valkey/valkey-glide"}
KEYS = 2000


# ------------------------------------------------------------ the clients
def pinned_version(client):
    with open(os.path.join(CLIENTS_DIR, "package.json")) as f:
        return json.load(f)["dependencies"][PACKAGES[client]]


def installed_version(client):
    """The version in node_modules, or None when the package is missing."""
    path = os.path.join(CLIENTS_DIR, "node_modules", PACKAGES[client], "package.json")
    try:
        with open(path) as f:
            return json.load(f)["version"]
    except OSError:
        return None


def require_client(client):
    """The installed version of the client's package; skips (or fails, with
    DP_REQUIRE_NODE_CLIENTS set) when node or the package is missing."""
    problem = None
    if not shutil.which("node"):
        problem = "node is not on PATH"
    elif installed_version(client) is None:
        problem = "%s is not installed in %s/node_modules" % (PACKAGES[client], CLIENTS_DIR)
    if problem:
        why = "%s (tests/clients/setup.sh installs nodejs and runs npm ci in tests/clients)" % problem
        if os.environ.get("DP_REQUIRE_NODE_CLIENTS"):
            pytest.fail("DP_REQUIRE_NODE_CLIENTS is set but " + why)
        pytest.skip(why)
    return installed_version(client)


def connect_shim(tmpdir):
    """libconnectlog.so: logs the port of every connect() (tests/tools)."""
    return harness.preload_shim("connectlog", tmpdir)


class Run:
    """One run of cluster_clients.js: its report and the ports it connect()ed to."""

    def __init__(self, client, seeds, tmpdir, tag, keys=KEYS):
        log = os.path.join(str(tmpdir), "connects-%s-%s.log" % (client, tag))
        env = dict(os.environ, LD_PRELOAD=connect_shim(tmpdir), DP_CONNECT_LOG=log)
        cmd = ["node", SCRIPT, "--client", client, "--seed", ",".join(str(p) for p in seeds),
               "--keys", str(keys), "--tag", tag, "--timeout-ms", str(int(harness.scaled(60) * 1000))]
        try:
            res = subprocess.run(cmd, cwd=CLIENTS_DIR, env=env, capture_output=True,
                                 timeout=harness.scaled(90))
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%s ran past %.0f s (its own deadline is 60 s scaled)\nstdout: %s"
                                 % (" ".join(cmd), harness.scaled(90),
                                    (e.stdout or b"")[-3000:].decode(errors="replace"))) from e
        out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if not lines:
            raise AssertionError("%s printed no JSON report (exit %d)\nstdout: %s\nstderr: %s"
                                 % (" ".join(cmd), res.returncode, out[-3000:], err[-3000:]))
        self.report = json.loads(lines[-1])
        assert res.returncode == 0 and not self.report["fatal"], (
            "%s: exit %d, %s\nstderr: %s" % (client, res.returncode, self.report["fatal"], err[-3000:]))
        self.connects = []
        if os.path.exists(log):
            with open(log) as f:
                self.connects = [int(l.split(" ")[0]) for l in f if l.strip()]
        assert self.connects, "%s: libconnectlog recorded no connect() (%s)" % (client, log)


def address_problems(run, cluster):
    """Every way the run reached something other than a proxy: [] when the
    client only ever saw and used proxies."""
    proxies, nodes = cluster.proxy_ports(), cluster.node_ports()
    r = run.report
    seen = {
        "connect() (libconnectlog)": set(run.connects),
        "sockets held (/proc)": set(r["socket_ports"]),
        "nodes the client lists": set(r["client_nodes"]),
        "CLUSTER SLOTS": set(r["topology"]["slots_ports"]),
        "CLUSTER SHARDS": set(r["topology"]["shards_ports"]),
    }
    problems = []
    for what, ports in seen.items():
        if ports & nodes:
            problems.append("%s names node ports %s" % (what, sorted(ports & nodes)))
        if ports - proxies - nodes:
            problems.append("%s names ports of neither %s" % (what, sorted(ports - proxies - nodes)))
    return problems


# ------------------------------------------------------------ fixtures
def slots_listed(cluster):
    """{proxy port: the ports CLUSTER SLOTS through that proxy names}."""
    out = {}
    for n in cluster.nodes:
        with n.conn() as c:
            out[n.proxy.port] = sorted(cluster_util.slots_ports(c.call("CLUSTER", "SLOTS")))
    return out


def wait_replicas_in_slots(cluster):
    """CLUSTER SLOTS names a replica only once the offset it gossips is not
    0 (isNodeAvailable, 8.0.1 cluster.c:1334), which after creation takes a
    write on its primary: one write per primary, then every proxy's CLUSTER
    SLOTS names all the proxies, so each client sees the whole topology."""
    keys = cluster_util.key_per_slot()
    for p in cluster.primaries():
        with p.direct() as d:
            start = next(int(e[0]) for e in d.call("CLUSTER", "SLOTS") if int(e[2][1]) == p.proxy.port)
        with p.conn() as c:
            reply = c.call("SET", keys[start], "first write")
            assert reply == "OK", "node %d's first write through its proxy: %r" % (p.index, reply)
    want = sorted(cluster.proxy_ports())
    harness.wait_until(lambda: all(v == want for v in slots_listed(cluster).values()), 30,
                       "every proxy's CLUSTER SLOTS to name all %d proxies %s (replicas included)"
                       % (len(want), want), state=lambda: slots_listed(cluster))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    for client in PACKAGES:  # before the cluster: npm ci installs all or none
        require_client(client)
    c = cluster_util.ValkeyCluster(tmp_path_factory.mktemp("cluster"))
    try:
        wait_replicas_in_slots(c)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def moved_count(node):
    """How many MOVED errors the node has answered (INFO errorstats)."""
    with node.direct() as d:
        stat = harness.info_fields(d, "errorstats").get("errorstat_MOVED", "count=0")
    return int(stat.split(",")[0].split("=")[1])


def calls(nodes, command):
    """How many times the nodes have run `command` (INFO commandstats), summed."""
    total = 0
    for n in nodes:
        with n.direct() as d:
            stat = harness.info_fields(d, "commandstats").get("cmdstat_" + command, "calls=0")
        total += int(stat.split(",")[0].split("=")[1])
    return total


# ------------------------------------------------------------ tests
# ioredis starts at a primary's proxy, glide at a replica's.
SEEDS = {"ioredis": 0, "glide": -1}


@pytest.mark.parametrize("client", ["ioredis", "glide"])
def test_cluster_client_through_one_proxy(cluster, tmp_path, client):
    """The client, given one proxy as its seed, discovers proxies only,
    connects to proxies only, writes one key per slot range and 2000 keys
    over all slots, all acknowledged and read back; a MULTI on one hash tag,
    a command sent to the wrong primary (MOVED, naming the owner's proxy)
    and reads from replicas (READONLY) work as against the nodes."""
    version = require_client(client)
    seed = cluster.nodes[SEEDS[client]]
    print("client %s %s (pinned %s), node %s; server %s; seed proxy :%d (node %d, %s)"
          % (client, version, pinned_version(client), subprocess.run(["node", "--version"],
             capture_output=True, text=True).stdout.strip(), harness.server_label(),
             seed.proxy.port, seed.index, seed.role()))
    assert version == pinned_version(client), (
        "node_modules has %s %s, package.json pins %s: run npm ci in tests/clients"
        % (PACKAGES[client], version, pinned_version(client)))
    primaries = cluster.primaries()
    replicas = [n for n in cluster.nodes if n not in primaries]
    moved_before = {n.index: moved_count(n) for n in primaries}
    replica_before = (calls(replicas, "readonly"), calls(replicas, "get"))

    run = Run(client, [seed.proxy.port], tmp_path, "main-%d" % seed.proxy.port)
    r = run.report
    print("report: connect() to %s; sockets %s; client lists %s; CLUSTER SLOTS %s; SHARDS %s; "
          "keys %s; steps (ms) %s" % (sorted(set(run.connects)), r["socket_ports"], r["client_nodes"],
                                     r["topology"]["slots_ports"], r["topology"]["shards_ports"],
                                     {k: v for k, v in r["keys"].items() if k != "examples"}, r["step_ms"]))
    print("node ports (never to be used): %s; proxy ports: %s"
          % (sorted(cluster.node_ports()), sorted(cluster.proxy_ports())))
    assert r["version"] == version

    # Addressing: proxies only, and all of them that matter.
    assert address_problems(run, cluster) == []
    primary_proxies = {n.proxy.port for n in primaries}
    assert seed.proxy.port in run.connects, "the client started at its seed"
    assert primary_proxies <= set(run.connects), "the client reached every primary's proxy"
    assert primary_proxies <= set(r["client_nodes"])
    assert set(r["topology"]["shards_ports"]) == cluster.proxy_ports()
    assert set(r["topology"]["slots_ports"]) == cluster.proxy_ports(), "replicas included (fixture)"
    assert sum(s["end"] - s["start"] + 1 for s in r["topology"]["slots"]) == cluster_util.CLUSTER_SLOTS

    # Every primary's range, each key on its owner's node.
    assert {e["owner_port"] for e in r["ranges"]} == primary_proxies, r["ranges"]
    assert all(e["ok"] for e in r["ranges"]), r["ranges"]
    for e in r["ranges"]:
        with cluster.node_by_proxy_port(e["owner_port"]).direct() as d:
            assert d.call("GET", e["key"]) == e["get"].encode(), (
                "range %d-%d: the key is on the node behind %d" % (e["start"], e["end"], e["owner_port"]))

    # All acknowledged writes read back.
    k = r["keys"]
    assert (k["written"], k["acknowledged"], k["read"], k["mismatched"]) == (KEYS, KEYS, KEYS, 0), k
    assert set(k["nodes"]) == primary_proxies, "the keys spread over every primary"

    # MULTI/EXEC on one slot.
    t = r["transaction"]
    assert t["result"] == ["OK", 1, "OK", "a"] and t["read_back"] == ["a", "1", "c"], t
    if client == "glide":
        assert r["batch"] == {"keys": 200, "ok": 200, "mismatched": 0, "examples": []}, r["batch"]

    # MOVED: the wrong primary answered it, naming the owner's proxy, and
    # the client followed it to the proxy.
    m = r["moved"]
    wrong = cluster.node_by_proxy_port(m["wrong_port"])
    moved = moved_count(wrong) - moved_before[wrong.index]
    print("moved: slot %d owned by :%d, sent to :%d: %s; the wrong node answered %d MOVED"
          % (m["slot"], m["owner_port"], m["wrong_port"], m["probe"], moved))
    assert m["owner_port"] in primary_proxies and m["wrong_port"] in primary_proxies
    if client == "ioredis":
        # The node's own connection hands the error back; then the cluster
        # client, its slot cache pointed at the wrong node, follows one.
        assert m["probe"] == "MOVED %d 127.0.0.1:%d" % (m["slot"], m["owner_port"]), m
        # The owner first; a slots refresh the MOVED started may have added
        # the slot's replica after it.
        assert m["slot_cache_after"][0] == "127.0.0.1:%d" % m["owner_port"], m
        assert moved >= 2, "both commands went to the wrong node first"
    else:
        # glide's core follows a MOVED even for a command routed by address.
        assert m["probe"] == 'reply "OK"', m
        assert moved >= 1, "the routed SET went to the wrong node first"
    assert m["set_through_cluster"] == "OK" and m["read_back"] == "moved-main-%d" % seed.proxy.port, m

    # Replica reads: READONLY and the GETs reached the replica nodes through
    # their proxies, and the keys had replicated.
    rr = r["replica_reads"]
    readonly, gets = (calls(replicas, "readonly") - replica_before[0], calls(replicas, "get") - replica_before[1])
    print("replica reads: %s; the replica nodes ran READONLY %d times, GET %d times" % (rr, readonly, gets))
    assert rr["ok"] == rr["keys"] == len(r["ranges"]), rr
    assert readonly >= 1 and gets >= rr["keys"], (readonly, gets)
    assert r["redirections"] == [] and r["errors"] == [], (r["redirections"], r["errors"])


@pytest.mark.parametrize("client", ["ioredis", "glide"])
def test_a_client_seeded_at_a_node_port_is_caught(cluster, tmp_path, client):
    """The check above can fail: the same client given a node's own port as
    seed works (the node announces proxies, so it moves on to them), and the
    connect log shows the node port it used."""
    version = require_client(client)
    node = cluster.nodes[0]
    print("client %s %s; server %s; seed: node %d's own port %d"
          % (client, version, harness.server_label(), node.index, node.server.port))
    run = Run(client, [node.server.port], tmp_path, "direct-%d" % node.server.port, keys=50)
    problems = address_problems(run, cluster)
    print("caught: %s" % problems)
    assert any(p.startswith("connect() (libconnectlog) names node ports [%d]" % node.server.port)
               for p in problems), problems
    assert run.report["keys"]["mismatched"] == 0 and run.report["keys"]["read"] == 50
