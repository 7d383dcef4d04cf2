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
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.acked = {}             # key -> value, acknowledged (+OK)
        self.acked_at = {}          # key -> monotonic time of the +OK
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
                    with self.lock:
                        self.acked[key] = value
                        self.acked_at[key] = time.monotonic()
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
