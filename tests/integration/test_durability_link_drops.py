"""Replica-link drops while the upstream stays up (CLIENT KILL TYPE replica,
the replica output buffer limit): the upstream is the same process (the
proxy's control connection never dropped), so clients see latency, never
an error: sessions keep forwarding, replies are held until the link is back
and its offset verified, and every acknowledged write is in the log."""
import threading

import pytest

import harness
from recovery_util import cluster, pipeline, wait_restored

pytestmark = pytest.mark.proxy_only

CLIENTS = 4
BATCH = 50


def held_drops(cl):
    with open(cl.proxy.log_path) as f:
        return f.read().count("the upstream process is the same")


class Writer(threading.Thread):
    """Pipelines SET w<n>:<i> and GET of the previous key; records every
    reply that is an error and the keys whose SET was acknowledged."""

    def __init__(self, addr, n, stop):
        super().__init__(daemon=True)
        self.addr, self.n, self.stop = addr, n, stop
        self.acked, self.errors, self.failure = [], [], None

    def run(self):
        try:
            with harness.RespConn(self.addr, timeout=30) as c:
                i = 0
                while not self.stop.is_set():
                    keys = ["w%d:%d" % (self.n, i + j) for j in range(BATCH)]
                    c.send(b"".join(harness.encode("SET", k, "v") + harness.encode("GET", k) for k in keys))
                    for k in keys:
                        r_set = c.read_frame(30)[1]
                        r_get = c.read_frame(30)[1]
                        for r in (r_set, r_get):
                            if isinstance(r, harness.Error):
                                self.errors.append((k, str(r)))
                        if r_set == "OK":
                            self.acked.append(k.encode())
                    i += BATCH
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failure = repr(e)


def run_drops(cl, drop, times):
    stop = threading.Event()
    writers = [Writer(cl.addr, n, stop) for n in range(CLIENTS)]
    for w in writers:
        w.start()
    try:
        with cl.direct() as d:
            def syncs():
                st = harness.info_fields(d, "stats")
                return int(st["sync_partial_ok"]) + int(st["sync_full"])
            for k in range(times):
                harness.wait_until(lambda: sum(len(w.acked) for w in writers) > (k + 1) * 100, 30,
                                   "writes acknowledged before drop %d" % k)
                before = syncs()
                drop(d)
                harness.wait_until(lambda: syncs() > before, 30, "the proxy's link to reconnect after drop %d" % k)
                harness.wait_until(lambda: "state=online" in harness.info_fields(d, "replication").get("slave0", ""),
                                   30, "the proxy's link back online after drop %d" % k)
    finally:
        stop.set()
        for w in writers:
            w.join(60)
    for w in writers:
        assert w.failure is None, w.failure
        assert w.errors == [], w.errors[:5]
    acked = [k for w in writers for k in w.acked]
    assert len(acked) > times * 100
    assert held_drops(cl) >= times
    return acked


def assert_in_log(cl, acked):
    _, data = harness.read_log_stream(cl.proxy.log_dir)
    logged = {c[1] for c in harness.parse_stream_commands(data) if c[0] == b"SET"}
    missing = [k for k in acked if k not in logged]
    assert missing == [], missing[:5]


def assert_restored(cl, acked):
    """kill -9 of the upstream: the restore brings back every acknowledged write."""
    cl.kill_upstream()
    wait_restored(cl.proxy)
    with cl.direct() as d:
        got = pipeline(d, [["EXISTS", k] for k in acked])
    missing = [k for k, n in zip(acked, got) if n != 1]
    assert missing == [], missing[:5]


@pytest.fixture
def cl(tmp_path):
    c = cluster.Cluster(tmp_path)
    yield c
    c.stop()


def test_client_kill_type_replica_gives_latency_not_errors(cl):
    acked = run_drops(cl, lambda d: d.call("CLIENT", "KILL", "TYPE", "replica"), 15)
    assert_in_log(cl, acked)  # no full resync: the log holds them all
    assert_restored(cl, acked)


def test_replica_output_buffer_limit_gives_latency_not_errors(cl):
    """The proxy is stopped (SIGSTOP) for a moment, direct writes pass the
    replica output buffer limit and the upstream drops the link.  Valkey
    counts a replica's output buffer only once it is past the backlog
    (shared replication buffer), so the link comes back with a full resync
    of the same process: the replies wait for its checkpoint."""
    import signal

    def overflow(d):
        assert d.call("CONFIG", "SET", "repl-backlog-size", "1048576") == "OK"
        assert d.call("CONFIG", "SET", "client-output-buffer-limit", "replica 65536 0 0") == "OK"
        blob = "x" * 16384
        cl.proxy.signal(signal.SIGSTOP)
        try:
            n = [0]

            def dropped():
                if harness.info_fields(d, "replication")["connected_slaves"] == "0":
                    return True
                d.send(b"".join(harness.encode("SET", "direct:%d" % (n[0] + i), blob) for i in range(64)))
                assert all(d.read_frame(10)[1] == "OK" for _ in range(64))
                n[0] += 64
                return False
            harness.wait_until(dropped, 20, "the upstream to drop the stopped proxy at its output buffer limit")
        finally:
            cl.proxy.signal(signal.SIGCONT)
        assert d.call("CONFIG", "SET", "client-output-buffer-limit", "replica 0 0 0") == "OK"
    acked = run_drops(cl, overflow, 4)
    assert_restored(cl, acked)


def test_replicaof_and_back_gives_latency_not_errors(cl):
    """REPLICAOF <somewhere> then REPLICAOF NO ONE, run directly on the
    upstream (in one MULTI, so no client meets it as a read-only replica):
    it drops its replicas and takes a new replid, with the log's history as
    its replid2, so the link continues under the new replid."""
    def flip(d):
        d.send(harness.encode("MULTI") + harness.encode("REPLICAOF", "127.0.0.1", "1") +
               harness.encode("REPLICAOF", "NO", "ONE") + harness.encode("EXEC"))
        replies = [d.read_frame(10)[1] for _ in range(4)]
        assert replies[0] == "OK" and isinstance(replies[3], list), replies
    acked = run_drops(cl, flip, 5)
    assert_in_log(cl, acked)  # continued each time: the log holds them all
    assert_restored(cl, acked)


def test_a_hold_longer_than_hold_timeout_stops_serving(tmp_path):
    """The upstream stays up but the link cannot come back (an ACL denies
    PSYNC): after durability.hold_timeout the proxy stops taking commands,
    with a reason, and serves again once the link is back."""
    cl = cluster.Cluster(tmp_path, config_text="durability:\n  hold_timeout: 1s\n")
    try:
        with harness.RespConn(cl.addr) as c:
            # The first write waits for the log's first segment (seconds on a
            # busy machine, past the 1 s hold_timeout): until one is acked.
            harness.wait_until(lambda: c.call("SET", "k", "v") == "OK", 30,
                               "a first write acknowledged (the log's first segment ready)")
            with cl.direct() as d:
                assert d.call("ACL", "SETUSER", "default", "-psync", "-sync") == "OK"
                assert d.call("CLIENT", "KILL", "TYPE", "replica") >= 1

                def refused():
                    r = c.call("GET", "k")
                    assert r == b"v" or isinstance(r, harness.Error), r
                    return isinstance(r, harness.Error)
                harness.wait_until(refused, 20, "the proxy to stop serving")
                r = c.call("GET", "k")
                assert r.startswith("LOADING") and "longer than durability.hold_timeout" in r, r
                assert d.call("ACL", "SETUSER", "default", "+psync", "+sync") == "OK"
            cl.proxy.wait_ready(30)
            assert c.call("GET", "k") == b"v"
            assert c.call("SET", "k2", "v") == "OK"
    finally:
        cl.stop()
