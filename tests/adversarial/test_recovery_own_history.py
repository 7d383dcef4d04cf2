"""Also (a): the recovery decision.  An upstream restarted from its own older
snapshot (a SAVE made through the proxy, then kill -9, then a restart on the
same directory) holds a prefix of the log's own history (replid2 = the log's
replid, at an older offset): the proxy restores it instead of calling it
"another history".  And a refusal does not outlive itself: once the operator
wipes an upstream the proxy refused, the proxy restores it and serves again
promptly, not after a minute of -LOADING."""
import os
import shutil
import signal

import harness
from durability_util import fresh_durable  # noqa: F401  (fixture)


def kill9(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    if server in harness.LIVE:
        harness.LIVE.remove(server)


def workdir(server):
    return os.path.join(server.tmpdir, "%s-%d" % (server.name, server.port))


def proxy_get(d, key):
    try:
        with d.conn(timeout=2) as c:
            return c.call("GET", key)
    except OSError as e:
        return harness.Error(str(e))


def test_upstream_restarted_from_its_own_older_snapshot_is_restored(fresh_durable):  # noqa: F811
    d = fresh_durable()
    with d.conn() as c:
        assert c.call("SET", "adv:old", "1") == "OK"
        assert c.call("SAVE") == "OK"
        assert c.call("SET", "adv:new", "2") == "OK"  # acknowledged: durable in the log only
    port = d.upstream.port
    kill9(d.upstream)
    d.upstream.start(port=port)  # loads the SAVE: adv:old only
    with d.direct() as up:
        assert up.call("GET", "adv:new") is None
    last = []
    harness.wait_until(lambda: last.append(proxy_get(d, "adv:new")) or last[-1] == b"2", 20,
                       "the proxy to restore the upstream's newer writes",
                       state=lambda: "GET adv:new answered %r" % (last[-1:],))
    assert proxy_get(d, "adv:old") == b"1"


def test_a_refused_upstream_once_wiped_is_restored_and_served(fresh_durable, tmp_path):  # noqa: F811
    d = fresh_durable()
    with d.conn() as c:
        assert c.call("SET", "adv:mine", "1") == "OK"
    # Another history: a foreign server's snapshot in the upstream's directory.
    other = harness.Server(tmp_path / "other", name="other")
    try:
        with harness.RespConn(other.addr) as o:
            o.call("SET", "foreign", "x")
            assert o.call("SAVE") == "OK"
        foreign_rdb = os.path.join(workdir(other), "dump.rdb")
        port = d.upstream.port
        kill9(d.upstream)
        shutil.copy(foreign_rdb, os.path.join(workdir(d.upstream), "dump.rdb"))
        d.upstream.start(port=port)
    finally:
        other.stop()
    last = []
    harness.wait_until(lambda: last.append(proxy_get(d, "adv:mine")) or
                       (isinstance(last[-1], harness.Error) and "another history" in last[-1]), 20,
                       "the proxy to refuse the foreign dataset", state=lambda: repr(last[-1:]))
    # The operator wipes the upstream: stop, remove its data, start empty.
    kill9(d.upstream)
    os.remove(os.path.join(workdir(d.upstream), "dump.rdb"))
    d.upstream.start(port=port)
    harness.wait_until(lambda: last.append(proxy_get(d, "adv:mine")) or last[-1] == b"1", 15,
                       "the proxy to restore the wiped upstream and serve again",
                       state=lambda: repr(last[-1:]))
