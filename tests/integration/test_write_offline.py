"""The write path while the server is silent or the caller is interrupted
(issue 6: requests memory answers never queue behind ones waiting for the
network; issue 5: nothing lost, nothing duplicated).

Through the fault proxy (tests/support/faultproxy.py) in front of a
private Dovecot: closes of new messages on a silent server, more of them
than libfuse has worker threads, leave getattr, readdir of a loaded
folder, cached reads, getxattr and statfs answering at once; each close
ends with EIO within a bound, the data stays readable, and once the server
answers again one more fsync stores exactly one copy of each -- also of
those whose APPEND the silent server got and stored later. A signal to a
process blocked in close() or rename() gives EINTR with nothing sent, or,
once the APPEND was sent, the result the server agrees with. A rename of
a file whose close is still storing it waits for that commit.

Bounds are generous (multiples of the timeout plus slack): they catch
requests that wait behind others, not speed.
"""

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import WriteEnv, _missing_prerequisite
import faultproxy
import testenv

TIMEOUT = 6
# fuse_loop_cfg_set_max_threads() in fs/main.c: the FUSE workers.
MAX_THREADS = 16
CLOSES = MAX_THREADS + 6
# A request memory answers, while the network ones hang.
PROMPT = 3
# One syscall on a silent server: the timeout, plus one more to learn an
# unknown outcome, plus slack.
BOUND = 3 * TIMEOUT + 8


def msg(tag: str) -> bytes:
    head = (f"From: wdefer@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@imapfs.test>\r\n\r\n").encode()
    return head + b"".join(b"line %04d of %s\r\n" % (i, tag.encode())
                           for i in range(60))


def copies(env, folder, body):
    return [u for u, m in env.messages(folder).items() if m["body"] == body]


timed = testenv.timed


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def wait_until_works(fn, bound=30):
    deadline = time.monotonic() + bound
    while True:
        got, exc, _ = timed(fn)
        if exc is None or time.monotonic() > deadline:
            return got, exc
        time.sleep(0.3)


def fsync_path(path):
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settle(proxy):
    """After resume(): the commands the silent server held reach it (their
    connections are gone, so their replies are not awaited)."""
    proxy.wait_for(lambda: not proxy.in_flight("APPEND"), 5)
    time.sleep(1.0)


@pytest.fixture
def wmount(imapfs_bin, tmp_path):
    """wmount(options) -> (WriteEnv, FaultProxy, trace path): a read-write
    mount through the proxy with -o timeout=TIMEOUT, listings kept (so a
    loaded folder is answered from memory) and attributes asked for on
    every stat."""
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    server = testenv.DovecotServer(str(tmp_path / "dovecot"))
    server.start()
    for f in ("Work", "Cold"):
        server.create_mailbox(f)
    for i in range(4):
        server.append("Work", msg(f"old{i}"))
        server.append("Cold", msg(f"cold{i}"))
    proxy = faultproxy.FaultProxy(server, lifetime=600)
    proxy.start()
    made = []

    def do_mount(options=()):
        mnt = str(tmp_path / "mnt")
        os.makedirs(mnt, exist_ok=True)
        env = WriteEnv(imapfs_bin, server, mnt, str(tmp_path), [])
        trace = str(tmp_path / "trace.txt")
        proc = testenv.mount_traced(imapfs_bin, proxy, mnt, trace, [
            "-o", f"spool_dir={env.spool}", "-o", f"timeout={TIMEOUT}",
            "-o", "listing_ttl=3600", "-o", "attr_timeout=0",
            *options])
        made.append((mnt, proc))
        return env, proxy, trace

    try:
        yield do_mount
    finally:
        proxy.resume()
        proxy.clear_rules()
        for mnt, proc in made:
            testenv.stop_traced(mnt, proc)
        proxy.stop()
        server.stop()


def tail(trace, n=3000):
    with open(trace, errors="replace") as f:
        return f.read()[-n:]


def test_closes_on_silent_server_leave_memory_answers_free(wmount):
    """More closes of new messages than there are FUSE workers wait for a
    silent server; stat, ls of a loaded folder, a cached read, getxattr
    and statfs answer at once meanwhile. Each close fails with EIO within
    the bound, the data stays readable, and after the server is back an
    fsync stores exactly one copy of each."""
    env, proxy, trace = wmount()
    work = sorted(os.listdir(env.path("Work")))
    olds = [n for n in work if n.endswith(".eml")]
    cached = read(env.path("Work", olds[0]))
    bodies = [msg(f"silent{i}") for i in range(CLOSES)]
    fds = []
    for i, body in enumerate(bodies):
        fd = os.open(env.path("Work", f"new{i}.eml"),
                     os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, body)
        fds.append(fd)
    proxy.pause()
    results = [None] * CLOSES

    def close(i):
        results[i] = timed(lambda: os.close(fds[i]))

    threads = [threading.Thread(target=close, args=(i,), daemon=True)
               for i in range(CLOSES)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    assert sum(t.is_alive() for t in threads) == CLOSES, \
        "the closes did not wait for the silent server"
    checks = {
        "getattr": lambda: os.stat(env.path("Work", olds[1])),
        "readdir": lambda: os.listdir(env.path("Work")),
        "cached read": lambda: read(env.path("Work", olds[0])),
        "getxattr": lambda: os.getxattr(env.path("Work", olds[1]),
                                        "user.imap.flags"),
        "statfs": lambda: os.statvfs(env.mnt),
        "local read": lambda: read(env.path("Work", "new0.eml")),
    }
    for what, fn in checks.items():
        got, exc, took = timed(fn)
        assert exc is None, f"{what}: {exc!r}"
        assert took < PROMPT, \
            f"{what} waited {took:.1f}s behind the closes\n{tail(trace)}"
        if what == "cached read":
            assert got == cached
        if what == "readdir":
            assert "new0.eml" in got and olds[1] in got
        print(f"{what}: {took:.3f}s")
    for t in threads:
        t.join(BOUND + 10)
    print("closes: %.1f-%.1fs" % (min(r[2] for r in results),
                                  max(r[2] for r in results)))
    for i, (_, exc, took) in enumerate(results):
        assert isinstance(exc, OSError) and exc.errno == errno.EIO, \
            f"close {i}: {exc!r}"
        assert took < BOUND, f"close {i} returned after {took:.1f}s"
    # Kept in the mount, under its name.
    for i, body in enumerate(bodies):
        assert read(env.path("Work", f"new{i}.eml")) == body
    proxy.resume()
    settle(proxy)
    for i, body in enumerate(bodies):
        _, exc = wait_until_works(
            lambda: fsync_path(env.path("Work", f"new{i}.eml")))
        assert exc is None, f"fsync {i} after resume: {exc!r}\n{tail(trace)}"
    for i, body in enumerate(bodies):
        assert len(copies(env, "Work", body)) == 1, \
            f"new{i}.eml: not exactly one copy\n{tail(trace)}"


_CHILD = r"""
import ctypes, os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)
libc = ctypes.CDLL(None, use_errno=True)
op, a, b = sys.argv[1:4]
if op == "close":
    fd = os.open(a, os.O_CREAT | os.O_WRONLY, 0o600)
    with open(b, "rb") as f:
        os.write(fd, f.read())
    print("ready", flush=True)
    r = libc.close(fd)
else:
    print("ready", flush=True)
    r = libc.rename(a.encode(), b.encode())
print("errno", 0 if r == 0 else ctypes.get_errno(), flush=True)
"""


def interrupted(op, a, b):
    """Runs close (a: new file, b: file with its bytes) or rename(a, b) in a
    child that gets SIGUSR1 (caught) once it blocked; returns (errno, seconds
    from the signal to its end)."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, op, a, b],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        assert child.poll() is None, f"{op} did not block"
        t = time.monotonic()
        child.send_signal(signal.SIGUSR1)
        out, _ = child.communicate(timeout=BOUND + 10)
        took = time.monotonic() - t
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return int(out.split()[-1]), took


def prepare(env, tmp_path, op, tag):
    """(a, b, final path, body) for interrupted(op, a, b)."""
    body = msg(tag)
    src = tmp_path / f"{tag}.src"
    src.write_bytes(body)
    final = env.path("Work", f"{tag}.eml")
    if op == "close":
        return final, str(src), final, body
    scratch = env.path("Work", f"{tag}.part")
    with open(scratch, "wb") as f:
        f.write(body)   # a scratch file: nothing sent
    return scratch, final, final, body


@pytest.mark.parametrize("op", ["close", "rename"])
def test_interrupt_before_append_is_sent_sends_nothing(wmount, tmp_path, op):
    """The only connection is taken by a read hanging on a silent server:
    the commit waits for a connection, and a signal ends it with EINTR;
    no APPEND reached the proxy, the file keeps its data, and after the
    server is back an fsync stores it once."""
    env, proxy, trace = wmount(["-o", "connections=1"])
    os.listdir(env.path("Work"))
    cold = sorted(n for n in os.listdir(env.path("Cold"))
                  if n.endswith(".eml"))
    a, b, final, body = prepare(env, tmp_path, op, f"intr-unsent-{op}")
    proxy.pause()
    hung = threading.Thread(target=timed,
                            args=(lambda: read(env.path("Cold", cold[0])),),
                            daemon=True)
    hung.start()
    time.sleep(0.5)
    err, took = interrupted(op, a, b)
    assert err == errno.EINTR, f"{op}: errno {err}\n{tail(trace)}"
    assert took < 5, f"interrupted {op} returned after {took:.1f}s"
    assert not [c for c in proxy.commands_snapshot() if c.name == "APPEND"]
    if op == "close":
        assert read(final) == body
    else:
        assert read(a) == body
    proxy.resume()
    hung.join(BOUND)
    if op == "rename":
        _, exc = wait_until_works(lambda: os.rename(a, b))
    else:
        _, exc = wait_until_works(lambda: fsync_path(final))
    assert exc is None, f"after resume: {exc!r}\n{tail(trace)}"
    assert len(copies(env, "Work", body)) == 1


@pytest.mark.parametrize("op", ["close", "rename"])
def test_interrupt_after_append_was_sent_is_not_abandoned(wmount, tmp_path,
                                                          op):
    """The server got the APPEND and its reply is held: a signal does not
    abandon the command; once the deadline passes, the outcome is asked
    for on another connection, and the caller gets success -- the one
    copy the server holds. Never a second copy."""
    env, proxy, trace = wmount()
    os.listdir(env.path("Work"))
    a, b, final, body = prepare(env, tmp_path, op, f"intr-sent-{op}")
    rule = proxy.add_rule(faultproxy.Rule(r"^APPEND", at="sent",
                                          action="pause"))
    err, took = interrupted(op, a, b)
    assert rule.fired == 1
    got = copies(env, "Work", body)
    assert err == 0, f"{op}: errno {err}, copies {got}\n{tail(trace)}"
    assert took < BOUND, f"{op} returned after {took:.1f}s"
    assert len(got) == 1
    proxy.resume()
    (uid,) = got
    assert os.stat(final).st_ino == \
        os.stat(env.path("Work", f"{uid}.eml")).st_ino
    # Nothing left to send: another fsync stores nothing.
    fsync_path(final)
    assert len(copies(env, "Work", body)) == 1


def test_rename_waits_for_the_commit_of_the_same_file(wmount):
    """A rename of a new message while its close is still storing it (the
    server's reply to the APPEND is slow) runs after the commit, as the
    caller's order says: the stored message takes the new name, the old
    name is gone, and the server holds one copy."""
    env, proxy, trace = wmount()
    os.listdir(env.path("Work"))
    body = msg("rename-during-commit")
    held = threading.Event()

    def hold(conn, cmd):
        held.set()
        time.sleep(2.0)   # the reply waits: the commit is still running

    proxy.add_rule(faultproxy.Rule(r"^APPEND", at="sent", action=hold))
    src, dst = env.path("Work", "during.eml"), env.path("Work", "moved.eml")
    fd = os.open(src, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, body)
    results = {}
    closing = threading.Thread(
        target=lambda: results.update(close=timed(lambda: os.close(fd))),
        daemon=True)
    closing.start()
    assert held.wait(10), "the APPEND was not sent"
    _, exc, _ = timed(lambda: os.rename(src, dst))
    closing.join(BOUND)
    assert results["close"][1] is None, results["close"]
    assert exc is None, repr(exc)
    names = os.listdir(env.path("Work"))
    assert "moved.eml" in names and "during.eml" not in names, names
    assert read(dst) == body
    assert len(copies(env, "Work", body)) == 1
