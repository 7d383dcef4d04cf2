"""Soak: hundreds of crash rounds (kill -9 upstream, proxy, both, power
loss) under writer load, checking after every `--verify-every` rounds that
no acknowledged write was lost; prints the totals.  Optionally also the
1M-key restore comparison (--big-keys).

    tests/crash/soak.sh [rounds] [--seed N] [--big-keys 1000000] [--server BIN]

Environment: DP_BINARY (default <repo>/build/durable-proxy); DP_SERVER_BIN
(the upstream server when --server is not given; default redis-server).
Against Valkey 9.0+ the writers include hash fields with TTLs."""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import crash_harness  # noqa: E402
import harness  # noqa: E402
import recovery_util  # noqa: E402


def big_restore(tmpdir, keys, server_bin):
    c = crash_harness.cluster.Cluster(tmpdir, server_bin=server_bin)
    try:
        t0 = time.monotonic()
        with harness.RespConn(c.addr, timeout=120) as conn:
            recovery_util.write_mixed(conn, keys // 2, prefix="a")
        import http.client
        h = http.client.HTTPConnection("127.0.0.1", c.proxy.admin_port, timeout=600)
        h.request("POST", "/checkpoint")
        h.getresponse().read()
        h.close()
        harness.wait_until(lambda: c.status().get("checkpoint", {}).get("offset", 0) > 0, 600,
                           "checkpoint")
        with harness.RespConn(c.addr, timeout=120) as conn:
            recovery_util.write_mixed(conn, keys // 2, prefix="b", functions=False)
        load_s = time.monotonic() - t0
        with c.direct() as d:
            before = recovery_util.snapshot(d, (0, 1, 2))
        t0 = time.monotonic()
        c.kill_upstream()
        recovery_util.wait_restored(c.proxy, 1, timeout=1800)
        restore_s = time.monotonic() - t0
        with c.direct() as d:
            recovery_util.assert_same_dataset(recovery_util.snapshot(d, (0, 1, 2)), before)
        return {"keys": len(before), "load_s": round(load_s, 1), "restore_s": round(restore_s, 2)}
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rounds", type=int, nargs="?", default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--verify-every", type=int, default=5)
    ap.add_argument("--writers-per-kind", type=int, default=2)
    ap.add_argument("--big-keys", type=int, default=0)
    ap.add_argument("--server", default=harness.SERVER_BIN,
                    help="upstream server binary (default DP_SERVER_BIN or redis-server)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    tmp = tempfile.mkdtemp(prefix="dp-soak-")
    print("soak: %d rounds, seed %d, server %s (%s), dir %s" % (
        args.rounds, seed, harness.server_label(args.server), args.server, tmp), flush=True)
    os.makedirs(os.path.join(tmp, "crash"), exist_ok=True)
    h = crash_harness.CrashHarness(os.path.join(tmp, "crash"), seed=seed,
                                   writers_per_kind=args.writers_per_kind,
                                   log=lambda m: print(m, flush=True),
                                   server_bin=args.server)
    ok = False
    try:
        h.run(args.rounds, verify_every=args.verify_every)
        ok = True
    finally:
        totals = h.totals()
        h.stop()
        print("soak totals:", json.dumps(totals, sort_keys=True), flush=True)
        print("soak result:", "PASS (no acknowledged write lost)" if ok else "FAIL", flush=True)
    if args.big_keys:
        r = big_restore(os.path.join(tmp, "big"), args.big_keys, args.server)
        print("big restore:", json.dumps(r), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)  # kept only when something failed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
