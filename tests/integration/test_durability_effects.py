"""Notifications wait for fsync (DESIGN.md §1 rule 3), and the log records
the upstream's effects, not the clients' commands (DESIGN.md §2).

The log checks read the proxy's segment files directly
(harness.read_log_stream) once the log has fsynced everything the upstream
executed, and look for the effect each command must leave: SPOP as SREM of
the member it returned, EXPIRE as PEXPIREAT, scripts and functions as the
writes they made, a served BLPOP as the pop, a write sent straight to the
upstream as itself.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from durability_util import durable, held, reset, timed_read  # noqa: E402,F401

import pytest  # noqa: E402

pytestmark = pytest.mark.proxy_only


@pytest.fixture(autouse=True)
def _clean(durable):
    reset(durable)
    yield
    durable.ctl.clear()


def test_pubsub_messages_and_invalidations_wait(durable):
    sub2, sub3, tracker, writer = (durable.conn() for _ in range(4))
    try:
        assert sub2.call("SUBSCRIBE", "ch") == [b"subscribe", b"ch", 1]
        assert isinstance(sub3.call("HELLO", "3"), dict)
        assert sub3.call("SUBSCRIBE", "ch") == harness.Push([b"subscribe", b"ch", 1])
        assert isinstance(tracker.call("HELLO", "3"), dict)
        assert tracker.call("SET", "tk", "1") == "OK"
        assert tracker.call("CLIENT", "TRACKING", "on") == "OK"
        assert tracker.call("GET", "tk") == b"1"
        durable.settle()

        durable.ctl.block()
        writer.send(harness.encode("PUBLISH", "ch", "hello") + harness.encode("SET", "tk", "2"))
        with durable.direct() as d:
            harness.wait_until(lambda: d.call("GET", "tk") == b"2", 3, "SET tk executed")
        for name, c in (("RESP2 message", sub2), ("RESP3 message", sub3),
                        ("tracking invalidation", tracker), ("PUBLISH/SET replies", writer)):
            assert held(c, 0.3), "%s delivered before fsync" % name
        durable.ctl.unblock()
        assert timed_read(sub2)[1] == [b"message", b"ch", b"hello"]
        assert timed_read(sub3)[1] == harness.Push([b"message", b"ch", b"hello"])
        assert timed_read(tracker)[1] == harness.Push([b"invalidate", [b"tk"]])
        assert timed_read(writer)[1] == 2  # both subscribers got it
        assert timed_read(writer)[1] == "OK"
    finally:
        for c in (sub2, sub3, tracker, writer):
            c.close()


def find(cmds, *prefix):
    """Indexes of commands starting with prefix (bytes compared exactly)."""
    want = [p if isinstance(p, bytes) else p.encode() for p in prefix]
    return [i for i, c in enumerate(cmds) if c[:len(want)] == want]


def test_log_holds_effects(durable):
    lib = ("#!lua name=dplib\n"
           "redis.register_function('dpset', function(keys, args) "
           "return redis.call('SET', keys[1], args[1]) end)")
    with durable.conn() as c, durable.conn() as popper:
        # MULTI/EXEC
        assert c.call("MULTI") == "OK"
        assert c.call("SET", "m1", "a") == "QUEUED"
        assert c.call("INCR", "m2") == "QUEUED"
        assert c.call("EXEC") == ["OK", 1]
        # Lua (randomness-free, but the log must hold the SET, not the EVAL)
        assert c.call("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "e1", "x") == "OK"
        # Functions
        assert c.call("FUNCTION", "LOAD", lib) == b"dplib"
        assert c.call("FCALL", "dpset", "1", "f1", "y") == "OK"
        # BLPOP served by another client's push
        popper.send_cmd("BLPOP", "bl", "5")
        with durable.direct() as d:
            harness.wait_blocked(d, "blpop")
        assert c.call("LPUSH", "bl", "item") == 1
        assert timed_read(popper)[1] == [b"bl", b"item"]
        # SPOP: the log must name the member it popped
        assert c.call("SADD", "s", "a", "b", "c", "d") == 4
        popped = c.call("SPOP", "s")
        assert popped in (b"a", b"b", b"c", b"d")
        # EXPIRE: relative time becomes an absolute one
        assert c.call("SET", "ex", "1") == "OK"
        before_ms = int(time.time() * 1000)
        assert c.call("EXPIRE", "ex", "100") == 1
        after_ms = int(time.time() * 1000)
    # A write that bypasses the proxy
    with durable.direct() as d:
        assert d.call("SET", "direct1", "z") == "OK"

    cmds = durable.log_commands()
    names = {c[0] for c in cmds}
    assert not names & {b"EVAL", b"FCALL", b"SPOP", b"EXPIRE", b"BLPOP"}, \
        "the log holds commands instead of effects: %s" % sorted(names)

    m1 = find(cmds, "SET", "m1", "a")
    assert m1 and cmds[m1[0] - 1][0] == b"MULTI", cmds
    assert find(cmds, "INCR", "m2") and find(cmds, "INCR", "m2")[0] > m1[0]
    assert find(cmds, "SET", "e1", "x"), cmds
    assert find(cmds, "FUNCTION", "LOAD"), cmds
    assert find(cmds, "SET", "f1", "y"), cmds
    push = find(cmds, "LPUSH", "bl", "item")
    pops = [i for i in range(len(cmds)) if cmds[i][0] in (b"LPOP", b"RPOP") and cmds[i][1] == b"bl"]
    assert push and pops and pops[0] > push[0], "BLPOP's pop is not after the push: %s" % cmds
    assert find(cmds, "SREM", "s", popped), "SPOP not logged as SREM s %r: %s" % (popped, cmds)
    pex = find(cmds, "PEXPIREAT", "ex")
    assert pex, cmds
    at = int(cmds[pex[0]][2])
    assert before_ms - 5 + 100000 <= at <= after_ms + 5 + 100000, (before_ms, at, after_ms)
    assert find(cmds, "SET", "direct1", "z"), cmds


def test_keyspace_notifications_wait(durable):
    with durable.direct() as d:
        assert d.call("CONFIG", "SET", "notify-keyspace-events", "KA") == "OK"
    sub, writer = durable.conn(), durable.conn()
    try:
        assert sub.call("PSUBSCRIBE", "__keyspace@0__:*") == [b"psubscribe", b"__keyspace@0__:*", 1]
        durable.ctl.block()
        writer.send_cmd("SET", "kn", "1")
        with durable.direct() as d:
            harness.wait_until(lambda: d.call("GET", "kn") == b"1", 3, "SET kn executed")
        assert held(sub), "keyspace notification delivered before fsync"
        durable.ctl.unblock()
        assert timed_read(sub)[1] == [b"pmessage", b"__keyspace@0__:*", b"__keyspace@0__:kn", b"set"]
        assert timed_read(writer)[1] == "OK"
    finally:
        sub.close()
        writer.close()
        with durable.direct() as d:
            d.call("CONFIG", "SET", "notify-keyspace-events", "")
