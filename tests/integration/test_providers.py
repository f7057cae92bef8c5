"""The big providers' quirks, scripted: Gmail and Microsoft 365.

No Debian server behaves like Gmail (labels shown as folders, a `[Gmail]`
\\Noselect parent, one message in several folders, auto-expunge) or like
Microsoft 365 (no CONDSTORE/QRESYNC, throttling, OAuth2 only), so these
tests run the mount against tests/support/fakeproviders.py, which scripts
both.  Each profile gets one read-write mount for the module (-o
listing_ttl=0, so every opendir reloads the folder and a test sees what
the server did at once); the server's own state is the truth.
"""

import contextlib
import errno
import os
import subprocess
import sys

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import fakeproviders  # noqa: E402
import testenv  # noqa: E402

OP_BOUND_S = 60
TOKEN = "ya29.fake-provider-token"
MSGS = testenv.sample_messages(8, seed=77)
ALL = "[Gmail]/All Mail"
# Gmail: folder -> messages (by key: the same key is the same message, one
# X-GM-MSGID, carrying several labels).  Every message not in Trash is in
# All Mail as well.
GMAIL_LABELS = {
    "INBOX": [("a", MSGS[0]), ("b", MSGS[1]), ("c", MSGS[2])],
    "Work": [("a", MSGS[0]), ("d", MSGS[3])],
    "Work/Projects": [("a", MSGS[0])],
    "[Gmail]/Important": [("a", MSGS[0])],
    "[Gmail]/Sent Mail": [("e", MSGS[4])],
    "[Gmail]/Starred": [("c", MSGS[2])],
    "[Gmail]/Trash": [("f", MSGS[5])],
}
M365_FOLDERS = {
    "INBOX": [("a", MSGS[0]), ("b", MSGS[1]), ("c", MSGS[2])],
    "Projects": [("d", MSGS[3]), ("e", MSGS[4])],
}
# Read only by the throttling tests (nothing cached before), each test its
# own, in descending UID order (so that no prefetch reads ahead).
THROTTLE_MSGS = testenv.sample_messages(5, seed=78)
M365_FOLDERS["Throttle"] = [(f"t{i}", m) for i, m in enumerate(THROTTLE_MSGS)]


def _mount(imapfs_bin, server, work, options=(), password_file=True,
           live=False):
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    # The scripted providers record every command and several tests count
    # them: the live view's listener stays off but for the test of it
    # (which keeps listing_ttl at its default, so that only the live view
    # can explain new mail in a listing).
    fresh = ["-o", "watch=0", "-o", "listing_ttl=0", "-o", "attr_timeout=0"]
    r = testenv.mount_imapfs(imapfs_bin, server, mnt, options=[
        "-o", "timeout=5"] + ([] if live else fresh) + [
        "-o", f"spool_dir={work}/spool"] + list(options),
        password_file=password_file)
    assert r.returncode == 0, r.stderr
    return mnt


class Env:
    def __init__(self, server, mnt):
        self.server = server
        self.mnt = mnt

    def path(self, *rel):
        return os.path.join(self.mnt, *rel)

    def run(self, fn):
        """fn() bounded (a hang is a failure); returns (value, exception)."""
        value, exc, _ = testenv.run_bounded(self.mnt, fn, OP_BOUND_S)
        return value, exc

    def files(self, folder):
        return sorted(n for n in os.listdir(self.path(folder))
                      if n.endswith(".eml"))

    def bads(self):
        """Commands the scripted server did not understand."""
        return [c.text for c in self.server.commands_snapshot()
                if (c.conn, c.tag) in self.server.bad_tags]


def _server(profile, work, **kw):
    labels = GMAIL_LABELS if profile == "gmail" else M365_FOLDERS
    s = fakeproviders.ProviderServer(profile, labels=labels,
                                     workdir=os.path.join(work, "srv"), **kw)
    s.start()
    return s


@contextlib.contextmanager
def _served(imapfs_bin, server, work, options=(), password_file=True,
            live=False):
    """Mounts the started `server` below `work`; yields the Env; unmounts
    and stops the server whatever happened."""
    mnt = None
    try:
        mnt = _mount(imapfs_bin, server, work, options, password_file, live)
        yield Env(server, mnt)
    finally:
        if mnt:
            testenv.unmount(mnt)
            if testenv.daemon_pid(mnt) is not None:
                testenv.force_unmount(mnt)
        server.stop()


@pytest.fixture(scope="module")
def gmail(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("gmail"))
    with _served(imapfs_bin, _server("gmail", work), work) as env:
        yield env


@pytest.fixture(scope="module")
def m365(imapfs_bin, tmp_path_factory):
    """Microsoft 365, OAuth2 only: LOGINDISABLED, AUTH=XOAUTH2."""
    work = str(tmp_path_factory.mktemp("m365"))
    cmd = os.path.join(work, "token.sh")
    with open(cmd, "w") as f:
        f.write(f"#!/bin/sh\necho {TOKEN}\n")
    os.chmod(cmd, 0o700)
    with _served(imapfs_bin, _server("m365", work, oauth2_token=TOKEN), work,
                 ["-o", f"oauth2_token_command={cmd}"],
                 password_file=False) as env:
        yield env


def _read(env, *rel):
    data, exc = env.run(lambda: open(env.path(*rel), "rb").read())
    assert exc is None, f"{rel}: {exc!r}"
    return data


# -- Gmail: the tree -----------------------------------------------------

def test_gmail_tree_and_noselect_parent(gmail):
    """`[Gmail]` (\\Noselect) is a directory holding only its special-use
    children; it is never EXAMINEd."""
    assert "X-GM-EXT-1" in gmail.server.caps_after_login()
    assert sorted(os.listdir(gmail.mnt)) == ["INBOX", "Work", "[Gmail]"]
    assert sorted(os.listdir(gmail.path("[Gmail]"))) == [
        "All Mail", "Drafts", "Important", "Sent Mail", "Spam", "Starred",
        "Trash"]
    assert sorted(os.listdir(gmail.path("Work"))) == ["1.eml", "2.eml",
                                                      "Projects"]
    for folder, keys in GMAIL_LABELS.items():
        assert len(gmail.files(folder)) == len(keys), folder
    # Every message not in Trash is in All Mail: a, b, c, d, e.
    assert len(gmail.files(ALL)) == 5
    assert not any(c.name == "EXAMINE" and "[Gmail]\"" in c.text
                   for c in gmail.server.commands_snapshot())
    assert gmail.bads() == []


def test_gmail_one_message_in_several_folders(gmail):
    """Message "a" (one X-GM-MSGID) is in INBOX, Work, Work/Projects,
    Important and All Mail: five files with the same bytes, five inodes;
    find lists each copy, du counts each copy."""
    s = gmail.server
    copies = []
    for folder in ("INBOX", "Work", "Work/Projects", "[Gmail]/Important",
                   ALL):
        (uid,) = [u for u, m in s.uids(folder).items()
                  if m.data == MSGS[0]]
        copies.append(gmail.path(folder, f"{uid}.eml"))
    with s.lock:
        ids = {next(m.msgid for m in s.folders[f].uids.values()
                    if m.data == MSGS[0])
               for f in ("INBOX", "Work", ALL)}
    assert len(ids) == 1, "the fake should serve one X-GM-MSGID"
    assert all(_read(gmail, p) == MSGS[0] for p in copies)
    assert len({os.stat(p).st_ino for p in copies}) == len(copies)
    assert all(os.stat(p).st_nlink == 1 for p in copies)
    r = subprocess.run(["find", gmail.mnt, "-type", "f"],
                       capture_output=True, text=True, timeout=OP_BOUND_S)
    assert r.returncode == 0, r.stderr
    found = r.stdout.splitlines()
    with s.lock:
        total = sum(len(f.uids) for f in s.folders.values())
        nbytes = sum(len(m.data) for f in s.folders.values()
                     for m in f.uids.values())
    assert len(found) == total
    assert set(copies) <= set(found)
    # du counts a file once per inode: every copy has its own, so each
    # counts (du -b: apparent sizes, directories included).
    r = subprocess.run(["du", "-s", "-b", gmail.mnt], capture_output=True,
                       text=True, timeout=OP_BOUND_S)
    assert r.returncode == 0, r.stderr
    dirs = sum(os.stat(root).st_size for root, _, _ in os.walk(gmail.mnt))
    assert sum(os.stat(p).st_size for p in found) == nbytes
    assert int(r.stdout.split()[0]) == nbytes + dirs


def test_gmail_flags_are_per_message(gmail):
    """setfattr in one label folder: the flags change on the message, so
    every folder showing it shows the new flags."""
    (uid,) = [u for u, m in gmail.server.uids("Work").items()
              if m.data == MSGS[0]]
    p = gmail.path("Work", f"{uid}.eml")
    _, exc = gmail.run(lambda: os.setxattr(p, "user.imap.flags",
                                           b"\\Seen $Label1"))
    assert exc is None, repr(exc)
    for folder in ("INBOX", ALL):
        (u,) = [u for u, m in gmail.server.uids(folder).items()
                if m.data == MSGS[0]]
        os.listdir(gmail.path(folder))
        got = os.getxattr(gmail.path(folder, f"{u}.eml"), "user.imap.flags")
        assert set(got.decode().split()) == {"\\Seen", "$Label1"}
    assert any("UNCHANGEDSINCE" in c.text and c.name == "UID STORE"
               for c in gmail.server.commands_snapshot())


# -- Gmail: the write path -----------------------------------------------

def test_gmail_cp_into_label_folder(gmail):
    """cp of a new message into a label folder: one APPEND; Gmail files it
    in All Mail too, with the same X-GM-MSGID; the mount shows both."""
    new = testenv.sample_messages(1, seed=901)[0]
    before = set(gmail.server.uids(ALL))

    def cp():
        with open(gmail.path("Work", "new.eml"), "wb") as f:
            f.write(new)
    _, exc = gmail.run(cp)
    assert exc is None, repr(exc)
    assert gmail.server.count(r"^\S+ APPEND ") == 1
    (w,) = [u for u, m in gmail.server.uids("Work").items() if m.data == new]
    (a,) = set(gmail.server.uids(ALL)) - before
    assert gmail.server.uids(ALL)[a] is gmail.server.uids("Work")[w]
    assert _read(gmail, "Work", f"{w}.eml") == new
    assert _read(gmail, ALL, f"{a}.eml") == new


def test_gmail_cp_between_labels_adds_a_label(gmail):
    """cp INBOX/n.eml Work/x.eml: UID COPY; on Gmail that adds the label
    Work to the same message (no second message in All Mail)."""
    (uid,) = [u for u, m in gmail.server.uids("INBOX").items()
              if m.data == MSGS[1]]
    nall = len(gmail.server.uids(ALL))
    r = subprocess.run(["cp", gmail.path("INBOX", f"{uid}.eml"),
                        gmail.path("Work", "copy.eml")],
                       capture_output=True, text=True, timeout=OP_BOUND_S)
    assert r.returncode == 0, r.stderr
    work = {m.data: m for m in gmail.server.uids("Work").values()}
    assert work[MSGS[1]] is gmail.server.uids("INBOX")[uid]
    assert len(gmail.server.uids(ALL)) == nall
    assert MSGS[1] in [_read(gmail, "Work", n) for n in gmail.files("Work")]


def test_gmail_rm_in_label_removes_the_label(gmail):
    """rm Work/n.eml: STORE \\Deleted (Gmail expunges it from the label at
    once, an untagged EXPUNGE in the STORE's reply) + UID EXPUNGE; the
    message keeps its other labels and stays in All Mail."""
    (uid,) = [u for u, m in gmail.server.uids("Work").items()
              if m.data == MSGS[3]]
    _, exc = gmail.run(lambda: os.unlink(gmail.path("Work", f"{uid}.eml")))
    assert exc is None, repr(exc)
    assert MSGS[3] not in [m.data for m in gmail.server.uids("Work")
                           .values()]
    assert f"{uid}.eml" not in os.listdir(gmail.path("Work"))
    alls = [u for u, m in gmail.server.uids(ALL).items()
            if m.data == MSGS[3]]
    assert len(alls) == 1
    assert _read(gmail, ALL, f"{alls[0]}.eml") == MSGS[3]


def test_gmail_rm_in_all_mail_keeps_the_message(gmail):
    """rm in [Gmail]/All Mail: the mount sends STORE \\Deleted + UID
    EXPUNGE and rm succeeds, but Gmail (by default) keeps the message in
    All Mail: the file is listed again at the next listing."""
    (uid,) = [u for u, m in gmail.server.uids(ALL).items()
              if m.data == MSGS[4]]
    _, exc = gmail.run(lambda: os.unlink(gmail.path(ALL, f"{uid}.eml")))
    assert exc is None, repr(exc)
    assert gmail.server.count(rf"^\S+ UID EXPUNGE {uid}$") == 1
    assert uid in gmail.server.uids(ALL)
    assert f"{uid}.eml" in os.listdir(gmail.path(ALL))
    assert _read(gmail, ALL, f"{uid}.eml") == MSGS[4]


def test_gmail_mkdir_label_and_refused_system_folder(gmail):
    """mkdir makes a label (CREATE); mkdir inside [Gmail] is refused by
    Gmail with [CANNOT]: EPERM; rmdir of a label DELETEs it (its messages
    stay in All Mail)."""
    os.mkdir(gmail.path("Travel"))
    assert "Travel" in gmail.server.folders
    with pytest.raises(OSError) as ei:
        os.mkdir(gmail.path("[Gmail]", "Mine"))
    assert ei.value.errno == errno.EPERM
    os.rmdir(gmail.path("Travel"))
    assert "Travel" not in gmail.server.folders
    assert "Travel" not in os.listdir(gmail.mnt)


def test_gmail_rm_with_delete_trash_removes_every_label(gmail, imapfs_bin,
                                                        tmp_path):
    """With -o delete=trash, rm is UID MOVE to [Gmail]/Trash (\\Trash),
    which on Gmail removes the message from every label and All Mail."""
    mnt = _mount(imapfs_bin, gmail.server, str(tmp_path),
                 ["-o", "delete=trash"])
    env = Env(gmail.server, mnt)
    try:
        (uid,) = [u for u, m in gmail.server.uids("INBOX").items()
                  if m.data == MSGS[2]]
        _, exc = env.run(lambda: os.unlink(env.path("INBOX", f"{uid}.eml")))
        assert exc is None, repr(exc)
        s = gmail.server
        with s.lock:
            (msg,) = [m for m in s.folders["[Gmail]/Trash"].uids.values()
                      if m.data == MSGS[2]]
            assert s.folders_of(msg) == ["[Gmail]/Trash"]
        assert MSGS[2] in [_read(env, "[Gmail]/Trash", n)
                           for n in env.files("[Gmail]/Trash")]
        assert len(env.files(ALL)) == len(gmail.server.uids(ALL))
    finally:
        testenv.unmount(mnt)
    assert gmail.bads() == []


# -- Microsoft 365 -------------------------------------------------------

def test_m365_xoauth2_only_and_no_condstore(m365):
    """OAuth2 only (LOGINDISABLED, AUTH=XOAUTH2): every login is
    AUTHENTICATE XOAUTH2; nothing CONDSTORE is ever sent; reads work."""
    for folder, items in M365_FOLDERS.items():
        if folder == "Throttle":
            continue
        got = sorted(_read(m365, folder, n) for n in m365.files(folder))
        assert got == sorted(d for _, d in items), folder
    cmds = m365.server.commands_snapshot()
    logins = [c for c in cmds if c.name in ("LOGIN", "AUTHENTICATE")]
    assert logins and all(c.text.split()[2] == "XOAUTH2" for c in logins)
    for word in ("CONDSTORE", "MODSEQ", "CHANGEDSINCE", "QRESYNC"):
        assert not any(word in c.text for c in cmds), word
    assert m365.bads() == []


def test_m365_write_path_without_condstore(m365):
    """setfattr is a plain STORE (no UNCHANGEDSINCE), an edit (>>) APPENDs
    the new version and expunges the old UID, mv is UID MOVE."""
    (uid,) = [u for u, m in m365.server.uids("Projects").items()
              if m.data == MSGS[3]]
    p = m365.path("Projects", f"{uid}.eml")
    os.setxattr(p, "user.imap.flags", b"\\Flagged")
    assert m365.server.uids("Projects")[uid].flags == {"\\Flagged"}
    with open(p, "ab") as f:
        f.write(b"edited\r\n")
    msgs = m365.server.uids("Projects")
    assert uid not in msgs
    (new,) = [u for u, m in msgs.items() if m.data == MSGS[3] + b"edited\r\n"]
    assert msgs[new].flags == {"\\Flagged"}
    os.rename(m365.path("Projects", f"{new}.eml"),
              m365.path("Archive", f"{new}.eml"))
    assert new not in m365.server.uids("Projects")
    assert [m.data for m in m365.server.uids("Archive").values()] == \
        [MSGS[3] + b"edited\r\n"]
    assert m365.server.count(r"^\S+ UID MOVE ") == 1
    assert not any("UNCHANGEDSINCE" in c.text
                   for c in m365.server.commands_snapshot())


def _attempts(server, pattern):
    return [c for c in server.commands_snapshot()
            if c.name == pattern[0] and pattern[1] in c.text]


@pytest.mark.parametrize("mode", ["text", "no", "bye"])
def test_m365_throttled_read_backs_off_and_succeeds(m365, mode):
    """A body FETCH answered `NO Request is throttled. Suggested Backoff
    Time: 800 milliseconds` (Microsoft), `NO [THROTTLED]` (Gmail) or
    `* BYE [THROTTLED]` twice: the read waits and succeeds; the retry
    comes no sooner than the suggested back-off (500 ms doubling where none
    is suggested)."""
    (uid,) = [u for u, m in m365.server.uids("Throttle").items()
              if m.data == THROTTLE_MSGS[4 - ["text", "no", "bye"]
                                         .index(mode)]]
    n0 = len(m365.server.commands_snapshot())
    m365.server.throttle("UID FETCH", mode=mode, count=2, backoff_ms=800,
                         text_re="BODY")
    data = _read(m365, "Throttle", f"{uid}.eml")
    assert data == m365.server.uids("Throttle")[uid].data
    fetches = [c for c in m365.server.commands_snapshot()[n0:]
               if c.name == "UID FETCH" and "BODY" in c.text]
    assert len(fetches) == 3, [c.text for c in fetches]
    for a, b in zip(fetches, fetches[1:]):
        # The suggested 800 ms; Gmail's NO [THROTTLED] suggests nothing:
        # 500 ms, then 1 s.  (A reconnect alone takes about 0.3 s with the
        # fake server.)
        assert b.at - a.at >= (0.45 if mode == "no" else 0.7), \
            "the retry did not wait"


def test_ok_throttled_is_a_success(m365):
    """`OK [THROTTLED]` (Gmail: done, but slow down) is a success: the
    read returns the message after one FETCH, nothing is retried."""
    (uid,) = [u for u, m in m365.server.uids("Throttle").items()
              if m.data == THROTTLE_MSGS[1]]
    n0 = len(m365.server.commands_snapshot())
    m365.server.throttle("UID FETCH", mode="ok", count=5, text_re="BODY")
    try:
        assert _read(m365, "Throttle", f"{uid}.eml") == THROTTLE_MSGS[1]
    finally:
        with m365.server.lock:
            m365.server.throttles.clear()
    fetches = [c for c in m365.server.commands_snapshot()[n0:]
               if c.name == "UID FETCH" and "BODY" in c.text]
    assert len(fetches) == 1, [c.text for c in fetches]


def test_m365_throttled_listing_backs_off(m365):
    """EXAMINE throttled twice: the listing still succeeds."""
    m365.server.throttle("EXAMINE", mode="text", count=2, backoff_ms=100)
    names, exc = m365.run(lambda: m365.files("INBOX"))
    assert exc is None, repr(exc)
    assert len(names) == len(m365.server.uids("INBOX"))


def test_m365_throttling_that_persists_fails_the_read_bounded(m365):
    """A server that keeps throttling: the read fails with EIO after the
    bounded retries (four FETCHes per read request), not a hang."""
    (uid,) = [u for u, m in m365.server.uids("Throttle").items()
              if m.data == THROTTLE_MSGS[0]]
    n0 = len(m365.server.commands_snapshot())
    m365.server.throttle("UID FETCH", mode="text", count=50, backoff_ms=50,
                         text_re="BODY")
    try:
        _, exc = m365.run(lambda: open(m365.path("Throttle", f"{uid}.eml"),
                                       "rb").read())
    finally:
        with m365.server.lock:
            m365.server.throttles.clear()
    fetches = [c for c in m365.server.commands_snapshot()[n0:]
               if c.name == "UID FETCH" and "BODY" in c.text]
    assert isinstance(exc, OSError) and exc.errno == errno.EIO, \
        (exc, [c.text for c in m365.server.commands_snapshot()[n0:]])
    # Each read request is tried four times (the kernel may send a failed
    # read-ahead's range once more as a plain read).
    assert len(fetches) in (4, 8), [c.text for c in fetches]
    assert _read(m365, "Throttle", f"{uid}.eml") == THROTTLE_MSGS[0]


def _write_cases(env):
    """name -> (command name, action) for each non-idempotent command."""
    def uid_of(folder, data):
        return next(u for u, m in env.server.uids(folder).items()
                    if m.data == data)

    def cp_new():
        with open(env.path("INBOX", "throttled.eml"), "wb") as f:
            f.write(MSGS[6])

    return {
        "APPEND": ("APPEND", cp_new),
        "STORE": ("UID STORE", lambda: os.setxattr(
            env.path("INBOX", f"{uid_of('INBOX', MSGS[0])}.eml"),
            "user.imap.flags", b"\\Answered")),
        "EXPUNGE": ("UID EXPUNGE", lambda: os.unlink(
            env.path("INBOX", f"{uid_of('INBOX', MSGS[1])}.eml"))),
        "MOVE": ("UID MOVE", lambda: os.rename(
            env.path("INBOX", f"{uid_of('INBOX', MSGS[2])}.eml"),
            env.path("Archive", f"{uid_of('INBOX', MSGS[2])}.eml"))),
        "CREATE": ("CREATE", lambda: os.mkdir(env.path("NewOne"))),
        "DELETE": ("DELETE", lambda: os.rmdir(env.path("Drafts"))),
        "RENAME": ("RENAME", lambda: os.rename(env.path("Junk Email"),
                                               env.path("Junk2"))),
    }


@pytest.mark.parametrize("what", ["APPEND", "STORE", "EXPUNGE", "MOVE",
                                  "CREATE", "DELETE", "RENAME"])
def test_m365_throttled_write_is_never_retried(m365, what):
    """A throttled APPEND, STORE, EXPUNGE, MOVE, CREATE, DELETE or RENAME
    is sent once: the syscall fails with EIO, nothing is retried."""
    name, action = _write_cases(m365)[what]
    n0 = len(m365.server.commands_snapshot())
    m365.server.throttle(name, mode="text", count=5, backoff_ms=50)
    try:
        _, exc = m365.run(action)
    finally:
        with m365.server.lock:
            m365.server.throttles.clear()
    assert isinstance(exc, OSError) and exc.errno == errno.EIO, repr(exc)
    sent = [c.text for c in m365.server.commands_snapshot()[n0:]
            if c.name == name]
    print("SENT", [c.text for c in m365.server.commands_snapshot()[n0:]])
    assert len(sent) == 1, sent


# -- the live view ---------------------------------------------------------

@pytest.mark.parametrize("profile", ["gmail", "m365"])
def test_live_view_on_provider(imapfs_bin, tmp_path, profile):
    """The live view on the providers (IDLE announced; no NOTIFY; Gmail
    has CONDSTORE, M365 not): a message the provider receives shows up in
    ls within 10 s (listing_ttl at its default 30 s), in the folder IDLEd
    on and in the one polled with STATUS; the listener sends nothing the
    server does not understand (no BAD: nothing unannounced, such as
    HIGHESTMODSEQ in a STATUS to M365)."""
    work = str(tmp_path)
    server = _server(profile, work)
    other = "Work" if profile == "gmail" else "Projects"
    with _served(imapfs_bin, server, work, live=True) as env:
        env.files(other)
        env.files("INBOX")  # used last: the listener IDLEs on it
        for n, folder in enumerate(("INBOX", other)):
            before = env.files(folder)
            with server.lock:
                uid = server.add_to(server.folders[folder], server.new_msg(
                    MSGS[6 + n], day=20 + n))
            assert f"{uid}.eml" not in before
            testenv.wait_for(lambda: f"{uid}.eml" in env.files(folder), 10,
                             interval=0.1, what=f"{uid}.eml in ls {folder}")
            assert _read(env, folder, f"{uid}.eml") == MSGS[6 + n]
        cmds = server.commands_snapshot()
        assert any(c.name == "IDLE" for c in cmds)
        assert any(c.name == "STATUS" and other in c.text for c in cmds)
        assert env.bads() == []


def test_live_view_sees_mail_arriving_during_its_uid_fetch(imapfs_bin,
                                                          tmp_path):
    """Mail that arrives while the listener, right after its EXAMINE,
    fetches the folder's UIDs (the server's EXISTS comes inside that
    FETCH's reply) shows up in ls within 10 s: the listener learns the new
    UIDs before it reports the folder's state.  (Reported with the
    EXAMINE's UIDNEXT, the arrival was taken for part of the starting
    point and never told; seen in CI on Dovecot after a reconnect.)"""
    work = str(tmp_path)
    server = _server("m365", work)
    added = []

    def deliver(selected):
        if selected != "INBOX" or added:
            return False
        added.append(server.add_to(server.folders["INBOX"],
                                   server.new_msg(MSGS[6], day=20)))
        return True
    server.during_fetch(r"FETCH 1:\* \(UID\)", deliver)
    with _served(imapfs_bin, server, work, live=True) as env:
        env.files("INBOX")  # used: the listener EXAMINEs and IDLEs on it
        testenv.wait_for(lambda: bool(added), 10, interval=0.1,
                         what="the listener's UID fetch in INBOX")
        name = f"{added[0]}.eml"
        testenv.wait_for(lambda: name in env.files("INBOX"), 10,
                         interval=0.1, what=f"{name} in ls INBOX")
        assert _read(env, "INBOX", name) == MSGS[6]
        assert env.bads() == []


def _rename_keeps_inodes(env, server, oldname, before=lambda: None):
    """Another client renames Projects to Plans (`oldname`: the LIST
    replies say so); `before()` runs once the folder is loaded and the
    list polled.  The folder keeps its inode and its messages theirs, an
    open fd reads on, the old path is ENOENT."""
    files = env.files("Projects")
    inos = {n: os.stat(env.path("Projects", n)).st_ino for n in files}
    dir_ino = os.stat(env.path("Projects")).st_ino
    with server.lock:
        want = server.uids("Projects")[int(files[0][:-4])].data
    fd = os.open(env.path("Projects", files[0]), os.O_RDONLY)
    try:
        env.files("INBOX")  # the list is polled at the pace of use
        before()
        with server.lock:
            server.rename_folder("Projects", "Plans", oldname=oldname)
        testenv.wait_for(lambda: "Plans" in os.listdir(env.mnt), 10,
                         interval=0.1, what="Plans in ls")
        assert os.stat(env.path("Plans")).st_ino == dir_ino
        assert env.files("Plans") == files
        for n in files:
            assert os.stat(env.path("Plans", n)).st_ino == inos[n], n
        assert os.pread(fd, 1 << 20, 0) == want
        with pytest.raises(FileNotFoundError):
            os.stat(env.path("Projects"))
    finally:
        os.close(fd)


def test_list_that_leaves_out_an_existing_folder_keeps_it(imapfs_bin,
                                                          tmp_path):
    """A LIST that leaves out a folder we have (Dovecot's mailbox list
    index answered one from an old view right after our own DELETE and
    CREATEs) does not make it vanish: a folder gone from the list is asked
    STATUS first, and kept, inode and all, while the server says it
    exists; once STATUS says NO it goes.  listing_ttl=0: every ls lists
    the mailboxes again."""
    work = str(tmp_path)
    server = _server("m365", work)
    with _served(imapfs_bin, server, work) as env:
        files = env.files("Projects")
        dir_ino = os.stat(env.path("Projects")).st_ino
        with server.lock:
            server.list_hides.add("Projects")
        n0 = len(server.commands_snapshot())
        assert "Projects" in os.listdir(env.mnt)
        assert os.stat(env.path("Projects")).st_ino == dir_ino
        assert env.files("Projects") == files
        asked = [c.text for c in server.commands_snapshot()[n0:]
                 if c.name == "STATUS"]
        assert any("Projects" in t for t in asked), asked
        # Really gone: STATUS says NO, and the folder goes.
        with server.lock:
            del server.folders["Projects"]
        assert "Projects" not in os.listdir(env.mnt)
        with pytest.raises(FileNotFoundError):
            os.stat(env.path("Projects"))
        assert env.bads() == []


def test_oldname_rename_keeps_inodes(imapfs_bin, tmp_path):
    """A server that names a renamed mailbox's old name in its LIST reply
    (`("OLDNAME" ("old"))`, RFC 5258 section 9 / RFC 5465 5.4; scripted:
    Dovecot's MailboxName events are unusable): the folder keeps its inode
    and its messages theirs, an open fd reads on, the old path is ENOENT.
    M365 has no LIST-STATUS: here OLDNAME alone tells it."""
    work = str(tmp_path)
    server = _server("m365", work)
    with _served(imapfs_bin, server, work, live=True) as env:
        _rename_keeps_inodes(env, server, True)
        assert env.bads() == []


def test_m365_rename_by_another_client_keeps_inodes(imapfs_bin, tmp_path):
    """Another client renames a folder on a server whose LIST says nothing
    of it (Microsoft 365: no LIST-STATUS, no OLDNAME): the folder we had
    loaded is gone from the list and a new name came, so the new name is
    asked STATUS (UIDVALIDITY MESSAGES UIDNEXT); Exchange is taken to keep
    a folder's UIDVALIDITY across RENAME (the scripted one does: the folder
    object moves; not checked against the real service), and with MESSAGES and UIDNEXT unchanged it is the same folder:
    it keeps its inode and its messages theirs, an fd held open reads on,
    the old path is ENOENT.  A folder another client created while none
    went is not asked STATUS (bounded: only when a folder we know went
    from the list), nor are the folders that kept their names and were
    never used; nothing the server did not understand."""
    work = str(tmp_path)
    server = _server("m365", work)

    def create_fresh():
        with server.lock:
            server.add_folder("Fresh", ())
        testenv.wait_for(lambda: "Fresh" in os.listdir(env.mnt), 10,
                         interval=0.1, what="Fresh in ls")
    with _served(imapfs_bin, server, work, live=True) as env:
        n0 = len(server.commands_snapshot())
        _rename_keeps_inodes(env, server, False, create_fresh)
        asked = [c.text for c in server.commands_snapshot()[n0:]
                 if c.name == "STATUS"]
        assert not any(b in t for t in asked
                       for b in ("Fresh", "Archive", "Drafts", "Sent")), \
            asked
        assert env.bads() == []
