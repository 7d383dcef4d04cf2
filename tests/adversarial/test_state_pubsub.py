

def test_hello_3_inside_multi_then_reply_shaped_like_a_message(adv):
    """RESP2, then HELLO 3 inside MULTI, then SUBSCRIBE: the server answers
    other commands while subscribed (RESP3).  An LRANGE whose reply is
    ["message", ch, x] must not be taken for a message (which would give the
    GET behind it the LRANGE's place and answer a pending key unheld)."""
    with adv.conn() as s, adv.conn() as w, adv.direct() as c:
        s.send(harness.encode("MULTI") + harness.encode("HELLO", "3") + harness.encode("EXEC"))
        got = frames(s, 3)
        assert got[0] == "OK", got
        if isinstance(got[1], harness.Error):
            assert str(got[2]).startswith("EXECABORT"), got
            return  # refused: the spoof needs a RESP3 subscriber the proxy thinks is RESP2
        s.send_cmd("SUBSCRIBE", "adv:ch")
        frames(s, 1)
        assert s.call("RPUSH", "adv:l", "message", "adv:ch", "x") == 3
        adv.ctl.block()
        w.send_cmd("SET", "adv:k", "secret")
        harness.wait_until(lambda: c.call("GET", "adv:k") == b"secret", 5, "the upstream to execute the SET")
        s.send(harness.encode("LRANGE", "adv:l", "0", "-1") + harness.encode("GET", "adv:k"))
        assert list(frames(s, 1)[0]) == [b"message", b"adv:ch", b"x"]
        assert s.nothing_pending(wait=HOLD_S), "GET of a pending key answered before fsync"
        adv.ctl.unblock()
        assert frames(s, 1)[0] == b"secret"
