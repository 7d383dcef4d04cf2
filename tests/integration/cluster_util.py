"""A Valkey Cluster on loopback with a durable-proxy beside every node.

    clients ──▶ proxy-i ──▶ node-i        (one pair per node, i = 0..N-1)

Addressing (proxy/upstream/COMPATIBILITY.md §6): each node announces its
proxy's port with `cluster-announce-port <proxy>` (8.x and 9.x), so CLUSTER
SLOTS / SHARDS / NODES and MOVED / ASK name proxies and a cluster client that
starts at any proxy only ever talks to proxies.  The node's one announced
port is the proxy's, so a replica node reaches its primary through the
primary's proxy (SYNC/PSYNC there turns into a raw pipe:
durability.allow_replica_sync).  The bus port is set with `cluster-port`
(announced as is) so it never follows the proxy's.  9.x's
`cluster-announce-client-port` (mode="client-port") is kept for comparison
only: a 9.1.2 node names a restarted peer's own port in CLUSTER SLOTS for a
moment (COMPATIBILITY.md §6), which sends clients past the proxy.

The cluster is created by `valkey-cli --cluster create` against the nodes
themselves: CLUSTER REPLICATE, which creation sends, is refused through a
proxy (it changes a node's history outside the stream the proxy logs).
"""
import os
import sys

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "crash"))
from cluster import kill9, respawn_proxy  # noqa: E402  (tests/crash/cluster.py)

CLUSTER_SLOTS = 16384

# Config the cluster's proxies run with: the replica nodes of Valkey 8.x
# replicate through their primary's proxy.
PROXY_CONFIG = "durability:\n  allow_replica_sync: true\n"


def server_major(binary):
    return int(harness.server_version(binary)[1].split(".")[0])


def announce_mode(binary):
    """"port" on every version (see the module comment); DP_CLUSTER_ANNOUNCE=
    client-port (9.x only) runs the suites the other way, for comparison."""
    mode = os.environ.get("DP_CLUSTER_ANNOUNCE", "port")
    if mode not in ("port", "client-port") or (mode == "client-port" and server_major(binary) < 9):
        raise ValueError("DP_CLUSTER_ANNOUNCE=%s: 'port', or 'client-port' on Valkey 9.x" % mode)
    return mode


def cli_binary(server_binary):
    """The valkey-cli installed beside the server binary (else on PATH)."""
    beside = os.path.join(os.path.dirname(os.path.abspath(server_binary)), "valkey-cli")
    if os.path.dirname(server_binary) and os.access(beside, os.X_OK):
        return beside
    return "valkey-cli"


def parse_nodes(text):
    """CLUSTER NODES as a list of dicts: id, host, port, bus_port, flags,
    primary (id or "-"), link, slots (list of "a-b" / "n" strings)."""
    out = []
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) < 8:
            continue
        addr = f[1].split(",")[0]
        hostport, _, bus = addr.partition("@")
        host, _, port = hostport.rpartition(":")
        out.append({"id": f[0], "host": host, "port": int(port), "bus_port": int(bus or 0),
                    "flags": f[2].split(","), "primary": f[3], "link": f[7],
                    "slots": [s for s in f[8:] if not s.startswith("[")]})
    return out


def slots_ports(reply):
    """Every port named in a CLUSTER SLOTS reply."""
    return {int(n[1]) for entry in reply for n in entry[2:]}


def shards_ports(reply):
    """Every port named in a CLUSTER SHARDS reply (RESP2: flat field lists)."""
    ports = set()
    for shard in reply:
        fields = dict(zip(shard[::2], shard[1::2]))
        for node in fields[b"nodes"]:
            nf = dict(zip(node[::2], node[1::2]))
            if b"port" in nf:
                ports.add(int(nf[b"port"]))
    return ports


class Node:
    """One cluster node and the proxy beside it."""

    def __init__(self, index, server, proxy, bus_port):
        self.index = index
        self.server = server
        self.proxy = proxy
        self.bus_port = bus_port

    def direct(self):
        return harness.RespConn(self.server.addr)

    def conn(self, **kw):
        return harness.RespConn(self.proxy.addr, **kw)

    def node_id(self):
        with self.direct() as c:
            return bytes(c.call("CLUSTER", "MYID")).decode()

    def role(self):
        with self.direct() as c:
            return harness.info_fields(c, "replication").get("role")

    def metric(self, name):
        """A metric of this node's proxy (the value of its unlabelled line)."""
        code, body = self.proxy.admin_get("/metrics")
        if code != 200:
            raise AssertionError("proxy %d /metrics answered %d" % (self.proxy.port, code))
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split(" ")[1])
        raise AssertionError("proxy %d /metrics has no %s" % (self.proxy.port, name))


class ValkeyCluster:
    """`primaries` primaries with `replicas` replicas each; node i's proxy is
    nodes[i].proxy.  The creation order (nodes, proxies, announce, create)
    is what a deployment does: every sidecar is up before the cluster forms."""

    def __init__(self, tmpdir, primaries=3, replicas=1, binary=None, durability="always",
                 mode=None, node_timeout_ms=5000, proxy_port_base=None, server_args=(), proxy_config=""):
        """proxy_port_base: node i's proxy listens on base + i and its admin
        endpoints on base + 2000 + i (default: free ports); server_args:
        more arguments for every node (e.g. --enable-debug-command local,
        which a proxy's restore of its node needs); proxy_config: more YAML
        for every proxy's config (top-level keys other than durability)."""
        self.tmpdir = str(tmpdir)
        self.proxy_port_base = proxy_port_base
        self.binary = binary or harness.SERVER_BIN
        self.mode = mode or announce_mode(self.binary)
        self.replicas = replicas
        self.server_args = list(server_args)
        self.proxy_config = PROXY_CONFIG + proxy_config
        self.nodes = []
        try:
            for i in range((1 + replicas) * primaries):
                self.nodes.append(self._start_node(i, durability, node_timeout_ms))
            self._create()
            self.wait_formed()
        except Exception as e:
            # The processes' output is the diagnosis: keep it in the error
            # (stop() takes them out of harness.LIVE, whose output a failed
            # test prints).
            logs = "\n".join(p.describe()[-2500:] for n in self.nodes for p in (n.server, n.proxy))
            self.stop()
            raise AssertionError("cluster not formed: %s\n%s" % (e, logs)) from e

    # ------------------------------------------------------------ building
    def announce_args(self, node):
        """The node's announce settings (as CONFIG SET pairs)."""
        key = "cluster-announce-client-port" if self.mode == "client-port" else "cluster-announce-port"
        return [key, str(node.proxy.port)]

    def _start_server(self, i, node_timeout_ms):
        """A cluster-enabled node; returns (server, bus port).  The node
        binds the bus after its client port and exits if the bus port was
        taken meanwhile (a free_port() race with a parallel test): its first
        answer proves both are bound, else it is tried again on new ports."""
        for _ in range(3):
            bus = harness.free_port()
            server = harness.Server(self.tmpdir, ["--cluster-enabled", "yes",
                                                  "--cluster-port", str(bus),
                                                  "--cluster-node-timeout", str(node_timeout_ms),
                                                  # deploy/valkey.conf: a replica's sync file is not
                                                  # left to be loaded at its next start
                                                  "--rdb-del-sync-files", "yes"]
                                    + self.server_args,
                                    name="node%d" % i, binary=self.binary)
            try:
                with harness.RespConn(server.addr) as c:
                    if c.call("PING") == "PONG":
                        return server, bus
            except (OSError, harness.Closed):
                pass
            server.stop()
        raise AssertionError("node %d did not start with a cluster bus:\n%s" % (i, server.describe()))

    def _start_node(self, i, durability, node_timeout_ms):
        server, bus = self._start_server(i, node_timeout_ms)
        try:
            base = self.proxy_port_base
            proxy = harness.Proxy(self.tmpdir, server.port, durability, config_text=self.proxy_config,
                                  port=base and base + i, admin_port=base and base + 2000 + i)
        except Exception:
            server.stop()
            raise
        node = Node(i, server, proxy, bus)
        # Set at run time (the proxy's port is known only now); a restarted
        # node gets the same pair on its command line (restart_node).
        with node.direct() as c:
            reply = c.call("CONFIG", "SET", *self.announce_args(node))
            if reply != "OK":
                raise AssertionError("node %d: CONFIG SET %s answered %r"
                                     % (i, " ".join(self.announce_args(node)), reply))
        return node

    def _create(self):
        args = [cli_binary(self.binary), "--cluster", "create"] + \
            ["127.0.0.1:%d" % n.server.port for n in self.nodes] + \
            ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        res = harness.subprocess.run(args, capture_output=True, timeout=harness.scaled(120))
        if res.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), res.returncode,
                                                              res.stdout.decode(), res.stderr.decode()))
        self.create_output = res.stdout.decode()

    # ------------------------------------------------------------ waiting
    def state(self):
        """What each node says of the cluster: (state, known nodes, role,
        primary link status, proxy /readyz)."""
        out = []
        for n in self.nodes:
            try:
                with n.direct() as c:
                    ci = dict(l.split(":", 1) for l in bytes(c.call("CLUSTER", "INFO")).decode().split("\r\n")
                              if ":" in l)
                    repl = harness.info_fields(c, "replication")
                out.append((ci.get("cluster_state"), ci.get("cluster_known_nodes"), repl.get("role"),
                            repl.get("master_link_status", "-"), n.proxy.readyz()))
            except (OSError, harness.Closed) as e:
                out.append(("unreachable: %s" % e,))
        return out

    def formed(self):
        want_nodes = str(len(self.nodes))
        states = self.state()
        for s in states:
            if len(s) < 5 or s[0] != "ok" or s[1] != want_nodes or s[4] != 200:
                return False
            if s[2] == "slave" and s[3] != "up":
                return False
        roles = [s[2] for s in states]
        return roles.count("slave") == len(self.nodes) - len(self.nodes) // (1 + self.replicas)

    def wait_formed(self, timeout=60):
        harness.wait_until(self.formed, timeout,
                           "cluster of %d nodes formed (state ok everywhere, replicas' links up, proxies ready)"
                           % len(self.nodes), interval=0.1, state=self.state)

    # ------------------------------------------------------------ views
    def primaries(self):
        return [n for n in self.nodes if n.role() == "master"]

    def primary_id(self, node):
        """The id of node's primary ("-" for a primary), from its own view."""
        with node.direct() as c:
            listed = parse_nodes(bytes(c.call("CLUSTER", "NODES")).decode())
        return next(x for x in listed if "myself" in x["flags"])["primary"]

    def proxy_ports(self):
        return {n.proxy.port for n in self.nodes}

    def node_ports(self):
        return {n.server.port for n in self.nodes}

    def node_by_proxy_port(self, port):
        return next(n for n in self.nodes if n.proxy.port == port)

    def owner(self, slot):
        """The node whose primary serves `slot` (from node 0's own view)."""
        with self.nodes[0].direct() as c:
            for entry in c.call("CLUSTER", "SLOTS"):
                if entry[0] <= slot <= entry[1]:
                    return self.node_by_proxy_port(int(entry[2][1]))
        raise AssertionError("slot %d is served by no node" % slot)

    def cli(self, node, args, timeout=30):
        """valkey-cli -c at node's proxy: follows MOVED / ASK itself."""
        cmd = [cli_binary(self.binary), "-c", "-h", "127.0.0.1", "-p", str(node.proxy.port)] + list(args)
        return harness.subprocess.run(cmd, capture_output=True, timeout=harness.scaled(timeout))

    # ------------------------------------------------------------ faults
    def kill_node(self, node):
        """kill -9 node's server (persistence off: its data is gone; its
        nodes.conf, in its own directory, stays)."""
        kill9(node.server)

    def start_node(self, node):
        """Start a killed node again on its port and directory, announcing
        its proxy as before (on its command line this time: the CONFIG SET
        of its first start was not saved)."""
        args = ["--" + self.announce_args(node)[0], self.announce_args(node)[1]]
        if args[0] not in node.server.extra_args:
            node.server.extra_args.extend(args)
        node.server.start(port=node.server.port)

    def kill_proxy(self, node, wait_ready=True):
        """kill -9 node's proxy and start it again on the same ports and log."""
        kill9(node.proxy)
        respawn_proxy(node.proxy, wait_ready=wait_ready, timeout=harness.scaled(60))

    def stop(self):
        for n in self.nodes:
            n.proxy.stop()
        for n in self.nodes:
            n.server.stop()


def key_per_slot():
    """One key for every hash slot: keys[slot] hashes to slot."""
    from redis.crc import key_slot
    keys = [None] * CLUSTER_SLOTS
    left, i = CLUSTER_SLOTS, 0
    while left:
        k = "k:%d" % i
        s = key_slot(k.encode())
        if keys[s] is None:
            keys[s] = k
            left -= 1
        i += 1
    return keys


def main(argv):
    """deploy/cluster/local.sh: a local cluster with its proxies until ^C."""
    import argparse
    import signal
    import tempfile
    ap = argparse.ArgumentParser(description="A local Valkey Cluster with a durable-proxy beside each node.")
    ap.add_argument("--server", default=harness.SERVER_BIN, help="valkey-server binary (8.x or 9.x)")
    ap.add_argument("--proxy-port", type=int, default=7001,
                    help="node i's proxy listens on this + i, its admin endpoints on this + 2000 + i")
    ap.add_argument("--primaries", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=1, help="replicas per primary")
    ap.add_argument("--dir", help="where nodes, proxies and logs live (default: a new temp dir)")
    args = ap.parse_args(argv)
    workdir = args.dir or tempfile.mkdtemp(prefix="durable-proxy-cluster-")
    os.makedirs(workdir, exist_ok=True)
    c = ValkeyCluster(workdir, args.primaries, args.replicas, binary=args.server,
                      proxy_port_base=args.proxy_port)
    try:
        for n in c.nodes:
            print("node %d: %s, valkey :%d, proxy :%d, admin :%d, log %s" % (
                n.index, n.role(), n.server.port, n.proxy.port, n.proxy.admin_port, n.proxy.log_dir))
        print("addressing: cluster-announce-%s; data under %s" % (c.mode, workdir))
        print("connect: %s -c -p %d   (Ctrl-C stops everything)" % (cli_binary(c.binary), args.proxy_port))
        sys.stdout.flush()
        # Handlers, not a blocked mask: the children would inherit the mask
        # and ignore the SIGTERM that stops them.
        stopping = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.append(True))
        while not stopping:
            signal.pause()
    finally:
        c.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
