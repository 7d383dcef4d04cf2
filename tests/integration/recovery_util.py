"""Helpers for the recovery tests: a key-by-key dataset snapshot (values and
TTL presence, independent of DUMP's encoding), a mixed dataset writer, and
metric / config helpers for a crashed-and-restarted proxy."""
import os
import sys

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "crash"))
import cluster  # noqa: E402,F401  (re-exported for the tests)


def pipeline(conn, cmds, batch=500):
    """Replies of cmds (lists of args), sent in pipelined batches."""
    out = []
    for i in range(0, len(cmds), batch):
        chunk = cmds[i:i + batch]
        conn.send(b"".join(harness.encode(*c) for c in chunk))
        out += [conn.read_frame(30)[1] for _ in chunk]
    return out


def snapshot(conn, dbs):
    """{(db, key): (type, value, has_ttl)} of every key in dbs, plus
    ("functions", ...) for the function libraries."""
    snap = {}
    for db in dbs:
        conn.call("SELECT", db)
        keys, cursor = [], b"0"
        while True:
            cursor, batch = conn.call("SCAN", cursor, "COUNT", 1000)
            keys += batch
            if cursor == b"0":
                break
        types = pipeline(conn, [["TYPE", k] for k in keys])
        reads = {"string": lambda k: ["GET", k], "list": lambda k: ["LRANGE", k, 0, -1],
                 "hash": lambda k: ["HGETALL", k], "set": lambda k: ["SMEMBERS", k],
                 "zset": lambda k: ["ZRANGE", k, 0, -1, "WITHSCORES"],
                 "stream": lambda k: ["XRANGE", k, "-", "+"]}
        values = pipeline(conn, [reads[str(t)](k) for k, t in zip(keys, types)])
        ttls = pipeline(conn, [["PTTL", k] for k in keys])
        for k, t, v, ttl in zip(keys, types, values, ttls):
            if str(t) in ("hash", "set"):
                v = sorted(map(repr, v)) if str(t) == "set" else sorted(zip(v[::2], v[1::2]))
            snap[(db, k)] = (str(t), repr(v), ttl > 0)
    conn.call("SELECT", 0)
    libs = conn.call("FUNCTION", "LIST", "WITHCODE")
    snap[("functions", b"")] = ("functions", repr(libs), False)
    return snap


def assert_same_dataset(got, want):
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    differ = [k for k in want if k in got and got[k] != want[k]]
    assert not (missing or extra or differ), (
        "dataset differs: %d missing (e.g. %r), %d extra (e.g. %r), %d different (e.g. %r: %r vs %r)"
        % (len(missing), missing[:3], len(extra), extra[:3], len(differ), differ[:1],
           got.get(differ[0]) if differ else None, want.get(differ[0]) if differ else None))


FUNCTION_LIB = ("#!lua name=dplib\n"
                "redis.register_function('dp_incr', function(keys, args) "
                "return redis.call('INCRBY', keys[1], args[1]) end)")


def write_mixed(conn, n_keys, dbs=(0, 1, 2), prefix="k", functions=True):
    """n_keys keys over dbs: strings (a third with TTLs), lists, hashes, sets,
    sorted sets, streams; a function library and a call of it."""
    per_db = n_keys // len(dbs)
    for db in dbs:
        assert conn.call("SELECT", db) == "OK"
        cmds = []
        for i in range(per_db):
            k = "%s:%d:%d" % (prefix, db, i)
            kind = i % 6
            if kind == 0:
                cmds.append(["SET", k, "v%d" % i] + (["EX", 100000] if i % 3 == 0 else []))
            elif kind == 1:
                cmds.append(["RPUSH", k, "a%d" % i, "b", "c"])
            elif kind == 2:
                cmds.append(["HSET", k, "f1", i, "f2", "x"])
            elif kind == 3:
                cmds.append(["SADD", k, "m1", "m%d" % i])
            elif kind == 4:
                cmds.append(["ZADD", k, i, "z1", "1.5", "z2"])
            else:
                cmds.append(["XADD", k, "*", "field", i])
                if i % 5 == 0:
                    cmds.append(["PEXPIRE", k, 50000000])
        for r in pipeline(conn, cmds):
            assert not isinstance(r, harness.Error), r
    conn.call("SELECT", 0)
    if functions:
        r = conn.call("FUNCTION", "LOAD", "REPLACE", FUNCTION_LIB)
        assert r == b"dplib", r
        assert isinstance(conn.call("FCALL", "dp_incr", 1, "fcounter", 5), int)


def metric(proxy, name):
    code, body = proxy.admin_get("/metrics")
    for line in body.splitlines():
        if line.startswith("durable_proxy_" + name + " "):
            return float(line.split()[1])
    return 0.0


def set_config(proxy, text):
    """Replace the proxy.yaml the proxy was started with (takes effect at restart)."""
    path = proxy.args[proxy.args.index("--config") + 1]
    with open(path, "w") as f:
        f.write(text)


def wait_restored(proxy, count=1, timeout=60):
    harness.wait_until(lambda: metric(proxy, "restores_total") >= count, timeout,
                       "restore number %d (durable_proxy_restores_total)" % count)
    proxy.wait_ready(timeout)
