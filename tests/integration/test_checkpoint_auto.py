"""Automatic checkpoints bound the log (DESIGN.md §5): under a steady write
load with a small checkpoint.max_log_bytes the proxy takes checkpoints by
itself, deletes the segments below each, and the log directory stays within
max_log_bytes + two checkpoints + a few segments; every acknowledged write
is still readable and the stream is still logged.  Also the interval
trigger."""
import threading
import time

import pytest

import harness
from checkpoint_util import (checkpointer, disk_bytes, manifest, metrics, proxy_config, rdb_files,
                             segments)

pytestmark = pytest.mark.proxy_only

SEGMENT = 64 << 10
MAX_LOG = 512 << 10
KEYS = 2000
VALUE = 200


def paced_writer(addr, stop, last, rate_bytes_per_s=1 << 20, batch=20):
    """Pipelined SETs of KEYS keys at about rate_bytes_per_s of stream;
    last[key] = the value of the last acknowledged SET."""
    per_batch = batch * (VALUE + 40)
    pause = per_batch / float(rate_bytes_per_s)
    n = 0
    with harness.RespConn(addr, timeout=10) as c:
        while not stop.is_set():
            t0 = time.monotonic()
            cmds = []
            for _ in range(batch):
                key = "w:%d" % (n % KEYS)
                value = ("%d:" % n).encode().ljust(VALUE, b"x")
                cmds.append((key, value))
                n += 1
            c.send(b"".join(harness.encode("SET", k, v) for k, v in cmds))
            for k, v in cmds:
                assert c.read_frame()[1] == "OK"
                last[k] = v
            left = pause - (time.monotonic() - t0)
            if left > 0:
                time.sleep(left)


def test_steady_writes_trigger_checkpoints_and_the_log_dir_stays_bounded(tmp_path):
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = harness.Proxy(tmp_path, upstream.port, "always",
                          config_text=proxy_config(segment_size="64kb", max_log_bytes="512kb"))
    stop = threading.Event()
    last = {}
    samples = []
    errors = []

    def sample():
        while not stop.is_set():
            samples.append((disk_bytes(proxy.log_dir), max(rdb_files(proxy).values(), default=0)))
            time.sleep(0.02)

    def write():
        try:
            paced_writer(proxy.addr, stop, last)
        except Exception as e:  # reported below
            errors.append(e)
            stop.set()

    try:
        m0 = metrics(proxy)
        threads = [threading.Thread(target=write), threading.Thread(target=sample)]
        for t in threads:
            t.start()
        # Steady writes until three automatic checkpoints were taken.
        harness.wait_until(
            lambda: errors or (metrics(proxy)["durable_proxy_checkpoints_total"] -
                               m0["durable_proxy_checkpoints_total"]) >= 3,
            60, "three automatic checkpoints under steady writes",
            state=lambda: checkpointer(proxy))
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        harness.wait_until(lambda: not checkpointer(proxy)["running"], 30, "the last checkpoint to end")
        m1 = metrics(proxy)
        taken = m1["durable_proxy_checkpoints_total"] - m0["durable_proxy_checkpoints_total"]
        assert taken >= 3, "only %d automatic checkpoints under ~8 MB of writes" % taken
        assert m1["durable_proxy_checkpoint_failures_total"] == 0, checkpointer(proxy)

        peak_disk = max(d for d, _ in samples)
        largest_rdb = max(r for _, r in samples)
        # The log reaches max_log_bytes, grows on while a checkpoint runs
        # (a tick of 100 ms + the checkpoint's time at ~1 MB/s), and holds the
        # partly dropped first segment, the current one and its preallocated spare.
        bound = MAX_LOG + 2 * largest_rdb + 4 * SEGMENT + 300 * 1024
        print("\nauto checkpoints: %d taken, peak log dir %d bytes (bound %d = max_log_bytes %d + "
              "2 x checkpoint %d + slack), %d samples"
              % (taken, peak_disk, bound, MAX_LOG, largest_rdb, len(samples)))
        assert peak_disk <= bound

        # Every acknowledged write is readable through the proxy.
        with harness.RespConn(proxy.addr, timeout=10) as c:
            keys = sorted(last)
            c.send(b"".join(harness.encode("GET", k) for k in keys))
            for k in keys:
                assert c.read_frame()[1] == last[k], k
            # ... and the stream is still logged to its end.
            up = harness.RespConn(upstream.addr)
            offset = int(harness.info_fields(up, "replication")["master_repl_offset"])
            up.close()
            harness.wait_until(lambda: int(harness.info_fields(c)["fsynced_offset"]) >= offset, 10,
                               "the log to reach the upstream's offset %d" % offset)
        m = manifest(proxy)
        assert segments(proxy)[0] <= m["checkpoint_offset"]
        assert list(rdb_files(proxy)) == [m["checkpoint_offset"]]
    finally:
        stop.set()
        proxy.stop()
        upstream.stop()


def test_the_interval_triggers_a_checkpoint_only_after_writes(tmp_path):
    upstream = harness.Server(tmp_path, name="upstream")
    proxy = harness.Proxy(tmp_path, upstream.port, "always",
                          config_text=proxy_config(interval="1s"))
    try:
        first = manifest(proxy)["checkpoint_offset"]
        time.sleep(1.5)  # negative proof: an interval with no writes takes no checkpoint
        assert checkpointer(proxy)["completed"] == 0
        with harness.RespConn(proxy.addr) as c:
            for i in range(100):
                assert c.call("SET", "i:%d" % i, "v" * 100) == "OK"
        harness.wait_until(lambda: checkpointer(proxy)["completed"] >= 1, 10,
                           "the interval trigger to take a checkpoint")
        assert manifest(proxy)["checkpoint_offset"] > first
    finally:
        proxy.stop()
        upstream.stop()
