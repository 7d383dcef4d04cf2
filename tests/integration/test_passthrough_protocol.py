"""Inline commands and protocol errors: the replies already due, then the
server's own error text, then close (VALKEY-SEMANTICS.md section 2).  Each
case sends the same bytes to the target and the reference server and
compares everything received up to the close."""
import pytest

from harness import Closed, RespConn, encode, scaled


def whole_conversation(addr, data, chunks=1):
    """Send data (in `chunks` pieces), return all bytes until the server closes
    or goes quiet, and whether it closed."""
    with RespConn(addr) as c:
        step = max(1, len(data) // chunks)
        try:
            for i in range(0, len(data), step):
                c.send(data[i:i + step])
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        closed = False
        # Every case gets an answer or a close: wait for that first event
        # (scaled deadline), then read until quiet.
        try:
            c._fill(scaled(10))
        except (Closed, OSError):
            pass
        while True:
            if c.nothing_pending(scaled(0.3)):
                closed = c.eof
                break
            received += bytes(c.buf[c.pos:])
            c.pos = len(c.buf)
        received += bytes(c.buf[c.pos:])
        return received, closed


def same_as_reference(target, reference, data, chunks=1):
    got = whole_conversation(target.addr, data, chunks)
    want = whole_conversation(reference.addr, data, chunks)
    assert got == want, "target %r\nreference %r" % (got, want)
    return got


def test_inline_commands_with_quotes_and_bare_newlines(target, reference):
    data = (b"SET a 1\r\n" b"\r\n" b"GET a\n" b"SET \"sp ace\" 'q\\'x'\r\n"
            b"GET \"sp ace\"\r\n" b"SET hex \"\\x41\\x42\"\r\n" b"GET hex\r\n"
            b"  PING   \r\n" b"ECHO \"\"\r\n" + encode("GET", "a"))
    received, closed = same_as_reference(target, reference, data)
    assert not closed
    assert received == (b"+OK\r\n$1\r\n1\r\n+OK\r\n$3\r\nq'x\r\n+OK\r\n$2\r\nAB\r\n"
                        b"+PONG\r\n$0\r\n\r\n$1\r\n1\r\n")


def test_inline_commands_split_byte_by_byte(target, reference):
    data = b"SET split yes\r\nGET split\r\n"
    received, closed = same_as_reference(target, reference, data, chunks=len(data))
    assert received == b"+OK\r\n$3\r\nyes\r\n" and not closed


def test_empty_and_null_multibulk_are_ignored(target, reference):
    data = b"*0\r\n*-1\r\n" + encode("PING")
    assert same_as_reference(target, reference, data) == (b"+PONG\r\n", False)


ERROR_CASES = {
    "unbalanced_quotes": (b"SET \"abc\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    "bad_multibulk_length": (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    "too_many_elements": (b"*2147483648\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    "dollar_expected": (b"*1\r\n+PING\r\n", b"-ERR Protocol error: expected '$', got '+'\r\n"),
    "negative_bulk": (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    "bulk_over_limit": (b"*1\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    "too_big_inline": (b"x" * (70 * 1024), b"-ERR Protocol error: too big inline request\r\n"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_protocol_error_sends_due_replies_then_error_then_closes(target, reference, case):
    bad, error = ERROR_CASES[case]
    # an inline request is too big only while no newline has arrived
    after = b"" if case == "too_big_inline" else encode("SET", "after", "1")
    data = encode("SET", "before", "1") + encode("GET", "before") + bad + after
    received, closed = same_as_reference(target, reference, data)
    assert received == b"+OK\r\n$1\r\n1\r\n" + error
    assert closed
    with RespConn(target.addr) as c:
        assert c.call("EXISTS", "after") == 0
