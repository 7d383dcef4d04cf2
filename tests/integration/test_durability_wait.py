"""WAIT and WAITAOF where Valkey answers them without blocking (inside
MULTI, scripts and functions: issue 10, item 7), and WAITAOF's arguments.

The proxy acknowledges to Valkey (REPLCONF ACK/FACK) only the offset its
log has fsynced, so a non-blocking WAIT/WAITAOF counts the proxy only for
writes that are durable: never more than the contract gives.  Its numlocal
part is Valkey's own AOF there (README: the top-level WAITAOF numlocal 0 is
answered from the proxy's log)."""
import pytest

import harness
from durability_util import adv, durable, frames  # noqa: F401


@pytest.fixture
def d(adv):  # noqa: F811
    return adv  # the module's durable pair, reset (durability_util.adv)


WHERE = {
    "multi": lambda cmd: [("MULTI",), cmd, ("EXEC",)],
    "eval": lambda cmd: [("EVAL", "return redis.call(%s)" % ", ".join("'%s'" % a for a in cmd), "0")],
}


@pytest.mark.parametrize("where", sorted(WHERE))
def test_wait_without_blocking_never_counts_a_write_not_durable(d, where):
    """fsync held: a SET ran; a WAIT 1 0 that Valkey answers at once (in
    MULTI or a script) must count 0 replicas, and arrives only after the
    write is durable (its EXEC/EVAL waits like a write)."""
    with d.conn() as c, d.direct() as direct:
        if where == "eval" and isinstance(direct.call("EVAL", "return redis.call('WAIT','0','0')", "0"), harness.Error):
            pytest.skip("this server does not run WAIT in scripts (Redis 7.0)")
        d.ctl.block()
        steps = [("SET", "wait:k", "v")] + WHERE[where](("WAIT", "1", "0"))
        c.send(b"".join(harness.encode(*s) for s in steps))
        harness.wait_until(lambda: direct.call("GET", "wait:k") == b"v", 5, "the upstream to execute the SET")
        assert c.nothing_pending(wait=0.3)
        d.ctl.unblock()
        got = frames(c, len(steps))
        assert got[0] == "OK"
        assert got[-1] == ([0] if where == "multi" else 0), got


@pytest.mark.parametrize("where", sorted(WHERE))
def test_waitaof_numlocal_where_valkey_answers_is_valkeys_own(d, where):
    """In MULTI or a script WAITAOF reaches Valkey, whose own AOF is off
    here: Valkey's answer (an error; on Redis 7.0 an unknown command), not
    the proxy's log (the difference README lists)."""
    steps = WHERE[where](("WAITAOF", "1", "0", "0"))
    with d.conn() as c, d.direct() as direct:
        direct.send(b"".join(harness.encode(*s) for s in steps))
        want = frames(direct, len(steps))
        c.send(b"".join(harness.encode(*s) for s in steps))
        got = frames(c, len(steps))
        assert got == want
        last = got[-1][0] if where == "multi" and isinstance(got[-1], list) else got[-1]
        assert isinstance(last, harness.Error), got


def test_waitaof_numlocal_out_of_range_is_valkeys_error(d):
    """numlocal is 0 or 1 for Valkey; the proxy answers only those."""
    with d.conn() as c, d.direct() as direct:
        want = direct.call("WAITAOF", "2", "0", "0")
        assert isinstance(want, harness.Error), want
        assert c.call("WAITAOF", "2", "0", "0") == want
