"""Class 4: pub/sub mode tracking (RESP2).

In RESP2 a message is a plain array; the proxy tells it from a reply only
by knowing the connection is in subscribed mode.  Each case leaves a
connection subscribed by a route the proxy could miscount (shard and
normal subscriptions counted apart by the server, SUBSCRIBE inside
MULTI/EXEC), then has a message published (fsync held) in the same
event-loop turn as a PING the subscriber sent: the message arrives while
the PING is outstanding and must still wait like a write.
"""
import pytest

import harness
from durability_util import adv, durable, reset, same_turn, frames  # noqa: F401

HOLD_S = 0.5


SETUPS = {
    # (commands, confirmations they produce, publish command, message kind)
    "ssubscribe-sunsubscribe-while-subscribed":
        ([("SUBSCRIBE", "adv:ch"), ("SSUBSCRIBE", "adv:sh"), ("SUNSUBSCRIBE", "adv:sh")], 3,
         ("PUBLISH", "adv:ch", "m1"), b"message"),
    "subscribe-unsubscribe-while-shard-subscribed":
        ([("SSUBSCRIBE", "adv:sh"), ("SUBSCRIBE", "adv:ch"), ("UNSUBSCRIBE", "adv:ch")], 3,
         ("SPUBLISH", "adv:sh", "m1"), b"smessage"),
    "punsubscribe-all-while-shard-subscribed":
        ([("SSUBSCRIBE", "adv:sh"), ("PSUBSCRIBE", "adv:p*"), ("PUNSUBSCRIBE",)], 3,
         ("SPUBLISH", "adv:sh", "m1"), b"smessage"),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_message_while_ping_outstanding_is_held(adv, setup):
    cmds, nconf, publish, kind = SETUPS[setup]
    with adv.conn() as s, adv.conn() as p:
        for cmd in cmds:
            s.send_cmd(*cmd)
        got = frames(s, nconf)
        assert all(isinstance(g, list) for g in got), got
        adv.ctl.block()
        same_turn(adv, (p, harness.encode(*publish)), (s, harness.encode("PING")))
        assert s.nothing_pending(wait=HOLD_S), "message delivered before its PUBLISH was durable"
        adv.ctl.unblock()
        msg, pong = frames(s, 2)
        assert msg[0] == kind and msg[-1] == b"m1", msg
        assert pong == [b"pong", b""], pong


def test_subscribe_inside_multi_then_message_while_ping_outstanding(adv):
    with adv.conn() as s, adv.conn() as p:
        s.send(harness.encode("MULTI") + harness.encode("SUBSCRIBE", "adv:ch", "adv:ch2") + harness.encode("EXEC"))
        got = frames(s, 4)  # OK, QUEUED, EXEC's [[subscribe ...]], the second confirmation
        assert got[0] == "OK" and got[1] == "QUEUED", got
        assert got[3][0] == b"subscribe" and got[3][2] == 2, got
        adv.ctl.block()
        same_turn(adv, (p, harness.encode("PUBLISH", "adv:ch", "m1")), (s, harness.encode("PING")))
        assert s.nothing_pending(wait=HOLD_S), "message delivered before its PUBLISH was durable"
        adv.ctl.unblock()
        msg, pong = frames(s, 2)
        assert msg == [b"message", b"adv:ch", b"m1"], msg
        assert pong == [b"pong", b""], pong


def test_hello_2_while_subscribed_in_resp3_then_message_while_ping_outstanding(adv):
    """Subscribed in RESP3 (confirmations are pushes), then HELLO 2: messages
    are now plain arrays and the connection is still subscribed."""
    with adv.conn() as s, adv.conn() as p:
        assert isinstance(s.call("HELLO", "3"), dict)
        s.send_cmd("SUBSCRIBE", "adv:ch")
        assert frames(s, 1)[0][0] == b"subscribe"
        hello = s.call("HELLO", "2")
        assert isinstance(hello, list), hello
        adv.ctl.block()
        same_turn(adv, (p, harness.encode("PUBLISH", "adv:ch", "m1")), (s, harness.encode("PING")))
        assert s.nothing_pending(wait=HOLD_S), "message delivered before its PUBLISH was durable"
        adv.ctl.unblock()
        msg, pong = frames(s, 2)
        assert msg == [b"message", b"adv:ch", b"m1"], msg
        assert pong in ([b"pong", b""], "PONG"), pong


@pytest.mark.parametrize("start,inner", [("3", "2"), ("2", "3")])
def test_hello_inside_multi_then_message_while_ping_outstanding(adv, start, inner):
    """HELLO runs inside MULTI/EXEC (Valkey and Redis both) and would switch
    the protocol with EXEC's reply, where the proxy cannot always line it up;
    the proxy refuses it there (the transaction fails with EXECABORT).
    Subscribed after it, a message arriving while a PING is outstanding must
    still wait (before the fix: 3 then 2 inside MULTI delivered the RESP2
    message as the PING's reply, unheld)."""
    with adv.conn() as s, adv.conn() as p:
        assert isinstance(s.call("HELLO", start), (dict, list))
        s.send(harness.encode("MULTI") + harness.encode("HELLO", inner) + harness.encode("EXEC"))
        got = frames(s, 3)
        assert got[0] == "OK", got
        if isinstance(got[1], harness.Error):
            assert "HELLO" in got[1] and str(got[2]).startswith("EXECABORT"), got
        s.send_cmd("SUBSCRIBE", "adv:ch")
        assert frames(s, 1)[0][0] == b"subscribe"
        adv.ctl.block()
        same_turn(adv, (p, harness.encode("PUBLISH", "adv:ch", "m1")), (s, harness.encode("PING")))
        assert s.nothing_pending(wait=HOLD_S), "message delivered before its PUBLISH was durable"
        adv.ctl.unblock()
        msg, pong = frames(s, 2)
        assert list(msg) == [b"message", b"adv:ch", b"m1"], msg


def test_hello_3_inside_multi_then_reply_shaped_like_a_message(adv):
    """RESP2, then HELLO 3 inside MULTI, then SUBSCRIBE: the server (RESP3)
    answers any command while subscribed.  An LRANGE whose reply is
    ["message", ch, x] must not be taken for a message (before the fix it was:
    held as one, the proxy's expected replies off by one from then on, so
    the GET's reply took the LRANGE's place); now HELLO in MULTI is refused."""
    with adv.conn() as s, adv.conn() as w, adv.direct() as c:
        s.send(harness.encode("MULTI") + harness.encode("HELLO", "3") + harness.encode("EXEC"))
        got = frames(s, 3)
        assert got[0] == "OK", got
        refused = isinstance(got[1], harness.Error)
        if refused:
            assert "HELLO" in got[1] and str(got[2]).startswith("EXECABORT"), got
            assert isinstance(s.call("HELLO", "3"), dict)  # the same state, reached the tracked way
        s.send_cmd("SUBSCRIBE", "adv:ch")
        frames(s, 1)
        assert s.call("RPUSH", "adv:l", "message", "adv:ch", "x") == 3
        adv.ctl.block()
        w.send_cmd("SET", "adv:k", "secret")
        harness.wait_until(lambda: c.call("GET", "adv:k") == b"secret", 5, "the upstream to execute the SET")
        s.send(harness.encode("LRANGE", "adv:l", "0", "-1") + harness.encode("GET", "adv:k"))
        assert list(frames(s, 1)[0]) == [b"message", b"adv:ch", b"x"]
        assert s.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        adv.ctl.unblock()
        assert frames(s, 1)[0] == b"secret"


@pytest.mark.parametrize("first,second", [
    (("UNSUBSCRIBE",), ("UNSUBSCRIBE", "adv:c")),
    (("PUNSUBSCRIBE",), ("PUNSUBSCRIBE", "adv:c*")),
    (("UNSUBSCRIBE",), ("UNSUBSCRIBE",)),
])
def test_argless_unsubscribe_then_same_kind_then_get(adv, first, second):
    """An argument-less (P)UNSUBSCRIBE gets one confirmation per channel the
    server had; one of the same kind pipelined behind it gets its own.  The
    proxy must not count the second command's confirmations as the first's
    (the GET behind them would then take the second's place, unheld)."""
    pattern = first[0] == "PUNSUBSCRIBE"
    with adv.conn() as s, adv.conn() as w, adv.direct() as c:
        s.send_cmd("PSUBSCRIBE" if pattern else "SUBSCRIBE", "adv:a*" if pattern else "adv:a",
                   "adv:b*" if pattern else "adv:b")
        frames(s, 2)
        adv.ctl.block()
        w.send_cmd("SET", "adv:k", "secret")
        harness.wait_until(lambda: c.call("GET", "adv:k") == b"secret", 5, "the upstream to execute the SET")
        s.send(harness.encode(*first) + harness.encode(*second) + harness.encode("GET", "adv:k"))
        got = frames(s, 3)
        assert all(g[0] in (b"unsubscribe", b"punsubscribe") for g in got[:2]), got
        # Valkey 8.0 answers an UNSUBSCRIBE outside subscribed mode with -NOSUB
        assert got[2][0] in (b"unsubscribe", b"punsubscribe") or str(got[2]).startswith("NOSUB"), got
        assert s.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        adv.ctl.unblock()
        assert frames(s, 1)[0] == b"secret"
