"""Class 1: the session's idea of its connection state drifts from the
server's (selected db, MULTI, RESET).

Each case leaves a write pending (fsync held) in one db, then tries to read
it, or write unheld, through a connection whose selected db the proxy could
get wrong: a pipelined SELECT the server refuses, a SELECT inside a
transaction that never runs, a pipelined RESET.  The read must wait until
the write is durable.
"""
import pytest

import harness
from durability_util import adv, durable, reset, same_turn  # noqa: F401

HOLD_S = 0.5


def pending_write(d, w, db, key, value):
    """W runs SET key value in `db` with fsync held; returns once the
    upstream executed it (seen on a direct connection)."""
    assert w.call("SELECT", str(db)) == "OK"
    d.ctl.block()
    w.send_cmd("SET", key, value)
    with d.direct() as c:
        c.call("SELECT", str(db))
        harness.wait_until(lambda: c.call("GET", key) == value.encode(), 5,
                           "the upstream to execute SET %s in db %d" % (key, db))


def released(d, w, r, value):
    """fsync released: W's SET and R's read both answer."""
    d.ctl.unblock()
    assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"
    assert r.read_frame(timeout=harness.scaled(5))[1] == value


@pytest.mark.parametrize("arg,start_db", [("01", 0), ("99", 0), ("16", 0), ("-0", 1)])
def test_pipelined_select_the_server_refuses_then_get(adv, arg, start_db):
    """SELECT <arg> fails on the server (not an integer by its rules, or out
    of range); a GET pipelined behind it runs in the old db."""
    with adv.conn() as w, adv.conn() as r:
        if start_db:
            assert r.call("SELECT", str(start_db)) == "OK"
        pending_write(adv, w, start_db, "adv:db:k", "v1")
        r.send(harness.encode("SELECT", arg) + harness.encode("GET", "adv:db:k"))
        assert str(r.read_frame(timeout=harness.scaled(5))[1]).startswith("ERR")
        assert r.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        released(adv, w, r, b"v1")


@pytest.mark.parametrize("how", ["execabort", "watch"])
def test_select_inside_a_transaction_that_never_runs(adv, how):
    """MULTI; SELECT 1; ... whose EXEC fails (EXECABORT, WATCH) or is
    discarded: the connection stays in db 0."""
    with adv.conn() as w, adv.conn() as r, adv.direct() as other:
        if how == "execabort":
            r.send(harness.encode("MULTI") + harness.encode("SELECT", "1") +
                   harness.encode("NO-SUCH-COMMAND") + harness.encode("EXEC"))
            frames = [r.read_frame(timeout=harness.scaled(5))[1] for _ in range(4)]
            assert str(frames[3]).startswith("EXECABORT"), frames
        elif how == "watch":
            assert r.call("WATCH", "adv:db:w") == "OK"
            other.call("SET", "adv:db:w", "changed")
            r.send(harness.encode("MULTI") + harness.encode("SELECT", "1") + harness.encode("EXEC"))
            frames = [r.read_frame(timeout=harness.scaled(5))[1] for _ in range(3)]
            assert frames[2] is None, frames
        else:
            r.send(harness.encode("MULTI") + harness.encode("SELECT", "1") + harness.encode("DISCARD"))
            frames = [r.read_frame(timeout=harness.scaled(5))[1] for _ in range(3)]
            assert frames[2] == "OK", frames
        pending_write(adv, w, 0, "adv:db:k", "v1")
        r.send_cmd("GET", "adv:db:k")
        assert r.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        released(adv, w, r, b"v1")


def test_pipelined_reset_then_get(adv):
    """RESET puts the connection back in db 0; a GET pipelined behind it
    reads db 0."""
    with adv.conn() as w, adv.conn() as r:
        assert r.call("SELECT", "1") == "OK"
        pending_write(adv, w, 0, "adv:db:k", "v1")
        r.send(harness.encode("RESET") + harness.encode("GET", "adv:db:k"))
        assert r.read_frame(timeout=harness.scaled(5))[1] == "RESET"
        assert r.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        released(adv, w, r, b"v1")


def test_reset_inside_multi_then_write_is_not_queued(adv):
    """MULTI; RESET; SET: RESET ends the transaction at once, so the SET
    runs at once and its +OK must wait for fsync."""
    with adv.conn() as r, adv.direct() as c:
        adv.ctl.block()
        r.send(harness.encode("MULTI") + harness.encode("RESET") + harness.encode("SET", "adv:db:k", "v1"))
        assert r.read_frame(timeout=harness.scaled(5))[1] == "OK"      # MULTI
        assert r.read_frame(timeout=harness.scaled(5))[1] == "RESET"
        harness.wait_until(lambda: c.call("GET", "adv:db:k") == b"v1", 5, "the upstream to execute the SET")
        assert r.nothing_pending(wait=HOLD_S), "SET acknowledged before fsync"
        adv.ctl.unblock()
        assert r.read_frame(timeout=harness.scaled(5))[1] == "OK"


def test_drifted_connection_marks_its_write_in_the_right_db(adv):
    """A connection whose SELECT inside an aborted MULTI never ran writes in
    db 0; a second connection's GET of that key in db 0, run in the same
    event-loop turn (before the replication stream reaches the proxy), must
    wait."""
    with adv.conn() as w, adv.conn() as r, adv.direct() as c:
        w.send(harness.encode("MULTI") + harness.encode("SELECT", "1") +
               harness.encode("NO-SUCH-COMMAND") + harness.encode("EXEC"))
        frames = [w.read_frame(timeout=harness.scaled(5))[1] for _ in range(4)]
        assert str(frames[3]).startswith("EXECABORT"), frames
        adv.ctl.block()
        same_turn(adv, (w, harness.encode("SET", "adv:db:k", "v2")), (r, harness.encode("GET", "adv:db:k")))
        harness.wait_until(lambda: c.call("GET", "adv:db:k") == b"v2", 5, "the upstream to execute the SET")
        assert r.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        released(adv, w, r, b"v2")


def test_write_behind_a_multi_the_server_refuses_is_held(adv):
    """MULTI refused (the user may not run it): the SET pipelined behind it
    runs at once, so its +OK must wait for fsync."""
    with adv.direct() as c:
        assert c.call("ACL", "SETUSER", "adv-nomulti", "on", "nopass", "~*", "&*", "+@all", "-multi") == "OK"
    try:
        with adv.conn() as r, adv.direct() as c:
            assert r.call("AUTH", "adv-nomulti", "x") == "OK"
            adv.ctl.block()
            r.send(harness.encode("MULTI") + harness.encode("SET", "adv:db:k", "v1"))
            assert str(r.read_frame(timeout=harness.scaled(5))[1]).startswith("NOPERM")
            harness.wait_until(lambda: c.call("GET", "adv:db:k") == b"v1", 5, "the upstream to execute the SET")
            assert r.nothing_pending(wait=HOLD_S), "SET acknowledged before fsync"
            adv.ctl.unblock()
            assert r.read_frame(timeout=harness.scaled(5))[1] == "OK"
    finally:
        with adv.direct() as c:
            c.call("ACL", "DELUSER", "adv-nomulti")


@pytest.mark.parametrize("cmd", [("REPLCONF", "ACK", "0"), ("REPLCONF", "GETACK", "*"), ("replconf", "ack", "1", "FACK", "1")])
def test_replconf_the_server_does_not_answer_then_get(adv, cmd):
    """REPLCONF ACK / GETACK from a connection that is not a replica get no
    reply at all from the server; a GET pipelined behind one must still be
    taken for the GET (and wait for the pending write), not for REPLCONF's."""
    with adv.conn() as w, adv.conn() as r:
        pending_write(adv, w, 0, "adv:db:k", "v1")
        r.send(harness.encode(*cmd) + harness.encode("GET", "adv:db:k"))
        assert r.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        released(adv, w, r, b"v1")
        assert r.call("PING") == "PONG"


def test_replconf_ack_inside_multi_aborts_the_transaction(adv):
    """Queued, REPLCONF ACK leaves EXEC's array one reply short on the
    server (Valkey 9.1 and Redis 7.0 both), so the next reply would be read
    as EXEC's last element: refused there, the transaction fails."""
    with adv.conn() as r, adv.direct() as c:
        r.send(harness.encode("MULTI") + harness.encode("REPLCONF", "ACK", "0") +
               harness.encode("SET", "adv:db:m", "1") + harness.encode("EXEC") + harness.encode("PING"))
        got = [r.read_frame(timeout=harness.scaled(5))[1] for _ in range(5)]
        assert got[0] == "OK" and isinstance(got[1], harness.Error) and got[2] == "QUEUED", got
        assert str(got[3]).startswith("EXECABORT") and got[4] == "PONG", got
        assert c.call("EXISTS", "adv:db:m") == 0
