"""Class 2, effects a command does not declare.  An untrusted script or
function may SELECT, MOVE, SWAPDB or FLUSHALL: its reach is unknown, so it
makes every db pending until it is durable (not only the db it ran in).  A
CONFIG SET may change the dataset (maxmemory evicts): it waits like a write.

Each script case runs the script and a read of another db in one upstream
event-loop turn (both queued behind CLIENT PAUSE on a direct connection), so
the read's reply can reach the proxy before the script's stream bytes; it is
repeated to make that order likely."""
import pytest

import harness
from durability_util import durable, reset, held  # noqa: F401  (fixture)

TRIES = 6

SCRIPTS = {
    # name: (setup on db 0 through a direct connection, script, read in db 1)
    "select-set": (None, "redis.call('SELECT', 1) redis.call('SET', KEYS[1], 'v') return 1",
                   ("GET", "{k}")),
    "move": ("SET", "redis.call('MOVE', KEYS[1], 1) return 1", ("GET", "{k}")),
    "swapdb": ("SET", "redis.call('SWAPDB', 0, 1) return 1", ("GET", "{k}")),
    "flushall": ("SET1", "redis.call('FLUSHALL') return 1", ("GET", "{k}")),
}


def run_in_one_turn(d, w, r, up, write, read):
    durable_before = d.settle()
    d.ctl.block()
    assert up.call("CLIENT", "PAUSE", "250", "ALL") == "OK"
    w.send_cmd(*write)
    r.send_cmd(*read)
    ok = held(r, 0.6)
    d.ctl.unblock()
    wrote = w.read_frame(timeout=harness.scaled(5))[1]
    got = r.read_frame(timeout=harness.scaled(5))[1]
    assert not isinstance(wrote, harness.Error), wrote
    return ok, got, durable_before


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_script_effects_in_another_db_are_held(durable, case):  # noqa: F811
    setup, body, read = SCRIPTS[case]
    reset(durable)
    with durable.conn() as w, durable.conn() as r, durable.direct() as up:
        assert r.call("SELECT", "1") == "OK"
        for i in range(TRIES):
            k = "adv:eff:%s:%d" % (case, i)
            if setup == "SET":
                up.call("SET", k, "v")
            elif setup == "SET1":
                up.call("SELECT", "1")
                up.call("SET", k, "v")
                up.call("SELECT", "0")
            if case == "swapdb" and i % 2:
                # Swap back first so the key is in db 0 again before the next swap.
                up.call("SWAPDB", "0", "1")
                up.call("FLUSHDB")
                up.call("SET", k, "v")
            ok, got, _ = run_in_one_turn(durable, w, r, up, ("EVAL", body, "1", k),
                                         tuple(a.format(k=k) for a in read))
            assert ok, "try %d: a read in db 1 answered %r before the script's effect was durable" % (i, got)


def test_function_effects_in_another_db_are_held(durable):  # noqa: F811
    reset(durable)
    lib = ("#!lua name=advfx\nredis.register_function('advsel', function(keys, args) "
           "redis.call('SELECT', 1) redis.call('SET', keys[1], 'v') return 1 end)")
    with durable.conn() as w, durable.conn() as r, durable.direct() as up:
        assert up.call("FUNCTION", "LOAD", lib) == b"advfx"
        assert r.call("SELECT", "1") == "OK"
        for i in range(TRIES):
            k = "adv:fx:%d" % i
            ok, got, _ = run_in_one_turn(durable, w, r, up, ("FCALL", "advsel", "1", k), ("GET", k))
            assert ok, "try %d: GET in db 1 answered %r before FCALL's effect was durable" % (i, got)


def test_config_set_waits_like_a_write(durable):  # noqa: F811
    """CONFIG SET maxmemory can evict keys: its reply acknowledges a change of
    the dataset and waits for every write before it to be durable."""
    reset(durable)
    with durable.conn() as w, durable.conn() as c, durable.direct() as up:
        durable.ctl.block()
        w.send_cmd("SET", "adv:cfg", "v")
        harness.wait_until(lambda: up.call("GET", "adv:cfg") == b"v", 5, "the upstream to execute the SET")
        c.send_cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        assert held(c), "CONFIG SET answered while a write before it was not durable"
        durable.ctl.unblock()
        assert w.read_frame(timeout=harness.scaled(5))[1] == "OK"
        assert c.read_frame(timeout=harness.scaled(5))[1] == "OK"
        up.call("CONFIG", "SET", "maxmemory-policy", "noeviction")


def test_flushall_async_makes_every_db_pending(durable):  # noqa: F811
    reset(durable)
    with durable.conn() as w, durable.conn() as r, durable.direct() as up:
        up.call("SELECT", "3")
        up.call("SET", "adv:fa", "v")
        assert r.call("SELECT", "3") == "OK"
        ok, got, _ = run_in_one_turn(durable, w, r, up, ("FLUSHALL", "ASYNC"), ("GET", "adv:fa"))
        assert ok, "GET in db 3 answered %r before FLUSHALL ASYNC was durable" % (got,)
