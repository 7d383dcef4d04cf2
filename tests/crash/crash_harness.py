"""Crash harness: writer clients through the proxy record which operations
were acknowledged while the upstream, the proxy, both, or the machine
(power loss) crash; after each round every acknowledged write must be
present, nothing never attempted may appear, counters must lie between
acknowledged and attempted, and multi-key operations (a Lua script,
MULTI/EXEC) must be all-or-nothing.  Against Valkey 9.0 or later one more
writer sets hash fields with a TTL (HSETEX, and HSET + HEXPIRE): every
acknowledged field must come back with its value and a TTL.

    h = CrashHarness(tmpdir, seed=1)            # server: DP_SERVER_BIN
    h = CrashHarness(tmpdir, server_bin=path)   # or a given binary
    h.run(rounds=4)          # raises AssertionError naming the violation
    h.totals()               # dict of counts for a report

Used by tests/integration/test_recovery_crash.py (short) and
tests/crash/soak.py (hundreds of kills).
"""
import http.client
import json
import os
import random
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
from cluster import harness  # noqa: E402

FAULTS = ("upstream", "proxy", "both", "power_loss")

# Hash field TTLs live this long: far beyond any run, so a field acknowledged
# with a TTL must still have one when checked.
HFE_TTL_S = 86400


def server_has_hash_field_ttl(binary):
    """Hash field expiry (HSETEX, HEXPIRE, HTTL) came with Valkey 9.0."""
    name, version = harness.server_version(binary)
    return name == "valkey" and int(version.split(".")[0]) >= 9

LUA = ("redis.call('INCR', KEYS[1]) "
       "return redis.call('RPUSH', KEYS[2], ARGV[1])")


class Writer(threading.Thread):
    """One client connection doing one kind of write, one at a time.

    attempted: sequence numbers sent (the reply may never have come);
    acked: sequence numbers whose success reply arrived."""

    def __init__(self, kind, wid, addr):
        super().__init__(daemon=True, name="writer-%s-%d" % (kind, wid))
        self.kind, self.wid, self.addr = kind, wid, addr
        self.attempted, self.acked = set(), set()
        self.seq = 0
        self.errors = {}
        self.stop_flag = threading.Event()
        self.conn = None

    # keys this writer owns
    def keys(self):
        w = self.wid
        return {
            "incr": ["ctr:%d" % w],
            "rpush": ["list:%d" % w],
            "set": ["key:%d:*" % w],
            "hset": ["hash:%d" % w],
            "sadd": ["set:%d" % w],
            "lua": ["lua:c:%d" % w, "lua:l:%d" % w],
            "multi": ["multi:c:%d" % w, "multi:s:%d" % w],
            "hfe": ["hfe:%d" % w],
        }[self.kind]

    def command(self, n):
        w = self.wid
        if self.kind == "incr":
            return [("INCR", "ctr:%d" % w)]
        if self.kind == "rpush":
            return [("RPUSH", "list:%d" % w, n)]
        if self.kind == "set":
            return [("SET", "key:%d:%d" % (w, n), n)]
        if self.kind == "hset":
            return [("HSET", "hash:%d" % w, "f%d" % n, n)]
        if self.kind == "sadd":
            return [("SADD", "set:%d" % w, n)]
        if self.kind == "lua":
            return [("EVAL", LUA, 2, "lua:c:%d" % w, "lua:l:%d" % w, n)]
        if self.kind == "hfe":
            # Even: one HSETEX; odd: HSET then HEXPIRE, pipelined (acknowledged
            # only when both succeeded).
            key, field = "hfe:%d" % w, "f%d" % n
            if n % 2 == 0:
                return [("HSETEX", key, "EX", HFE_TTL_S, "FIELDS", 1, field, n)]
            return [("HSET", key, field, n), ("HEXPIRE", key, HFE_TTL_S, "FIELDS", 1, field)]
        return [("MULTI",), ("INCR", "multi:c:%d" % w), ("SADD", "multi:s:%d" % w, n), ("EXEC",)]

    def ok(self, replies):
        last = replies[-1]
        if isinstance(last, harness.Error) or any(isinstance(r, harness.Error) for r in replies):
            return False
        if self.kind == "multi":
            return isinstance(last, list) and len(last) == 2
        if self.kind == "hfe":
            # HSETEX answers 1 when it set the fields; HEXPIRE [1] per field.
            return last == 1 or last == [1]
        return last is not None

    def _connect(self):
        self.conn = harness.RespConn(self.addr, timeout=10)

    def _drop(self):
        if self.conn:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def run(self):
        while not self.stop_flag.is_set():
            if self.conn is None:
                try:
                    self._connect()
                except OSError:
                    time.sleep(0.05)
                    continue
            n = self.seq
            cmds = self.command(n)
            self.seq += 1
            try:
                self.attempted.add(n)  # before the first byte goes out
                self.conn.send(b"".join(harness.encode(*c) for c in cmds))
                replies = [self.conn.read_frame()[1] for _ in cmds]
            except (OSError, harness.Closed, socket.timeout, ValueError):
                self.errors["connection"] = self.errors.get("connection", 0) + 1
                self._drop()
                time.sleep(0.02)
                continue
            if self.ok(replies):
                self.acked.add(n)
            else:
                err = next((str(r) for r in replies if isinstance(r, harness.Error)), repr(replies))
                key = err.split(" ")[0]
                self.errors[key] = self.errors.get(key, 0) + 1
                if key == "LOADING":
                    time.sleep(0.02)
        self._drop()


def _ints(values):
    return [int(v) for v in values]


def check_writer(w, c):
    """Checks one writer's keys over connection c (direct to the upstream);
    returns a list of violations (strings)."""
    bad = []
    att, ack = w.attempted, w.acked

    def members(name, got):
        got = set(got)
        missing = ack - got
        extra = got - att
        if missing:
            bad.append("%s: %d acknowledged writes missing, e.g. %s" % (name, len(missing), sorted(missing)[:5]))
        if extra:
            bad.append("%s: %d never-attempted values present, e.g. %s" % (name, len(extra), sorted(extra)[:5]))

    k = w.keys()
    if w.kind == "incr":
        v = c.call("GET", k[0])
        v = int(v) if v is not None else 0
        if not len(ack) <= v <= len(att):
            bad.append("%s = %d, not within acknowledged %d .. attempted %d" % (k[0], v, len(ack), len(att)))
    elif w.kind == "rpush":
        items = _ints(c.call("LRANGE", k[0], 0, -1))
        if items != sorted(set(items)):
            bad.append("%s: not strictly increasing (duplicates or reordering): %s" % (k[0], items[:20]))
        members(k[0], items)
    elif w.kind == "set":
        found, cursor = [], b"0"
        while True:
            cursor, batch = c.call("SCAN", cursor, "MATCH", k[0], "COUNT", 1000)
            found += [int(x.split(b":")[2]) for x in batch]
            if cursor == b"0":
                break
        members(k[0], found)
    elif w.kind == "hset":
        h = c.call("HGETALL", k[0])
        fields = {int(h[i][1:]): int(h[i + 1]) for i in range(0, len(h), 2)}
        if any(f != v for f, v in fields.items()):
            bad.append("%s: field and value differ" % k[0])
        members(k[0], fields)
    elif w.kind == "hfe":
        h = c.call("HGETALL", k[0])
        fields = {int(h[i][1:]): int(h[i + 1]) for i in range(0, len(h), 2)}
        if any(f != v for f, v in fields.items()):
            bad.append("%s: field and value differ" % k[0])
        members(k[0], fields)
        # Every acknowledged field still has a TTL (HTTL: -1 = none, -2 = no
        # such field); unacknowledged ones may lack it (HSET without HEXPIRE).
        acked = sorted(ack & set(fields))
        for i in range(0, len(acked), 500):
            part = acked[i:i + 500]
            ttls = c.call("HTTL", k[0], "FIELDS", len(part), *["f%d" % n for n in part])
            lost = [n for n, t in zip(part, ttls) if not 0 < t <= HFE_TTL_S]
            if lost:
                bad.append("%s: %d acknowledged fields without their TTL, e.g. %s (HTTL %s)" % (
                    k[0], len(lost), lost[:5], [t for n, t in zip(part, ttls) if n in lost[:5]]))
    elif w.kind == "sadd":
        members(k[0], _ints(c.call("SMEMBERS", k[0])))
    elif w.kind == "lua":
        v = c.call("GET", k[0])
        v = int(v) if v is not None else 0
        items = _ints(c.call("LRANGE", k[1], 0, -1))
        if v != len(items):
            bad.append("Lua script not atomic: %s = %d but %s has %d items" % (k[0], v, k[1], len(items)))
        if items != sorted(set(items)):
            bad.append("%s: not strictly increasing" % k[1])
        members(k[1], items)
    else:
        v = c.call("GET", k[0])
        v = int(v) if v is not None else 0
        items = _ints(c.call("SMEMBERS", k[1]))
        if v != len(items):
            bad.append("MULTI/EXEC not atomic: %s = %d but %s has %d members" % (k[0], v, k[1], len(items)))
        members(k[1], items)
    return ["%s writer %d: %s" % (w.kind, w.wid, b) for b in bad]


class CrashHarness:
    KINDS = ("incr", "rpush", "set", "hset", "sadd", "lua", "multi")

    def __init__(self, tmpdir, seed=None, writers_per_kind=1, config_text="{}\n", log=None,
                 server_bin=None):
        self.rng = random.Random(seed)
        self.server_bin = server_bin or harness.SERVER_BIN
        self.kinds = self.KINDS + (("hfe",) if server_has_hash_field_ttl(self.server_bin) else ())
        self.cluster = cluster.Cluster(tmpdir, config_text=config_text, rng=self.rng,
                                       server_bin=self.server_bin)
        self.writers = []
        wid = 0
        for kind in self.kinds:
            for _ in range(writers_per_kind):
                self.writers.append(Writer(kind, wid, self.cluster.addr))
                wid += 1
        self.faults = {f: 0 for f in FAULTS}
        self.rounds = 0
        self.checkpoints = 0
        self.recovery_seconds = []
        self.log = log or (lambda msg: None)

    def start_writers(self):
        for w in self.writers:
            w.start()

    def stop_writers(self):
        for w in self.writers:
            w.stop_flag.set()
        for w in self.writers:
            w.join(30)

    def verify(self):
        bad = []
        with self.cluster.direct() as c:
            for w in self.writers:
                bad += check_writer(w, c)
        if bad:
            raise AssertionError("after %d rounds (%s):\n  %s" % (
                self.rounds, "; ".join(self.cluster.events[-3:]), "\n  ".join(bad[:20])))

    def fault(self, kind):
        c = self.cluster
        t0 = time.monotonic()
        {"upstream": c.kill_upstream, "proxy": c.kill_proxy, "both": c.kill_both,
         "power_loss": c.power_loss}[kind]()
        if kind == "upstream":
            # The proxy notices the loss, restores, and only then serves.
            harness.wait_until(lambda: c.proxy.readyz() != 200 or self._restores() > 0, 10,
                               "the proxy to notice the upstream restart")
        c.proxy.wait_ready(120)
        self.recovery_seconds.append(time.monotonic() - t0)
        self.faults[kind] += 1

    def checkpoint(self, timeout=120):
        """A checkpoint under the writers' load (a full sync of everything
        written so far: with hash field TTLs among the data on Valkey 9),
        waited for; the next restore starts from it."""
        def checkpointer():
            code, body = self.cluster.proxy.admin_get("/status")
            return json.loads(body).get("checkpointer", {})
        before = checkpointer()
        c = http.client.HTTPConnection("127.0.0.1", self.cluster.proxy.admin_port, timeout=10)
        try:
            c.request("POST", "/checkpoint", body=b"")
            r = c.getresponse()
            body = r.read().decode("utf-8", "replace")
        finally:
            c.close()
        if r.status not in (200, 202):
            raise AssertionError("POST /checkpoint answered %d: %s" % (r.status, body))

        def done():
            now = checkpointer()
            if now.get("failed", 0) > before.get("failed", 0):
                log = self.cluster.upstream.describe().splitlines()
                raise AssertionError("checkpoint failed (server %s): %s\nupstream log tail:\n%s" % (
                    harness.server_label(self.server_bin), now.get("last_error"),
                    "\n".join(log[-8:])))
            return now.get("completed", 0) > before.get("completed", 0) and not now.get("running")
        harness.wait_until(done, timeout, "the checkpoint to complete", interval=0.05,
                           state=checkpointer)
        self.checkpoints += 1
        self.cluster.events.append("checkpoint")

    def _restores(self):
        code, body = self.cluster.proxy.admin_get("/metrics")
        for line in body.splitlines():
            if line.startswith("durable_proxy_restores_total "):
                return float(line.split()[1])
        return 0

    def run(self, rounds, run_seconds=(0.3, 1.0), faults=FAULTS, verify_every=1,
            checkpoint_every=3):
        """rounds of: let the writers run, (every checkpoint_every rounds, from
        the second on: take a checkpoint and let them run on), inject a
        fault, wait for the proxy to serve again; verify (with the writers
        paused) every verify_every rounds and at the end."""
        self.start_writers()
        try:
            for i in range(rounds):
                time.sleep(self.rng.uniform(*run_seconds))
                if checkpoint_every and i % checkpoint_every == 1:
                    self.checkpoint()
                    time.sleep(self.rng.uniform(*run_seconds))
                kind = faults[i % len(faults)] if i < len(faults) else self.rng.choice(faults)
                self.fault(kind)
                self.rounds += 1
                self.log("round %d: %s, serving again after %.2f s" % (
                    self.rounds, self.cluster.events[-1], self.recovery_seconds[-1]))
                if (i + 1) % verify_every == 0 or i + 1 == rounds:
                    self.stop_writers()
                    self.verify()
                    self.writers = [self._clone(w) for w in self.writers]
                    self.start_writers()
        finally:
            self.stop_writers()
        time.sleep(0.3)
        self.verify()

    @staticmethod
    def _clone(w):
        """A writer thread can run once: carry its history into a new one."""
        n = Writer(w.kind, w.wid, w.addr)
        n.attempted, n.acked, n.seq, n.errors = w.attempted, w.acked, w.seq, w.errors
        return n

    def totals(self):
        att = sum(len(w.attempted) for w in self.writers)
        ack = sum(len(w.acked) for w in self.writers)
        errors = {}
        for w in self.writers:
            for k, v in w.errors.items():
                errors[k] = errors.get(k, 0) + v
        rs = sorted(self.recovery_seconds)
        return {"server": harness.server_label(self.server_bin), "kinds": list(self.kinds),
                "rounds": self.rounds, "checkpoints": self.checkpoints,
                "faults": dict(self.faults), "attempted": att,
                "acknowledged": ack, "errors": errors,
                "recovery_p50_s": rs[len(rs) // 2] if rs else 0,
                "recovery_max_s": rs[-1] if rs else 0}

    def stop(self):
        self.stop_writers()
        self.cluster.stop()
