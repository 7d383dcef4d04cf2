"""Hash fields with TTLs (HSETEX, HEXPIRE; Valkey >= 9.0) through every full
sync the proxy takes: the first one at start-up, a checkpoint on the second
replica link, and the restore after the upstream is killed with SIGKILL.
Valkey 9.x sends RDB 11 to a replica that announced no `REPLCONF version`,
and RDB 11 cannot hold such a hash: the full sync fails on the server with
"Can't store key ... in RDB version 11".  Skipped on servers without HSETEX."""
import pytest

import harness
from checkpoint_util import admin_post, manifest, proxy_config, wait_completed
from recovery_util import cluster, metric, wait_restored

pytestmark = pytest.mark.proxy_only

TTL = 100000  # seconds: nothing expires during the test


def has_hsetex(conn):
    return conn.call("COMMAND", "INFO", "HSETEX") not in ([], [None])


def write_field_ttls(conn, prefix, n):
    for i in range(n):
        assert conn.call("HSETEX", "%s:ex:%d" % (prefix, i), "EX", TTL, "FIELDS", 2,
                         "f1", "v%d" % i, "f2", "w%d" % i) == 1
        assert conn.call("HSET", "%s:hx:%d" % (prefix, i), "a", "1", "b", "2") == 2
        assert conn.call("HEXPIRE", "%s:hx:%d" % (prefix, i), TTL, "FIELDS", 1, "a") == [1]


def field_ttl_dataset(conn):
    """{key: (sorted fields and values, sorted fields that have a TTL)}."""
    out = {}
    for key in conn.call("KEYS", "*"):
        if conn.call("TYPE", key) != "hash":
            continue
        flat = conn.call("HGETALL", key)
        fields = sorted(flat[0::2])
        ttls = conn.call("HTTL", key, "FIELDS", len(fields), *fields)
        out[key] = (sorted(zip(flat[0::2], flat[1::2])),
                    sorted(f for f, t in zip(fields, ttls) if t > 0))
    return out


def test_field_ttls_survive_first_sync_checkpoint_and_restore(tmp_path):
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = None
    try:
        with harness.RespConn(upstream.addr) as d:
            if not has_hsetex(d):
                pytest.skip("%s has no HSETEX (hash field TTLs need Valkey >= 9.0)"
                            % harness.server_label())
            write_field_ttls(d, "pre", 20)  # before the proxy's first full sync
        proxy = harness.Proxy(tmp_path, upstream.port, "always",
                              config_text=proxy_config(), wait_ready=False)
        proxy.wait_ready(30)
        with harness.RespConn(proxy.addr) as c:
            write_field_ttls(c, "mid", 20)  # logged, then in the checkpoint
        first = manifest(proxy)
        status, body = admin_post(proxy)
        assert status == 202, body
        wait_completed(proxy, 1)
        assert manifest(proxy)["checkpoint_offset"] > first["checkpoint_offset"]
        with harness.RespConn(proxy.addr) as c:
            write_field_ttls(c, "post", 20)  # only in the log after the checkpoint
        with harness.RespConn(upstream.addr) as d:
            before = field_ttl_dataset(d)
        assert len(before) == 120 and all(len(t) > 0 for _, t in before.values())

        cluster.kill9(upstream)
        upstream.start(port=upstream.port)
        wait_restored(proxy)
        with harness.RespConn(upstream.addr) as d:
            assert field_ttl_dataset(d) == before
        assert metric(proxy, "restores_total") == 1
        with open(upstream.log_path) as f:
            assert "in RDB version" not in f.read()
    finally:
        if proxy is not None:
            proxy.stop()
        upstream.stop()
