"""The live view (fs/watch.c, imap/idle.c): changes another client makes on
the server show up through the mount within seconds, while listing_ttl and
attr_timeout keep their defaults (30 s / 60 s), so only the live view can
explain what is seen.

Every case runs twice: against Dovecot with NOTIFY (one connection hears
about every mailbox) and without it (IDLE on the folder in use plus
STATUS polls of the others).  The second client is plain imaplib.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402

BOUND_S = 10  # generous: the 2 s target is measured in tests/bench
WATCH = "Watched"    # IDLEd on without NOTIFY (the last folder used)
OTHER = "Polled"     # loaded too, so only STATUS polls it without NOTIFY


def msg(tag: str) -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.org\r\n"
            f"Subject: live {tag}\r\nMessage-ID: <{tag}@example.org>\r\n"
            f"\r\nbody {tag}\r\n").encode()


def wait(pred, what):
    testenv.wait_for(pred, BOUND_S, interval=0.05, what=what)


def wait_connected(trace):
    """The listener logs in after the mount is live: wait for it."""
    def connected():
        with open(trace, errors="replace") as f:
            return "watch 0: connected" in f.read()
    wait(connected, "the watch connection")


@pytest.fixture(scope="module", params=["notify", "idle"])
def live(request, imapfs_bin, tmp_path_factory):
    """(server, mountpoint, trace path) with the mount in the foreground
    and traced (-d); with or without NOTIFY."""
    work = str(tmp_path_factory.mktemp("live-" + request.param))
    caps = () if request.param == "notify" else ("NOTIFY",)
    srv = testenv.DovecotServer(os.path.join(work, "dovecot"),
                                without_caps=caps)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    trace = os.path.join(work, "trace")
    proc = None
    try:
        srv.start()
        for box in (WATCH, OTHER):
            srv.create_mailbox(box)
            srv.append_many(box, [(msg(f"{box}-{i}"), "", None)
                                  for i in range(3)])
        proc = testenv.mount_traced(imapfs_bin, srv, mnt, trace)
        wait_connected(trace)
        yield srv, mnt, trace, request.param
    finally:
        testenv.stop_traced(mnt, proc)
        srv.stop()


@contextmanager
def own_mount(imapfs_bin, tmp_path, caps, options, listener=True):
    """(server, mountpoint, trace, process) of a Dovecot without @caps
    and a traced mount of it with @options (its listener connected, if
    @listener)."""
    srv = testenv.DovecotServer(str(tmp_path / "dovecot"), without_caps=caps)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    trace = str(tmp_path / "trace")
    proc = None
    try:
        srv.start()
        proc = testenv.mount_traced(imapfs_bin, srv, mnt, trace, options)
        if listener:
            wait_connected(trace)
        yield srv, mnt, trace, proc
    finally:
        testenv.stop_traced(mnt, proc)
        srv.stop()


def uids(srv, box):
    c = srv.client()
    try:
        c.select(testenv.imap_quote(srv.server_name(box)))
        typ, data = c.uid("SEARCH", "ALL")
        return [int(x) for x in data[0].split()]
    finally:
        c.logout()


def use(mnt, *boxes):
    """Lists the folders (the last one is the most recently used)."""
    for b in boxes:
        os.listdir(os.path.join(mnt, b))


@pytest.mark.parametrize("box", [WATCH, OTHER])
def test_new_mail_appears(live, box):
    srv, mnt, _, _ = live
    use(mnt, OTHER, WATCH) if box == WATCH else use(mnt, WATCH, OTHER)
    before = set(os.listdir(os.path.join(mnt, box)))
    srv.append(box, msg(f"new-{box}-{time.time()}"))
    new = f"{max(uids(srv, box))}.eml"
    assert new not in before
    wait(lambda: new in os.listdir(os.path.join(mnt, box)),
         f"{new} in ls {box}")
    found = {os.path.basename(p) for p, _, files in os.walk(mnt)
             for p in [os.path.join(p, f) for f in files]}
    assert new in found, "find does not see the new message"
    with open(os.path.join(mnt, box, new), "rb") as f:
        assert b"Subject: live new-" in f.read()


@pytest.mark.parametrize("box", [WATCH, OTHER])
def test_expunge_disappears(live, box):
    srv, mnt, _, _ = live
    uid = srv.append(box, msg(f"doomed-{box}-{time.time()}"))
    path = os.path.join(mnt, box, f"{uid}.eml")
    wait(lambda: os.path.exists(path), f"{uid}.eml to appear")
    os.stat(path)  # the kernel now holds a positive entry for it
    c = srv.client()
    try:
        c.select(testenv.imap_quote(srv.server_name(box)))
        c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        c.expunge()
    finally:
        c.logout()
    wait(lambda: f"{uid}.eml" not in os.listdir(os.path.join(mnt, box)),
         "expunged message to leave the listing")
    with pytest.raises(FileNotFoundError):
        os.stat(path)


@pytest.mark.parametrize("box", [WATCH, OTHER])
def test_flag_change_visible(live, box):
    srv, mnt, _, _ = live
    use(mnt, box)
    uid = min(uids(srv, box))
    path = os.path.join(mnt, box, f"{uid}.eml")
    assert b"\\Flagged" not in os.getxattr(path, "user.imap.flags")
    c = srv.client()
    try:
        c.select(testenv.imap_quote(srv.server_name(box)))
        c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Flagged)")
    finally:
        c.logout()
    wait(lambda: b"\\Flagged" in os.getxattr(path, "user.imap.flags"),
         "\\Flagged in user.imap.flags")


def test_folder_create_rename_delete(live):
    srv, mnt, _, _ = live
    use(mnt, WATCH)
    assert "Fresh" not in os.listdir(mnt)
    srv.create_mailbox("Fresh")
    wait(lambda: "Fresh" in os.listdir(mnt), "a created folder in ls")
    c = srv.client()
    try:
        c.rename(srv.server_name("Fresh"), srv.server_name("Renamed"))
    finally:
        c.logout()
    wait(lambda: "Renamed" in os.listdir(mnt) and
         "Fresh" not in os.listdir(mnt), "a renamed folder in ls")
    assert not os.path.exists(os.path.join(mnt, "Fresh"))
    srv.delete_mailbox("Renamed")
    wait(lambda: "Renamed" not in os.listdir(mnt), "a deleted folder gone")
    assert not os.path.exists(os.path.join(mnt, "Renamed"))


@pytest.mark.parametrize("kid", [False, True], ids=["leaf", "with-child"])
def test_other_clients_rename_keeps_inodes(live, kid):
    """Another client RENAMEs a folder the mount has listed, with an fd
    open on one of its messages (and a listed subfolder): once the new
    name shows, it is the same directory inode, its messages (and the
    subfolder's) keep theirs, the open fd reads the message's bytes and
    the old path is ENOENT.  Dovecot keeps UIDVALIDITY, MESSAGES and
    UIDNEXT across RENAME; the polled mailbox list matches them."""
    srv, mnt, _, mode = live
    _other_clients_rename(srv, mnt, mode, kid)


@pytest.mark.parametrize("kid", [False, True], ids=["leaf", "with-child"])
def test_other_clients_rename_without_list_status(imapfs_bin, tmp_path, kid):
    """The same on a Dovecot without LIST-STATUS (nor NOTIFY), as Courier
    and Microsoft 365 are: the list tells nothing of the folders' state,
    so the mount asks the new names STATUS once it sees a loaded folder
    gone from the list, and Dovecot's answer (the same UIDVALIDITY,
    MESSAGES, UIDNEXT) keeps the inodes."""
    with own_mount(imapfs_bin, tmp_path, ("NOTIFY", "LIST-STATUS"),
                   []) as (srv, mnt, _, _):
        srv.create_mailbox(WATCH)
        # Made after the mount listed: shown once the list is polled,
        # at the pace of use.
        wait(lambda: use(mnt, "INBOX") or WATCH in os.listdir(mnt),
             f"{WATCH} in ls")
        _other_clients_rename(srv, mnt, "no-list-status", kid)


def _other_clients_rename(srv, mnt, mode, kid):
    old, new = f"Before-{mode}-{kid}", f"After-{mode}-{kid}"
    use(mnt, WATCH)  # the mailbox list is polled at the pace of use
    srv.create_mailbox(old)
    bodies = [msg(f"{old}-{i}") for i in range(2)]
    uids_ = [srv.append(old, b) for b in bodies]
    if kid:
        srv.create_mailbox(f"{old}/Kid")
        kid_uid = srv.append(f"{old}/Kid", msg(f"{old}-kid"))
    wait(lambda: old in os.listdir(mnt), f"{old} in ls")
    top = os.path.join(mnt, old)
    names = sorted(os.listdir(top))
    assert names == sorted([f"{u}.eml" for u in uids_] +
                           (["Kid"] if kid else []))
    inos = {n: os.stat(os.path.join(top, n)).st_ino for n in names}
    dir_ino = os.stat(top).st_ino
    if kid:
        kid_files = os.listdir(os.path.join(top, "Kid"))
        assert kid_files == [f"{kid_uid}.eml"]
        kid_msg_ino = os.stat(os.path.join(top, "Kid", kid_files[0])).st_ino
    fd = os.open(os.path.join(top, f"{uids_[0]}.eml"), os.O_RDONLY)
    try:
        c = srv.client()
        try:
            typ, _ = c.rename(testenv.imap_quote(srv.server_name(old)),
                              testenv.imap_quote(srv.server_name(new)))
            assert typ == "OK"
        finally:
            c.logout()
        wait(lambda: new in os.listdir(mnt), f"{new} in ls")
        moved = os.path.join(mnt, new)
        assert os.stat(moved).st_ino == dir_ino
        assert sorted(os.listdir(moved)) == names
        for n in names:
            assert os.stat(os.path.join(moved, n)).st_ino == inos[n], n
        if kid:
            assert os.stat(os.path.join(moved, "Kid", kid_files[0])) \
                .st_ino == kid_msg_ino
        assert os.pread(fd, 1 << 20, 0) == bodies[0]
        with pytest.raises(FileNotFoundError):
            os.stat(top)
        assert old not in os.listdir(mnt)
    finally:
        os.close(fd)


def test_uidvalidity_change(live):
    """The folder is deleted and recreated by another client: its old
    messages go, the new ones (same UIDs) come with new content."""
    srv, mnt, _, _ = live
    box = "Recreated"
    srv.create_mailbox(box)
    srv.append(box, msg("old-1"))
    path = os.path.join(mnt, box, "1.eml")
    wait(lambda: os.path.isdir(os.path.join(mnt, box)), "the folder")
    with open(path, "rb") as f:
        assert b"old-1" in f.read()
    use(mnt, OTHER, box)
    srv.delete_mailbox(box)
    srv.create_mailbox(box)
    srv.append(box, msg("new-1"))

    def shows_new():
        try:
            with open(path, "rb") as f:
                return b"new-1" in f.read()
        except OSError:
            return False
    wait(shows_new, "the recreated folder's new 1.eml")


def test_own_copy_causes_no_relisting(live, tmp_path):
    """The server echoes the mount's own APPEND (NOTIFY's STATUS, IDLE's
    EXISTS): the UID is known already, so nothing is fetched again --
    no listing of the folder, no UID FETCH of the new UID."""
    srv, mnt, trace, _ = live
    use(mnt, OTHER, WATCH)
    src = tmp_path / "mine.eml"
    src.write_bytes(msg(f"mine-{time.time()}"))

    def listings():
        with open(trace, errors="replace") as f:
            t = f.read()
        return (len(re.findall(r"C: \S+ UID FETCH 1:\* \(UID RFC822", t)),
                len(re.findall(r"C: \S+ UID FETCH \d+:\* \(UID RFC822", t)))
    before = listings()
    # cp without mode copying (the mount refuses chmod)
    with open(src, "rb") as i, \
            open(os.path.join(mnt, WATCH, "mine.eml"), "wb") as o:
        shutil.copyfileobj(i, o)
    newest = max(uids(srv, WATCH))
    assert f"{newest}.eml" in os.listdir(os.path.join(mnt, WATCH))
    time.sleep(2.5)  # the echo arrives within milliseconds; polls at 2 s
    assert listings() == before, "the mount's own APPEND was fetched again"


def test_bye_means_reconnect(live):
    """doveadm kick: every session gets an unsolicited BYE. The listener
    reconnects (no filesystem error, the mount goes on) and the live view
    works again afterwards."""
    srv, mnt, trace, _ = live
    use(mnt, OTHER, WATCH)

    def connects():
        with open(trace, errors="replace") as f:
            return f.read().count("watch 0: connected")
    before = connects()
    r = subprocess.run(["doveadm", "-c", srv.conf, "kick", srv.user],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"doveadm kick failed: {r.stderr.strip()}")
    wait(lambda: connects() > before, "the listener to reconnect")
    srv.append(WATCH, msg(f"after-bye-{time.time()}"))
    new = f"{max(uids(srv, WATCH))}.eml"
    wait(lambda: new in os.listdir(os.path.join(mnt, WATCH)),
         "a message after the BYE")
    with open(trace, errors="replace") as f:
        assert "S: * BYE" in f.read()


def test_quiet_idle_survives_silence(imapfs_bin, tmp_path):
    """A 1 s watchdog over 5 s of silence: the listener probes (DONE, the
    server completes it) and goes on IDLEing on the same connection -- no
    reconnect loop, no error -- and still reports a change afterwards."""
    with own_mount(imapfs_bin, tmp_path, ("NOTIFY",),
                   ["-o", "watchdog=1"]) as (srv, mnt, trace, proc):
        os.listdir(os.path.join(mnt, "INBOX"))
        time.sleep(5)
        with open(trace, errors="replace") as f:
            t = f.read()
        assert t.count("watch 0: connected") == 1, \
            "the listener reconnected during silence"
        assert t.count("C: DONE") >= 3, "the watchdog never probed"
        assert "connection lost" not in t
        srv.append("INBOX", msg("after-silence"))
        new = f"{max(uids(srv, 'INBOX'))}.eml"
        wait(lambda: new in os.listdir(os.path.join(mnt, "INBOX")),
             "a message after the silence")
        assert proc.poll() is None


def test_watch_off_sees_nothing_live(imapfs_bin, tmp_path):
    """-o watch=0 turns the live view off: with listing_ttl at its default
    a new message is not listed for a while (what the tests above would
    see without the live view; it binds them)."""
    with own_mount(imapfs_bin, tmp_path, (), ["-o", "watch=0"],
                   listener=False) as (srv, mnt, trace, _):
        box = os.path.join(mnt, "INBOX")
        os.listdir(box)
        srv.append("INBOX", msg("unseen"))
        time.sleep(3)
        assert os.listdir(box) == []
        with open(trace, errors="replace") as f:
            assert "watch 0" not in f.read()


@pytest.mark.parametrize("mode", ["notify", "idle"])
def test_own_folder_rename_races_nothing(imapfs_bin, tmp_path, mode):
    """mkdir B C, two messages into B, ls B, mv B C/B, ls C/B, rm -r: in a
    loop, with the live view on and listing_ttl=0 (test_servers' write
    mount).  Right after ls B the listener STATUSes (NOTIFY) or EXAMINEs
    (IDLE) B; without fs_watch_hold() that meets our RENAME, and Dovecot's
    maildir uidlist lock moves with the directory: the next access to C/B
    hangs for ~30 s (EIO here) or its listing is short.  One pool
    connection, so no other session of ours has a folder open that rm -r
    deletes."""
    caps = () if mode == "notify" else ("NOTIFY",)
    with own_mount(imapfs_bin, tmp_path, caps, [
            "-o", f"spool_dir={tmp_path}/spool", "-o", "listing_ttl=0",
            "-o", "connections=1"]) as (_, mnt, trace, _):
        for i in range(25):
            top = os.path.join(mnt, f"R{i}")
            os.makedirs(os.path.join(top, "B"))
            os.mkdir(os.path.join(top, "C"))
            for k in range(2):
                with open(os.path.join(top, "B", f"m{k}.eml"), "wb") as f:
                    f.write(msg(f"race-{i}-{k}"))
            assert len(os.listdir(os.path.join(top, "B"))) == 2
            os.rename(os.path.join(top, "B"), os.path.join(top, "C", "B"))
            got = os.listdir(os.path.join(top, "C", "B"))
            assert len(got) == 2, (i, got)
            shutil.rmtree(top)
        with open(trace, errors="replace") as f:
            assert "read timed out" not in f.read()
