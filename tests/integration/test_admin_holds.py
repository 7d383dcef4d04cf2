"""Held replies in /metrics, by kind, while the proxy's log cannot fsync
(the fsync shim blocks it): a write, a read of that write's key, a reply
queued behind a held one, a pub/sub message; then the hold-time histogram
of each kind once fsync is released."""
import time

import pytest

import harness
from admin_util import metrics, sample, status_json
from durability_util import fresh_durable  # noqa: F401 (fixture)

pytestmark = pytest.mark.proxy_only

KINDS = ("write", "read", "notification", "ordered")


def held(m):
    return {k: sample(m, "durable_proxy_held_replies", kind=k) for k in KINDS}


def test_held_replies_and_hold_times_by_kind(fresh_durable):  # noqa: F811
    d = fresh_durable()
    port = d.proxy.admin_port
    before = metrics(port)
    writer, reader, publisher, sub = d.conn(), d.conn(), d.conn(), d.conn()
    try:
        sub.send_cmd("SUBSCRIBE", "news")
        assert sub.read_frame()[1][0] == b"subscribe"
        d.ctl.block()
        writer.send_cmd("SET", "hk", "v1")
        writer.send_cmd("PING")                      # ready, but behind the held SET
        harness.wait_until(lambda: held(metrics(port))["write"] >= 1, 5, "the SET held")
        reader.send_cmd("GET", "hk")                 # reads a key with a pending write
        publisher.send_cmd("PUBLISH", "news", "hi")  # a write; its message is held too
        t_held = time.monotonic()

        def all_kinds_held():
            h = held(metrics(port))
            return h["write"] >= 2 and h["read"] >= 1 and h["ordered"] >= 1 and h["notification"] >= 1
        harness.wait_until(all_kinds_held, 5, "a held reply of every kind: %s" % held(metrics(port)))
        m = metrics(port)
        for k in KINDS:
            assert sample(m, "durable_proxy_held_bytes", kind=k) > 0, k
        assert sample(m, "durable_proxy_stream_lag_bytes") > 0
        st = status_json(port)
        assert st["held_replies"] == sum(held(m).values())
        assert st["held_bytes"] == sum(sample(m, "durable_proxy_held_bytes", kind=k) for k in KINDS)
        time.sleep(0.4)  # a hold of known length (its histogram is checked below), not an ordering
        d.ctl.unblock()
        assert writer.read_frame()[1] == "OK"
        assert writer.read_frame()[1] == "PONG"
        assert reader.read_frame()[1] == b"v1"
        assert publisher.read_frame()[1] == 1
        assert sub.read_frame()[1] == [b"message", b"news", b"hi"]
        released = time.monotonic()
    finally:
        d.ctl.clear()
        for c in (writer, reader, publisher, sub):
            c.close()
    after = metrics(port)
    assert held(after) == {k: 0 for k in KINDS}

    def delta(name, kind):
        return sample(after, name, kind=kind) - sample(before, name, kind=kind)
    for k in KINDS:
        assert delta("durable_proxy_hold_seconds_count", k) >= 1, k
    # The read waited from its arrival until fsync was released.
    read_hold = delta("durable_proxy_hold_seconds_sum", "read")
    assert 0.3 <= read_hold <= released - t_held + 0.5
    assert delta("durable_proxy_hold_seconds_sum", "write") >= 2 * 0.3
