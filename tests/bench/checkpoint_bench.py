"""Checkpoint benchmark (issue 6 closing note): a dataset of --keys keys is
loaded straight into a redis-server behind durable-proxy (durability
always); then, for --rounds rounds, one client does SET/GET through the
proxy for --seconds without a checkpoint and again while POST /checkpoint
runs.  Prints the checkpoint's duration and size and the client's
p50/p99/max latency in both phases, per round and as medians.
Target: p99 during a checkpoint unchanged within noise.  Not part of the
test suite: run it on a quiet machine (tests/bench/checkpoint_bench.sh)."""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from checkpoint_util import (admin_post, latencies_while, percentile, proxy_config,  # noqa: E402
                             wait_completed)
from test_checkpoint_latency import load_keys  # noqa: E402


def ms(v):
    return v * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="baseline phase length per round")
    ap.add_argument("--proxy", default=harness.DP_BINARY)
    args = ap.parse_args()
    harness.DP_BINARY = args.proxy
    tmp = tempfile.mkdtemp(prefix="dp-ckpt-bench-")
    upstream = harness.Server(tmp, name="upstream")
    proxy = harness.Proxy(tmp, upstream.port, "always", config_text=proxy_config(segment_size="64mb"))
    try:
        t0 = time.monotonic()
        for start in range(0, args.keys, 200000):
            load_keys(upstream.port, min(200000, args.keys - start), prefix_start=start)
        with harness.RespConn(upstream.addr) as up:
            offset = int(harness.info_fields(up, "replication")["master_repl_offset"])
        with harness.RespConn(proxy.addr) as c:
            harness.wait_until(lambda: int(harness.info_fields(c)["fsynced_offset"]) >= offset, 600,
                               "the log to hold the dataset")
        print("loaded %d keys in %.1f s (stream offset %d)" % (args.keys, time.monotonic() - t0, offset))
        rows = []
        for r in range(args.rounds):
            end = time.monotonic() + args.seconds
            base = latencies_while(proxy.addr, lambda: time.monotonic() > end, key="base")
            done = threading.Event()
            got = {}
            t = threading.Thread(target=lambda: got.update(lat=latencies_while(proxy.addr, done.is_set, key="ck")))
            t.start()
            time.sleep(0.2)
            code, body = admin_post(proxy)
            assert code == 202, body
            ck = wait_completed(proxy, r + 1, timeout=600)
            time.sleep(0.2)
            done.set()
            t.join()
            during = got["lat"]
            row = (ck["last"]["seconds"], ck["last"]["bytes"], ms(percentile(base, 50)), ms(percentile(base, 99)),
                   ms(max(base)), ms(percentile(during, 50)), ms(percentile(during, 99)), ms(max(during)))
            rows.append(row)
            print("round %d: checkpoint %.2f s, %d bytes | without: p50 %.3f p99 %.3f max %.2f ms | "
                  "during: p50 %.3f p99 %.3f max %.2f ms" % ((r + 1,) + row))
        med = [statistics.median(col) for col in zip(*rows)]
        print("median: checkpoint %.2f s, %d bytes | without: p50 %.3f p99 %.3f max %.2f ms | "
              "during: p50 %.3f p99 %.3f max %.2f ms" % tuple(med))
    finally:
        proxy.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
