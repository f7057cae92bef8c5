"""The live view's listeners over time (imap/idle.c, fs/watch.c; issue 6):
a quiet IDLE is no failure, IDLE is renewed on the same connection, a
server that goes silent is noticed by the listener (which tells the pool,
so requests fail at once) and reconnected to as soon as the pool finds it
back, and a per-user connection limit makes the listeners yield to the
pool instead of fighting it.

The counters come from `imapfs status` ("watch:" line: listeners
connected, connections made, watchdog probes, IDLE renewals).  The
10-minute version of the quiet IDLE is test_quiet_long.py (run apart, in
the background of contrib/check.sh).
"""

import os
import re
import subprocess
import sys
import time

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402
from conftest import _missing_prerequisite  # noqa: E402

BOUND_S = 10    # a change shows up within this (liveness, not speed)
TIMEOUT = 3     # -o timeout for the fault-proxy mounts
FAST = 1.5      # "fails at once" while offline
QUIET = "Quiet"  # listener 1's folder (see use_two())


def msg(tag: str) -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.org\r\n"
            f"Subject: liveness {tag}\r\nMessage-ID: <{tag}@example.org>\r\n"
            f"\r\nbody {tag}\r\n").encode()


def status(mnt) -> str:
    r = subprocess.run([os.environ.get("IMAPFS_BIN", "imapfs"), "status",
                        mnt], capture_output=True, text=True, timeout=20)
    return r.stdout + r.stderr


_WATCH_RE = re.compile(
    r"^watch: +(\d+) of (\d+) listener\(s\) connected \((\w+)(, limited by "
    r"the server[^)]*)?\); (\d+) connection\(s\) made, (\d+) watchdog "
    r"probe\(s\), (\d+) IDLE renewal\(s\)$", re.M)


def watch_stats(mnt) -> dict:
    text = status(mnt)
    m = _WATCH_RE.search(text)
    assert m, f"no watch line in imapfs status:\n{text}"
    return {"connected": int(m.group(1)), "listeners": int(m.group(2)),
            "mode": m.group(3), "limited": m.group(4) is not None,
            "connects": int(m.group(5)), "probes": int(m.group(6)),
            "renewals": int(m.group(7)), "text": text}


def read_trace(trace) -> str:
    with open(trace, errors="replace") as f:
        return f.read()


def wait_connected(mnt, n=1, bound=BOUND_S):
    testenv.wait_for(lambda: watch_stats(mnt)["connects"] >= n and
                     watch_stats(mnt)["connected"] >= 1, bound,
                     interval=0.2, what=f"listener connection #{n}")


def wait_watch(mnt, trace, pred, bound, what):
    """Waits until pred(watch_stats(mnt)) holds; fails with the status and
    the listeners' lines of the trace if it does not within bound s."""
    try:
        testenv.wait_for(lambda: pred(watch_stats(mnt)), bound,
                         interval=0.2, what=what)
    except TimeoutError:
        lines = [ln for ln in read_trace(trace).splitlines()
                 if "watch" in ln or "connection" in ln]
        pytest.fail(f"{what}: not within {bound} s\n" + status(mnt) +
                    "\n".join(lines[-40:]))


def newest_uid(srv, box="INBOX") -> int:
    c = srv.client()
    try:
        c.select(testenv.imap_quote(srv.server_name(box)))
        _, data = c.uid("SEARCH", "ALL")
        return max(int(x) for x in data[0].split())
    finally:
        c.logout()


def change_shows_up(srv, mnt, tag, box="INBOX"):
    srv.append(box, msg(tag))
    new = f"{newest_uid(srv, box)}.eml"
    testenv.wait_for(lambda: new in os.listdir(os.path.join(mnt, box)),
                     BOUND_S, interval=0.1, what=f"{new} in the mount")


def doveadm_append(srv, box, tag) -> str:
    """Delivers a message with doveadm (no IMAP connection: the limit
    test's connections are all taken); returns its file name."""
    r = subprocess.run(["doveadm", "-c", srv.conf, "save", "-u", srv.user,
                        "-m", box], input=msg(tag), capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["doveadm", "-c", srv.conf, "search", "-u",
                        srv.user, "mailbox", box, "all"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return f"{max(int(ln.split()[1]) for ln in r.stdout.splitlines())}.eml"


@pytest.fixture
def mounted(imapfs_bin, tmp_path):
    """mounted(server, options) -> (mountpoint, trace); unmounted after."""
    made = []

    def do(server, options=()):
        mnt = str(tmp_path / f"mnt{len(made)}")
        os.mkdir(mnt)
        trace = str(tmp_path / f"trace{len(made)}")
        made.append((mnt, None))
        proc = testenv.mount_traced(imapfs_bin, server, mnt, trace,
                                    list(options))
        made[-1] = (mnt, proc)
        return mnt, trace

    yield do
    for mnt, proc in made:
        testenv.stop_traced(mnt, proc)


@pytest.fixture
def quiet_dovecot(tmp_path):
    """A Dovecot without NOTIFY that says nothing during IDLE (no "* OK
    Still here"): imap_idle_notify_interval 0 turns the keepalive off.  A
    long interval would not do: Dovecot aligns the keepalive to
    (time + hash of the client) modulo the interval, so the first one may
    come at any moment of it."""
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    srv = testenv.DovecotServer(str(tmp_path / "dovecot"),
                                without_caps=("NOTIFY",),
                                idle_notify_interval="0")
    srv.start()
    try:
        srv.create_mailbox(QUIET)
        srv.append(QUIET, msg("quiet-0"))
        yield srv
    finally:
        srv.stop()


def use_two(mnt):
    """Loads QUIET, then INBOX: with -o watch=2 listener 0 IDLEs on INBOX
    (and polls the mailbox list every few seconds: its IDLE is ended that
    often), listener 1 on QUIET with nothing else to do -- its IDLE is
    ended only by the watchdog or the renewal."""
    os.listdir(os.path.join(mnt, QUIET))
    os.listdir(os.path.join(mnt, "INBOX"))


def test_quiet_idle_short(quiet_dovecot, mounted):
    """15 s of total silence with a 3 s watchdog: listener 1 probes (DONE,
    the server completes it) several times and stays on its one
    connection; no reconnect, no error; a change made then shows up."""
    srv = quiet_dovecot
    mnt, trace = mounted(srv, ["-o", "watchdog=3", "-o", "watch=2"])
    wait_connected(mnt, 2)
    use_two(mnt)
    time.sleep(15)
    st = watch_stats(mnt)
    t = read_trace(trace)
    assert "* OK Still here" not in t, "the server was not silent"
    assert st["connects"] == 2, st["text"]
    assert st["connected"] == 2, st["text"]
    assert st["probes"] >= 3, st["text"]
    assert "connection lost" not in t
    change_shows_up(srv, mnt, "after-short-silence", box=QUIET)
    assert watch_stats(mnt)["connects"] == 2


def test_idle_renewed_on_the_same_connection(quiet_dovecot, mounted):
    """-o idle_renew=2: listener 1's IDLE is ended (DONE) and issued again
    every 2 s on its one connection -- the proxy sees IDLE after IDLE,
    each completed OK, on one connection -- without a reconnect; with the
    watchdog far away (300 s) those are renewals, not probes."""
    proxy = faultproxy.FaultProxy(quiet_dovecot, lifetime=120)
    proxy.start()
    try:
        mnt, _ = mounted(proxy, ["-o", "idle_renew=2", "-o", "watchdog=300",
                                 "-o", "watch=2"])
        wait_connected(mnt, 2)
        use_two(mnt)
        time.sleep(7)
        st = watch_stats(mnt)
        assert st["renewals"] >= 2, st["text"]
        assert st["probes"] == 0, st["text"]
        assert st["connects"] == 2, st["text"]
        per_conn = {}
        for c in proxy.commands_snapshot():
            if c.name == "IDLE" and c.status == "OK":
                per_conn[c.conn] = per_conn.get(c.conn, 0) + 1
        assert len(per_conn) == 2, f"IDLEs per connection: {per_conn}"
        assert max(per_conn.values()) >= 3, \
            f"IDLEs per connection: {per_conn}"
    finally:
        proxy.stop()


def test_silent_server_listener_tells_pool_and_reconnects(quiet_dovecot,
                                                          mounted):
    """The server goes silent (the proxy relays nothing, new connections
    get no greeting) for longer than the 2 s watchdog: the listener's
    probe times out and it tells the pool, which goes offline without any
    request having waited -- the first read then fails at once; while
    offline the listener does not reconnect on its own (the pool's
    reconnect thread probes); once the server answers again and the pool
    is back online the listener reconnects at once and changes show up."""
    srv = quiet_dovecot
    proxy = faultproxy.FaultProxy(srv, lifetime=200)
    proxy.start()
    try:
        mnt, trace = mounted(proxy, ["-o", f"timeout={TIMEOUT}",
                                     "-o", "watchdog=2",
                                     "-o", "listing_ttl=3600"])
        wait_connected(mnt)
        os.listdir(os.path.join(mnt, "INBOX"))
        change_shows_up(srv, mnt, "uncached")  # listed, body not read
        proxy.pause()
        testenv.wait_for(lambda: "server:       offline since" in
                         status(mnt), 2 + TIMEOUT + 10, interval=0.2,
                         what="the listener to put the pool offline")
        t = read_trace(trace)
        assert "watch 0: connection lost" in t
        # A request now fails at once (no request had to time out).
        uid = newest_uid(srv)
        start = time.monotonic()
        with pytest.raises(OSError):
            with open(os.path.join(mnt, "INBOX", f"{uid}.eml"), "rb") as f:
                f.read()
        assert time.monotonic() - start < FAST
        # Offline: the listener leaves reconnecting to the pool.
        time.sleep(6)
        t = read_trace(trace)
        assert "watch 0: cannot connect" not in t, \
            "the listener reconnected on its own while the pool was offline"
        assert watch_stats(mnt)["connects"] == 1
        proxy.resume()
        testenv.wait_for(lambda: "server:       online" in status(mnt),
                         40, interval=0.2, what="the pool back online")
        # At once once online (the pool's hook wakes the listener).
        testenv.wait_for(lambda: watch_stats(mnt)["connects"] == 2 and
                         watch_stats(mnt)["connected"] == 1, 5,
                         interval=0.1, what="the listener to reconnect")
        change_shows_up(srv, mnt, "after-silence")
    finally:
        proxy.stop()


def test_connection_limit_listeners_yield(tmp_path, mounted):
    """Dovecot allows 3 connections per user and address; the mount asks
    for 4 in the pool (3 opened at mount) and 3 IDLE listeners. The
    listeners are refused: listener 0 gets a connection from the pool,
    the others stop trying (no refusal after the first each) and their
    folders are polled; reads work on what the pool has left; a change in a folder no
    listener IDLEs on still shows up."""
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    srv = testenv.DovecotServer(str(tmp_path / "limdc"),
                                without_caps=("NOTIFY",),
                                max_userip_connections=3)
    srv.start()
    try:
        for box in ("A", "B", "C"):
            srv.create_mailbox(box)
            srv.append_many(box, [(msg(f"{box}{i}"), "", None)
                                  for i in range(4)])
        mnt, trace = mounted(srv, ["-o", "connections=4", "-o", "watch=3",
                                   "-o", "timeout=10"])
        for box in ("A", "B", "C"):
            os.listdir(os.path.join(mnt, box))
        wait_watch(mnt, trace, lambda st: st["limited"] and
                   st["connected"] == 1, 20, "listener 0 alone, limited")
        time.sleep(8)  # a backoff of 1, 2, 4 s would retry meanwhile
        t = read_trace(trace)
        for i in (1, 2):
            n = t.count(f"watch {i}: cannot connect")
            assert n <= 1, f"listener {i} kept trying ({n} refusals)"
        st = watch_stats(mnt)
        assert st["connected"] == 1 and st["listeners"] == 3, st["text"]
        # The reads share what the pool has left.
        files = [os.path.join(mnt, b, n) for b in ("A", "B", "C")
                 for n in os.listdir(os.path.join(mnt, b))]
        for p in files:
            with open(p, "rb") as f:
                assert b"Subject: liveness" in f.read()
        # C is not IDLEd on (only listener 0 is left): polled.
        for box in ("A", "C"):
            new = doveadm_append(srv, box, f"limited-{box}")
            testenv.wait_for(
                lambda: new in os.listdir(os.path.join(mnt, box)),
                BOUND_S, interval=0.1, what=f"{new} in {box}")
    finally:
        srv.stop()


QUIET_FOLDERS = 20
QUIET_WINDOW_S = 30
SLOT_S = 2   # fs/watch.c WATCH_POLL_MIN_US: the shortest poll slot


@pytest.mark.parametrize("mode", ["notify", "idle"])
def test_quiet_mount_leaves_idle_once_per_poll_slot(tmp_path, mounted, mode):
    """A quiet mount watching 20 folders, used one after another (so each
    has a poll schedule of its own), leaves IDLE at most once per 2 s poll
    slot: the polls of all folders and the mailbox list fall on the slots
    of one clock (fs/watch.c, watch_slot()), and with NOTIFY the folders it
    reports on are not waited for at all. Counted as the IDLE commands
    the proxy relays in 30 s. Each folder waking the listener on its own
    made it ~500 a minute with NOTIFY (bench (j), docs/PERFORMANCE.md).
    Changes still show up afterwards."""
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    caps = () if mode == "notify" else ("NOTIFY",)
    srv = testenv.DovecotServer(str(tmp_path / "dovecot"), without_caps=caps)
    srv.start()
    proxy = None
    try:
        boxes = [f"Q{i:02d}" for i in range(QUIET_FOLDERS)]
        for b in boxes:
            srv.create_mailbox(b)
            srv.append(b, msg(f"{b}-0"))
        proxy = faultproxy.FaultProxy(srv, lifetime=150)
        proxy.start()
        mnt, _ = mounted(proxy)
        wait_connected(mnt)
        testenv.wait_for(lambda: watch_stats(mnt)["mode"] == mode.upper(),
                         BOUND_S, interval=0.2, what=f"the listener in {mode}")
        for b in boxes:
            os.listdir(os.path.join(mnt, b))
            time.sleep(0.15)
        time.sleep(1)
        t0 = time.monotonic()
        time.sleep(QUIET_WINDOW_S)
        t1 = time.monotonic()
        idles = [c for c in proxy.commands_snapshot()
                 if c.name == "IDLE" and t0 <= c.sent_at <= t1]
        slots = QUIET_WINDOW_S // SLOT_S + 1
        assert len(idles) <= slots, \
            f"{len(idles)} IDLE commands in {QUIET_WINDOW_S} s " \
            f"(at most {slots} poll slots)"
        assert watch_stats(mnt)["connects"] == 1
        change_shows_up(srv, mnt, f"after-quiet-{mode}", box=boxes[0])
    finally:
        if proxy is not None:
            proxy.stop()
        srv.stop()


def test_connection_limit_listeners_come_back(tmp_path, mounted):
    """Dovecot allows 5 connections per user and address and another
    client holds 3 of them when the mount (2 in the pool, 3 IDLE
    listeners) starts: the listeners are refused, listener 0 gets a
    connection from the pool, the others are held down and `imapfs
    status` says when they try again.  (The other client holds 3, not 2:
    Dovecot counts a session only once it runs, so listeners logging in
    at the same moment could all get in under a limit of one more.)
    Once the other client logs out, the pool grows back and the others
    come back (-o limit_retry=2: 2 s, then 4, 8...; within 60 s), the
    status no longer says limited, reads work on the pool and a change in
    every loaded folder shows up."""
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    srv = testenv.DovecotServer(str(tmp_path / "limdc"),
                                without_caps=("NOTIFY",),
                                max_userip_connections=5)
    srv.start()
    others = []
    try:
        for box in ("A", "B", "C"):
            srv.create_mailbox(box)
            srv.append_many(box, [(msg(f"{box}{i}"), "", None)
                                  for i in range(2)])
        others = [srv.client() for _ in range(3)]
        mnt, trace = mounted(srv, ["-o", "connections=2", "-o", "watch=3",
                                   "-o", "timeout=10",
                                   "-o", "limit_retry=2"])
        for box in ("A", "B", "C"):
            os.listdir(os.path.join(mnt, box))
        wait_watch(mnt, trace, lambda st: st["limited"] and
                   st["connected"] == 1, 20, "listener 0 alone, limited")
        assert "limited by the server; " in watch_stats(mnt)["text"]
        for c in others:
            c.logout()
        others = []
        wait_watch(mnt, trace, lambda st: not st["limited"] and
                   st["connected"] == 3, 60, "the listeners back")
        # The pool is not starved: reads share what it has.
        for b in ("A", "B", "C"):
            for n in os.listdir(os.path.join(mnt, b)):
                with open(os.path.join(mnt, b, n), "rb") as f:
                    assert b"Subject: liveness" in f.read()
        for box in ("A", "B", "C"):
            new = doveadm_append(srv, box, f"back-{box}")
            testenv.wait_for(
                lambda: new in os.listdir(os.path.join(mnt, box)),
                BOUND_S, interval=0.1, what=f"{new} in {box}")
        assert "all 3 listeners connected again" in read_trace(trace)
    finally:
        for c in others:
            try:
                c.logout()
            except Exception:
                pass
        srv.stop()
