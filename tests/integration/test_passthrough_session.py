"""Connection state the proxy must follow exactly: HELLO 2/3, AUTH,
MULTI/EXEC/DISCARD/WATCH, RESET, QUIT, CLIENT REPLY ON/OFF/SKIP
(VALKEY-SEMANTICS.md section 2)."""
from harness import Error, compare, encode


def test_hello_switches_protocol_and_bad_version_changes_nothing(target, reference):
    steps = [[["HELLO", "3"], ["HGETALL", "nothing"], ["HSET", "h", "a", "1"], ["HGETALL", "h"],
              ["HELLO", "4"], ["HGETALL", "h"], ["HELLO", "2"], ["HGETALL", "h"],
              ["HELLO", "2"], ["GET", "nope"]]]
    got = compare(target.addr, reference.addr, steps, exact=False)
    raws = [raw for raw, _ in got]
    assert raws[0].startswith(b"%7\r\n")        # HELLO 3 reply already in RESP3
    assert raws[3] == b"%1\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert raws[4].startswith(b"-NOPROTO")
    assert raws[5] == raws[3]                   # still RESP3 after the bad HELLO
    assert raws[6].startswith(b"*14\r\n")       # HELLO 2 reply in RESP2
    assert raws[7] == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert raws[9] == b"$-1\r\n"


def test_hello_with_auth_and_setname(target, reference):
    setup = ["ACL", "SETUSER", "it-hello", "on", ">pw", "~*", "+@all"]
    steps = [[setup, ["HELLO", "3", "AUTH", "it-hello", "wrong"], ["GET", "x"],
              ["HELLO", "3", "AUTH", "it-hello", "pw", "SETNAME", "it-hello"],
              ["CLIENT", "GETNAME"], ["ACL", "WHOAMI"], ["GET", "x"]]]
    got = compare(target.addr, reference.addr, steps, exact=False)
    assert isinstance(got[1][1], Error) and got[1][1].startswith("WRONGPASS")
    assert got[2][0] == b"$-1\r\n"             # the failed HELLO changed nothing
    assert got[4][1] == b"it-hello" and got[5][1] == b"it-hello"
    assert got[6][0] == b"_\r\n"
    with target.direct() as d:
        d.call("ACL", "DELUSER", "it-hello")


def test_auth_with_acl_user_and_wrong_password(target, reference):
    setup = ["ACL", "SETUSER", "it-user", "on", ">secret", "~*", "+@all"]
    steps = [[setup, ["AUTH", "it-user", "bad"], ["AUTH", "it-user", "secret"],
              ["ACL", "WHOAMI"], ["AUTH", "onlypassword"], ["ACL", "WHOAMI"]]]
    got = compare(target.addr, reference.addr, steps)
    assert got[3][1] == b"it-user"
    with target.direct() as d:
        d.call("ACL", "DELUSER", "it-user")


def test_multi_exec_discard_and_execabort(target, reference):
    steps = [[["MULTI"], ["SET", "a", "1"], ["INCR", "a"], ["LPUSH", "a", "x"], ["GET", "a"],
              ["EXEC"],
              ["MULTI"], ["SET", "b", "1"], ["DISCARD"], ["GET", "b"],
              ["MULTI"], ["SET", "c", "1"], ["NOSUCHCMD"], ["SET", "c"], ["EXEC"], ["GET", "c"],
              ["EXEC"], ["DISCARD"], ["MULTI"], ["MULTI"], ["DISCARD"]]]
    got = compare(target.addr, reference.addr, steps)
    values = [v for _, v in got]
    assert values[1:5] == ["QUEUED"] * 4
    assert values[5][:2] == ["OK", 2] and values[5][3] == b"2"
    assert values[14].startswith("EXECABORT")


def test_select_inside_multi_takes_effect_at_exec(target, reference):
    steps = [[["MULTI"], ["SELECT", "2"], ["SET", "k", "in2"], ["EXEC"], ["GET", "k"],
              ["SELECT", "0"], ["GET", "k"]]]
    got = compare(target.addr, reference.addr, steps)
    assert [v for _, v in got][-3:] == [b"in2", "OK", None]


def test_watch_conflict_makes_exec_answer_null(target):
    for proto, null in ((2, b"*-1\r\n"), (3, b"_\r\n")):
        with target.conn() as a, target.conn() as b:
            a.call("HELLO", str(proto))
            assert a.call("WATCH", "w") == "OK"
            assert b.call("SET", "w", "changed") == "OK"
            assert a.call("MULTI") == "OK"
            assert a.call("SET", "w", "mine") == "QUEUED"
            assert a.call_raw("EXEC") == null
            assert b.call("GET", "w") == b"changed"
            # without conflict the transaction runs
            assert a.call("WATCH", "w") == "OK"
            a.call("MULTI")
            a.call("SET", "w", "mine")
            assert a.call("EXEC") == ["OK"]
            a.call("WATCH", "w")
            assert a.call("UNWATCH") == "OK"
            b.call("SET", "w", "again")
            a.call("MULTI")
            a.call("GET", "w")
            assert a.call("EXEC") == [b"again"]


def test_reset_restores_defaults(target, reference):
    steps = [[["HELLO", "3"], ["SELECT", "5"], ["SET", "k", "5"], ["CLIENT", "TRACKING", "ON"],
              ["MULTI"], ["RESET"], ["GET", "k"], ["HGETALL", "none"], ["CLIENT", "INFO"]]]
    got = compare(target.addr, reference.addr, steps, exact=False)
    values = [v for _, v in got]
    assert values[5] == "RESET"
    assert values[6] is None and got[6][0] == b"$-1\r\n"  # db 0, RESP2 again
    assert got[7][0] == b"*0\r\n"
    info = values[8].decode()
    assert "db=0" in info and "resp=2" in info and "flags=N" in info


def test_quit_answers_ok_then_closes(target):
    with target.conn() as c:
        c.send(encode("SET", "q", "1") + encode("QUIT") + encode("SET", "q", "2"))
        rest = c.expect_close()
        assert rest == b"+OK\r\n+OK\r\n"
    with target.conn() as c:
        assert c.call("GET", "q") == b"1"


def test_client_reply_off_skip_on(target):
    with target.conn() as c:
        c.send(encode("CLIENT", "REPLY", "OFF") + encode("SET", "a", "1") + encode("GET", "a"))
        assert c.nothing_pending(0.3)
        c.send(encode("CLIENT", "REPLY", "ON"))
        assert c.read_frame() == (b"+OK\r\n", "OK")
        c.send(encode("CLIENT", "REPLY", "SKIP") + encode("SET", "b", "2") + encode("GET", "b") +
               encode("GET", "a"))
        assert c.read_frames(2) == [(b"$1\r\n2\r\n", b"2"), (b"$1\r\n1\r\n", b"1")]
        assert c.nothing_pending()
        # SKIP only skips the next command, even when that one is an error
        c.send(encode("CLIENT", "REPLY", "SKIP") + encode("NOSUCH") + encode("PING"))
        assert c.read_frame() == (b"+PONG\r\n", "PONG")
        # OFF then ON within one pipeline: only ON's reply and what follows
        c.send(encode("CLIENT", "REPLY", "OFF") + encode("INCR", "n") + encode("CLIENT", "REPLY", "ON")
               + encode("INCR", "n"))
        assert c.read_frames(2) == [(b"+OK\r\n", "OK"), (b":2\r\n", 2)]
        assert c.nothing_pending()


def test_client_reply_bad_argument_is_an_error_and_replies_stay_on(target, reference):
    steps = [[["CLIENT", "REPLY", "MAYBE"], ["SET", "x", "1"]]]
    got = compare(target.addr, reference.addr, steps)
    assert got[0][1].startswith("ERR") and got[1][1] == "OK"


def test_client_reply_inside_multi_is_refused_and_aborts(target):
    """The proxy keeps CLIENT REPLY's mode itself, so inside MULTI it answers
    as Valkey 8+ does (refused, the transaction aborts), on every server:
    Redis 7.0 queued it and switched replies off in the middle of EXEC."""
    for mode in ("OFF", "SKIP", "ON"):
        with target.conn() as c:
            c.send(encode("MULTI") + encode("CLIENT", "REPLY", mode) + encode("SET", "cr", mode) +
                   encode("EXEC") + encode("PING"))
            got = [c.read_frame()[1] for _ in range(5)]
            assert got[0] == "OK" and got[2] == "QUEUED" and got[4] == "PONG", (mode, got)
            assert got[1] == Error("ERR Command 'client|reply' not allowed inside a transaction"), (mode, got)
            assert got[3].startswith("EXECABORT"), (mode, got)
            assert c.call("GET", "cr") is None


def test_info_durability_inside_multi_is_queued(target, reference):
    steps = [[["MULTI"], ["INFO", "durability"], ["EXEC"], ["PING"]]]
    got = compare(target.addr, reference.addr, steps)
    assert [v for _, v in got][1] == "QUEUED"
