"""The fault proxy itself (tests/support/faultproxy.py), driven with plain
imaplib against a private Dovecot: it relays faithfully, and each fault it
offers does to the server and to the client what it says.  The server side
is always checked over a direct connection, not through the proxy.
"""

import imaplib
import os
import re
import secrets
import socket
import ssl
import sys
import threading

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402
from conftest import _missing_prerequisite  # noqa: E402

DROPPED = (imaplib.IMAP4.abort, OSError, EOFError)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    server = testenv.DovecotServer(str(tmp_path_factory.mktemp("fpdc")))
    server.start()
    try:
        server.create_mailbox("Target")
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(dovecot):
    p = faultproxy.FaultProxy(dovecot, lifetime=120)
    p.start()
    try:
        yield p
    finally:
        p.stop()


def message(size=20000):
    """A message with a unique Message-ID (returned too)."""
    mid = f"<fp-{secrets.token_hex(8)}@example.org>"
    body = b"".join(b"line %06d of the test body\r\n" % i
                    for i in range(size // 28 + 1))
    return (b"From: a@example.org\r\nTo: b@example.org\r\n"
            b"Subject: fault proxy\r\nMessage-ID: " + mid.encode() +
            b"\r\n\r\n" + body), mid


def copies(server, mailbox, mid) -> list[int]:
    """UIDs in mailbox whose Message-ID is mid (direct connection)."""
    c = server.client()
    try:
        typ, _ = c.select(testenv.imap_quote(mailbox), readonly=True)
        assert typ == "OK"
        typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID",
                          testenv.imap_quote(mid))
        assert typ == "OK", data
        return [int(x) for x in (data[0] or b"").split()]
    finally:
        c.logout()


def test_relays_and_records(dovecot, proxy):
    msg, mid = message()
    c = proxy.client()
    try:
        typ, data = c.append("INBOX", None, None, msg)
        assert typ == "OK", data
        assert re.search(rb"APPENDUID \d+ \d+", data[0])
        c.select("INBOX", readonly=True)
        typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID",
                          testenv.imap_quote(mid))
        (uid,) = data[0].split()
        typ, data = c.uid("FETCH", uid, "(BODY.PEEK[])")
        assert typ == "OK" and data[0][1] == msg
    finally:
        c.logout()
    names = [x.name for x in proxy.commands_snapshot()]
    assert names[:1] == ["CAPABILITY"] or "LOGIN" in names
    for want in ("LOGIN", "APPEND", "EXAMINE", "UID SEARCH", "UID FETCH",
                 "LOGOUT"):
        assert want in names, names
    app = next(x for x in proxy.commands_snapshot() if x.name == "APPEND")
    assert app.literal_bytes == len(msg) and app.status == "OK" and \
        app.relayed
    assert copies(dovecot, "INBOX", mid) != []


def append_cut(proxy, at):
    """APPENDs a new message through the proxy with a drop rule at `at`;
    returns (message, Message-ID, the APPEND as the proxy saw it)."""
    msg, mid = message(50000)
    rule = proxy.add_rule(faultproxy.Rule(r"^APPEND ", at=at,
                                          action="drop"))
    c = proxy.client()
    with pytest.raises(DROPPED):
        c.append("INBOX", None, None, msg)
    assert rule.fired == 1
    return msg, mid, rule.fired_on[0]


def test_append_cut_mid_literal_leaves_nothing(dovecot, proxy):
    msg, mid, app = append_cut(proxy, ("literal", 1000))
    assert app.literal_bytes == 1000 and app.status is None
    assert copies(dovecot, "INBOX", mid) == []


def test_append_cut_before_reply_leaves_one(dovecot, proxy):
    msg, mid, app = append_cut(proxy, "reply")
    assert app.literal_bytes == len(msg) and app.status == "OK" and \
        not app.relayed, "the client must not have seen the OK"
    assert len(copies(dovecot, "INBOX", mid)) == 1


def test_move_cut_before_reply_moves_once(dovecot, proxy):
    msg, mid = message()
    dovecot.append("INBOX", msg)
    (uid,) = copies(dovecot, "INBOX", mid)
    rule = proxy.add_rule(faultproxy.Rule(r"^UID MOVE ", at="reply",
                                          action="drop"))
    c = proxy.client()
    c.select("INBOX")
    with pytest.raises(DROPPED):
        c.uid("MOVE", str(uid), "Target")
    assert rule.fired == 1 and not rule.fired_on[0].relayed
    assert copies(dovecot, "INBOX", mid) == []
    assert len(copies(dovecot, "Target", mid)) == 1


def test_reset_rule_before_command_sends_nothing(dovecot, proxy):
    msg, mid = message()
    rule = proxy.add_rule(faultproxy.Rule(r"^APPEND ", at="before",
                                          action="reset"))
    c = proxy.client()
    with pytest.raises(DROPPED):
        c.append("INBOX", None, None, msg)
    assert rule.fired == 1 and rule.fired_on[0].literal_bytes == 0
    assert copies(dovecot, "INBOX", mid) == []


def test_callable_holds_the_reply(dovecot, proxy):
    """A callable action blocks relaying on its connection while it runs;
    other connections are unaffected."""
    release = threading.Event()
    held = threading.Event()

    def hold(conn, cmd):
        held.set()
        release.wait(20)

    proxy.add_rule(faultproxy.Rule(r"^NOOP", at="reply", action=hold))
    a, b = proxy.client(), proxy.client()
    box = {}
    t = threading.Thread(target=lambda: box.update(r=a.noop()), daemon=True)
    t.start()
    assert held.wait(20)
    noop = [x for x in proxy.commands_snapshot() if x.name == "NOOP"]
    assert noop[0].status == "OK" and not noop[0].relayed
    assert b.noop()[0] == "OK"   # the other connection still works
    assert "r" not in box
    release.set()
    t.join(20)
    assert box["r"][0] == "OK"
    a.logout()
    b.logout()


def test_pause_is_silence_and_resume_continues(proxy):
    c = proxy.client()
    proxy.pause()
    c.sock.settimeout(1.0)
    tag = c._new_tag()
    c.send(tag + b" NOOP\r\n")
    with pytest.raises(socket.timeout):
        c.sock.recv(1)
    # A new connection is not even greeted meanwhile.
    raw = socket.create_connection((proxy.host, proxy.imaps_port), 5)
    s = ssl.create_default_context(cafile=proxy.cafile).wrap_socket(
        raw, server_hostname=proxy.host)
    s.settimeout(1.0)
    with pytest.raises(socket.timeout):
        s.recv(1)
    proxy.resume()
    s.settimeout(20)
    assert s.recv(4) == b"* OK"
    s.close()
    c.sock.settimeout(20)
    got = b""
    while tag + b" OK" not in got:
        chunk = c.sock.recv(4096)
        assert chunk
        got += chunk
    c.shutdown()


def test_blackhole_and_refuse(proxy):
    proxy.blackhole(True)
    raw = socket.create_connection((proxy.host, proxy.imaps_port), 5)
    raw.settimeout(1.0)
    with pytest.raises(socket.timeout):
        ssl.create_default_context(cafile=proxy.cafile).wrap_socket(
            raw, server_hostname=proxy.host)
    raw.close()
    proxy.blackhole(False)
    port = proxy.imaps_port
    proxy.refuse(True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, port), 5)
    proxy.refuse(False)
    assert proxy.imaps_port == port
    c = proxy.client()
    assert c.noop()[0] == "OK"
    c.logout()


def test_reset_all(proxy):
    a, b = proxy.client(), proxy.client()
    assert proxy.reset_all() == 2
    for c in (a, b):
        with pytest.raises(DROPPED):
            c.noop()
    assert proxy.open_connections() == 0
    c = proxy.client()          # new connections still work
    assert c.noop()[0] == "OK"
    c.logout()


def test_stops_by_itself(dovecot):
    p = faultproxy.FaultProxy(dovecot, lifetime=1)
    p.start()
    try:
        c = p.client()
        assert p.wait_for(lambda: p._stopping.is_set(), 10)
        with pytest.raises(DROPPED):
            c.noop()
        assert p._listener is None and p.open_connections() == 0
    finally:
        p.stop()


def test_response_point_withholds_the_whole_answer(dovecot, proxy):
    """"response" fires before the first line of the answer: the client
    sees none of UID MOVE's untagged COPYUID/EXPUNGE, yet the server
    moved the message."""
    msg, mid = message()
    dovecot.append("INBOX", msg)
    (uid,) = copies(dovecot, "INBOX", mid)
    rule = proxy.add_rule(faultproxy.Rule(r"^UID MOVE ", at="response",
                                          action="drop"))
    c = proxy.client()
    c.select("INBOX")
    with pytest.raises(DROPPED):
        c.uid("MOVE", str(uid), "Target")
    assert rule.fired == 1
    assert "COPYUID" not in str(c.untagged_responses)
    assert len(copies(dovecot, "Target", mid)) == 1


def test_after_reply_point(proxy):
    """"after_reply" fires once the tagged reply was relayed: the command
    succeeded for the client, the next one finds the connection gone."""
    rule = proxy.add_rule(faultproxy.Rule(r"^NOOP", at="after_reply",
                                          action="reset"))
    c = proxy.client()
    assert c.noop()[0] == "OK"
    # The rule fires right after the reply was relayed: the client may
    # have read it before the proxy's thread got there.
    proxy.wait_for(lambda: rule.fired == 1, 10)
    assert rule.fired == 1 and rule.fired_on[0].relayed
    with pytest.raises(DROPPED):
        c.noop()


def raw_session(proxy, lines) -> tuple[int, int]:
    """Sends each line over a TLS connection of its own through the proxy,
    reading up to its tagged reply (and the greeting first, and to EOF
    after the last); returns (bytes sent, bytes received)."""
    ctx = ssl.create_default_context(cafile=proxy.cafile)
    raw = socket.create_connection((proxy.host, proxy.imaps_port), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname=proxy.host)
    got = bytearray()

    def until(end: bytes) -> None:
        while not (got.endswith(b"\r\n") and end in got):
            data = s.recv(65536)
            if not data:
                return
            got.extend(data)

    sent = 0
    try:
        until(b"* OK")
        for line in lines:
            s.sendall(line)
            sent += len(line)
            until(b"\r\n" + line.split(b" ", 1)[0] + b" ")
        until(b"\x00")   # to EOF: LOGOUT closes
    finally:
        s.close()
    return sent, len(got)


def test_traffic_counts_each_direction_exactly(dovecot, proxy):
    before = proxy.traffic()
    assert before == {"up_bytes": 0, "up_reads": 0, "down_bytes": 0,
                      "down_reads": 0}
    login = b"a1 LOGIN %s %s\r\n" % (dovecot.user.encode(),
                                     testenv.imap_quote(
                                         dovecot.password).encode())
    lines = [login, b"a2 NOOP\r\n", b"a3 STATUS INBOX (MESSAGES)\r\n",
             b"a4 LOGOUT\r\n"]
    sent, got = raw_session(proxy, lines)
    testenv.wait_for(lambda: proxy.open_connections() == 0, 10)
    one = proxy.traffic(1)
    assert one["up_bytes"] == sent, one
    assert one["down_bytes"] == got, one
    # One read per command (each was sent alone), at least one per reply.
    assert one["up_reads"] == len(lines), one
    assert len(lines) < one["down_reads"] <= got, one
    sent2, got2 = raw_session(proxy, [b"b1 LOGOUT\r\n"])
    testenv.wait_for(lambda: proxy.open_connections() == 0, 10)
    assert proxy.traffic(2)["up_bytes"] == sent2
    tot = proxy.traffic()
    assert tot["up_bytes"] == sent + sent2
    assert tot["down_bytes"] == got + got2
    assert proxy.traffic(3)["up_bytes"] == 0
