"""Checkpoints on demand (DESIGN.md §5): POST /checkpoint and
`durable-proxy --checkpoint` take a new checkpoint through a second replica
connection; it lands at a newer offset, the MANIFEST names it, segments
wholly below it are deleted, and the previous checkpoint is removed only
after the new one is complete.  Requests while one runs, while the proxy is
not ready, or with no log answer clearly."""
import os
import shutil
import time

import pytest

import harness
from checkpoint_util import (admin_post, checkpointer, fill, manifest, metrics,
                             proxy_config, rdb_files, run_cli_checkpoint, segments, status,
                             value_of, wait_completed)

pytestmark = pytest.mark.proxy_only


@pytest.fixture
def upstream(tmp_path):
    s = harness.Server(tmp_path, name="upstream")
    yield s
    s.stop()


def start_proxy(tmp_path, upstream, config_text=None, env=None, durability="always", **kw):
    return harness.Proxy(tmp_path, upstream.port, durability,
                         config_text=config_text or proxy_config(segment_size="64kb"), env=env, **kw)


def test_post_checkpoint_makes_a_newer_checkpoint_and_drops_older_segments(tmp_path, upstream):
    proxy = start_proxy(tmp_path, upstream)
    try:
        first = manifest(proxy)  # the first full sync is checkpoint 0
        assert rdb_files(proxy) == {first["checkpoint_offset"]: rdb_files(proxy)[first["checkpoint_offset"]]}
        # ~0.8 MB of stream in small batches: many 64 KB segments
        fill(proxy.addr, 3000, value_size=200, prefix="a", batch=50)
        before = segments(proxy)
        assert len(before) >= 4, "expected the writes to span many segments, got %r" % before

        mx0 = metrics(proxy)
        code, body = admin_post(proxy)
        assert code == 202, body
        assert body["started"] is True and "checkpoint started" in body["message"], body
        done = wait_completed(proxy, 1)

        m = manifest(proxy)
        c = m["checkpoint_offset"]
        assert c > first["checkpoint_offset"]
        assert done["last"]["offset"] == c
        assert m["replid"] == status(proxy)["replid"]
        assert m["log_start"] == c and m["rdb"] == "%020d.rdb" % c
        # Only the new checkpoint is left; the first one was pruned.
        files = rdb_files(proxy)
        assert list(files) == [c], files
        assert files[c] == done["last"]["bytes"] > 0
        # Segments wholly below C are gone (the log's writer thread deletes
        # them right after): only the first remaining one may start at or below C.
        harness.wait_until(lambda: all(s > c for s in segments(proxy)[1:]), 5,
                           "segments wholly below %d to be deleted" % c)
        after = segments(proxy)
        assert after[0] <= c, (c, after)
        assert len(after) < len(before)
        assert not [n for n in os.listdir(os.path.join(proxy.log_dir, "checkpoints")) if n.endswith(".tmp")]

        # Metrics say the same.
        mx = metrics(proxy)
        assert mx["durable_proxy_checkpoints_total"] == mx0["durable_proxy_checkpoints_total"] + 1
        assert mx["durable_proxy_checkpoint_offset_bytes"] == c
        assert mx["durable_proxy_checkpoint_size_bytes"] == files[c]
        assert mx["durable_proxy_checkpoint_in_progress"] == 0
        assert mx["durable_proxy_checkpoint_seconds_count"] == mx0["durable_proxy_checkpoint_seconds_count"] + 1
        assert mx["durable_proxy_checkpoint_failures_total"] == 0

        # Everything is still served, and new writes are logged after C.
        with harness.RespConn(proxy.addr) as conn:
            for i in (0, 1234, 2999):
                assert conn.call("GET", "a:%d" % i) == value_of("a", i, 200)
            assert conn.call("SET", "after", "1") == "OK"
            fsynced = int(harness.info_fields(conn)["fsynced_offset"])
        assert fsynced > c

        # The checkpoint is a real RDB: a fresh server loads it with the data.
        load_dir = tmp_path / "load"
        load_dir.mkdir()
        shutil.copy(os.path.join(proxy.log_dir, "checkpoints", m["rdb"]), load_dir / "dump.rdb")
        check = harness.Server(tmp_path, ["--dir", str(load_dir), "--dbfilename", "dump.rdb"], name="loadcheck")
        try:
            with harness.RespConn(check.addr) as conn:
                assert conn.call("DBSIZE") == 3000
                assert conn.call("GET", "a:2999") == value_of("a", 2999, 200)
        finally:
            check.stop()
    finally:
        proxy.stop()


def test_the_previous_checkpoint_stays_until_the_new_one_is_complete(tmp_path, upstream):
    """fsyncs blocked: the new checkpoint cannot commit; meanwhile the old one is
    the MANIFEST's and on disk, a second request is refused with 409, and
    clients reading keys are not held up."""
    ctl = harness.FsyncControl(tmp_path, harness.fsync_shim(tmp_path))
    proxy = start_proxy(tmp_path, upstream, env=ctl.env)
    try:
        fill(proxy.addr, 2000, prefix="b")
        old = manifest(proxy)
        with harness.RespConn(upstream.addr) as up:  # the log holds everything before fsync stops
            offset = int(harness.info_fields(up, "replication")["master_repl_offset"])
        harness.wait_until(lambda: status(proxy)["offsets"]["fsynced"] >= offset, 10, "log at %d" % offset)
        ctl.block()
        code, body = admin_post(proxy)
        assert code == 202, body
        harness.wait_until(lambda: checkpointer(proxy)["phase"] in ("committing", "waiting_for_log"), 20,
                           "the checkpoint to reach its commit (fsync blocked)")
        assert manifest(proxy) == old
        assert old["checkpoint_offset"] in rdb_files(proxy)
        tmp = [n for n in os.listdir(os.path.join(proxy.log_dir, "checkpoints")) if n.endswith(".rdb.tmp")]
        assert len(tmp) == 1, tmp

        code, body = admin_post(proxy)
        assert code == 409, body
        assert body["started"] is False and "already running" in body["message"], body
        cli = run_cli_checkpoint(["--admin", "127.0.0.1:%d" % proxy.admin_port])
        assert cli.returncode == 1, cli
        assert b"409" in cli.stderr and b"already running" in cli.stderr, cli.stderr

        # Reads of settled keys are served meanwhile; in "committing" the
        # checkpoint's fdatasync hangs on libuv's pool, not on the loop.  The
        # fsync stays blocked until ctl.unblock() below, so a loop stuck in
        # the commit would not answer these at all: an answer is the proof,
        # whatever a busy machine makes it cost (no clock bound).
        phase = checkpointer(proxy)["phase"]
        with harness.RespConn(proxy.addr, timeout=harness.scaled(5)) as conn:
            for i in range(20):
                assert conn.call("GET", "b:%d" % i) == value_of("b", i, 100), "GET in phase %s" % phase
        assert checkpointer(proxy)["phase"] in ("committing", "waiting_for_log"), "fsync unblocked early"

        ctl.unblock()
        done = wait_completed(proxy, 1)
        new = manifest(proxy)
        assert new["checkpoint_offset"] == done["last"]["offset"] > old["checkpoint_offset"]
        assert list(rdb_files(proxy)) == [new["checkpoint_offset"]]
    finally:
        ctl.clear()
        proxy.stop()


def test_command_line_trigger_starts_a_checkpoint(tmp_path, upstream):
    proxy = start_proxy(tmp_path, upstream)
    try:
        fill(proxy.addr, 500, prefix="c")
        old = manifest(proxy)["checkpoint_offset"]
        # Without a config file: --admin alone names the proxy.
        cli = run_cli_checkpoint(["--admin", "127.0.0.1:%d" % proxy.admin_port])
        assert cli.returncode == 0, cli
        assert b"answered 202" in cli.stdout and b"checkpoint started" in cli.stdout, cli.stdout
        wait_completed(proxy, 1)
        assert manifest(proxy)["checkpoint_offset"] > old
        # With the proxy's own config file (the admin address comes from --admin there too).
        fill(proxy.addr, 10, prefix="c2")
        cli = run_cli_checkpoint(["--config", os.path.join(proxy.workdir, "proxy.yaml"),
                                  "--admin", "127.0.0.1:%d" % proxy.admin_port])
        assert cli.returncode == 0, cli
        wait_completed(proxy, 2)
    finally:
        proxy.stop()
    # Nobody listening: exit 2 and the address in the message.
    cli = run_cli_checkpoint(["--admin", "127.0.0.1:%d" % proxy.admin_port])
    assert cli.returncode == 2, cli
    assert ("127.0.0.1:%d" % proxy.admin_port).encode() in cli.stderr
    assert b"connect" in cli.stderr


def test_checkpoint_requests_when_not_ready_answer_503(tmp_path):
    # Upstream not reachable: the proxy is not ready, the request says why.
    proxy = harness.Proxy(tmp_path, harness.free_port(), "always", config_text=proxy_config(),
                          wait_ready=False)
    try:
        harness.wait_until(lambda: proxy.readyz() == 503, 10, "admin port up, not ready")
        code, body = admin_post(proxy)
        assert code == 503, body
        assert body["started"] is False and body["message"].startswith("not ready: upstream"), body
        cli = run_cli_checkpoint(["--admin", "127.0.0.1:%d" % proxy.admin_port])
        assert cli.returncode == 1 and b"503" in cli.stderr, cli
    finally:
        proxy.stop()


def test_checkpoint_request_without_a_log_answers_503(tmp_path, upstream):
    proxy = start_proxy(tmp_path, upstream, durability="off")
    try:
        code, body = admin_post(proxy)
        assert code == 503, body
        assert "durability.mode always" in body["message"], body
    finally:
        proxy.stop()


def test_a_checkpoint_survives_a_proxy_restart(tmp_path, upstream):
    """After a checkpoint the proxy restarts from MANIFEST + log against the
    same upstream and continues the stream (no new full sync)."""
    proxy = start_proxy(tmp_path, upstream)
    fill(proxy.addr, 1000, prefix="d")
    code, _ = admin_post(proxy)
    assert code == 202
    c = wait_completed(proxy, 1)["last"]["offset"]
    fill(proxy.addr, 100, prefix="e")
    assert proxy.stop() == 0
    again = harness.Proxy(tmp_path, upstream.port, "always", config_text=proxy_config(),
                          extra_args=["--log-dir", proxy.log_dir])
    try:
        st = status(again)
        assert st["offsets"]["log_start"] == c
        assert st["checkpoint"]["offset"] == c
        with harness.RespConn(again.addr) as conn:
            assert conn.call("GET", "e:99") == value_of("e", 99, 100)
        # Same directory (proxy.log_dir): no full resync replaced the checkpoint.
        assert manifest(proxy)["checkpoint_offset"] == c
        assert list(rdb_files(proxy)) == [c]
    finally:
        again.stop()


def test_a_checkpoint_from_a_disk_based_full_sync(tmp_path):
    """With repl-diskless-sync no the upstream sends the RDB as $<len>: the
    checkpoint works the same."""
    upstream = harness.Server(tmp_path, ["--repl-diskless-sync", "no"], name="upstream")
    proxy = start_proxy(tmp_path, upstream)
    try:
        fill(proxy.addr, 1000, prefix="f")
        old = manifest(proxy)["checkpoint_offset"]
        code, body = admin_post(proxy)
        assert code == 202, body
        c = wait_completed(proxy, 1)["last"]["offset"]
        assert c > old and list(rdb_files(proxy)) == [c]
        with harness.RespConn(proxy.addr) as conn:
            assert conn.call("GET", "f:999") == value_of("f", 999, 100)
    finally:
        proxy.stop()
        upstream.stop()


def test_the_first_checkpoint_commits_off_the_loop(tmp_path, upstream):
    """fsyncs blocked before the proxy starts: the first full sync's RDB is
    whole but its commit hangs on libuv's pool, so the loop still answers
    /readyz (503: not serving before the checkpoint is durable); once fsync
    works again the checkpoint is committed and the proxy serves."""
    fill(upstream.addr, 2000, prefix="g")
    ctl = harness.FsyncControl(tmp_path, harness.fsync_shim(tmp_path))
    ctl.block()
    proxy = start_proxy(tmp_path, upstream, env=ctl.env, wait_ready=False)
    try:
        def log():
            with open(proxy.log_path, errors="replace") as f:
                return f.read()
        # Logged after the RDB is whole and its commit queued.
        harness.wait_until(lambda: "replication stream flowing" in log(), 20,
                           "the first full sync's RDB to be received (fsync blocked)",
                           state=lambda: log()[-600:])
        # The fsync stays blocked until ctl.unblock(): a loop stuck in the
        # commit would give no answer at all (None), whatever the timeout.
        for i in range(10):
            t0 = time.perf_counter()
            code = proxy.readyz()
            assert code == 503, "answer %d: /readyz gave %r after %.3f s while the commit hangs" % (
                i, code, time.perf_counter() - t0)
            time.sleep(0.05)  # pacing between the ten answers, not an ordering
        assert "checkpoint at offset" not in log()  # still blocked: nothing adopted yet
        ctl.unblock()
        proxy.wait_ready()
        assert "checkpoint at offset" in log()
        with harness.RespConn(proxy.addr) as conn:
            assert conn.call("GET", "g:1999") == value_of("g", 1999, 100)
    finally:
        ctl.clear()
        proxy.stop()
