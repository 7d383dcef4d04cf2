"""Class 6, over-holding: a keyless command in the replication stream that
changes no key (PUBLISH, SPUBLISH, FUNCTION LOAD/DELETE) must not make a
whole db pending: reads of unrelated keys answer at once (promise 2), while
what the command did change stays held (FUNCTION LIST / STATS, FCALL)."""
import pytest

import harness
from durability_util import durable, reset, held, PROMPT_S  # noqa: F401  (fixture)

LIB = "#!lua name=advover\nredis.register_function('advo', function() return 7 end)"

WRITES = {
    "publish": [("PUBLISH", "adv:ch", "m")],
    "spublish": [("SPUBLISH", "adv:sch", "m")],
    "function-load": [("FUNCTION", "LOAD", LIB)],
    "function-delete": [("FUNCTION", "DELETE", "advover")],
}


@pytest.mark.parametrize("case", sorted(WRITES))
def test_keyless_stream_command_does_not_hold_unrelated_reads(durable, case):  # noqa: F811
    reset(durable)
    with durable.conn() as w, durable.conn() as r, durable.direct() as up:
        if case == "spublish" and up.call("COMMAND", "INFO", "spublish")[0] is None:
            pytest.skip("no SPUBLISH")
        if case == "function-delete":
            assert up.call("FUNCTION", "LOAD", LIB) == b"advover"
        up.call("SET", "adv:unrelated", "u")
        durable.settle()
        offset = durable.upstream_offset()
        durable.ctl.block()
        for cmd in WRITES[case]:
            w.send_cmd(*cmd)
        # The command is in the stream the proxy read (the offset moved and
        # the proxy has received it).
        harness.wait_until(lambda: durable.upstream_offset() > offset, 5, "the command in the stream")
        target = durable.upstream_offset()
        harness.wait_until(lambda: int(durable.info().get("received_offset", target)) >= target, 5,
                           "the proxy to receive the stream through %d" % target)
        r.send_cmd("GET", "adv:unrelated")
        assert not held(r, PROMPT_S), "GET of an unrelated key held behind a pending %s" % case
        assert r.read_frame(timeout=1)[1] == b"u"
        durable.ctl.unblock()
        w.read_frames(len(WRITES[case]), timeout=harness.scaled(5))


def test_function_load_still_holds_what_it_changed(durable):  # noqa: F811
    reset(durable)
    with durable.conn() as w, durable.conn() as r1, durable.conn() as r2, durable.direct() as up:
        durable.ctl.block()
        w.send_cmd("FUNCTION", "LOAD", LIB)
        harness.wait_until(lambda: len(up.call("FUNCTION", "LIST")) == 1, 5, "the library loaded")
        r1.send_cmd("FUNCTION", "LIST")
        r2.send_cmd("FCALL", "advo", "0")
        assert held(r1), "FUNCTION LIST showed a library not yet durable"
        assert held(r2), "FCALL ran a library not yet durable"
        durable.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == b"advover"
        assert len(r1.read_frame(timeout=harness.scaled(5))[1]) == 1
        assert r2.read_frame(timeout=harness.scaled(5))[1] == 7
