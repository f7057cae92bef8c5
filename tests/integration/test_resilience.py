"""imapfs when the real server goes away, comes back, or recreates a folder.

A private Dovecot (tests/support/testenv.py) serves this module; every test
mounts it afresh with the options it needs and always unmounts.  The truth
(bytes, UIDVALIDITY) is read over a separate imaplib connection with EXAMINE
and BODY.PEEK.
"""

import errno
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402

OP_BOUND_S = 90
INBOX_COUNT = 24
VOL = "Vol"
VOL_SIZE = 1_000_000


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# -- truth over imaplib ----------------------------------------------------

def server_body(server, mailbox, uid) -> bytes:
    c = server.client()
    try:
        typ, data = c.select(testenv.imap_quote(server.server_name(mailbox)),
                             readonly=True)
        assert typ == "OK", data
        typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert typ == "OK", data
        return next(x[1] for x in data if isinstance(x, tuple))
    finally:
        c.logout()


def server_uids(server, mailbox) -> tuple[int, list[int]]:
    """(UIDVALIDITY, sorted UIDs) of a mailbox."""
    c = server.client()
    try:
        typ, data = c.select(testenv.imap_quote(server.server_name(mailbox)),
                             readonly=True)
        assert typ == "OK", data
        uv = int(re.search(rb"\d+", c.untagged_responses["UIDVALIDITY"][0])
                 .group(0))
        if int(data[0]) == 0:
            return uv, []
        typ, data = c.uid("SEARCH", "ALL")
        assert typ == "OK", data
        return uv, sorted(int(x) for x in data[0].split())
    finally:
        c.logout()


# -- processes -------------------------------------------------------------

def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(")") + 2:].split()[0] not in ("Z", "X")


def instance_pids(server):
    """{pid: comm} of the live processes of this Dovecot instance.

    Found by the instance directory in their command line (the master's
    "-c <root>/dovecot.conf", the children's "dovecot-imapfs-test-<root
    name>/imap") and a Dovecot executable (imapfs names the CA file, which
    lies in the same directory).  Children whose master died are found
    too: in this environment they are re-parented, not killed.
    """
    tag = os.path.basename(server.root)
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        pid = int(p)
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if "dovecot" in exe and tag in cmd and _alive(pid):
            out[pid] = comm
    return out


def master_pid(server):
    try:
        with open(os.path.join(server.root, "run", "master.pid")) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def imap_pids(server):
    """PIDs of this instance's `imap` (mail session) processes."""
    return [p for p, comm in instance_pids(server).items() if comm == "imap"]


def kill_sessions(server, how):
    """Ends every server-side IMAP session of the instance."""
    before = imap_pids(server)
    assert before, "no imap session process to kill (is imapfs connected?)"
    if how == "kick":
        r = subprocess.run(["doveadm", "-c", server.conf, "kick",
                            server.user], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        if r.returncode != 0:
            pytest.skip(f"doveadm kick failed: {r.stderr.strip()}")
    else:
        for pid in before:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    testenv.wait_for(lambda: not (set(before) & set(imap_pids(server))), 15,
                     what="the imap sessions to end")
    return before


def stop_dovecot(server):
    """Stops the whole instance but keeps its directory (configuration,
    certificates, mail) so that it can start again on the same ports.

    SIGTERM alone is not enough here: the master exits but its children
    (imap-login, imap) keep serving the open sessions.  So everything of
    the instance is killed, as a crash or power cut would.
    """
    master = master_pid(server)
    assert master is not None, "dovecot master is not running"
    os.kill(master, signal.SIGTERM)
    try:
        testenv.wait_for(lambda: not _alive(master), 10,
                         what="dovecot master exit")
    except TimeoutError:
        pass
    for _ in range(3):
        for pid in instance_pids(server):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            testenv.wait_for(lambda: not instance_pids(server), 5,
                             what="dovecot processes to die")
            break
        except TimeoutError:
            continue
    assert not instance_pids(server), "dovecot processes survived"
    # A master that died unreaped leaves a pid file naming a zombie, which
    # would make the next start refuse ("already running").
    try:
        os.unlink(os.path.join(server.root, "run", "master.pid"))
    except FileNotFoundError:
        pass


def start_dovecot_again(server):
    early = server.launch_master("dovecot-restart.stderr")
    if early is not None:
        return f"dovecot did not start again: {early}\n{server.log_tail()}"
    pid = testenv.wait_for(lambda: master_pid(server), 10,
                           what="dovecot master.pid")
    # testenv's stop() kills the master it started and any process that
    # refers to the instance directory; record the new master too.
    if hasattr(server, "_master_pid"):
        server._master_pid = pid

    def login_works():
        try:
            server.client().logout()
            return True
        except Exception:  # noqa: BLE001 - retried until the deadline
            return False
    testenv.wait_for(login_works, 20, interval=0.2, what="dovecot login")
    return None


# -- mount helpers ---------------------------------------------------------

def bounded(mnt, fn, bound=OP_BOUND_S):
    """Runs fn() with a bound; a hang tears the mount down and fails."""
    try:
        return testenv.run_bounded(mnt, fn, bound)
    except TimeoutError as e:
        pytest.fail(str(e))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def server(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("resilience"))
    srv = testenv.DovecotServer(os.path.join(work, "dovecot"))
    try:
        srv.start()
        srv.append_many("INBOX", [(m, "", None) for m in
                                  testenv.sample_messages(INBOX_COUNT,
                                                          seed=31)])
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def mount(imapfs_bin, server, tmp_path):
    """mount(options) -> mountpoint; unmounted at teardown whatever
    happened."""
    mnts = []

    def do_mount(options):
        mnt = str(tmp_path / f"mnt{len(mnts)}")
        os.mkdir(mnt)
        mnts.append(mnt)
        # These tests drive the listing_ttl/attr_timeout path (what an fd
        # sees across UIDVALIDITY changes when nobody says so); the live
        # view's handling of the same changes is test_live.py's.
        r = testenv.mount_imapfs(imapfs_bin, server, mnt,
                                 options=["-o", "watch=0", *options])
        if r.returncode != 0:
            pytest.fail(f"mount failed (exit {r.returncode}):\n{r.stderr}\n"
                        f"{server.log_tail()}")
        return mnt

    yield do_mount
    for mnt in mnts:
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)


# -- (a) sessions killed on the server -----------------------------------

@pytest.mark.parametrize("how", ["kick", "kill"])
def test_dead_sessions_are_replaced(server, mount, how):
    """Server-side sessions end while mounted (doveadm kick: BYE then close;
    SIGKILL of the imap processes: plain close): the next read of a file
    not read before succeeds on a new connection."""
    mnt = mount(["-o", "timeout=5", "-o", "connections=3"])
    _, uids = server_uids(server, "INBOX")
    inbox = os.path.join(mnt, "INBOX")
    names, exc, _ = bounded(mnt, lambda: os.listdir(inbox))
    assert exc is None, repr(exc)
    assert set(names) == {f"{u}.eml" for u in uids}
    # Use more than one pool connection before the kill.
    first = uids[:3]
    results = {}

    def read_into(u):
        results[u] = read_file(os.path.join(inbox, f"{u}.eml"))
    threads = [threading.Thread(target=read_into, args=(u,)) for u in first]
    for t in threads:
        t.start()
    for t in threads:
        t.join(OP_BOUND_S)
    for u in first:
        assert sha(results[u]) == sha(server_body(server, "INBOX", u))

    killed = kill_sessions(server, how)
    target = uids[-1] if how == "kick" else uids[-2]
    want = server_body(server, "INBOX", target)
    data, exc, elapsed = bounded(
        mnt, lambda: read_file(os.path.join(inbox, f"{target}.eml")))
    assert exc is None, f"read after the sessions died failed: {exc!r}"
    assert sha(data) == sha(want)
    assert elapsed < 30, f"recovery took {elapsed:.1f}s"
    now = imap_pids(server)
    assert now and not (set(now) & set(killed)), \
        "the read was not served by a new server session"
    # The pool works again for everything.
    data, exc, _ = bounded(
        mnt, lambda: read_file(os.path.join(inbox, f"{uids[5]}.eml")))
    assert exc is None and data == server_body(server, "INBOX", uids[5])


# -- (c) UIDVALIDITY change ----------------------------------------------

def test_uidvalidity_change(server, mount):
    """The folder is deleted and recreated with other messages under the
    same UIDs: the listing and new opens show the new messages, and a file
    kept open from before never returns the new message's bytes."""
    old_msgs = [testenv.big_message(VOL_SIZE, seed=50 + i) for i in range(3)]
    new_msgs = [testenv.big_message(VOL_SIZE, seed=60 + i) for i in range(3)]
    server.create_mailbox(VOL)
    server.append_many(VOL, [(m, "", None) for m in old_msgs])
    uv_old, uids_old = server_uids(server, VOL)
    assert uids_old == [1, 2, 3]

    mnt = mount(["-o", "timeout=5", "-o", "listing_ttl=0"])
    vol = os.path.join(mnt, VOL)
    names, exc, _ = bounded(mnt, lambda: sorted(os.listdir(vol)))
    assert exc is None, repr(exc)
    assert names == ["1.eml", "2.eml", "3.eml"]
    fd = os.open(os.path.join(vol, "1.eml"), os.O_RDONLY)
    try:
        head, exc, _ = bounded(mnt, lambda: os.pread(fd, 4096, 0))
        assert exc is None and head == old_msgs[0][:4096]
        old_ino = os.fstat(fd).st_ino

        server.delete_mailbox(VOL)
        server.create_mailbox(VOL)
        server.append_many(VOL, [(m, "", None) for m in new_msgs])
        uv_new, uids_new = server_uids(server, VOL)
        assert uids_new == [1, 2, 3], "new messages did not reuse UIDs"
        assert uv_new != uv_old, "Dovecot kept the UIDVALIDITY"
        for i, m in enumerate(new_msgs):
            assert server_body(server, VOL, i + 1) == m

        names, exc, _ = bounded(mnt, lambda: sorted(os.listdir(vol)))
        assert exc is None, repr(exc)
        assert names == ["1.eml", "2.eml", "3.eml"]
        path = os.path.join(vol, "1.eml")
        st, exc, _ = bounded(mnt, lambda: os.stat(path))
        assert exc is None, repr(exc)
        assert st.st_ino != old_ino, "the new message kept the old inode"
        data, exc, _ = bounded(mnt, lambda: read_file(path))
        assert exc is None, f"reading the new 1.eml failed: {exc!r}"
        assert sha(data) == sha(new_msgs[0]), \
            "new 1.eml does not have the new message's content" + \
            (" (it has the OLD one)" if data == old_msgs[0] else "")
        for i in (2, 3):
            data, exc, _ = bounded(
                mnt, lambda: read_file(os.path.join(vol, f"{i}.eml")))
            assert exc is None and sha(data) == sha(new_msgs[i - 1])

        # The old descriptor: cached old bytes or ESTALE/EIO, never new.
        outcomes = []
        for off in (0, 4096, 600_000, VOL_SIZE - 5000):
            got, exc, _ = bounded(mnt, lambda: os.pread(fd, 4096, off))
            outcomes.append(f"{off}: " + (repr(exc) if exc is not None
                                          else f"{len(got)} old bytes"))
            if exc is not None:
                assert isinstance(exc, OSError) and \
                    exc.errno in (errno.ESTALE, errno.EIO), repr(exc)
                continue
            assert got != new_msgs[0][off:off + 4096] or \
                got == old_msgs[0][off:off + 4096], \
                f"old fd returned the NEW message's bytes at {off}"
            assert got == old_msgs[0][off:off + len(got)], \
                f"old fd returned bytes of neither message at {off}"
        sys.stderr.write("\nold fd after the UIDVALIDITY change: " +
                         "; ".join(outcomes) + "\n")
    finally:
        os.close(fd)
        server.delete_mailbox(VOL)


# -- (b) server down, then back --------------------------------------------

def test_server_down_and_back(server, mount):
    """Dovecot stops: an uncached read fails with EIO in bounded time while
    cached content and listings keep working; Dovecot starts again on the
    same ports: a fresh read succeeds."""
    mnt = mount(["-o", "timeout=3", "-o", "listing_ttl=3600"])
    _, uids = server_uids(server, "INBOX")
    inbox = os.path.join(mnt, "INBOX")
    cached, fresh, later = uids[0], uids[1], uids[2]
    truth = {u: server_body(server, "INBOX", u) for u in (cached, fresh,
                                                          later)}
    names, exc, _ = bounded(mnt, lambda: sorted(os.listdir(inbox)))
    assert exc is None, repr(exc)
    data, exc, _ = bounded(
        mnt, lambda: read_file(os.path.join(inbox, f"{cached}.eml")))
    assert exc is None and data == truth[cached]

    stop_dovecot(server)
    try:
        data, exc, elapsed = bounded(
            mnt, lambda: read_file(os.path.join(inbox, f"{fresh}.eml")))
        sys.stderr.write(f"\nserver down: uncached read ended after "
                         f"{elapsed:.1f}s ({exc!r})\n")
        assert exc is not None, "read of an uncached file succeeded " \
            "with the server down"
        assert isinstance(exc, OSError) and exc.errno == errno.EIO, \
            repr(exc)
        assert elapsed < 30, f"took {elapsed:.1f}s"

        data, exc, _ = bounded(
            mnt, lambda: read_file(os.path.join(inbox, f"{cached}.eml")))
        assert exc is None, f"cached file unreadable: {exc!r}"
        assert data == truth[cached]
        again, exc, elapsed = bounded(mnt, lambda: sorted(os.listdir(inbox)))
        assert exc is None, f"listing failed with the server down: {exc!r}"
        assert again == names
        assert elapsed < 10, f"listing took {elapsed:.1f}s"
        st, exc, _ = bounded(
            mnt, lambda: os.stat(os.path.join(inbox, f"{later}.eml")))
        assert exc is None and st.st_size == len(truth[later])
    finally:
        problem = start_dovecot_again(server)
    if problem is not None:
        pytest.skip(problem)

    # Fresh reads work again, including the one that failed.
    for u in (later, fresh):
        data, exc, _ = bounded(
            mnt, lambda: read_file(os.path.join(inbox, f"{u}.eml")))
        assert exc is None, f"read after the restart failed: {exc!r}"
        assert sha(data) == sha(truth[u])


def test_fd_across_repeated_uidvalidity_changes_is_estale(server, mount):
    """A descriptor opened before two UIDVALIDITY changes (the folder
    deleted and recreated twice) answers ESTALE, as SEMANTICS.md says,
    not ENOENT, and never another message's bytes."""
    box = VOL + "-twice"
    server.create_mailbox(box)
    server.append_many(box, [(b"Subject: old %d\r\n\r\nold\r\n" % i, "",
                              None) for i in range(3)])
    mnt = mount(["-o", "listing_ttl=0", "-o", "attr_timeout=0"])
    d = os.path.join(mnt, box)
    assert sorted(os.listdir(d)) == ["1.eml", "2.eml", "3.eml"]
    fd = os.open(os.path.join(d, "2.eml"), os.O_RDONLY)
    try:
        for k in range(2):
            server.delete_mailbox(box)
            server.create_mailbox(box)
            server.append_many(box, [(b"Subject: new%d %d\r\n\r\nnew\r\n"
                                      % (k, i), "", None) for i in range(3)])
            assert sorted(os.listdir(d)) == ["1.eml", "2.eml", "3.eml"]
        for op in (lambda: os.pread(fd, 50, 0), lambda: os.fstat(fd)):
            with pytest.raises(OSError) as e:
                op()
            assert e.value.errno == errno.ESTALE
        # The name itself names the new message.
        with open(os.path.join(d, "2.eml"), "rb") as f:
            assert f.read().startswith(b"Subject: new1 1")
    finally:
        os.close(fd)
