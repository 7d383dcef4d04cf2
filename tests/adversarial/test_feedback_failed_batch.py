"""Also (b): a reply that joins a batch already failed by the hold timeout
got `-ERR durable-proxy: reply withheld, write not durable: ` with nothing
after the colon.  Every such error names why."""
import harness
from durability_util import held  # noqa: F401
import pytest  # noqa: F401
from durability_util import fresh_durable  # noqa: F401  (fixture)

PREFIX = "durable-proxy: reply withheld, write not durable: "


def test_a_read_joining_a_timed_out_batch_gets_an_error_with_its_reason(fresh_durable):  # noqa: F811
    d = fresh_durable(config_text="durability:\n  hold_timeout: 1s\n")
    with d.conn() as w, d.conn() as r, d.direct() as up:
        d.ctl.block()
        w.send_cmd("SET", "adv:to", "v")
        harness.wait_until(lambda: up.call("GET", "adv:to") == b"v", 5, "the upstream to execute the SET")
        _, reply = w.read_frame(timeout=harness.scaled(5))
        assert isinstance(reply, harness.Error), reply
        assert reply.split(PREFIX, 1)[-1].strip(), "empty reason: %r" % reply
        # The write's batch has failed; a read of its key now must still say why.
        r.send_cmd("GET", "adv:to")
        _, value = r.read_frame(timeout=harness.scaled(5))
        assert isinstance(value, harness.Error), "GET revealed %r before fsync" % value
        assert PREFIX in value, value
        assert value.split(PREFIX, 1)[1].strip(), "the error names no reason: %r" % value
        d.ctl.unblock()
        assert r.call("GET", "adv:to") == b"v"
