"""Fixtures and hooks shared by tests/integration and tests/adversarial
(see integration/conftest.py for the environment variables)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def pytest_report_header(config):
    return "upstream server: %s (%s)" % (harness.server_label(), harness.SERVER_BIN)


def pytest_configure(config):
    config.addinivalue_line("markers", "proxy_only: needs the real proxy; skipped with DP_DIRECT=1")


def pytest_collection_modifyitems(config, items):
    if not harness.DIRECT:
        return
    skip = pytest.mark.skip(reason="DP_DIRECT=1: proxy-specific behaviour")
    for item in items:
        if "proxy_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        # (Only on failure: with -rA a section on every passed test would
        # triple the log; the session summary names the server once.)
        report.sections.append(("upstream server", harness.server_label()))
        for p in list(harness.LIVE):
            report.sections.append(("output of " + p.name, p.describe()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # Printed even with -q (the header is not): ctest's --output-on-failure
    # and the pass logs both show which server the run was against.
    terminalreporter.write_line("upstream server: %s (%s)" % (harness.server_label(), harness.SERVER_BIN))


def pytest_sessionfinish(session, exitstatus):
    for p in list(harness.LIVE):
        p.stop(timeout=2)


class Target:
    """What a test talks to: .addr/.port (the proxy, or the upstream when
    direct), .upstream (the Server behind), .proxy (None when direct)."""

    def __init__(self, upstream, proxy):
        self.upstream = upstream
        self.proxy = proxy
        self.addr = proxy.addr if proxy else upstream.addr
        self.port = self.addr[1]

    def direct(self):
        """A raw connection straight to the upstream (for inspection)."""
        return harness.RespConn(self.upstream.addr)

    def conn(self, **kw):
        return harness.RespConn(self.addr, **kw)

    def stop(self):
        if self.proxy:
            self.proxy.stop()
        self.upstream.stop()


@pytest.fixture(scope="module")
def durability():
    return harness.DURABILITY


def make_target(tmpdir, durability, server_args=(), proxy_args=()):
    upstream = harness.Server(tmpdir, server_args, name="upstream")
    proxy = None
    if not harness.DIRECT:
        try:
            proxy = harness.Proxy(tmpdir, upstream.port, durability, proxy_args)
        except Exception:
            upstream.stop()
            raise
    return Target(upstream, proxy)


@pytest.fixture(scope="module")
def target(tmp_path_factory, durability):
    t = make_target(tmp_path_factory.mktemp("target"), durability)
    yield t
    t.stop()


@pytest.fixture
def fresh_target(tmp_path, durability):
    """A private upstream (+ proxy) for tests that shut things down."""
    made = []

    def make(server_args=(), proxy_args=()):
        t = make_target(tmp_path, durability, server_args, proxy_args)
        made.append(t)
        return t
    yield make
    for t in made:
        t.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    s = harness.Server(tmp_path_factory.mktemp("reference"), name="reference")
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _clean_servers(request):
    """Each test starts from empty servers with no leftover clients' state."""
    for name in ("target", "reference"):
        if name in request.fixturenames:
            obj = request.getfixturevalue(name)
            server = obj.upstream if isinstance(obj, Target) else obj
            if server.alive():
                with harness.RespConn(server.addr) as c:
                    c.call("FLUSHALL")
                    c.call("SCRIPT", "FLUSH")
    yield


# Star-imported by both conftest.py files: hooks and fixtures, the autouse
# one with a leading underscore included.
__all__ = [n for n in list(globals()) if not n.startswith("__") and n not in ("os", "sys", "pytest")]
