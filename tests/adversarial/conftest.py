"""The adversarial suite (issue: the gate's blind spots).

Each test is one way a client could try to observe a write whose fsync is
held back (the fsync shim blocks the log's fdatasync): write on one
connection, then try to see it on another (or the same) connection, through
a read, an INFO field, a script, a pub/sub message, a raw pipe...  A test
passes when nothing pending is revealed before it is durable, and proves it
by checking that the value does show up once fsync is released.

Files are named for the class of blind spot they probe
(test_state_*.py: the session's tracked state, db and MULTI in
test_state_db.py, pub/sub mode in test_state_pubsub.py; test_raw_pipe.py:
SYNC/PSYNC; test_effects_*.py: effects a command does not declare;
test_reports_*.py: reads that report the keyspace; ...).  Fixtures come from tests/integration (harness.py, durability_util.py),
so the same environment variables apply (DP_BINARY, DP_SERVER_BIN,
DP_TEST_TIME_SCALE).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402,F401
from conftest_shared import *  # noqa: E402,F401,F403  (fixtures and hooks)
