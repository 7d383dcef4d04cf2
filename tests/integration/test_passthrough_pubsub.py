"""Pub/sub in RESP2 and RESP3, push frames and CLIENT TRACKING: replies are
recognised by content, push frames answer no request (VALKEY-SEMANTICS.md
section 2).  Every scenario runs against the target and a reference server
and the raw frames must be identical."""
from harness import Push, RespConn, compare, encode


def _drain(c, n):
    return [raw for raw, _ in c.read_frames(n)]


def _unsubscribe_all(c, n):
    """The n confirmations of an argument-less UNSUBSCRIBE come in the
    server's hash order: keep their kinds, channels and counts, not the order."""
    frames = [v for _, v in c.read_frames(n)]
    assert all(len(f) == 3 for f in frames), frames
    return [repr((type(frames[0]).__name__, sorted(f[0] for f in frames),
                  sorted(f[1] for f in frames), sorted(f[2] for f in frames))).encode()]


def resp2_scenario(addr):
    out = []
    with RespConn(addr) as sub, RespConn(addr) as pub:
        sub.send(encode("SUBSCRIBE", "a", "b") + encode("PSUBSCRIBE", "p*"))
        out += _drain(sub, 3)
        sub.send(encode("PING") + encode("PING", "x") + encode("GET", "k"))
        out += _drain(sub, 3)
        out.append(pub.call_raw("PUBLISH", "a", "hello"))
        out.append(pub.call_raw("PUBLISH", "pq", "pattern"))
        out += _drain(sub, 2)   # message on a, pmessage on p*
        # one confirmation per subscription, in the server's hash order
        sub.send(encode("UNSUBSCRIBE") + encode("PUNSUBSCRIBE", "p*") + encode("GET", "k"))
        out += _unsubscribe_all(sub, 2) + _drain(sub, 2)
        # outside subscribed mode: one confirmation per channel (redis 7.0)
        # or one -NOSUB (Valkey 8): both servers here are the same kind
        sub.send(encode("UNSUBSCRIBE", "x", "y") + encode("PING"))
        frames = []
        while not frames or frames[-1] != b"+PONG\r\n":
            frames.append(sub.read_frame()[0])
        out += frames
        out.append(pub.call_raw("PUBLISH", "a", "nobody"))
    return out


def test_resp2_pubsub_matches_reference(target, reference):
    got = resp2_scenario(target.addr)
    assert got == resp2_scenario(reference.addr)
    assert got[0] == b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
    assert got[3] == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    assert got[5].startswith(b"-ERR")  # GET is refused in RESP2 subscribed mode
    assert got[-1] == b":0\r\n"


def resp3_scenario(addr):
    out = []
    with RespConn(addr) as sub, RespConn(addr) as pub:
        sub.call("HELLO", "3")
        sub.send(encode("SUBSCRIBE", "a", "b") + encode("SSUBSCRIBE", "s1") + encode("SET", "k", "v") +
                 encode("GET", "k") + encode("PING"))
        out += _drain(sub, 6)
        out.append(pub.call_raw("PUBLISH", "a", "hello"))
        out.append(pub.call_raw("SPUBLISH", "s1", "sharded"))
        out += _drain(sub, 2)
        # its own PUBLISH: the push and the reply, in the server's order
        sub.send(encode("PUBLISH", "b", "self") + encode("GET", "k"))
        out += _drain(sub, 3)
        sub.send(encode("UNSUBSCRIBE") + encode("SUNSUBSCRIBE") + encode("PING"))
        out += _unsubscribe_all(sub, 2) + _drain(sub, 2)
    return out


def test_resp3_pubsub_confirmations_are_push_frames(target, reference):
    got = resp3_scenario(target.addr)
    assert got == resp3_scenario(reference.addr)
    assert got[0] == b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
    assert got[3:6] == [b"+OK\r\n", b"$1\r\nv\r\n", b"+PONG\r\n"]
    assert got[-1] == b"+PONG\r\n"


def test_pubsub_commands_pipelined_with_sentinel_match_reference(target, reference):
    steps = [[["SUBSCRIBE", "c1", "c2", "c3"], ["UNSUBSCRIBE", "c2"], ["PSUBSCRIBE", "x*", "y*"],
              ["PUNSUBSCRIBE", "x*"], ["UNSUBSCRIBE", "c1"], ["PUNSUBSCRIBE"], ["UNSUBSCRIBE"]],
             [["UNSUBSCRIBE"], ["PUNSUBSCRIBE", "nothing"], ["GET", "afterwards"]]]
    for proto in (2, 3):
        compare(target.addr, reference.addr, steps, proto=proto)


def tracking_scenario(addr):
    out = []
    with RespConn(addr) as c, RespConn(addr) as other:
        c.call("HELLO", "3")
        out.append(c.call_raw("CLIENT", "TRACKING", "ON"))
        c.call("SET", "t", "1")
        out.append(c.call_raw("GET", "t"))
        other.call("SET", "t", "2")
        out.append(c.read_frame()[0])                    # invalidate push
        out.append(c.call_raw("GET", "t"))
        # own write: the reply first, then the invalidation
        c.send(encode("SET", "t", "3"))
        out += _drain(c, 2)
        out.append(c.call_raw("CLIENT", "TRACKING", "OFF"))
        out.append(c.call_raw("GET", "t"))
        other.call("SET", "t", "4")
        out.append(c.call_raw("PING"))                  # no push any more
    return out


def test_client_tracking_resp3_invalidations(target, reference):
    got = tracking_scenario(target.addr)
    assert got == tracking_scenario(reference.addr)
    assert got[2] == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nt\r\n"
    assert got[4:6] == [b"+OK\r\n", got[2]]
    assert got[-1] == b"+PONG\r\n"


def test_client_tracking_resp2_redirect(target):
    with target.conn() as inv, target.conn() as c, target.conn() as other:
        inv_id = inv.call("CLIENT", "ID")
        assert inv.call("SUBSCRIBE", "__redis__:invalidate")[0] == b"subscribe"
        assert c.call("CLIENT", "TRACKING", "ON", "REDIRECT", str(inv_id)) == "OK"
        c.call("GET", "r")
        other.call("SET", "r", "1")
        raw, value = inv.read_frame()
        assert value == [b"message", b"__redis__:invalidate", [b"r"]]
        assert c.nothing_pending()


def test_push_frames_between_pipelined_replies_keep_reply_order(target):
    with target.conn() as sub, target.conn() as pub:
        sub.call("HELLO", "3")
        sub.call("SUBSCRIBE", "ch")
        n = 50
        sub.send(b"".join(encode("INCR", "ctr") for _ in range(n)))
        for i in range(20):
            pub.call("PUBLISH", "ch", "m%d" % i)
        got = sub.read_frames(n + 20)
        replies = [v for _, v in got if not isinstance(v, Push)]
        pushes = [v for _, v in got if isinstance(v, Push)]
        assert replies == list(range(1, n + 1))
        assert pushes == [[b"message", b"ch", b"m%d" % i] for i in range(20)]


def test_reset_leaves_subscribed_mode(target, reference):
    steps = [[["SUBSCRIBE", "r1"], ["PSUBSCRIBE", "r*"], ["RESET"], ["GET", "k"]]]
    got = compare(target.addr, reference.addr, steps)
    assert [raw for raw, _ in got][-2:] == [b"+RESET\r\n", b"$-1\r\n"]
    with RespConn(target.addr) as c, RespConn(target.addr) as pub:
        c.call("HELLO", "3")
        c.call("SUBSCRIBE", "r1")
        assert c.call("RESET") == "RESET"
        assert pub.call("PUBLISH", "r1", "after-reset") == 0
        assert c.call("PING") == "PONG" and c.nothing_pending()


def reply_off_scenario(addr, proto, mode):
    """CLIENT REPLY OFF (or SKIP) silences replies, not pushes: the server
    still sends (P)SUBSCRIBE's confirmations and the messages, in RESP3 as
    push frames and in RESP2 as arrays (issue 10, item 5)."""
    out = []
    with RespConn(addr) as sub, RespConn(addr) as pub:
        if proto == 3:
            sub.call("HELLO", "3")
        sub.send(encode("CLIENT", "REPLY", mode) + encode("SUBSCRIBE", "a") + encode("PSUBSCRIBE", "p*"))
        out += _drain(sub, 2)
        pub.call("PUBLISH", "a", "hello")
        pub.call("PUBLISH", "pq", "pattern")
        out += _drain(sub, 2)
        sub.send(encode("UNSUBSCRIBE", "a") + encode("PUNSUBSCRIBE", "p*"))
        out += _drain(sub, 2)
        if proto == 3:
            sub.send(encode("CLIENT", "REPLY", "ON") + encode("PING"))
            out += _drain(sub, 2)
    return out


def test_reply_off_then_subscribe_matches_reference(target, reference):
    for proto in (2, 3):
        for mode in ("OFF", "SKIP"):
            got = reply_off_scenario(target.addr, proto, mode)
            assert got == reply_off_scenario(reference.addr, proto, mode), (proto, mode)
            assert b"subscribe" in got[0], (proto, mode, got)
