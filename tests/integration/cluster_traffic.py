"""Traffic over every hash slot of a ValkeyCluster, through its proxies,
that records exactly which writes were acknowledged.

Writers: each thread writes new keys (one SET per key, a value naming the
key), routes each by its slot to the owner's proxy (from CLUSTER SLOTS, read
through a proxy and read again after a MOVED or a failed connection), and
records a key as acknowledged only when the reply was +OK.  A write whose
reply never came (connection cut, proxy unready: -LOADING, node restarting:
-CLUSTERDOWN / -TRYAGAIN) is "unknown": it may or may not be there, never
counted.  One key is written once, so the check is simple and exact: every
acknowledged key holds its value.

Watchers: poll keys acknowledged before a fault through one proxy while
the fault lasts; a key read as missing or wrong there is a reply that
revealed data the proxy had not put back (the gate's promise), recorded
with when it was seen.

Faults (node killed and restarted empty, proxy killed, both, failover)
and the checks after each: fault_round(), check_round(), failover_round().

Used by tests/integration/test_cluster_crash.py and tests/crash/cluster_soak.py.
"""
import random
import threading
import time

import harness

TRANSIENT = ("LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY")


def key_slot(key):
    from redis.crc import key_slot as slot_of
    return slot_of(key.encode() if isinstance(key, str) else key)


class Routes:
    """slot -> proxy address, shared by the threads; refreshed from any
    proxy that answers CLUSTER SLOTS."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.table = [None] * 16384
        self.refreshes = 0
        self.refresh()

    def refresh(self):
        for n in self.cluster.nodes:
            try:
                with harness.RespConn(n.proxy.addr, timeout=2) as c:
                    slots = c.call("CLUSTER", "SLOTS")
            except (OSError, harness.Closed):
                continue
            if isinstance(slots, harness.Error) or not slots:
                continue
            with self.lock:
                for entry in slots:
                    for s in range(entry[0], entry[1] + 1):
                        self.table[s] = ("127.0.0.1", int(entry[2][1]))
                self.refreshes += 1
            return True
        return False

    def moved(self, slot, hostport):
        host, _, port = hostport.rpartition(":")
        with self.lock:
            self.table[slot] = (host, int(port))

    def summary(self):
        """{proxy port: slots routed there} (for a timeout's report)."""
        with self.lock:
            out = {}
            for a in self.table:
                out[a and a[1]] = out.get(a and a[1], 0) + 1
            return out

    def get(self, slot):
        with self.lock:
            return self.table[slot]


class Traffic:
    """Writer threads over all slots (see the module comment)."""

    def __init__(self, cluster, threads=3, prefix="w", seed=None):
        self.cluster = cluster
        self.routes = Routes(cluster)
        self.proxy_ports = cluster.proxy_ports()
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.acked = {}             # key -> value, acknowledged (+OK)
        self.acked_at = {}          # key -> monotonic time of the +OK
        self.acked_via = {}         # key -> the proxy port that acknowledged it
        self.unknown = 0            # writes without an answer
        self.errors = {}            # first word of an error reply -> count
        self.moved = 0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.failures = []          # unexpected exceptions of a thread
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(harness.scaled(30))
        if self.failures:
            raise AssertionError("a writer thread failed: %s" % self.failures[0])

    def count(self):
        with self.lock:
            return len(self.acked)

    def acked_on(self, proxy_port):
        """Acknowledged keys whose slot that proxy serves now."""
        with self.lock:
            items = list(self.acked.items())
        return {k: v for k, v in items if self.routes.get(key_slot(k))[1] == proxy_port}

    def wait_acked(self, more, timeout, what, on_port=None):
        """Until `more` more writes were acknowledged (on one proxy's slots
        when on_port is given): traffic observed to flow, not slept for."""
        def n():
            if on_port is None:
                return self.count()
            return len(self.acked_on(on_port))
        start = n()
        harness.wait_until(lambda: n() >= start + more, timeout, "%d more acknowledged writes (%s)" % (more, what),
                           interval=0.05, state=lambda: (n() - start, dict(self.errors), self.routes.summary()))

    def _note(self, word):
        with self.lock:
            self.errors[word] = self.errors.get(word, 0) + 1

    def _run(self, index):
        conns = {}
        n = 0
        try:
            while not self.stop_flag.is_set():
                key = "%s%d:%d" % (self.prefix, index, n)
                n += 1
                value = "v-" + key
                slot = key_slot(key)
                addr = self.routes.get(slot)
                conn = conns.get(addr)
                try:
                    if conn is None:
                        conn = conns[addr] = harness.RespConn(addr, timeout=harness.scaled(5))
                    reply = conn.call("SET", key, value)
                except (OSError, harness.Closed):
                    conns.pop(addr, None)
                    if conn is not None:
                        conn.close()
                    with self.lock:
                        self.unknown += 1
                    self._note("connection")
                    self.routes.refresh()
                    self.stop_flag.wait(0.01)  # retry pace while a node or proxy is down
                    continue
                if reply == "OK":
                    if addr[1] not in self.proxy_ports:
                        raise AssertionError("SET %s acknowledged by port %d, not a proxy's (%s)"
                                             % (key, addr[1], sorted(self.proxy_ports)))
                    with self.lock:
                        self.acked[key] = value
                        self.acked_at[key] = time.monotonic()
                        self.acked_via[key] = addr[1]
                    continue
                word = str(reply).split(" ", 1)[0]
                if str(reply).startswith("ERR durable-proxy: upstream") and "unreachable" in str(reply):
                    word = "upstream-unreachable"  # the proxy's own answer while its node is down
                self._note(word)
                self._note("%s@%d" % (word, addr[1]))
                if word == "MOVED":
                    with self.lock:
                        self.moved += 1
                    self.routes.moved(slot, str(reply).split(" ")[2])
                elif word not in TRANSIENT and word != "upstream-unreachable":
                    raise AssertionError("SET %s answered %r" % (key, reply))
                else:
                    self.stop_flag.wait(0.01)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.failures.append("%s: %r" % (type(e).__name__, e))
        finally:
            for c in conns.values():
                c.close()

    # ------------------------------------------------------------ checking
    def missing(self, keys=None):
        """Acknowledged keys that do not hold their value now, read through
        the proxies (pipelined, by owner): [(key, value read)]."""
        with self.lock:
            want = dict(self.acked) if keys is None else {k: self.acked[k] for k in keys}
        self.routes.refresh()
        by_addr = {}
        for k in want:
            by_addr.setdefault(self.routes.get(key_slot(k)), []).append(k)
        bad = []
        for addr, ks in by_addr.items():
            with harness.RespConn(addr, timeout=harness.scaled(10)) as c:
                for i in range(0, len(ks), 1000):
                    chunk = ks[i:i + 1000]
                    c.send(b"".join(harness.encode("GET", k) for k in chunk))
                    for k in chunk:
                        got = c.read_frame()[1]
                        if got != want[k].encode():
                            bad.append((k, got))
        return bad


class Watcher(threading.Thread):
    """Reads `keys` (acknowledged, with their values) through one proxy
    over and over until stopped; any reply that is data but not the key's
    value is a violation (a missing key reads as nil)."""

    def __init__(self, addr, keys):
        super().__init__(daemon=True)
        self.addr = addr
        self.keys = list(keys.items())
        self.violations = []
        self.replies = {}  # what kinds of answer were seen: "value", error word, "connection"
        self.stop_flag = threading.Event()

    def run(self):
        conn = None
        i = 0
        while not self.stop_flag.is_set():
            k, v = self.keys[i % len(self.keys)]
            i += 1
            try:
                if conn is None:
                    conn = harness.RespConn(self.addr, timeout=harness.scaled(5))
                got = conn.call("GET", k)
            except (OSError, harness.Closed):
                if conn is not None:
                    conn.close()
                conn = None
                self.replies["connection"] = self.replies.get("connection", 0) + 1
                self.stop_flag.wait(0.005)
                continue
            if isinstance(got, harness.Error):
                w = str(got).split(" ", 1)[0]
                self.replies[w] = self.replies.get(w, 0) + 1
                self.stop_flag.wait(0.002)  # poll pace while the proxy is unready
                continue
            self.replies["value"] = self.replies.get("value", 0) + 1
            if got != v.encode():
                self.violations.append((k, got, time.monotonic()))
        if conn is not None:
            conn.close()

    def finish(self):
        self.stop_flag.set()
        self.join(harness.scaled(30))
        return self.violations


class TopologyWatcher(threading.Thread):
    """Asks every live node (directly) for CLUSTER SLOTS and CLUSTER NODES
    over and over until stopped; records any reply that names a node's own
    port instead of its proxy's: a client refreshing its topology then
    would go past the proxy (COMPATIBILITY.md section 6)."""

    def __init__(self, cluster, skip=()):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.skip = set(id(n) for n in skip)
        self.own = cluster.node_ports()
        self.leaks = []
        self.polls = 0
        self.stop_flag = threading.Event()

    def run(self):
        import cluster_util
        while not self.stop_flag.is_set():
            for n in self.cluster.nodes:
                if id(n) in self.skip:
                    continue
                try:
                    with harness.RespConn(n.server.addr, timeout=2) as c:
                        slots = c.call("CLUSTER", "SLOTS")
                        nodes = c.call("CLUSTER", "NODES")
                except (OSError, harness.Closed):
                    continue
                named = set()
                if isinstance(slots, list):
                    named |= cluster_util.slots_ports(slots)
                if isinstance(nodes, bytes):
                    named |= {x["port"] for x in cluster_util.parse_nodes(nodes.decode())}
                bad = named & self.own
                if bad:
                    self.leaks.append((n.index, sorted(bad), time.monotonic()))
                self.polls += 1
            self.stop_flag.wait(0.005)

    def finish(self):
        self.stop_flag.set()
        self.join(harness.scaled(30))
        return self.leaks


class Poller(threading.Thread):
    """Calls read() over and over until stopped and keeps what it returned
    (an answer that is not an int, or a failed connection, is skipped)."""

    def __init__(self, read):
        super().__init__(daemon=True)
        self.read = read
        self.values = []
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                v = self.read()
            except (OSError, harness.Closed):
                v = None
            if isinstance(v, int):
                self.values.append(v)
            self.stop_flag.wait(0.005)

    def finish(self):
        self.stop_flag.set()
        self.join(harness.scaled(30))
        return self.values


# ---------------------------------------------------------------- faults
# The proxy's log line when it sends its node DEBUG LOADAOF: once a restore.
LOADAOF_SENT = ": DEBUG LOADAOF ("

def cluster_info(node):
    with node.direct() as d:
        text = bytes(d.call("CLUSTER", "INFO")).decode()
    return dict(l.split(":", 1) for l in text.split("\r\n") if ":" in l)


def replica_of(cluster, primary):
    pid = primary.node_id()
    return next(n for n in cluster.nodes if n is not primary and cluster.primary_id(n) == pid)


def dbsize(node):
    with node.direct() as d:
        return d.call("DBSIZE")


def wait_replicated(t, primary, replica, what):
    """Until the replica node holds the newest write acknowledged on the
    primary's slots (read directly, after READONLY): it replicates the
    primary's data again, whether or not traffic still runs."""
    mine = t.acked_on(primary.proxy.port)
    key = max(mine, key=lambda k: t.acked_at[k])

    def has():
        with replica.direct() as d:
            d.call("READONLY")
            return d.call("GET", key) == mine[key].encode()
    harness.wait_until(has, 60, "node %d (%s) to hold %s, acknowledged by node %d" % (replica.index, what, key,
                                                                                   primary.index))


def proxy_log(node, limit=4000):
    return open(node.proxy.log_path, errors="replace").read()[-limit:]


def _restart_node(cluster, victim):
    cluster.kill_node(victim)
    cluster.start_node(victim)


def _kill_proxy(cluster, victim):
    cluster.kill_proxy(victim, wait_ready=False)


def _kill_both(cluster, victim):
    from cluster_util import kill9, respawn_proxy
    kill9(victim.proxy)
    cluster.kill_node(victim)
    cluster.start_node(victim)
    respawn_proxy(victim.proxy, wait_ready=False)


# name -> fault(cluster, victim); the node comes back before its replica
# could take over (the cluster's node timeout is longer than a restore).
FAULTS = {"node-restart": _restart_node, "proxy-kill": _kill_proxy, "both-kill": _kill_both}


def fault_round(cluster, t, victim, tag, log=print):
    """Applies FAULTS[tag] to the primary `victim` while traffic t runs;
    waits until its proxy serves and its slots take writes again.  Checks,
    while the fault lasts: no reply through the victim's proxy revealed an
    acknowledged key missing or wrong; no node named a node's own port in
    CLUSTER SLOTS / NODES; the victim's replica kept its data (its SYNC
    through the unready proxy is refused); the other shards kept taking
    writes.  Returns the seconds until the victim's proxy was ready."""
    others = [p for p in cluster.primaries() if p is not victim]
    t.wait_acked(300, 30, "before the fault")
    before = t.acked_on(victim.proxy.port)
    assert before, "no acknowledged write on the victim's slots before the fault"
    watcher = Watcher(victim.proxy.addr, dict(list(before.items())[-300:]))
    topology = TopologyWatcher(cluster, skip=[victim])
    replica = replica_of(cluster, victim)
    replica_sizes = Poller(lambda: dbsize(replica))
    for th in (watcher, topology, replica_sizes):
        th.start()
    t0 = time.monotonic()
    try:
        FAULTS[tag](cluster, victim)
        during_other = {p.proxy.port: len(t.acked_on(p.proxy.port)) for p in others}
        harness.wait_until(lambda: victim.proxy.readyz() == 200, 90,
                           "node %d's proxy to be ready again after: %s" % (victim.index, tag),
                           state=lambda: proxy_log(victim, 2500))
        ready_s = time.monotonic() - t0
        harness.wait_until(lambda: cluster_info(victim).get("cluster_state") == "ok", 60,
                           "node %d's cluster state to be ok" % victim.index, state=lambda: cluster_info(victim))
        t.wait_acked(100, 60, "on the victim's slots after %s" % tag, on_port=victim.proxy.port)
        for p in others:
            assert len(t.acked_on(p.proxy.port)) > during_other[p.proxy.port], \
                "node %d's shard stopped taking writes during %s" % (p.index, tag)
    finally:
        violations = watcher.finish()
        leaks = topology.finish()
        sizes = replica_sizes.finish()
    log("%s on node %d (%s): ready after %.2f s; %d writes acknowledged, %d unanswered; errors %r; "
        "watcher saw %r; %d topology polls" % (tag, victim.index, harness.server_label(cluster.binary), ready_s,
                                                t.count(), t.unknown, t.errors, watcher.replies, topology.polls))
    assert not violations, ("a reply through node %d's proxy revealed a key missing or wrong before the restore "
                            "(%s): %r" % (victim.index, tag, violations[:5]))
    assert not leaks, ("a node named a node's own port (not its proxy's) in CLUSTER SLOTS/NODES during %s: %r"
                       % (tag, leaks[:5]))
    assert sizes and min(sizes) > 0, ("node %d (the victim's replica) held %s keys during %s"
                                      % (replica.index, min(sizes) if sizes else "no count of", tag))
    return ready_s


def check_round(cluster, t, victim, node_id):
    """After fault_round: every acknowledged write reads back, the victim is
    still the same primary, and its replica holds its keys again."""
    missing = t.missing()
    assert not missing, "%d of %d acknowledged writes missing, e.g. %r" % (len(missing), t.count(), missing[:5])
    assert victim.role() == "master" and victim.node_id() == node_id, \
        "node %d is no longer the same primary (no failover was due)" % victim.index
    wait_replicated(t, victim, replica_of(cluster, victim), "its replica")


def _write_big(t, victim, n):
    """n SETs of 64 KB values on the victim's slots through its proxy, each
    acknowledged and recorded in t.acked."""
    with harness.RespConn(victim.proxy.addr, timeout=harness.scaled(30)) as c:
        i = 0
        while n:
            key = "big:%d:%d" % (victim.index, i)
            i += 1
            if t.routes.get(key_slot(key)) != victim.proxy.addr:
                continue
            value = ("v-" + key + ":").ljust(64 << 10, "x")
            reply = c.call("SET", key, value)
            if reply != "OK":
                raise AssertionError("SET %s through node %d's proxy answered %r" % (key, victim.index, reply))
            with t.lock:
                t.acked[key] = value
                t.acked_at[key] = time.monotonic()
                t.acked_via[key] = victim.proxy.port
            n -= 1


def failover_round(cluster, t, victim, log=print, stall_replica=0):
    """kill -9 the primary `victim` and leave it down until its replica is
    promoted and takes writes; then start it again empty, and wait until
    it is the new primary's replica, its proxy following it.  Returns
    (lost, acknowledged on its slots before the kill, seconds to the
    promotion): lost are the acknowledged keys gone, every one checked to
    be in the old primary's proxy log (read before its restart), none
    acknowledged by another proxy.  The lost keys leave t.acked (they are
    counted, not checked again).

    stall_replica=N: the replica node is stopped (SIGSTOP), N writes of
    64 KB are acknowledged on the victim's slots, the victim is killed, and
    the replica continued (SIGCONT): a replica that lags by most of those
    writes when its primary dies, the loss the contract names, made
    certain."""
    import signal
    replica = replica_of(cluster, victim)
    t.wait_acked(300, 30, "before the failover")
    if stall_replica:
        replica.server.proc.send_signal(signal.SIGSTOP)
        try:
            # Bytes the stopped replica cannot take: past the loopback
            # socket buffers (a few MB), they stay in the primary's output
            # buffer, which dies with it.
            _write_big(t, victim, stall_replica)
            killed_at = time.monotonic()
            before = len(t.acked_on(victim.proxy.port))
            cluster.kill_node(victim)
        finally:
            replica.server.proc.send_signal(signal.SIGCONT)
    else:
        killed_at = time.monotonic()
        before = len(t.acked_on(victim.proxy.port))
        cluster.kill_node(victim)
    harness.wait_until(lambda: replica.role() == "master", 60,
                       "node %d (replica of the killed node %d) to be promoted" % (replica.index, victim.index),
                       state=lambda: cluster_info(replica))
    promoted_s = time.monotonic() - killed_at
    harness.wait_until(lambda: cluster_info(replica).get("cluster_state") == "ok", 60,
                       "the promoted node's cluster state to be ok", state=lambda: cluster_info(replica))
    t.wait_acked(200, 60, "on the promoted node's slots", on_port=replica.proxy.port)
    lost = [k for k, _ in t.missing()]
    with t.lock:
        want = {k: t.acked[k] for k in lost}
    _, stream = harness.read_log_stream(victim.proxy.log_dir)
    # The value as the stream holds it, length prefix included: "v-w1:1"
    # alone is also inside "v-w1:10".
    not_logged = [k for k in lost if b"\r\n" + harness.encode(k, want[k]).split(b"\r\n", 1)[1] not in stream]
    assert not not_logged, "lost writes that the old primary's proxy did not log: %r" % not_logged[:5]
    # (A write the old node ran before it died can be acknowledged by its
    # proxy after the kill, once fsynced: lost like the others.)
    late = [k for k in lost if t.acked_via[k] != victim.proxy.port]
    assert not late, "writes acknowledged by another proxy than the old primary's lost: %r" % [
        (k, t.acked_via[k], round(t.acked_at[k] - killed_at, 3)) for k in late[:5]]
    with t.lock:
        for k in lost:
            del t.acked[k]
    log("failover on %s: node %d killed, node %d promoted after %.2f s; lost %d of %d acknowledged writes on its "
        "slots (all in node %d's proxy log)" % (harness.server_label(cluster.binary), victim.index, replica.index,
                                                promoted_s, len(lost), before, victim.index))
    # The old node comes back empty: the new primary's replica now; its
    # proxy follows it (no restore into a replica).
    loads = proxy_log(victim, 10 ** 9).count(LOADAOF_SENT)
    cluster.start_node(victim)
    harness.wait_until(lambda: victim.role() == "slave" and victim.proxy.readyz() == 200, 60,
                       "the old primary to rejoin as a replica and its proxy to follow it",
                       state=lambda: (victim.role(), victim.proxy.readyz(), proxy_log(victim, 2000)))
    assert proxy_log(victim, 10 ** 9).count(LOADAOF_SENT) == loads, \
        "the proxy restored the old data into a node that is now a replica"
    wait_replicated(t, replica, victim, "the old primary, now its replica")
    return lost, before, promoted_s
