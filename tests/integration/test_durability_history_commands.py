"""Commands that would move the upstream to another history, sent through
the proxy (issue 10, item 6): refused with an error naming the command and
why, before they reach Valkey; inside MULTI the transaction then fails
with EXECABORT, as for a command Valkey rejects while queueing.  The forms
that keep the data (REPLICAOF NO ONE, FAILOVER ABORT, plain DEBUG RELOAD)
pass."""
import pytest

import harness
from durability_util import durable, reset  # noqa: F401

REFUSED = [
    ("REPLICAOF", "127.0.0.1", "1"),
    ("SLAVEOF", "127.0.0.1", "1"),
    ("replicaof", "localhost", "6379"),
    ("FAILOVER",),
    ("FAILOVER", "TO", "127.0.0.1", "1"),
    ("DEBUG", "RELOAD", "NOSAVE"),
    ("DEBUG", "RELOAD", "NOFLUSH", "MERGE"),
    ("DEBUG", "LOADAOF"),
    ("DEBUG", "CHANGE-REPL-ID"),
    ("DEBUG", "POPULATE", "10"),             # keys the stream never carries
    ("debug", "replicate", "SET", "x", "y"),  # a stream command the upstream never ran (Valkey 9)
    ("CLUSTER", "FAILOVER"),
]


@pytest.fixture
def d(durable):  # noqa: F811
    reset(durable)
    yield durable
    reset(durable)


def role(d):
    with d.direct() as c:
        return c.call("ROLE")[0]


@pytest.mark.parametrize("cmd", REFUSED, ids=lambda c: " ".join(c))
def test_history_change_is_refused(d, cmd):
    with d.conn() as c, d.direct() as direct:
        assert c.call("SET", "hist:k", "v") == "OK"
        reply = c.call(*cmd)
        assert isinstance(reply, harness.Error), reply
        name = cmd[0].upper() + (" " + cmd[1].upper() if cmd[0].upper() in ("DEBUG", "CLUSTER") else "")
        assert reply.startswith("ERR durable-proxy: %s refused: " % name), reply
        assert len(reply) > len("ERR durable-proxy: %s refused: " % name) + 10, reply
        assert c.call("GET", "hist:k") == b"v"
        assert direct.call("GET", "hist:k") == b"v"
    assert role(d) == b"master"


def test_history_change_inside_multi_aborts_the_transaction(d):
    with d.conn() as c, d.direct() as direct:
        assert c.call("MULTI") == "OK"
        assert c.call("SET", "hist:m", "1") == "QUEUED"
        reply = c.call("REPLICAOF", "127.0.0.1", "1")
        assert reply.startswith("ERR durable-proxy: REPLICAOF refused: "), reply
        assert str(c.call("EXEC")).startswith("EXECABORT"), "the transaction ran without the refused command"
        assert direct.call("EXISTS", "hist:m") == 0
        assert c.call("PING") == "PONG"
    assert role(d) == b"master"


@pytest.mark.parametrize("cmd,want", [(("REPLICAOF", "NO", "ONE"), "OK"), (("SLAVEOF", "no", "one"), "OK"),
                                      (("DEBUG", "RELOAD"), "OK")], ids=lambda c: " ".join(c) if isinstance(c, tuple) else c)
def test_forms_that_keep_the_data_pass(d, cmd, want):
    with d.conn() as c:
        assert c.call("SET", "hist:k", "v") == "OK"
        reply = c.call(*cmd)
        # the test server may not enable DEBUG: then the server's refusal shows it got through
        assert reply == want or (cmd[0] == "DEBUG" and "DEBUG command not allowed" in reply), reply
        assert c.call("GET", "hist:k") == b"v"
        assert c.call("SET", "hist:k2", "v2") == "OK"
    assert role(d) == b"master"


def test_failover_abort_passes(d):
    with d.conn() as c:
        reply = c.call("FAILOVER", "ABORT")
        assert reply == harness.Error("ERR No failover in progress."), reply
