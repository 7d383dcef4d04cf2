"""upstream.sharing: auto -- clients without connection state share a few
upstream connections; a client moves to its own connection before its first
command that needs one, and keeps it.

Each test starts its own upstream and proxy (with --sharing auto whatever
DP_IT_SHARING says), so it can count the upstream's connections."""
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from durability_util import Durable, held, timed_read  # noqa: E402

pytestmark = pytest.mark.proxy_only

SHARED = 2  # upstream.shared_connections (default)


class Pair:
    def __init__(self, tmp, durability="off", server_args=(), config_text="{}\n", proxy_args=(),
                 direct_auth=()):
        self.direct_auth = direct_auth  # AUTH arguments for inspection connections
        self.upstream = harness.Server(tmp, server_args, name="upstream")
        try:
            self.proxy = harness.Proxy(tmp, self.upstream.port, durability, config_text=config_text,
                                       extra_args=["--sharing", "auto"] + list(proxy_args))
        except Exception:
            self.upstream.stop()
            raise

    def conn(self, **kw):
        return harness.RespConn(self.proxy.addr, **kw)

    def wait_sharing(self):
        wait_sharing(self.proxy)

    def direct(self, **kw):
        c = harness.RespConn(self.upstream.addr, **kw)
        if self.direct_auth:
            assert c.call("AUTH", *self.direct_auth) == "OK"
        return c

    def client_list(self):
        with self.direct() as d:
            text = bytes(d.call("CLIENT", "LIST")).decode()
        rows = []
        for line in text.splitlines():
            rows.append(dict(f.split("=", 1) for f in line.split(" ") if "=" in f))
        return rows

    def stop(self):
        self.proxy.stop()
        self.upstream.stop()


SHARING_ON = "clients share"  # the proxy's log line once its probe found new connections need no AUTH


def wait_sharing(proxy):
    """Until the pool's first probe answered (clients before it get their own
    connections)."""
    harness.wait_until(lambda: SHARING_ON in open(proxy.log_path, errors="replace").read(), 10,
                       "the proxy's log to say %r" % SHARING_ON)


@pytest.fixture
def pair(tmp_path):
    made = []

    def make(wait=True, **kw):
        p = Pair(tmp_path / ("p%d" % len(made)), **kw)
        made.append(p)
        if wait:
            p.wait_sharing()
        return p
    yield make
    for p in made:
        p.stop()


def session_rows(p):
    """Upstream connections that are not the proxy's own links or this
    inspection connection."""
    # (The pool's probe connection comes and goes every second: named, or,
    # accepted but not read yet, with no command.)
    return [r for r in p.client_list()
            if r.get("name") not in ("durable-proxy-control", "durable-proxy-replica",
                                     "durable-proxy-checkpoint", "durable-proxy-probe")
            and r.get("cmd") not in ("client|list", "NULL")
            and r.get("lib-name") != "durable-proxy-probes"]


def test_many_clients_share_few_upstream_connections(pair):
    p = pair()
    conns = [p.conn() for _ in range(20)]
    try:
        for i, c in enumerate(conns):
            assert c.call("SET", "k%d" % i, str(i)) == "OK"
        for i, c in enumerate(conns):
            assert c.call("GET", "k%d" % i) == str(i).encode()
        rows = session_rows(p)
        assert len(rows) == SHARED, rows
        assert all(r["name"] == "durable-proxy-shared" for r in rows), rows
    finally:
        for c in conns:
            c.close()


def test_pipelines_of_many_clients_keep_each_clients_order(pair):
    p = pair()
    n, depth = 12, 300
    conns = [p.conn(timeout=harness.scaled(10)) for _ in range(n)]
    try:
        for i, c in enumerate(conns):  # every client's pipeline is in flight at once
            c.send(b"".join(harness.encode("INCR", "c%d" % i) for _ in range(depth)) +
                   harness.encode("GET", "c%d" % i))
        for i, c in enumerate(conns):
            got = [c.read_frame()[1] for _ in range(depth + 1)]
            assert got[:depth] == list(range(1, depth + 1)), "client %d: replies out of order" % i
            assert got[depth] == str(depth).encode()
    finally:
        for c in conns:
            c.close()


def test_a_transaction_moves_the_client_after_its_shared_commands(pair):
    """SET and INCR go out shared; MULTI needs its own connection: it runs
    only after they were answered, and the rest follows it there."""
    p = pair()
    with p.conn() as c:
        c.send(harness.encode("SET", "x", "1") + harness.encode("INCR", "x") + harness.encode("MULTI") +
               harness.encode("INCR", "x") + harness.encode("EXEC") + harness.encode("GET", "x"))
        got = [c.read_frame()[1] for _ in range(6)]
        assert got == ["OK", 2, "OK", "QUEUED", [3], b"3"]
        own = [r for r in session_rows(p) if r.get("name") != "durable-proxy-shared"]
        assert len(own) == 1, own  # it kept its own connection
        assert c.call("CLIENT", "GETNAME") is None


def test_client_setinfo_is_kept_and_sent_when_the_client_moves(pair):
    p = pair()
    with harness.RespConn(p.upstream.addr) as d:
        if isinstance(d.call("CLIENT", "SETINFO", "LIB-NAME", "probe"), harness.Error):
            pytest.skip("%s has no CLIENT SETINFO" % harness.server_label())
    with p.conn() as c:
        assert c.call("CLIENT", "SETINFO", "LIB-NAME", "dp-test") == "OK"
        assert c.call("CLIENT", "SETINFO", "LIB-VER", "1.2") == "OK"
        assert c.call("SET", "a", "1") == "OK"
        assert len(session_rows(p)) == SHARED  # still shared
        info = bytes(c.call("CLIENT", "INFO")).decode()  # moves it
        assert "lib-name=dp-test" in info and "lib-ver=1.2" in info, info
        # An invalid value is the server's to refuse.
        err = c.call("CLIENT", "SETINFO", "LIB-NAME", "has space")
        assert isinstance(err, harness.Error), err


def test_select_moves_the_client_and_others_stay_in_db0(pair):
    p = pair()
    with p.conn() as a, p.conn() as b:
        assert a.call("SELECT", "1") == "OK"
        assert a.call("SET", "k", "in-db1") == "OK"
        assert b.call("GET", "k") is None
        assert b.call("SET", "k", "in-db0") == "OK"
        assert a.call("GET", "k") == b"in-db1"


def test_blocking_command_does_not_hold_up_shared_clients(pair):
    p = pair()
    with p.conn(timeout=harness.scaled(10)) as a, p.conn() as b:
        a.send_cmd("BLPOP", "q", "0")
        # Observed, not slept: A's BLPOP blocks in the server before B acts.
        with p.direct() as d:
            harness.wait_until(lambda: harness.info_fields(d, "clients").get("blocked_clients") == "1",
                               10, "BLPOP blocked in the upstream")
        for i in range(50):  # B on a shared connection is served meanwhile
            assert b.call("SET", "s%d" % i, "v") == "OK"
        assert b.call("RPUSH", "q", "item") == 1
        assert a.read_frame()[1] == [b"q", b"item"]


def test_script_kill_reaches_a_busy_script_on_the_same_shared_connection(pair):
    """A and B share connection 0 (round-robin: A, X, B); A's script loops
    forever; B's SCRIPT KILL must not queue behind it there."""
    p = pair(server_args=["--busy-reply-threshold", "50"])
    a, x, b = p.conn(timeout=harness.scaled(10)), p.conn(), p.conn(timeout=harness.scaled(10))
    try:
        for c in (a, x, b):
            assert c.call("PING") == "PONG"
        a.send_cmd("EVAL", "while true do end", "0")
        with p.direct() as d:
            harness.wait_until(lambda: isinstance(d.call("PING"), harness.Error), 10,
                               "the script to pass busy-reply-threshold (PING answers -BUSY)")
        assert b.call("SCRIPT", "KILL") == "OK"
        err = a.read_frame()[1]
        assert isinstance(err, harness.Error) and "killed" in err.lower(), err
        assert x.call("PING") == "PONG"
    finally:
        for c in (a, x, b):
            c.close()


def test_subscriber_moves_and_gets_messages(pair):
    p = pair()
    with p.conn() as sub, p.conn() as pub:
        assert sub.call("SUBSCRIBE", "ch") == [b"subscribe", b"ch", 1]
        assert pub.call("PUBLISH", "ch", "hello") == 1
        assert sub.read_frame()[1] == [b"message", b"ch", b"hello"]


def test_shared_connections_never_give_a_client_more_rights(pair, tmp_path):
    """The default user may touch only pub:* keys; `admin` may touch all.  A
    client that has not authenticated gets the default user's rights on a
    shared connection, exactly as on its own; AUTH moves it, and the shared
    connections keep the default user's rights after it did."""
    secret = tmp_path / "pw"
    secret.write_text("proxy-secret\n")
    acl = tmp_path / "users.acl"
    acl.write_text("user default on nopass ~pub:* &* +@all\n"
                   "user admin on >admin-secret ~* &* +@all\n"
                   "user durable-proxy on >proxy-secret ~* &* +@all\n")
    p = pair(server_args=["--aclfile", str(acl)],
             config_text="upstream:\n  username: durable-proxy\n  password_file: %s\n" % secret)
    with p.direct() as d:
        direct_error = d.call("SET", "secret", "x")
    assert isinstance(direct_error, harness.Error) and "NOPERM" in direct_error, direct_error
    with p.conn() as anon, p.conn() as admin:
        assert anon.call("SET", "pub:1", "x") == "OK"
        err = anon.call("SET", "secret", "x")
        assert isinstance(err, harness.Error) and err == direct_error, err
        assert admin.call("AUTH", "admin", "admin-secret") == "OK"
        assert admin.call("SET", "secret", "x") == "OK"
        assert admin.call("ACL", "WHOAMI") == b"admin"
        # After admin's AUTH the shared connections still run as default.
        with p.conn() as anon2:
            assert anon2.call("ACL", "WHOAMI") == b"default"
            err2 = anon2.call("GET", "secret")
            assert isinstance(err2, harness.Error) and "NOPERM" in err2, err2
        assert anon.call("ACL", "WHOAMI") == b"default"


def test_requirepass_upstream_means_no_sharing(pair, tmp_path):
    """New connections must authenticate: nothing is shared (a shared
    connection would let Valkey's limits for unauthenticated connections
    close it for every client), and a client is refused exactly as directly."""
    secret = tmp_path / "pw"
    secret.write_text("pw1\n")
    p = pair(wait=False, server_args=["--requirepass", "pw1"], direct_auth=("pw1",),
             config_text="upstream:\n  password_file: %s\n" % secret)
    with harness.RespConn(p.upstream.addr) as d:
        direct_error = d.call("GET", "k")
    with p.conn() as victim, p.conn() as attacker:
        err = victim.call("GET", "k")
        assert isinstance(err, harness.Error) and err == direct_error, err
        # Past Valkey's unauthenticated limits: only the attacker is closed.
        attacker.send_cmd("MSET", *["a%d" % i for i in range(12)])
        try:
            attacker.read_frame()
            attacker.read_frame()
        except (harness.Closed, ConnectionError, socket.timeout):
            pass
        assert victim.call("AUTH", "pw1") == "OK"
        assert victim.call("SET", "k", "v") == "OK"
        assert victim.call("GET", "k") == b"v"
    assert not [r for r in p.client_list() if r.get("name") == "durable-proxy-shared"]
    assert SHARING_ON not in open(p.proxy.log_path, errors="replace").read()


def test_requirepass_set_at_runtime_ends_sharing(pair):
    p = pair()
    with p.conn() as c:
        assert c.call("SET", "k", "v") == "OK"
        assert [r for r in session_rows(p) if r.get("name") == "durable-proxy-shared"]
        with p.direct() as d:
            assert d.call("CONFIG", "SET", "requirepass", "late") == "OK"
            p.direct_auth = ("late",)
            harness.wait_until(lambda: not [r for r in p.client_list()
                                            if r.get("name") == "durable-proxy-shared"], 10,
                               "the shared connections to close after requirepass was set")
            with harness.RespConn(p.upstream.addr) as fresh:
                direct_error = fresh.call("GET", "k")
            with p.conn() as late:
                err = late.call("GET", "k")
                assert isinstance(err, harness.Error) and err == direct_error, err
                assert late.call("AUTH", "late") == "OK"
                assert late.call("GET", "k") == b"v"


def test_a_killed_shared_connection_closes_its_clients_and_the_pool_reopens(pair):
    p = pair(proxy_args=[])
    conns = [p.conn() for _ in range(4)]
    try:
        for c in conns:
            assert c.call("PING") == "PONG"
        victims = [r for r in session_rows(p) if r.get("name") == "durable-proxy-shared"]
        assert len(victims) == SHARED
        with p.direct() as d:
            assert d.call("CLIENT", "KILL", "ID", victims[0]["id"]) == 1
        # The clients attached to it are closed (as if their own connection
        # had been killed); the others are served.
        closed = 0
        for c in conns:
            try:
                r = c.call("PING")
                assert r == "PONG", r
            except (harness.Closed, ConnectionError, socket.timeout):
                closed += 1
        assert closed == 2, "%d clients of 4 closed" % closed
        with p.conn() as fresh:
            for i in range(4):
                assert fresh.call("SET", "after%d" % i, "1") == "OK"
    finally:
        for c in conns:
            c.close()


def test_a_reply_past_the_request_limit_closes_nobody(pair):
    """Replies are not bound by limits.max_bulk_len: a string grown past it
    by APPEND is read back, and the other clients of the shared connection
    are not closed."""
    p = pair(config_text="limits:\n  max_bulk_len: 64kb\n")
    chunk = "x" * (48 << 10)
    with p.conn(timeout=harness.scaled(10)) as a, p.conn() as b, p.conn() as c:
        for conn in (a, b, c):
            assert conn.call("PING") == "PONG"
        assert a.call("APPEND", "big", chunk) == len(chunk)
        assert a.call("APPEND", "big", chunk) == 2 * len(chunk)
        assert a.call("GET", "big") == (chunk * 2).encode()
        assert b.call("PING") == "PONG" and c.call("PING") == "PONG"


def test_wait_is_refused_when_the_marker_cannot_be_published(pair, tmp_path):
    """Default user without channel rights: the PUBLISH that would let the
    client's own connection count its shared writes fails, so WAIT there is
    refused rather than answered with replicas that never got the write."""
    acl = tmp_path / "users.acl"
    acl.write_text("user default on nopass ~* resetchannels +@all\n"
                   "user durable-proxy on >proxy-secret ~* &* +@all\n")
    secret = tmp_path / "pw"
    secret.write_text("proxy-secret\n")
    p = pair(server_args=["--aclfile", str(acl)],
             config_text="upstream:\n  username: durable-proxy\n  password_file: %s\n" % secret)
    with p.conn() as c:
        assert c.call("SET", "x", "1") == "OK"
        err = c.call("WAIT", "1", "100")
        assert isinstance(err, harness.Error) and "WAIT refused" in err and "PUBLISH" in err, err
    with p.conn() as fresh:  # a client that did not write shared: Valkey's own WAIT
        assert fresh.call("WAIT", "0", "10") == 0


def test_upstream_down_gives_the_unreachable_error(pair):
    p = pair()
    p.upstream.stop()
    with p.conn() as c:
        r = c.call("PING")
        assert isinstance(r, harness.Error), r
        assert "LOADING" in r or "unreachable" in r, r


# ---------------------------------------------------------------- durability

@pytest.fixture
def durable_shared(tmp_path):
    d = Durable(tmp_path, config_text="upstream:\n  sharing: auto\n")
    wait_sharing(d.proxy)
    yield d
    d.stop()


def test_held_write_on_a_shared_connection_and_a_read_of_another_key(durable_shared):
    d = durable_shared
    d.ctl.block()
    with d.conn() as w, d.conn() as r:
        w.send_cmd("SET", "held", "1")
        with d.direct() as dc:
            harness.wait_until(lambda: dc.call("GET", "held") == b"1", 10, "SET held executed")
        assert held(w), "write acknowledged before its fsync"
        # Another client, on a shared connection too: its read of another
        # key is not held; its read of the pending key is.
        r.send_cmd("GET", "other")
        assert r.read_frame(timeout=harness.scaled(5))[1] is None
        r.send_cmd("GET", "held")
        assert held(r), "read of a pending key released before the write was durable"
        d.ctl.unblock()
        assert timed_read(w)[1] == "OK"
        assert timed_read(r)[1] == b"1"


def test_a_client_that_leaves_before_its_write_ran_keeps_the_key_pending(durable_shared):
    """The writer leaves while its SET still waits in the server (writes
    paused).  Its mark must wait for a probe that follows the SET's reply: a
    probe sent at the leave answers an offset before the SET, and a log
    fsync of earlier data would then clear the mark while the SET is not
    durable.  That fsync is made to happen here (an earlier write's).  (The
    stream tracker also marks the key once the SET reaches the log; this
    test holds the proxy to the result of both.)"""
    d = durable_shared
    d.ctl.block()
    with d.direct() as dc:
        assert dc.call("SET", "earlier", "1") == "OK"  # in the log, not fsynced
        assert dc.call("CLIENT", "PAUSE", str(int(harness.scaled(30) * 1000)), "WRITE") == "OK"
        try:
            w = d.conn()
            w.send_cmd("SET", "gone", "1")
            harness.wait_until(lambda: harness.info_fields(dc, "clients").get("blocked_clients") == "1",
                               10, "the SET waiting in the paused upstream")
            w.close()
            for _ in range(3):  # round trips through the proxy after the leave
                d.info()
            d.ctl.unblock()
            d.settle()          # the earlier write is durable; the SET has not run
            d.ctl.block()
        finally:
            assert dc.call("CLIENT", "UNPAUSE") == "OK"
        harness.wait_until(lambda: dc.call("GET", "gone") == b"1", 10, "SET gone executed")
    with d.conn() as r:
        r.send_cmd("GET", "gone")
        assert held(r), "read of a key written by a client that left was released before the write was durable"
        d.ctl.unblock()
        assert timed_read(r)[1] == b"1"


def test_wait_after_the_move_counts_the_shared_writes(durable_shared):
    """SET goes out shared; WAIT needs the client's own connection, where the
    server has no write of this client to count from.  With the log's fsync
    blocked the proxy has not acknowledged the SET: WAIT must count 0."""
    d = durable_shared
    with d.conn(timeout=harness.scaled(10)) as c, d.direct() as dc:
        d.ctl.block()
        c.send(harness.encode("SET", "wk", "v") + harness.encode("WAIT", "1", "200"))
        harness.wait_until(lambda: dc.call("GET", "wk") == b"v", 10, "SET wk executed")
        assert held(c)
        d.ctl.unblock()
        assert timed_read(c)[1] == "OK"
        assert timed_read(c)[1] == 0, "WAIT counted a replica that had not acknowledged the SET"


def test_many_writers_through_shared_connections_all_durable(durable_shared):
    d = durable_shared
    errors = []

    def writer(i):
        try:
            with d.conn(timeout=harness.scaled(20)) as c:
                for j in range(100):
                    if c.call("SET", "w%d:%d" % (i, j), str(j)) != "OK":
                        errors.append((i, j))
        except Exception as e:  # noqa: BLE001
            errors.append((i, repr(e)))
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    cmds = d.log_commands()
    logged = {c[1] for c in cmds if c and c[0].upper() == b"SET"}
    missing = [(i, j) for i in range(16) for j in range(100) if ("w%d:%d" % (i, j)).encode() not in logged]
    assert not missing, "acknowledged writes missing from the log: %s" % missing[:5]


def test_shared_writes_are_held_at_the_offset_of_a_role_behind_them(durable_shared):
    """A ROLE follows each shared write; its answer, read with the replies,
    is their offset, so no control-link probe is sent for them.  The hold is
    still exact: with the log's fsync blocked no reply goes."""
    d = durable_shared
    before = d.info()
    clients = [d.conn(timeout=harness.scaled(10)) for _ in range(3)]
    try:
        d.ctl.block()
        for i, c in enumerate(clients):
            c.send_cmd("SET", "role:%d" % i, "v")
        with d.direct() as dc:
            harness.wait_until(lambda: all(dc.call("GET", "role:%d" % i) == b"v" for i in range(3)), 10,
                               "the three SETs executed")
        for c in clients:
            assert held(c), "a shared write acknowledged before its fsync"
        d.ctl.unblock()
        for c in clients:
            assert timed_read(c)[1] == "OK"
        for j in range(20):
            for i, c in enumerate(clients):
                assert c.call("SET", "role:%d:%d" % (i, j), "v") == "OK"
    finally:
        for c in clients:
            c.close()
    after = d.info()
    assert int(after["shared_role_offsets"]) > int(before["shared_role_offsets"]), after
    assert int(after["probes_sent"]) == int(before["probes_sent"]), \
        "shared writes covered by control-link probes: %s -> %s" % (before["probes_sent"], after["probes_sent"])


def test_role_refused_to_the_default_user_falls_back_to_probes(tmp_path):
    """Where the default user may not run ROLE, the shared connections get
    -NOPERM once, send no more ROLEs, and their replies wait for control-link
    probes (the proxy's own user may): still held until durable."""
    secret = tmp_path / "pw"
    secret.write_text("proxy-secret\n")
    acl = tmp_path / "users.acl"
    acl.write_text("user default on nopass ~* &* +@all -role\n"
                   "user durable-proxy on >proxy-secret ~* &* +@all\n")
    d = Durable(tmp_path, server_args=["--aclfile", str(acl)],
                config_text="upstream:\n  sharing: auto\n  username: durable-proxy\n  password_file: %s\n" % secret)
    try:
        wait_sharing(d.proxy)
        with d.conn(timeout=harness.scaled(10)) as c, d.direct() as dc:
            assert isinstance(dc.call("ROLE"), harness.Error)
            before = int(d.info()["probes_sent"])
            d.ctl.block()
            c.send_cmd("SET", "nr", "1")
            harness.wait_until(lambda: dc.call("GET", "nr") == b"1", 10, "SET nr executed")
            assert held(c), "write acknowledged before its fsync"
            d.ctl.unblock()
            assert timed_read(c)[1] == "OK"
            assert c.call("SET", "nr2", "1") == "OK"
            assert int(d.info()["probes_sent"]) > before
        log = open(d.proxy.log_path, errors="replace").read()
        assert "ROLE got NOPERM" in log, log[-2000:]
    finally:
        d.stop()
