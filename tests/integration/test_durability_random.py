"""Randomized check of the durability contract: several clients, random
pipelined reads and writes on a few shared keys, fsync slowed down and
blocked at random moments.

Why the check is sound.  Every write stores a value never used before, so a
value seen in any reply names exactly one write.  A controller thread blocks
the proxy's fdatasync (creates the shim's block file) and records t_block
*after* the file exists; later it records t_unblock *before* removing the
file.  A write whose request was sent at or after t_block (its t_send is
taken before the bytes go out) reaches the proxy after the file exists, so
every fdatasync that can cover its stream bytes starts after the file exists
and cannot return before the file is removed, i.e. after t_unblock.  Such a
write is not durable before t_unblock.  So a reply received (t_recv taken
after the bytes arrived) before t_unblock that reveals it, a +OK to the
write itself or a GET/MGET returning its value, is a reply that revealed a
write not yet fsynced: a violation.  Timestamps err only towards missing a
violation, never towards inventing one.  All clocks are this process's
monotonic clock.

Afterwards every value any reply revealed must be in the proxy's log (what
was revealed was made durable), and the test demands enough writes inside
block windows that it could catch something.
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from durability_util import fresh_durable  # noqa: E402,F401

import pytest  # noqa: E402

pytestmark = pytest.mark.proxy_only

CLIENTS = 6
KEYS = ["rk%d" % i for i in range(6)]
RUN_S = float(os.environ.get("DP_RANDOM_RUN_S", "8"))


def client_loop(d, tid, seed, deadline, writes, reveals, errors):
    rng = random.Random(seed)
    seq = 0
    try:
        with d.conn(timeout=8) as c:
            while time.monotonic() < deadline:
                ops = []
                for _ in range(rng.randint(1, 4)):
                    r = rng.random()
                    if r < 0.45:
                        seq += 1
                        ops.append(("SET", rng.choice(KEYS), "c%d-%d" % (tid, seq)))
                    elif r < 0.55:
                        seq += 1
                        a, b = rng.sample(KEYS, 2)
                        ops.append(("MSET", a, "c%d-%d" % (tid, seq), b, "c%d-%da" % (tid, seq)))
                    elif r < 0.85:
                        ops.append(("GET", rng.choice(KEYS)))
                    else:
                        ops.append(("MGET",) + tuple(rng.sample(KEYS, 3)))
                payload = b"".join(harness.encode(*op) for op in ops)
                t_send = time.monotonic()
                for op in ops:
                    if op[0] in ("SET", "MSET"):
                        for v in op[2::2]:
                            writes[v] = t_send
                c.send(payload)
                for op in ops:
                    _, value = c.read_frame()
                    t_recv = time.monotonic()
                    if op[0] in ("SET", "MSET"):
                        if value != "OK":
                            errors.append("%r answered %r" % (op, value))
                            continue
                        for v in op[2::2]:
                            reveals.append((v, t_recv, "reply to %s" % op[0]))
                    else:
                        vals = value if op[0] == "MGET" else [value]
                        for v in vals:
                            if v is not None:
                                reveals.append((v.decode(), t_recv, "%s reply" % op[0]))
                if rng.random() < 0.3:
                    time.sleep(rng.uniform(0, 0.01))
    except Exception as e:  # reported by the test thread
        errors.append("client %d: %r" % (tid, e))


def controller_loop(d, seed, deadline, windows):
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.05, 0.3))
        d.ctl.block()
        t_block = time.monotonic()
        time.sleep(rng.uniform(0.05, 0.4))
        t_unblock = time.monotonic()
        d.ctl.unblock()
        windows.append((t_block, t_unblock))


def test_no_reply_reveals_an_unsynced_write(fresh_durable):
    seed = int(os.environ.get("DP_RANDOM_SEED", str(random.randrange(1 << 30))))
    print("DP_RANDOM_SEED=%d" % seed)
    rng = random.Random(seed)
    # Every fsync is also slowed a little (0.2-1 ms), like a slow disk.
    d = fresh_durable(extra_env={"DP_FSYNC_DELAY_US": str(rng.randint(200, 1000))})
    writes, reveals, errors, windows = {}, [], [], []
    deadline = time.monotonic() + RUN_S
    threads = [threading.Thread(target=client_loop,
                                args=(d, i, rng.randrange(1 << 30), deadline, writes, reveals, errors))
               for i in range(CLIENTS)]
    threads.append(threading.Thread(target=controller_loop,
                                    args=(d, rng.randrange(1 << 30), deadline, windows)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    d.ctl.clear()
    assert not errors, errors[:5]

    violations = []
    inside = 0
    for v, t_recv, what in reveals:
        t_send = writes.get(v)
        assert t_send is not None, "a reply revealed %r, which no client wrote" % v
        for t_block, t_unblock in windows:
            if t_block <= t_send < t_unblock:
                inside += 1
                if t_recv < t_unblock:
                    violations.append("%s revealed %r %.1f ms before fsync could finish "
                                      "(write sent %.1f ms into a block window)"
                                      % (what, v, (t_unblock - t_recv) * 1e3, (t_send - t_block) * 1e3))
                break
    assert not violations, "%d violations (seed %d), e.g. %s" % (len(violations), seed, violations[:3])
    assert len(windows) >= 5 and inside >= 20, \
        "too little happened inside block windows to prove anything: %d windows, %d reveals" % (
            len(windows), inside)

    # Everything revealed is in the durable log.
    logged = set()
    for cmd in d.log_commands():
        if cmd[0] in (b"SET", b"MSET"):
            logged.update(x.decode() for x in cmd[2::2])
    missing = {v for v, _, _ in reveals} - logged
    assert not missing, "revealed but not in the log: %s" % sorted(missing)[:5]
