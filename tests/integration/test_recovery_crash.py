"""The crash harness, short version (tests/crash/soak.sh runs hundreds of
rounds): writer clients of every kind through the proxy while the upstream,
the proxy, both, and the machine (power loss) are killed; after each round
every acknowledged write is present, nothing never attempted appears,
counters lie between acknowledged and attempted, scripts and MULTI/EXEC
are all-or-nothing.  Against Valkey 9.0+ (DP_SERVER_BIN) a writer also sets
hash fields with TTLs (HSETEX, HSET + HEXPIRE), checked for value and TTL
after every restore."""
import os

import pytest

from recovery_util import cluster  # noqa: F401  (puts tests/crash on sys.path)
import crash_harness

pytestmark = pytest.mark.proxy_only


def test_crash_rounds_lose_no_acknowledged_write(tmp_path):
    seed = int(os.environ.get("DP_CRASH_SEED", "0")) or None
    h = crash_harness.CrashHarness(tmp_path, seed=seed)
    try:
        h.run(rounds=int(os.environ.get("DP_CRASH_ROUNDS", "8")))
        t = h.totals()
        per_kind = {w.kind: len(w.acked) for w in h.writers}
    finally:
        h.stop()
    print("crash harness:", t)
    assert all(n >= 1 for n in t["faults"].values()), t
    # The writers really ran through the faults: most writes acknowledged,
    # and some met a crash (connection lost or -LOADING).
    assert t["acknowledged"] > 1000 and t["acknowledged"] <= t["attempted"], t
    assert sum(t["errors"].values()) > 0, t
    if crash_harness.server_has_hash_field_ttl(crash_harness.harness.SERVER_BIN):
        # The hash-field-TTL writer ran and got writes acknowledged (the
        # check above then found each with its value and TTL after restore).
        assert "hfe" in t["kinds"] and per_kind["hfe"] > 0, (per_kind, t)
