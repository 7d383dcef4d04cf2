"""Class 7, feedback loops: a reply that exists only because of the proxy's
own traffic (its ROLE probes, INFO, REPLCONF) must never need a probe.  With
a MONITOR client attached, each probe's own MONITOR line used to be held like
a write and to need a new probe: 14,000-28,000 ROLE probes per second."""
import time

import harness
from durability_util import durable, reset  # noqa: F401  (fixture)


def cmdstat_role_calls(direct):
    text = bytes(direct.call("INFO", "commandstats")).decode()
    for line in text.splitlines():
        if line.startswith("cmdstat_role:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


def test_monitor_client_does_not_make_the_proxy_probe_in_a_loop(durable):  # noqa: F811
    reset(durable)
    with durable.conn() as m, durable.conn() as w, durable.direct() as d:
        assert m.call("MONITOR") == "OK"
        # One write, so the MONITOR client has a held line and the gate a probe.
        assert w.call("SET", "adv:mon", "1") == "OK"
        line = m.read_frame(timeout=harness.scaled(5))[1]
        assert "adv:mon" in line, line
        before = cmdstat_role_calls(d)
        t0 = time.monotonic()
        quiet = 1.0
        # Keep reading MONITOR lines for a quiet second (nothing else writes).
        while time.monotonic() - t0 < quiet:
            if m.nothing_pending(wait=0.05):
                continue
            m.read_frame(timeout=1)
        probes = cmdstat_role_calls(d) - before
        # Idle: at most a few probes a second (the proxy's own health checks).
        assert probes <= 20, "%d ROLE probes in %.1fs of quiet with a MONITOR client" % (probes, quiet)


def test_monitor_line_of_a_pending_write_is_still_held(durable):  # noqa: F811
    reset(durable)
    with durable.conn() as m, durable.conn() as w, durable.direct() as d:
        assert m.call("MONITOR") == "OK"
        durable.ctl.block()
        w.send_cmd("SET", "adv:mon2", "secret")
        harness.wait_until(lambda: d.call("GET", "adv:mon2") == b"secret", 5,
                           "the upstream to execute the SET")
        # Lines may arrive for the proxy's own traffic and for the direct GETs
        # above (reads: not held, they show a key name, no value; a GET run
        # before the SET arrives first on Redis 7.0); none may show the write.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if m.nothing_pending(wait=0.05):
                continue
            line = m.read_frame(timeout=1)[1]
            assert '"SET"' not in line and "secret" not in line, "MONITOR showed a pending write: %r" % line
        durable.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"
        harness.wait_until(lambda: "secret" in m.read_frame(timeout=harness.scaled(5))[1], 5,
                           "the write's MONITOR line once durable")
