"""Fixtures: an upstream redis-server, the proxy in front of it (or, with
DP_DIRECT=1, the upstream itself, so every test proves it encodes real server
behaviour), and an independent reference server to compare replies with.

Environment:
  DP_DIRECT=1          test redis-server directly; @proxy_only tests skip
  DP_BINARY            the durable-proxy binary (default <repo>/build/durable-proxy)
  DP_IT_DURABILITY     --durability for the proxy (default "off")
  DP_IT_SHARING        --sharing for the proxy (auto|off; default: the proxy's)
  DP_SERVER_BIN        the upstream server binary (default redis-server)
  DP_TEST_TIME_SCALE   multiplies every deadline (default 1)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest_shared import *  # noqa: E402,F401,F403  (fixtures and hooks)
