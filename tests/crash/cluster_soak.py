"""Cluster crash soak: a 3-primary, 3-replica Valkey Cluster with a proxy
beside each node, writers over every hash slot through the proxies, and
round after round a fault on a random primary:

  node-restart  the node killed (-9) and started again empty on its own
                directory before its replica could take over;
  proxy-kill    its proxy killed and started again on its log;
  both-kill     both at once;
  failover      (every --failover-every rounds) the node killed and left
                down until its replica is promoted, then started again
                empty: it rejoins as the new primary's replica.

After the node and proxy faults every acknowledged write must read back;
the failover rounds measure what a failover loses (acknowledged writes the
replica had not received: the README's contract), check that each lost
write is in the old primary's proxy log, and print the counts.

    tests/crash/cluster_soak.sh [rounds] [--seed N] [--failover-every K]
                                [--writers N] [--server BIN]

Uses tests/integration/cluster_traffic.py (the same rounds as
tests/integration/test_cluster_crash.py)."""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import cluster_traffic  # noqa: E402
import cluster_util  # noqa: E402
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rounds", type=int, nargs="?", default=40)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--failover-every", type=int, default=4,
                    help="every K-th round is a failover (0: none)")
    ap.add_argument("--writers", type=int, default=4, help="writer threads over all slots")
    ap.add_argument("--server", default=harness.SERVER_BIN, help="valkey-server binary (8.x or 9.x)")
    ap.add_argument("--node-timeout-ms", type=int, default=3000,
                    help="cluster-node-timeout: a failover takes about twice this; node faults must be back sooner")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="dp-cluster-soak-")
    print("cluster soak: %d rounds (failover every %s), seed %d, %s (%s), dir %s" % (
        args.rounds, args.failover_every or "never", seed, harness.server_label(args.server), args.server, tmp),
        flush=True)
    c = cluster_util.ValkeyCluster(tmp, binary=args.server, node_timeout_ms=args.node_timeout_ms,
                                   server_args=["--enable-debug-command", "local"])
    totals = {"rounds": 0, "faults": {}, "ready_s": [], "failovers": 0, "failover_lost": [],
              "failover_acked_on_slots": [], "promoted_s": []}
    ok = False
    t = cluster_traffic.Traffic(c, threads=args.writers, prefix="soak")
    try:
        with t:
            for r in range(1, args.rounds + 1):
                victim = rng.choice(c.primaries())
                if args.failover_every and r % args.failover_every == 0:
                    lost, before, promoted_s = cluster_traffic.failover_round(c, t, victim)
                    totals["failovers"] += 1
                    totals["failover_lost"].append(len(lost))
                    totals["failover_acked_on_slots"].append(before)
                    totals["promoted_s"].append(round(promoted_s, 2))
                    kind = "failover"
                else:
                    kind = rng.choice(sorted(cluster_traffic.FAULTS))
                    node_id = victim.node_id()
                    totals["ready_s"].append(round(cluster_traffic.fault_round(c, t, victim, kind), 2))
                    cluster_traffic.check_round(c, t, victim, node_id)
                totals["faults"][kind] = totals["faults"].get(kind, 0) + 1
                totals["rounds"] = r
                print("round %d/%d: %s on node %d done; %d acknowledged writes so far, all read back" % (
                    r, args.rounds, kind, victim.index, t.count()), flush=True)
        ok = True
    finally:
        c.stop()
        ready = sorted(totals["ready_s"])
        if ready:
            totals["ready_s"] = {"median": ready[len(ready) // 2], "max": ready[-1], "n": len(ready)}
        totals["acknowledged"] = t.count()
        print("cluster soak totals:", json.dumps(totals, sort_keys=True), flush=True)
        print("cluster soak result:", "PASS (no acknowledged write lost but by failover, each of those in the "
              "old primary's proxy log)" if ok else "FAIL (dir kept: %s)" % tmp, flush=True)
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
