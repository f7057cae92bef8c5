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


def timed(fn):
    """(result, exception, seconds) of fn()."""
    t = time.monotonic()
    try:
        return fn(), None, time.monotonic() - t
    except Exception as e:  # noqa: BLE001 - the caller judges it
        return None, e, time.monotonic() - t


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
