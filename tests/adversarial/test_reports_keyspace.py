"""Class 3, reads that report the keyspace without naming a key.  A pending
write (fsync held back) must not show through INFO (keyspace, stats hit
counters, everything), MEMORY STATS, FUNCTION STATS, SLOWLOG / COMMANDLOG,
LATENCY, CLIENT LIST / INFO: each is held like a keyspace-wide read
(proxy/commands/overrides.cc, "reads that report the keyspace")."""
import pytest

import harness
from durability_util import durable, reset, held  # noqa: F401  (fixture)

LIB = "#!lua name=advlib\nredis.register_function('advf', function() return 1 end)"


def pending_set(d, w, up):
    w.send_cmd("SET", "adv:rep", "secret-value")
    harness.wait_until(lambda: up.call("GET", "adv:rep") == b"secret-value", 5,
                       "the upstream to execute the SET")


def pending_function(d, w, up):
    w.send_cmd("FUNCTION", "LOAD", LIB)
    harness.wait_until(lambda: len(up.call("FUNCTION", "LIST")) == 1, 5,
                       "the upstream to load the library")


CASES = [
    # (id, the pending write, the report, server command that must exist)
    ("info-keyspace", pending_set, ("INFO", "keyspace"), None),
    ("info", pending_set, ("INFO",), None),
    ("info-all", pending_set, ("INFO", "all"), None),
    ("info-everything", pending_set, ("INFO", "everything"), None),
    ("info-stats", pending_set, ("INFO", "stats"), None),
    ("info-commandstats", pending_set, ("INFO", "commandstats"), None),
    ("memory-stats", pending_set, ("MEMORY", "STATS"), None),
    ("memory-doctor", pending_set, ("MEMORY", "DOCTOR"), None),
    ("slowlog-get", pending_set, ("SLOWLOG", "GET"), None),
    ("slowlog-len", pending_set, ("SLOWLOG", "LEN"), None),
    ("commandlog-get", pending_set, ("COMMANDLOG", "GET", "10", "slow"), "commandlog"),
    ("latency-histogram", pending_set, ("LATENCY", "HISTOGRAM", "set"), None),
    ("client-list", pending_set, ("CLIENT", "LIST"), None),
    ("client-info", pending_set, ("CLIENT", "INFO"), None),
    ("function-stats", pending_function, ("FUNCTION", "STATS"), None),
    ("function-list", pending_function, ("FUNCTION", "LIST"), None),
]


@pytest.mark.parametrize("write,report,needs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_report_is_held_while_a_write_is_pending(durable, write, report, needs):  # noqa: F811
    reset(durable)
    with durable.direct() as up:
        if needs and up.call("COMMAND", "INFO", needs)[0] is None:
            pytest.skip("%s has no %s" % (harness.server_label(), needs.upper()))
        up.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        if needs == "commandlog":
            up.call("CONFIG", "SET", "commandlog-execution-slower-than", "0")
    try:
        with durable.conn() as w, durable.conn() as r, durable.direct() as up:
            durable.ctl.block()
            write(durable, w, up)
            r.send_cmd(*report)
            assert held(r), "%s answered while a write was pending" % " ".join(report)
            durable.ctl.unblock()
            assert not isinstance(w.read_frame(timeout=harness.scaled(5))[1], harness.Error)
            assert not isinstance(r.read_frame(timeout=harness.scaled(5))[1], harness.Error)
    finally:
        with durable.direct() as up:
            up.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")


def test_info_keyspace_in_the_same_server_turn_as_the_write(durable):  # noqa: F811
    """The write and the report run in one upstream event-loop turn (both
    queued behind CLIENT PAUSE): the report's reply may reach the proxy before
    the write's stream bytes."""
    reset(durable)
    with durable.conn() as w, durable.conn() as r, durable.direct() as up:
        durable.ctl.block()
        assert up.call("CLIENT", "PAUSE", "300", "ALL") == "OK"
        w.send_cmd("SET", "adv:turn", "v")
        r.send_cmd("INFO", "keyspace")
        assert held(r, 0.8), "INFO keyspace answered while the SET was pending"
        assert up.call("GET", "adv:turn") == b"v"
        durable.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"
        assert b"keys=1" in bytes(r.read_frame(timeout=harness.scaled(5))[1])


def test_info_durability_and_ping_are_not_held(durable):  # noqa: F811
    """The table holds reports, not everything: the proxy's own INFO section
    and PING answer at once while a write is pending."""
    reset(durable)
    with durable.conn() as w, durable.conn() as r, durable.direct() as up:
        durable.ctl.block()
        pending_set(durable, w, up)
        assert r.call("PING") == "PONG"
        assert b"fsynced_offset" in bytes(r.call("INFO", "durability"))
        durable.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"
