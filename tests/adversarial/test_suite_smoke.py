"""The suite's own fixtures work: a held write is not readable from a second
connection until its fsync is released (the pattern every adversarial test
follows)."""
import harness
from durability_util import durable  # noqa: F401  (fixture)


def test_held_write_is_not_visible_to_a_second_connection_until_durable(durable):  # noqa: F811
    with durable.conn() as w, durable.conn() as r, durable.direct() as d:
        durable.ctl.block()
        w.send_cmd("SET", "adv:k", "v1")
        harness.wait_until(lambda: d.call("GET", "adv:k") == b"v1", 5,
                           "the upstream to execute the SET")
        r.send_cmd("GET", "adv:k")
        assert r.nothing_pending(wait=0.3), "GET of a pending key answered before fsync"
        durable.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"
        assert r.read_frame(timeout=harness.scaled(5))[1] == b"v1"
