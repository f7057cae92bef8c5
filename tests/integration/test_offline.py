"""The mount rides out network faults (issue 6, reliability.md §A 1-4):
through the fault proxy (tests/support/faultproxy.py) in front of a private
Dovecot, a server that goes silent, refuses or resets gives bounded EIO,
fast failure while offline, cached listings/attributes/bodies served,
EINTR on a signal, recovery without a remount; requests memory can answer
never wait behind hung reads; a per-user connection limit shrinks the
pool instead of failing requests.

Every bound below is generous (a multiple of the timeout plus slack): they
catch hangs and per-attempt timeout chains, not speed.
"""

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402
from conftest import _missing_prerequisite  # noqa: E402

TIMEOUT = 3
# What one syscall may take when the server is away: the timeout, not a
# chain of them (generous slack for a loaded CI machine).
BOUND = 4 * TIMEOUT + 5
# "Fails at once" while offline: far below one timeout.
FAST = 1.5
BIG = 6 * 1024 * 1024


def message(tag: str, size: int) -> bytes:
    head = (f"From: offline@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@imapfs.test>\r\n\r\n").encode()
    line = b"offline test body line, long enough to be realistic.....\r\n"
    return head + line * (size // len(line) + 1)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    server = testenv.DovecotServer(str(tmp_path_factory.mktemp("offdc")))
    server.start()
    try:
        server.create_mailbox("Cold")
        for i in range(6):
            server.append("INBOX", message(f"small{i}", 3000 + i * 1000))
        server.append("INBOX", message("big", BIG))
        for i in range(4):
            server.append("Cold", message(f"cold{i}", 2000))
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(dovecot):
    p = faultproxy.FaultProxy(dovecot, lifetime=300)
    p.start()
    try:
        yield p
    finally:
        p.stop()


class Mount:
    def __init__(self, binary, server, path, trace, options):
        self.path = path
        self.trace = trace
        self.proc = testenv.mount_traced(binary, server, path, trace,
                                         options)

    def p(self, *rel):
        return os.path.join(self.path, *rel)

    def status(self) -> str:
        r = subprocess.run([os.environ.get("IMAPFS_BIN", "imapfs"),
                            "status", self.path], capture_output=True,
                           text=True, timeout=20)
        return r.stdout + r.stderr

    def trace_tail(self, n=4000) -> str:
        with open(self.trace, errors="replace") as f:
            return f.read()[-n:]


@pytest.fixture
def mount(imapfs_bin, tmp_path):
    """mount(server, options) -> Mount; unmounted at teardown."""
    made = []

    def do_mount(server, options=()):
        path = str(tmp_path / f"mnt{len(made)}")
        os.mkdir(path)
        m = Mount(imapfs_bin, server, path,
                  str(tmp_path / f"trace{len(made)}.txt"),
                  ["-o", f"timeout={TIMEOUT}"] + list(options))
        made.append(m)
        return m

    yield do_mount
    for m in made:
        testenv.stop_traced(m.path, m.proc)


timed = testenv.timed


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def names(m, folder):
    return sorted(n for n in os.listdir(m.p(folder)) if n.endswith(".eml"))


def is_eio(exc) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EIO


def test_refused_server_offline_fast_and_recovery(proxy, mount):
    """The server refuses connections: the first read that needs it fails
    with EIO within the bound, the mount says offline, the next ones fail
    at once; cached bodies and listings are served; after the server is
    back the same read works without a remount."""
    m = mount(proxy, ["-o", "listing_ttl=1", "-o", "attr_timeout=1"])
    inbox = names(m, "INBOX")
    first = read(m.p("INBOX", inbox[0]))
    proxy.refuse(True)
    proxy.reset_all()
    _, exc, took = timed(lambda: read(m.p("INBOX", inbox[1])))
    assert is_eio(exc), repr(exc)
    assert took < BOUND, f"first failure took {took:.1f}s"
    assert "server:       offline since" in m.status()
    _, exc, took = timed(lambda: read(m.p("INBOX", inbox[2])))
    assert is_eio(exc), repr(exc)
    assert took < FAST, f"failure while offline took {took:.1f}s"
    time.sleep(1.5)  # listing_ttl and attr_timeout expire
    got, exc, _ = timed(lambda: names(m, "INBOX"))
    assert exc is None and got == inbox, repr(exc)
    got, exc, _ = timed(lambda: read(m.p("INBOX", inbox[0])))
    assert exc is None and got == first, repr(exc)
    st, exc, _ = timed(lambda: os.stat(m.p("INBOX", inbox[3])))
    assert exc is None and st.st_size > 0, repr(exc)

    proxy.refuse(False)
    deadline = time.monotonic() + 10
    while True:
        got, exc, _ = timed(lambda: read(m.p("INBOX", inbox[2])))
        if exc is None or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert exc is None, f"no recovery: {exc!r}\n{m.trace_tail()}"
    assert "server:       online" in m.status()


def wait_until_works(fn, bound=15):
    """Retries fn() until it raises nothing (returns it) or bound passes
    (returns the last exception)."""
    deadline = time.monotonic() + bound
    while True:
        got, exc, _ = timed(fn)
        if exc is None or time.monotonic() > deadline:
            return got, exc
        time.sleep(0.3)


def test_silent_server_mid_body_bounded_then_fast(proxy, mount):
    """The server goes silent in the middle of a big message (connections
    stay open, nothing answers): the read returns EIO within the bound
    (one timeout for the whole syscall, not one per step of a reconnect),
    the mount goes offline, the next read of another message fails at
    once, and after the server answers again reads work without a
    remount."""
    m = mount(proxy, ["-o", "listing_ttl=3600"])
    inbox = names(m, "INBOX")
    big = max(inbox, key=lambda n: os.stat(m.p("INBOX", n)).st_size)
    assert os.stat(m.p("INBOX", big)).st_size > BIG
    fd = os.open(m.p("INBOX", big), os.O_RDONLY)
    try:
        assert len(os.read(fd, 65536)) == 65536
        proxy.pause()
        t = time.monotonic()
        exc = None
        try:
            while os.read(fd, 1 << 20):
                pass
        except OSError as e:
            exc = e
        took = time.monotonic() - t
    finally:
        os.close(fd)
    assert is_eio(exc), repr(exc)
    assert took < BOUND, f"silent server: EIO after {took:.1f}s"
    others = [n for n in inbox if n != big]
    _, exc, took = timed(lambda: read(m.p("INBOX", others[-1])))
    assert is_eio(exc), repr(exc)
    assert took < FAST, f"failure while offline took {took:.1f}s"
    assert "server:       offline since" in m.status()
    proxy.resume()
    got, exc = wait_until_works(lambda: read(m.p("INBOX", big)))
    assert exc is None, f"no recovery: {exc!r}\n{m.trace_tail()}"
    assert len(got) == os.stat(m.p("INBOX", big)).st_size


def test_black_hole_connect_bounded(proxy, mount):
    """Connections reset, and new ones are accepted and never answered
    (not even the TLS handshake): the read that must reconnect fails
    within the bound, not after one handshake timeout per attempt; the
    next one fails at once."""
    m = mount(proxy, ["-o", "listing_ttl=3600"])
    inbox = names(m, "INBOX")
    proxy.blackhole(True)
    proxy.reset_all()
    _, exc, took = timed(lambda: read(m.p("INBOX", inbox[0])))
    assert is_eio(exc), repr(exc)
    assert took < BOUND, f"black hole: EIO after {took:.1f}s"
    _, exc, took = timed(lambda: read(m.p("INBOX", inbox[1])))
    assert is_eio(exc), repr(exc)
    assert took < FAST, f"failure while offline took {took:.1f}s"
    proxy.blackhole(False)
    _, exc = wait_until_works(lambda: read(m.p("INBOX", inbox[1])))
    assert exc is None, f"no recovery: {exc!r}\n{m.trace_tail()}"


def test_slow_steps_share_one_deadline(proxy, mount):
    """A server that answers every command just within the timeout: the
    read that has to reconnect (connect, handshake, login, capabilities,
    EXAMINE, FETCH) gets one timeout for all of it -- EIO after about one
    timeout, not a success after the sum of the steps."""
    m = mount(proxy, ["-o", "listing_ttl=3600"])
    inbox = names(m, "INBOX")
    proxy.add_rule(faultproxy.Rule(
        r".", at="before", times=None,
        action=lambda conn, cmd: time.sleep(TIMEOUT * 0.8)))
    proxy.reset_all()
    _, exc, took = timed(lambda: read(m.p("INBOX", inbox[0])))
    proxy.clear_rules()
    assert is_eio(exc), f"{exc!r} after {took:.1f}s"
    assert took < 2 * TIMEOUT + 3, f"EIO after {took:.1f}s"


_OPENDIR_CHILD = r"""
import ctypes, os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)
libc = ctypes.CDLL(None, use_errno=True)
libc.opendir.restype = ctypes.c_void_p
print("ready", flush=True)
d = libc.opendir(sys.argv[1].encode())
print("errno", 0 if d else ctypes.get_errno(), flush=True)
"""


def interrupted_opendir(path):
    """Runs opendir(path) in a child that gets SIGUSR1 (caught) once it
    blocked; returns (its output, seconds from the signal to its end)."""
    child = subprocess.Popen([sys.executable, "-c", _OPENDIR_CHILD, path],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # the OPENDIR is in the daemon, waiting
        assert child.poll() is None, "opendir did not block"
        t = time.monotonic()
        child.send_signal(signal.SIGUSR1)
        out, _ = child.communicate(timeout=25)
        return out, time.monotonic() - t
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_interrupt_ends_blocked_requests(proxy, mount):
    """With a long timeout and a silent server, a listing blocked on the
    network -- loading the folder, or waiting for another request's load
    of it -- ends with EINTR within a few seconds when the caller gets a
    signal (FUSE_INTERRUPT), and a blocked stat dies of SIGINT as fast."""
    m = mount(proxy, ["-o", "timeout=30", "-o", "listing_ttl=3600"])
    names(m, "INBOX")
    proxy.pause()
    out, took = interrupted_opendir(m.p("Cold"))
    assert f"errno {errno.EINTR}" in out, out
    assert took < 5, f"interrupted opendir returned after {took:.1f}s"
    # One that waits for another request's listing of the same folder.
    loader = threading.Thread(target=timed,
                              args=(lambda: os.listdir(m.p("Cold")),),
                              daemon=True)
    loader.start()
    time.sleep(0.5)
    out, took = interrupted_opendir(m.p("Cold"))
    assert f"errno {errno.EINTR}" in out, out
    assert took < 5, f"interrupted waiter returned after {took:.1f}s"

    # stat of a message name in a folder not listed yet: a LOOKUP,
    # which the kernel waits out uninterruptibly once the daemon has it
    # (a cat through the page cache is ended by the kernel itself).
    cat = subprocess.Popen(["stat", m.p("Cold", "1.eml")],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        assert cat.poll() is None, "stat did not block"
        t = time.monotonic()
        cat.send_signal(signal.SIGINT)
        cat.wait(timeout=25)
        took = time.monotonic() - t
    finally:
        if cat.poll() is None:
            cat.kill()
            cat.wait()
    assert took < 5, f"interrupted stat ended after {took:.1f}s"
    proxy.resume()


def test_memory_answers_while_network_requests_hang(proxy, mount):
    """While many requests wait for a silent server (more than libfuse has
    worker threads), getattr, readdir of a loaded folder, a cached read,
    getxattr and statfs answer at once."""
    m = mount(proxy, ["-o", "timeout=30", "-o", "listing_ttl=3600",
                      "-o", "attr_timeout=0"])
    inbox = names(m, "INBOX")
    cached = read(m.p("INBOX", inbox[0]))
    proxy.pause()
    hung = []
    for i in range(24):
        t = threading.Thread(target=timed,
                             args=(lambda: os.listdir(m.p("Cold")),),
                             daemon=True)
        t.start()
        hung.append(t)
    time.sleep(1.5)
    assert sum(t.is_alive() for t in hung) == len(hung)
    checks = {
        "getattr": lambda: os.stat(m.p("INBOX", inbox[1])),
        "readdir": lambda: names(m, "INBOX"),
        "cached read": lambda: read(m.p("INBOX", inbox[0])),
        "getxattr": lambda: os.getxattr(m.p("INBOX", inbox[1]),
                                        "user.imap.flags"),
        "statfs": lambda: os.statvfs(m.path),
    }
    for what, fn in checks.items():
        got, exc, took = timed(fn)
        assert exc is None, f"{what}: {exc!r}"
        assert took < 3, f"{what} waited {took:.1f}s behind hung requests"
        if what == "cached read":
            assert got == cached
    proxy.resume()
    for t in hung:
        t.join(40)


def test_connection_limit_shrinks_pool(imapfs_bin, tmp_path, mount):
    """Dovecot allows 2 connections per user and address and the mount
    asks for 4: parallel reads all succeed on the 2 there are, and
    imapfs status says the server's limit was hit."""
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    server = testenv.DovecotServer(str(tmp_path / "limdc"),
                                   max_userip_connections=2)
    server.start()
    try:
        for i in range(16):
            server.append("INBOX", message(f"lim{i}", 200000))
        # The pool alone: a listener would get one of the two
        # (test_idle_liveness.py::test_connection_limit_listeners_yield).
        m = mount(server, ["-o", "connections=4", "-o", "timeout=10",
                           "-o", "watch=0"])
        inbox = names(m, "INBOX")
        results = {}

        def reader(n):
            results[n] = timed(lambda: read(m.p("INBOX", n)))

        threads = [threading.Thread(target=reader, args=(n,))
                   for n in inbox]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        bad = {n: r[1] for n, r in results.items() if r[1] is not None}
        assert not bad, f"reads failed: {bad}\n{m.trace_tail()}"
        assert len(results) == len(inbox)
        st = m.status()
        assert "for its limit (configured 4, now 2; one more tried in" \
            in st, st
        assert "at most 2" in st, st
        testenv.stop_traced(m.path, m.proc)
    finally:
        server.stop()
