"""Shared pieces of the durability-gate tests (test_durability_*.py).

A `Durable` is a real redis-server upstream (persistence off) with the proxy
in front of it in `--durability always`, the proxy preloaded with the
project's fsync shim (tests/tools/libfsyncshim.c) so a test can block, fail
or release its log's fdatasync through `ctl` (harness.FsyncControl).

The `durable` fixture is one such pair per test module; `fresh_durable`
makes private pairs for tests that break the log.  Import both into a test
module to use them (`from durability_util import durable, fresh_durable`).
"""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# A held reply must not arrive within this many seconds to count as held.
HOLD_CHECK_S = 0.5
# A reply that must not be held must arrive while the fsync is still blocked
# (every user blocks it first): a held one cannot arrive before the unblock
# at all, so this bound is no latency target; it only limits how long a
# failing test waits.  Scaled, so a busy machine cannot fail a good proxy.
PROMPT_S = harness.scaled(5)


class Durable:
    def __init__(self, tmpdir, config_text="{}\n", server_args=(), extra_env=None):
        self.tmpdir = str(tmpdir)
        self.shim = harness.fsync_shim(tmpdir)
        self.ctl = harness.FsyncControl(tmpdir, self.shim)
        env = dict(self.ctl.env, **(extra_env or {}))
        self.upstream = harness.Server(tmpdir, server_args, name="upstream")
        try:
            self.proxy = harness.Proxy(tmpdir, self.upstream.port, "always",
                                       config_text=config_text, env=env)
        except Exception:
            self.upstream.stop()
            raise
        # The first write after a fresh start waits for the log's first
        # segment to be zero-filled (~0.3-0.5 s for 64 MB here, seconds on a
        # busy machine): take that wait now, not inside a test's timing.  A
        # short durability.hold_timeout can fail that first write with its
        # reason; the warm-up then tries again until one write is
        # acknowledged (the SET and the DEL, each on its own).
        last = []

        def acknowledged():
            with self.conn(timeout=harness.scaled(15)) as c:
                last[:] = [c.call("SET", "dp:warmup", "1"), c.call("DEL", "dp:warmup")]
            return last == ["OK", 1]

        try:
            harness.wait_until(acknowledged, 30, "a warm-up SET and DEL through the proxy "
                               "acknowledged", interval=0.05, state=lambda: last)
        except TimeoutError as e:
            raise RuntimeError("warm-up write through the proxy failed (%s):\n%s"
                               % (e, self.proxy.describe())) from None

    @property
    def addr(self):
        return self.proxy.addr

    def conn(self, **kw):
        return harness.RespConn(self.proxy.addr, **kw)

    def direct(self, **kw):
        return harness.RespConn(self.upstream.addr, **kw)

    def info(self):
        """INFO durability over a fresh connection (an idle connection's
        local answer is never queued behind held replies)."""
        with self.conn() as c:
            return harness.info_fields(c)

    def upstream_offset(self):
        with self.direct() as c:
            text = bytes(c.call("INFO", "replication")).decode()
        fields = dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
        return int(fields["master_repl_offset"])

    def settle(self, timeout=10):
        """Waits until the proxy's log has fsynced everything the upstream
        has executed so far; returns that offset."""
        target = self.upstream_offset()
        harness.wait_until(lambda: int(self.info()["fsynced_offset"]) >= target, timeout,
                           "proxy log fsynced through upstream offset %d" % target)
        return target

    def log_commands(self, timeout=10):
        """The proxy log's stream as commands, once it holds everything the
        upstream executed so far."""
        self.settle(timeout)
        _, data = harness.read_log_stream(self.proxy.log_dir)
        return harness.parse_stream_commands(data)

    def stop(self):
        self.ctl.clear()
        self.proxy.stop()
        self.upstream.stop()


def reset(d):
    """Fsync released, empty dataset, log caught up (between tests)."""
    d.ctl.clear()
    with d.direct() as c:
        c.call("FLUSHALL")
        c.call("SCRIPT", "FLUSH")
        c.call("FUNCTION", "FLUSH")
    d.settle()


@pytest.fixture(scope="module")
def durable(tmp_path_factory):
    d = Durable(tmp_path_factory.mktemp("durable"))
    yield d
    d.stop()


@pytest.fixture
def fresh_durable(tmp_path):
    made = []

    def make(**kw):
        d = Durable(tmp_path, **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


def held(conn, wait=HOLD_CHECK_S):
    """True when nothing arrives on conn for `wait` seconds."""
    return conn.nothing_pending(wait)


def timed_read(conn, timeout=5.0):
    """(seconds waited, decoded value) of the next frame."""
    t0 = time.monotonic()
    _, value = conn.read_frame(timeout)
    return time.monotonic() - t0, value


def same_turn(d, *sends):
    """Runs each (conn, bytes) in one upstream event-loop turn: a CLIENT PAUSE
    holds them all, in order, until it expires; returns once they ran (a
    direct PING sent after them is answered only then)."""
    with d.direct() as c:
        assert c.call("CLIENT", "PAUSE", str(int(harness.scaled(0.5) * 1000)), "ALL") == "OK"
        for conn, data in sends:
            conn.send(data)
        c.send_cmd("PING")
        assert c.read_frame(timeout=harness.scaled(5))[1] == "PONG"


@pytest.fixture
def adv(durable):  # noqa: F811
    """The module's durable pair, reset before and after the test."""
    reset(durable)
    yield durable
    reset(durable)


def frames(conn, n):
    """The next n replies' values (scaled deadline)."""
    return [conn.read_frame(timeout=harness.scaled(5))[1] for _ in range(n)]
