"""Resharding a Valkey Cluster through its proxies while writers write.

  valkey-cli --cluster reshard <any proxy>       writers: SET, follow MOVED / ASK
      │ CLUSTER SETSLOT, GETKEYSINSLOT, MIGRATE      │ (to proxies only)
      ▼                                              ▼
  source's proxy ──▶ source node ── SELECT, RESTORE-ASKING ──▶ target's proxy ──▶ target node

valkey-cli works through a proxy: it reads CLUSTER NODES there, and every
address it then uses is one the nodes announce, i.e. a proxy's.  MIGRATE's
host and port are the target's address in that list, so the source node
connects to the target's proxy, whose RESTORE-ASKING replies wait for the
target's log like any write: the source deletes a key only once the
target's proxy has it fsynced.  (Pointed at a node's own port instead,
valkey-cli uses that port for that node: as the target, MIGRATE would go
past its proxy.)  9.x's valkey-cli reshards with MIGRATE too, unless given
--cluster-use-atomic-slot-migration.

Valkey 9.x also moves slots atomically: CLUSTER MIGRATESLOTS, sent to the
source (its proxy passes it), makes the source connect to the target's
announced port (its proxy) and send CLUSTER SYNCSLOTS ESTABLISH, a snapshot
of the slots as commands, then the writes that follow; the target answers
nothing to those and sends REQUEST-PAUSE / REQUEST-FAILOVER / ACK back on
the same connection.  The source gives up the slots (and deletes their
keys) once it got REQUEST-FAILOVER, so that message must leave the target's
proxy only once the target's log has what it imported.

Writers: a hand-written client (RedirectClient: follows MOVED and ASK
itself and counts them) and redis-py's RedisCluster (counted by a hook on
its connections), one thread each.  Each writer overwrites keys of its own
and keeps the last acknowledged value of each; a write without an answer is
unknown (its value may be there, until the next acknowledged write of that
key).  Half of the writes aim at the slots just past the furthest one seen
MOVED: the slot being migrated, where a key already moved gets ASK.
"""
import os
import random
import re
import threading
import time

import pytest

import harness
import cluster_util

pytestmark = [pytest.mark.proxy_only,
              pytest.mark.skipif(harness.server_version()[0] != "valkey",
                                 reason="cluster suite: Valkey only (%s)" % harness.server_label())]

MOVE_SLOTS = 500        # the reshard under traffic
BACK_SLOTS = 100        # the reshard back, then a kill -9 of the target's proxy
ATOMIC_SLOTS = 1000     # CLUSTER MIGRATESLOTS (9.x)
PRELOAD_PER_SLOT = 4    # keys in every slot to move before it moves
KEYS_PER_SLOT = 2       # each writer's keys in one slot
CLI_PIPELINE = 8        # keys per MIGRATE (valkey-cli default 10)
# Errors a writer may see while a proxy restarts (its write is unknown).
TRANSIENT = ("LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN")


def key_slot(key):
    from redis.crc import key_slot as slot_of
    return slot_of(key.encode() if isinstance(key, str) else key)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # DEBUG SLOTMIGRATION (9.x) holds an atomic migration before its pause.
    c = cluster_util.ValkeyCluster(tmp_path_factory.mktemp("reshard"), server_args=["--enable-debug-command", "local"])
    yield c
    c.stop()


@pytest.fixture(scope="module")
def tags():
    """tags[slot]: a hash tag that puts a key in `slot`."""
    return cluster_util.key_per_slot()


# ---------------------------------------------------------------- clients

class Redirects:
    """MOVED and ASK replies seen, the addresses used, and the migration
    front: just past the furthest slot of the moving range seen MOVED."""

    def __init__(self, moving):
        self.lock = threading.Lock()
        self.moving = sorted(moving)
        self.position = {s: i for i, s in enumerate(self.moving)}
        self.front = 0          # an index into self.moving
        self.counts = {}        # (client kind, "MOVED" / "ASK") -> count
        self.addrs = set()      # every (host, port) connected to or redirected to

    def seen(self, kind, word, slot, addr):
        with self.lock:
            self.counts[(kind, word)] = self.counts.get((kind, word), 0) + 1
            self.addrs.add(addr)
            if slot in self.position:
                self.front = max(self.front, self.position[slot] + (word == "MOVED"))

    def used(self, addr):
        with self.lock:
            self.addrs.add(addr)

    def count(self, kind, word):
        with self.lock:
            return self.counts.get((kind, word), 0)

    def pick(self, rng):
        """A slot to write: one of the 4 at the front, any of the moving
        range, or (one write in ten) any slot."""
        r = rng.random()
        if r < 0.5:
            with self.lock:
                at = self.front + rng.randrange(4)
            return self.moving[min(at, len(self.moving) - 1)]
        if r < 0.9:
            return rng.choice(self.moving)
        return rng.randrange(cluster_util.CLUSTER_SLOTS)


class RedirectClient:
    """A cluster client written for this test: routes each key by its slot
    (CLUSTER SLOTS read through a proxy), and on MOVED updates that slot's
    route and retries there, on ASK sends ASKING then the command to the
    node named, once.  Only proxies are ever named, so it only talks to
    proxies; every address it uses goes to `redirects`."""

    MAX_REDIRECTS = 16

    def __init__(self, entry, redirects):
        self.redirects = redirects
        self.routes = [None] * cluster_util.CLUSTER_SLOTS
        self.conns = {}
        self.load_routes(entry)

    def load_routes(self, addr):
        slots = self._conn(addr).call("CLUSTER", "SLOTS")
        if isinstance(slots, harness.Error):
            raise AssertionError("CLUSTER SLOTS through %s:%d answered %s" % (addr + (slots,)))
        for entry in slots:
            for s in range(entry[0], entry[1] + 1):
                self.routes[s] = (bytes(entry[2][0]).decode(), int(entry[2][1]))

    def _conn(self, addr):
        c = self.conns.get(addr)
        if c is None:
            self.redirects.used(addr)
            c = self.conns[addr] = harness.RespConn(addr, timeout=harness.scaled(10))
        return c

    def drop(self, addr):
        c = self.conns.pop(addr, None)
        if c is not None:
            c.close()

    def call(self, key, *cmd):
        """The command's reply after following redirections; OSError /
        harness.Closed when a connection failed (the outcome is unknown)."""
        slot = key_slot(key)
        addr, asking = self.routes[slot], False
        for _ in range(self.MAX_REDIRECTS):
            conn = self._conn(addr)
            try:
                if asking:
                    ok = conn.call("ASKING")
                    if ok != "OK":
                        raise AssertionError("ASKING at %s:%d answered %r" % (addr + (ok,)))
                reply = conn.call(*cmd)
            except (OSError, harness.Closed):
                self.drop(addr)
                raise
            word, _, rest = str(reply).partition(" ") if isinstance(reply, harness.Error) else ("", "", "")
            if word not in ("MOVED", "ASK"):
                return reply
            host, _, port = rest.split(" ")[1].rpartition(":")
            addr = (host, int(port))
            self.redirects.seen("hand-written", word, slot, addr)
            asking = word == "ASK"
            if word == "MOVED":
                self.routes[slot] = addr
        raise AssertionError("%s %s: more than %d redirections, the last to %s:%d"
                             % (cmd[0], key, self.MAX_REDIRECTS, addr[0], addr[1]))

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()


def redis_cluster(entry_port, redirects=None):
    """redis-py's RedisCluster starting at a proxy; with `redirects`, each
    of its connections reports where it connects and the MOVED / ASK it
    reads (redis-py 4.3 takes no connection class: its connect hook wraps
    the connection's read_response once)."""
    from redis.cluster import RedisCluster
    from redis.exceptions import AskError, MovedError
    kw = {}
    if redirects is not None:
        def counted(conn):
            redirects.used((conn.host, int(conn.port)))
            if getattr(conn, "counted_redirects", False):
                return
            conn.counted_redirects = True
            read = conn.read_response

            def read_response(*args, **kwargs):
                try:
                    return read(*args, **kwargs)
                except (MovedError, AskError) as e:
                    word = "MOVED" if isinstance(e, MovedError) else "ASK"
                    redirects.seen("redis-py", word, e.slot_id, (e.host, e.port))
                    raise
            conn.read_response = read_response
        kw["redis_connect_func"] = counted
    return RedisCluster(host="127.0.0.1", port=entry_port, socket_timeout=harness.scaled(10), **kw)


# ---------------------------------------------------------------- writers

class Book:
    """What was acknowledged: key -> last acknowledged value, and the values
    written after it whose outcome is unknown (any of them may be there)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.unknown = {}
        self.acks = 0
        self.slot_acks = {}     # slot -> acknowledged writes

    def ack(self, key, value):
        slot = key_slot(key)
        with self.lock:
            self.acked[key] = value
            self.unknown.pop(key, None)
            self.acks += 1
            self.slot_acks[slot] = self.slot_acks.get(slot, 0) + 1

    def lost_answer(self, key, value):
        with self.lock:
            self.unknown.setdefault(key, set()).add(value)

    def allowed(self, key):
        with self.lock:
            return {self.acked[key]} | self.unknown.get(key, set())

    def keys(self):
        with self.lock:
            return list(self.acked)

    def count(self, slots=None):
        """Acknowledged writes so far (to keys of `slots` only, if given)."""
        with self.lock:
            if slots is None:
                return self.acks
            return sum(self.slot_acks.get(s, 0) for s in slots)


class Writers:
    """Writer threads (see the module comment) until stop()."""

    def __init__(self, cluster, book, redirects, prefix, tags, seed):
        self.cluster = cluster
        self.book = book
        self.redirects = redirects
        self.tags = tags
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.stop_flag = threading.Event()
        self.failures = []
        self.errors = {}        # what writers saw instead of +OK -> count
        self.lock = threading.Lock()
        kinds = ["hand-written", "redis-py"]
        self.threads = [threading.Thread(target=self._run, args=(i, kind, self.rng.random()), daemon=True)
                        for i, kind in enumerate(kinds)]

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
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            raise AssertionError("writer threads still running %ds after stop: %s" % (harness.scaled(30), alive))
        if self.failures:
            raise AssertionError("a writer failed: %s" % self.failures[0])

    def wait_acked(self, more, what, slots=None):
        """Until `more` more writes were acknowledged (to keys of `slots`,
        if given): traffic observed to flow."""
        start = self.book.count(slots)
        harness.wait_until(lambda: self.book.count(slots) >= start + more or self.failures, 30,
                           "%d more acknowledged writes (%s)" % (more, what), interval=0.01,
                           state=lambda: (self.book.count(slots) - start, dict(self.errors), self.failures[:1]))
        if self.failures:
            raise AssertionError("a writer failed: %s" % self.failures[0])

    def _note(self, what):
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    def _run(self, index, kind, seed):
        from redis.exceptions import (BusyLoadingError, ClusterDownError, MasterDownError, RedisError,
                                      ResponseError, TryAgainError)
        transient = (BusyLoadingError, ClusterDownError, MasterDownError, TryAgainError)  # TRANSIENT's
        rng = random.Random(seed)
        entry = self.cluster.nodes[index % len(self.cluster.nodes)].proxy
        client = None
        seq = 0
        try:
            while not self.stop_flag.is_set():
                if client is None:
                    try:
                        client = (RedirectClient(entry.addr, self.redirects) if kind == "hand-written"
                                  else redis_cluster(entry.port, self.redirects))
                    except (OSError, harness.Closed, RedisError) as e:
                        self._note("%s: connect: %s" % (kind, type(e).__name__))
                        self.stop_flag.wait(0.01)  # retry pace while the entry proxy restarts
                        continue
                slot = self.redirects.pick(rng)
                key = "{%s}:%s%d:%d" % (self.tags[slot], self.prefix, index, rng.randrange(KEYS_PER_SLOT))
                seq += 1
                value = "%s%d-%d" % (self.prefix, index, seq)
                try:
                    if kind == "hand-written":
                        reply = client.call(key, "SET", key, value)
                    else:
                        reply = "OK" if client.set(key, value) else "not True"
                except (OSError, harness.Closed, RedisError) as e:
                    # No answer (or a restarting proxy's): it may have run.
                    if isinstance(e, ResponseError) and not isinstance(e, transient):
                        raise AssertionError("%s client: SET %s answered %s: %s" % (kind, key, type(e).__name__, e))
                    self.book.lost_answer(key, value)
                    self._note("%s: %s %s" % (kind, type(e).__name__, str(e)[:60]))
                    self.stop_flag.wait(0.005)  # retry pace while a proxy restarts
                    continue
                if reply == "OK":
                    self.book.ack(key, value)
                    continue
                self.book.lost_answer(key, value)
                word = str(reply).split(" ", 1)[0]
                self._note("%s: %s" % (kind, str(reply)[:80]))
                if word not in TRANSIENT:
                    raise AssertionError("%s client: SET %s answered %r" % (kind, key, reply))
                self.stop_flag.wait(0.005)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.failures.append("%s writer %d: %s: %r" % (kind, index, type(e).__name__, e))
        finally:
            if client is not None:
                client.close()


# ---------------------------------------------------------------- checks

def preload(cluster, book, slots, tags, prefix):
    """PRELOAD_PER_SLOT keys in every one of `slots`, acknowledged."""
    rc = redis_cluster(cluster.nodes[0].proxy.port)
    try:
        pipe = rc.pipeline()
        written = []
        for s in slots:
            for j in range(PRELOAD_PER_SLOT):
                key, value = "{%s}:%s:%d" % (tags[s], prefix, j), "%s-%d-%d" % (prefix, s, j)
                pipe.set(key, value)
                written.append((key, value))
        replies = pipe.execute()
    finally:
        rc.close()
    bad = [(k, r) for (k, _), r in zip(written, replies) if r is not True]
    assert not bad, "%d preload writes not acknowledged, e.g. %r" % (len(bad), bad[:3])
    for k, v in written:
        book.ack(k, v)


def read_back(cluster, book):
    """Acknowledged keys that do not hold their last acknowledged value (nor
    a later unknown one), read through the proxies: [(key, got, allowed)]."""
    keys = book.keys()
    rc = redis_cluster(cluster.nodes[-1].proxy.port)
    bad = []
    try:
        for i in range(0, len(keys), 2000):
            chunk = keys[i:i + 2000]
            pipe = rc.pipeline()
            for k in chunk:
                pipe.get(k)
            for k, got in zip(chunk, pipe.execute()):
                allowed = book.allowed(k)
                if got is None or got.decode() not in allowed:
                    bad.append((k, got, sorted(allowed)))
    finally:
        rc.close()
    return bad


def dumped_string(payload):
    """The value in a DUMP payload of a short string (RDB type 0, 6- or
    14-bit length), else None."""
    if len(payload) < 2 or payload[0] != 0:
        return None
    b = payload[1]
    if b >> 6 == 0:
        return payload[2:2 + (b & 0x3F)]
    if b >> 6 == 1:
        n = ((b & 0x3F) << 8) | payload[2]
        return payload[3:3 + n]
    return None


def last_writes(log_dir):
    """key -> (command, value; None for a delete) of the last write of each
    key in a proxy's log, and the log's commands."""
    _, stream = harness.read_log_stream(log_dir)
    cmds = harness.parse_stream_commands(stream)
    out = {}
    for c in cmds:
        if c[0] == b"SET":
            out[c[1]] = (c[0], c[2])
        elif c[0] in (b"RESTORE-ASKING", b"RESTORE"):
            out[c[1]] = (c[0], dumped_string(c[3]))
        elif c[0] in (b"DEL", b"UNLINK"):
            for k in c[1:]:
                out[k] = (c[0], None)
    return out, cmds


def check_logs(book, slots, target, source):
    """Every acknowledged key of `slots` is in the target's proxy log, its
    last write there carrying the value read back; in the source's proxy
    log, each of them that is there at all ends with its delete.  Returns
    {command: how many of the keys have it as their last write there}."""
    moved = set(slots)
    keys = [k for k in book.keys() if key_slot(k) in moved]
    at_target, _ = last_writes(target.proxy.log_dir)
    at_source, _ = last_writes(source.proxy.log_dir)
    missing, wrong, kept = [], [], []
    by_command = {}
    for k in keys:
        last = at_target.get(k.encode())
        if last is None:
            missing.append(k)
            continue
        by_command[last[0]] = by_command.get(last[0], 0) + 1
        if last[1] is None or last[1].decode() not in book.allowed(k):
            wrong.append((k, last, sorted(book.allowed(k))))
        src_last = at_source.get(k.encode())
        if src_last is not None and src_last[1] is not None:
            kept.append((k, src_last))
    assert not missing, ("%d of %d acknowledged keys of the moved slots are not in the target's proxy log "
                         "(%s), e.g. %r" % (len(missing), len(keys), target.proxy.log_dir, missing[:3]))
    assert not wrong, ("%d keys' last write in the target's proxy log is not the value acknowledged, e.g. %r"
                       % (len(wrong), wrong[:3]))
    assert not kept, ("%d moved keys' last write in the source's proxy log is not a delete (%s), e.g. %r"
                      % (len(kept), source.proxy.log_dir, kept[:3]))
    return by_command


def first_slots(cluster, node, n):
    """The first n slots node serves (ascending), from its own CLUSTER SLOTS:
    the ones valkey-cli --cluster reshard takes from it."""
    with node.direct() as d:
        ranges = sorted((e[0], e[1]) for e in d.call("CLUSTER", "SLOTS") if int(e[2][1]) == node.proxy.port)
    out = [s for a, b in ranges for s in range(a, b + 1)]
    assert len(out) >= n, "node %d serves %d slots, %d wanted" % (node.index, len(out), n)
    return out[:n]


def slot_owners(reply):
    """[(first, last, port of the primary)] of a CLUSTER SLOTS reply."""
    return [(e[0], e[1], int(e[2][1])) for e in reply]


def wait_owned(cluster, slots, owner):
    """Until CLUSTER SLOTS through every proxy names owner's proxy for every
    one of `slots`; then every port any of them names is a proxy's."""
    views = {}

    def settled():
        for n in cluster.nodes:
            with n.conn() as c:
                views[n.index] = slot_owners(c.call("CLUSTER", "SLOTS"))
        return all(any(a <= s <= b and port == owner.proxy.port for a, b, port in views[i])
                   for i in views for s in slots)
    harness.wait_until(settled, 30, "every proxy's CLUSTER SLOTS to give the %d moved slots to node %d's proxy :%d"
                       % (len(slots), owner.index, owner.proxy.port), interval=0.05,
                       state=lambda: {i: v for i, v in views.items()})
    named = {port for v in views.values() for _, _, port in v}
    assert named <= cluster.proxy_ports(), ("CLUSTER SLOTS through the proxies names ports that are no proxy's: %s"
                                            % sorted(named - cluster.proxy_ports()))


def check_addresses(cluster, redirects, cli_output=""):
    """Every address a writer connected or was redirected to, and every one
    valkey-cli printed, is a proxy's."""
    proxies = {("127.0.0.1", p) for p in cluster.proxy_ports()}
    assert redirects.addrs and redirects.addrs <= proxies, (
        "writers used addresses that are no proxy's: %s (node ports %s)"
        % (sorted(redirects.addrs - proxies), sorted(cluster.node_ports())))
    printed = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", cli_output)}
    assert printed <= cluster.proxy_ports(), ("valkey-cli named ports that are no proxy's: %s"
                                              % sorted(printed - cluster.proxy_ports()))


def proxy_log_sizes(cluster):
    return {n.index: os.path.getsize(n.proxy.log_path) for n in cluster.nodes}


def proxy_errors(cluster, since):
    """Lines at level error a proxy logged after `since` (proxy_log_sizes)."""
    out = []
    for n in cluster.nodes:
        with open(n.proxy.log_path, "rb") as f:
            f.seek(since[n.index])
            out += ["proxy %d: %s" % (n.index, l.decode(errors="replace"))
                    for l in f.read().splitlines() if b" error [" in l]
    return out


def reshard(cluster, entry, source, target, count):
    """valkey-cli --cluster reshard at entry's proxy: the first `count`
    slots of source go to target.  Returns (seconds, output, [(slot, from
    port, to port)] it printed: "Moving slot N from A to B", after the
    plan, which names node ids; 9.x puts its progress "#" before it)."""
    args = [cluster_util.cli_binary(cluster.binary), "--cluster", "reshard", "127.0.0.1:%d" % entry.proxy.port,
            "--cluster-from", source.node_id(), "--cluster-to", target.node_id(),
            "--cluster-slots", str(count), "--cluster-pipeline", str(CLI_PIPELINE), "--cluster-yes"]
    start = time.monotonic()
    res = harness.subprocess.run(args, capture_output=True, timeout=harness.scaled(180))
    took = time.monotonic() - start
    out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    assert res.returncode == 0 and "ERR" not in out and "ERR" not in err, (
        "%s failed (%d):\n%s\n%s" % (" ".join(args), res.returncode, out[-3000:], err[-3000:]))
    moves = [(int(s), int(a), int(b)) for s, a, b in
             re.findall(r"Moving slot (\d+) from 127\.0\.0\.1:(\d+) to 127\.0\.0\.1:(\d+)", out)]
    return took, out, moves


def report(what, took, redirects, book_before, book, writers):
    """One line for the run's output (pytest -s): the time the move took, the
    writes acknowledged from its start until the writers stopped, the
    redirections each client followed, and what writers got instead of +OK."""
    print("\n%s: %.1f s; writes acknowledged %d; MOVED/ASK followed: hand-written %d/%d, redis-py %d/%d; "
          "not +OK: %d" % (what, took, book.count() - book_before,
                           redirects.count("hand-written", "MOVED"), redirects.count("hand-written", "ASK"),
                           redirects.count("redis-py", "MOVED"), redirects.count("redis-py", "ASK"),
                           sum(writers.errors.values())))


def other_primary(cluster, node, prefer=None):
    """A primary other than node (`prefer` when it is one)."""
    primaries = cluster.primaries()
    if prefer is not None and prefer is not node and prefer in primaries:
        return prefer
    return next(p for p in primaries if p is not node)


# ---------------------------------------------------------------- tests

def test_reshard_under_traffic_moves_every_acknowledged_write(cluster, tags):
    """valkey-cli --cluster reshard at the source's proxy moves MOVE_SLOTS
    slots while four writers write; the writers get MOVED and ASK and follow
    them; afterwards every acknowledged write reads back, every proxy gives
    the slots to the target, only proxies were ever used, and the target's
    proxy log holds every key of the moved slots (by RESTORE-ASKING, or a
    SET after the move) with the value acknowledged."""
    source = cluster.owner(0)
    target = other_primary(cluster, source)
    slots = first_slots(cluster, source, MOVE_SLOTS)
    book, redirects = Book(), Redirects(slots)
    preload(cluster, book, slots, tags, "pre-a")
    marks = proxy_log_sizes(cluster)
    with Writers(cluster, book, redirects, "a", tags, seed=1) as w:
        w.wait_acked(200, "before the reshard")
        before = book.count()
        took, out, moves = reshard(cluster, source, source, target, MOVE_SLOTS)
        w.wait_acked(200, "after the reshard", slots=slots)
    report("reshard of %d slots (MIGRATE)" % MOVE_SLOTS, took, redirects, before, book, w)
    assert not w.errors, "writers got something other than +OK during the reshard: %r" % w.errors
    assert [m[0] for m in moves] == slots, "valkey-cli moved other slots: %r" % moves[:5]
    assert {(a, b) for _, a, b in moves} == {(source.proxy.port, target.proxy.port)}, (
        "valkey-cli's MIGRATE went between other addresses than the two proxies: %r"
        % sorted({(a, b) for _, a, b in moves}))
    assert redirects.count("hand-written", "MOVED") > 0 and redirects.count("hand-written", "ASK") > 0, (
        "no redirection seen during the reshard: %r" % redirects.counts)
    assert redirects.count("redis-py", "MOVED") > 0, redirects.counts
    bad = read_back(cluster, book)
    assert not bad, "%d acknowledged writes do not read back, e.g. %r" % (len(bad), bad[:3])
    wait_owned(cluster, slots, target)
    check_addresses(cluster, redirects, out)
    by_command = check_logs(book, slots, target, source)
    assert by_command.get(b"RESTORE-ASKING", 0) > 0, by_command
    errors = proxy_errors(cluster, marks)
    assert not errors, "the proxies logged errors during the reshard:\n" + "\n".join(errors[:10])


def test_reshard_back_then_kill_the_targets_proxy(cluster, tags):
    """BACK_SLOTS slots move back (valkey-cli at a replica's proxy this
    time) under the same writers; right after, the target's proxy is
    killed (-9) and restarted on its log while they go on; every
    acknowledged write reads back and the target's log has the moved keys."""
    source = cluster.owner(0)
    target = other_primary(cluster, source, prefer=cluster.owner(MOVE_SLOTS))
    entry = next(n for n in cluster.nodes if n.role() == "slave")
    slots = first_slots(cluster, source, BACK_SLOTS)
    book, redirects = Book(), Redirects(slots)
    preload(cluster, book, slots, tags, "pre-b")
    with Writers(cluster, book, redirects, "b", tags, seed=2) as w:
        w.wait_acked(200, "before the reshard back")
        before = book.count()
        took, out, moves = reshard(cluster, entry, source, target, BACK_SLOTS)
        cluster.kill_proxy(target)
        w.wait_acked(100, "on the moved slots after the target's proxy restarted", slots=slots)
    report("reshard back of %d slots, then kill -9 of the target's proxy" % BACK_SLOTS,
           took, redirects, before, book, w)
    assert [m[0] for m in moves] == slots, "valkey-cli moved other slots: %r" % moves[:5]
    bad = read_back(cluster, book)
    assert not bad, ("%d acknowledged writes do not read back after the target's proxy restarted, e.g. %r"
                     % (len(bad), bad[:3]))
    wait_owned(cluster, slots, target)
    check_addresses(cluster, redirects, out)
    check_logs(book, slots, target, source)


def restart_with_fsync_control(target, tmp_path):
    """kill -9 target's proxy and start it again on its log with the fsync
    shim (harness.FsyncControl), which it keeps from then on."""
    ctl = harness.FsyncControl(tmp_path, harness.fsync_shim(tmp_path))
    cluster_util.kill9(target.proxy)
    cluster_util.respawn_proxy(target.proxy, env=ctl.env, timeout=harness.scaled(60))
    return ctl


def test_migrate_waits_for_the_targets_log(cluster, tags, tmp_path):
    """The step valkey-cli repeats, with the target's proxy unable to
    fsync: MIGRATE (through the source's proxy, to the target's) times out
    and the source keeps its keys, as the target's proxy holds
    RESTORE-ASKING's reply; once fsync works, MIGRATE goes through and the
    slot moves with every key in the target's log."""
    source = cluster.owner(0)
    target = other_primary(cluster, source)
    slot = first_slots(cluster, source, 1)[0]
    book = Book()
    preload(cluster, book, [slot], tags, "pre-m")
    with source.direct() as d:
        keys = [bytes(k).decode() for k in d.call("CLUSTER", "GETKEYSINSLOT", slot, 100000)]
    assert set(book.keys()) <= set(keys), keys
    ctl = restart_with_fsync_control(target, tmp_path)
    with target.conn() as c:
        assert c.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id()) == "OK"
    with source.conn() as c:
        assert c.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id()) == "OK"
        migrate = ["MIGRATE", "127.0.0.1", target.proxy.port, "", 0, 1000, "KEYS"] + keys
        try:
            ctl.block()
            reply = c.call(*migrate)
            with source.direct() as d:
                kept = d.call("CLUSTER", "COUNTKEYSINSLOT", slot)
        finally:
            ctl.unblock()
        assert isinstance(reply, harness.Error) and reply.startswith("IOERR"), (
            "MIGRATE to a target whose proxy cannot fsync answered %r (the source kept %d of %d keys)"
            % (reply, kept, len(keys)))
        assert kept == len(keys), "the source dropped keys the target's log does not have: %d of %d kept" % (
            kept, len(keys))
        # The target ran the RESTORE-ASKING whose reply its proxy held: REPLACE.
        reply = c.call(*migrate[:6] + ["REPLACE"] + migrate[6:])
        assert reply == "OK", "MIGRATE REPLACE once fsync works answered %r" % (reply,)
    for n in [target, source] + [p for p in cluster.primaries() if p not in (target, source)]:
        with n.conn() as c:
            assert c.call("CLUSTER", "SETSLOT", slot, "NODE", target.node_id()) == "OK", n.index
    wait_owned(cluster, [slot], target)
    bad = read_back(cluster, book)
    assert not bad, "%d acknowledged writes do not read back, e.g. %r" % (len(bad), bad[:3])
    check_logs(book, [slot], target, source)


def migration_jobs(node, conn=None):
    """node's slot migration jobs (CLUSTER GETSLOTMIGRATIONS), as dicts."""
    def ask(c):
        jobs = c.call("CLUSTER", "GETSLOTMIGRATIONS")
        if isinstance(jobs, harness.Error):
            raise AssertionError("CLUSTER GETSLOTMIGRATIONS at node %d answered %s" % (node.index, jobs))
        return [dict(zip(j[::2], j[1::2])) for j in jobs]
    if conn is not None:
        return ask(conn)
    with node.direct() as c:
        return ask(c)


def job_names(node):
    return {j[b"name"] for j in migration_jobs(node)}


class NewJob:
    """The one job of a node that was not there before (`known` names); its
    fields are refreshed by poll()."""

    def __init__(self, node, known, conn=None):
        self.node, self.known, self.conn = node, known, conn
        self.fields = {}

    def poll(self):
        new = [j for j in migration_jobs(self.node, self.conn) if j[b"name"] not in self.known]
        if len(new) > 1:
            raise AssertionError("node %d has %d new migration jobs: %r" % (self.node.index, len(new), new))
        self.fields = new[0] if new else {}
        return self

    def state(self):
        return self.fields.get(b"state")

    def ended(self):
        return self.poll().state() in (b"success", b"failed", b"cancelled")


def slot_ranges(slots):
    """Consecutive runs of sorted slots as SLOTSRANGE arguments."""
    out = []
    for s in slots:
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [x for r in out for x in r]


def held_replies(node):
    """Replies node's proxy holds now (every kind)."""
    code, body = node.proxy.admin_get("/metrics")
    assert code == 200, "node %d's proxy /metrics answered %d" % (node.index, code)
    return sum(float(l.split(" ")[1]) for l in body.splitlines() if l.startswith("durable_proxy_held_replies{"))


def keys_in(node, slots):
    """The keys node holds in `slots` (asked directly)."""
    with node.direct() as d:
        return [bytes(k) for s in slots for k in d.call("CLUSTER", "GETKEYSINSLOT", s, 100000)]


def check_not_given_up(source, target, slots, had, job, imported):
    """The migration has not finished: the source still owns `slots` and
    holds every key it `had` there."""
    kept = keys_in(source, slots)
    with source.direct() as d:
        owner = slot_owners(d.call("CLUSTER", "SLOTS"))
    at_target, _ = last_writes(target.proxy.log_dir)
    assert job.state() != b"success", (
        "CLUSTER MIGRATESLOTS finished while the target's proxy could not fsync: the source kept %d of its %d "
        "keys; the target's log file has %d of them, none fsynced (source job %r, target job %r)"
        % (len(kept), len(had), sum(at_target.get(k, (None, None))[1] is not None for k in had),
           job.fields, imported.fields))
    assert set(kept) >= set(had), (
        "the source dropped keys before the target's log had them: %d of %d kept"
        % (len(set(kept) & set(had)), len(had)))
    assert all(any(a <= s <= b and p == source.proxy.port for a, b, p in owner) for s in slots), (
        "the source gave up slots before the target's log had their keys: %r" % owner)


needs_atomic = pytest.mark.skipif(cluster_util.server_major(harness.SERVER_BIN) < 9,
                                  reason="CLUSTER MIGRATESLOTS is Valkey 9.0+ (%s)" % harness.server_label())


@needs_atomic
def test_atomic_slot_migration_under_traffic(cluster, tags):
    """CLUSTER MIGRATESLOTS through the source's proxy moves ATOMIC_SLOTS
    slots in one job while the writers write: the source connects to the
    target's proxy (CLUSTER SYNCSLOTS in the target's log), every
    acknowledged write reads back, the keys are in the target's log."""
    source = cluster.owner(0)
    target = other_primary(cluster, source)
    slots = first_slots(cluster, source, ATOMIC_SLOTS)
    book, redirects = Book(), Redirects(slots)
    preload(cluster, book, slots, tags, "pre-c")
    _, before_cmds = last_writes(target.proxy.log_dir)
    known = job_names(source)
    with Writers(cluster, book, redirects, "c", tags, seed=3) as w:
        w.wait_acked(200, "before the migration")
        before = book.count()
        start = time.monotonic()
        with source.conn() as c:
            reply = c.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", *slot_ranges(slots), "NODE", target.node_id())
            assert reply == "OK", "CLUSTER MIGRATESLOTS through the source's proxy answered %r" % (reply,)
            job = NewJob(source, known, conn=c)  # GETSLOTMIGRATIONS through the proxy too
            harness.wait_until(job.ended, 30, "the source's slot migration job to end", interval=0.02,
                               state=lambda: job.fields)
        took = time.monotonic() - start
        assert job.state() == b"success", "the atomic slot migration ended %r" % job.fields
        w.wait_acked(200, "after the migration", slots=slots)
    report("CLUSTER MIGRATESLOTS of %d slots" % ATOMIC_SLOTS, took, redirects, before, book, w)
    assert not w.errors, "writers got something other than +OK during the migration: %r" % w.errors
    assert redirects.count("hand-written", "MOVED") > 0, redirects.counts
    bad = read_back(cluster, book)
    assert not bad, "%d acknowledged writes do not read back, e.g. %r" % (len(bad), bad[:3])
    wait_owned(cluster, slots, target)
    check_addresses(cluster, redirects)
    _, cmds = last_writes(target.proxy.log_dir)
    syncslots = [c[2] for c in cmds[len(before_cmds):] if c[:2] == [b"CLUSTER", b"SYNCSLOTS"]]
    assert b"ESTABLISH" in syncslots and b"FINISH" in syncslots, (
        "the target's proxy log lacks the migration's CLUSTER SYNCSLOTS: %r" % syncslots)
    check_logs(book, slots, target, source)


@needs_atomic
def test_atomic_slot_migration_waits_for_the_targets_log(cluster, tags, tmp_path):
    """With the target's proxy unable to fsync, CLUSTER MIGRATESLOTS must
    not finish: the source would delete keys the target's log does not
    have (a crash of the target then loses acknowledged writes).  Once
    fsync works again it finishes, and the target's log has every key."""
    source = cluster.owner(0)
    target = other_primary(cluster, source)
    slots = first_slots(cluster, source, 20)
    book = Book()
    preload(cluster, book, slots, tags, "pre-d")
    ctl = restart_with_fsync_control(target, tmp_path)
    job, imported = NewJob(source, job_names(source)), NewJob(target, job_names(target))

    had = keys_in(source, slots)
    try:
        ctl.block()
        with source.conn() as c:
            reply = c.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", *slot_ranges(slots), "NODE", target.node_id())
        assert reply == "OK", "CLUSTER MIGRATESLOTS through the source's proxy answered %r" % (reply,)
        # Either it ends (wrong), or the target's proxy holds a reply of the
        # migration's connection (right): whichever comes first is observed.
        harness.wait_until(lambda: job.ended() or (imported.poll().fields and held_replies(target) >= 1), 30,
                           "the migration to end or the target's proxy to hold its messages", interval=0.01,
                           state=lambda: (job.fields, imported.fields))
        print("\natomic migration, the target's fsync blocked from the start: source job %s, target job %s, "
              "%d replies held" % (job.state(), imported.poll().state(), held_replies(target)))
        check_not_given_up(source, target, slots, had, job, imported)
    finally:
        ctl.unblock()
    harness.wait_until(job.ended, 30, "the migration to end once fsync works", interval=0.02,
                       state=lambda: job.fields)
    assert job.state() == b"success", "the atomic slot migration ended %r" % job.fields
    bad = read_back(cluster, book)
    assert not bad, "%d acknowledged writes do not read back, e.g. %r" % (len(bad), bad[:3])
    check_logs(book, slots, target, source)


@needs_atomic
def test_atomic_slot_migration_waits_for_a_streamed_write(cluster, tags, tmp_path):
    """A write acknowledged by the source after the snapshot reaches the
    target in the migration's stream; with the target's proxy unable to
    fsync it, the migration must not finish (the source would delete an
    acknowledged write the target's log lacks: REQUEST-FAILOVER must wait
    for that log).  DEBUG SLOTMIGRATION PREVENT-PAUSE holds the source
    before its pause, so the write is in the stream, not the snapshot."""
    source = cluster.owner(0)
    target = other_primary(cluster, source)
    slots = first_slots(cluster, source, 20)
    book = Book()
    preload(cluster, book, slots, tags, "pre-e")
    ctl = restart_with_fsync_control(target, tmp_path)
    job, imported = NewJob(source, job_names(source)), NewJob(target, job_names(target))

    def prevent_pause(on):
        with source.direct() as d:
            reply = d.call("DEBUG", "SLOTMIGRATION", "PREVENT-PAUSE", int(on))
        assert reply == "OK", "DEBUG SLOTMIGRATION PREVENT-PAUSE at node %d answered %r" % (source.index, reply)

    def target_offset():
        with target.direct() as d:
            return int(harness.info_fields(d, "replication")["master_repl_offset"])
    prevent_pause(True)
    try:
        with source.conn() as c:
            reply = c.call("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", *slot_ranges(slots), "NODE", target.node_id())
            assert reply == "OK", "CLUSTER MIGRATESLOTS through the source's proxy answered %r" % (reply,)
            harness.wait_until(lambda: job.ended() or job.state() == b"waiting-to-pause", 30,
                               "the source to have sent the snapshot and to wait to pause", interval=0.01,
                               state=lambda: (job.fields, imported.poll().fields))
            assert job.state() == b"waiting-to-pause", job.fields
            had = keys_in(source, slots)
            ctl.block()
            before = target_offset()
            late = "{%s}:late" % tags[slots[0]]
            assert c.call("SET", late, "streamed") == "OK"
            book.ack(late, "streamed")
        harness.wait_until(lambda: target_offset() > before, 30, "the target to apply the streamed write",
                           state=target_offset)
        prevent_pause(False)
        harness.wait_until(lambda: job.ended() or (imported.poll().state() == b"failover-requested" and
                                                   held_replies(target) >= 1), 30,
                           "the migration to end or the target's proxy to hold its REQUEST-FAILOVER", interval=0.01,
                           state=lambda: (job.fields, imported.fields))
        print("\natomic migration, the target's fsync blocked after the snapshot: source job %s, target job %s, "
              "%d replies held" % (job.state(), imported.poll().state(), held_replies(target)))
        check_not_given_up(source, target, slots, had + [late.encode()], job, imported)
    finally:
        ctl.unblock()
        prevent_pause(False)
    harness.wait_until(job.ended, 30, "the migration to end once fsync works", interval=0.02,
                       state=lambda: job.fields)
    assert job.state() == b"success", "the atomic slot migration ended %r" % job.fields
    bad = read_back(cluster, book)
    assert not bad, "%d acknowledged writes do not read back, e.g. %r" % (len(bad), bad[:3])
    check_logs(book, slots, target, source)
