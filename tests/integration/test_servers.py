"""The same read and write tests against Dovecot, Cyrus and Courier.

Each test runs once per server in IMAPFS_TEST_SERVERS (default: all of
"dovecot cyrus cyrus-unixsep courier"); Cyrus and Courier run from Debian 12
chroots (tests/support/chrootserver.py), configured as Debian ships them
plus a certificate, a user and the ports.  Every server gets the same
corpus and its own mount; the truth comes from the server over imaplib, as
in the session suite.

Where the servers legitimately differ the expectation is written down per
server: which mailbox names a server refuses (NAMES_REFUSED), what its
GETQUOTAROOT answers (test_statfs_follows_quota) and whether a level created
only as a parent is a mailbox (PARENT_SELECTABLE).  The write tests share one
read-write mount per server (the wmnt fixture), after the read tests.  On every server the
mount's top level looks like Dovecot's: the personal namespace prefix
("INBOX." on Cyrus as Debian configures it and on Courier) is not shown,
and INBOX's own messages are in INBOX/.
"""

import errno
import hashlib
import os
import re
import subprocess
import sys

import pytest

from conftest import load_folder, load_inbox, served_and_mounted, testenv
from test_tree import mount_dirs

sys.path.insert(0, os.path.dirname(testenv.__file__))
import chrootserver  # noqa: E402

ALL_SERVERS = ["dovecot", "cyrus", "cyrus-unixsep", "courier"]
SERVERS = os.environ.get("IMAPFS_TEST_SERVERS", " ".join(ALL_SERVERS)).split()
INBOX_COUNT = 25
# Folder (UTF-8, "/"-separated, or a tuple of components) -> messages.
# Every server accepts these names.
CORPUS = {
    "Archive": 3,
    "Archive/2024": 2,
    "Archive/2024/Q1": 4,
    "Entwürfe": 2,
    "R&D": 1,
    "My Folder": 1,
    "Empty": 0,
}
# Names some servers refuse (CREATE answers NO) or cannot express (a "/"
# inside a name where "/" is the separator).  Mount path of each:
NAMES_OPTIONAL = {'Say "hi"': 'Say "hi"', ("a/b",): "a%2Fb",
                  "100%": "100%25"}
NAMES_REFUSED = {
    # Dovecot's listescape plugin stores any character.
    "dovecot": set(),
    # Cyrus 3.6: "Invalid mailbox name" for '"', for the LIST wildcard '%'
    # and for '/' with the netnews separator.
    "cyrus": {'Say "hi"', ("a/b",), "100%"},
    # With unixhierarchysep "/" separates levels: a/b cannot be one name.
    "cyrus-unixsep": {'Say "hi"', ("a/b",), "100%"},
    # Courier: "Invalid mailbox name." for '/'.
    "courier": {("a/b",)},
}
MISSING = ["999999.eml", "0.eml", "abc", ".Trash", "NoSuchFolder", "1.EML",
           "INBOX.Archive", "INBOX"]


def make_server(kind, workdir):
    if kind == "dovecot":
        return testenv.DovecotServer(workdir)
    if kind in ("cyrus", "cyrus-unixsep"):
        return chrootserver.CyrusServer(
            workdir, unixhierarchysep=kind == "cyrus-unixsep")
    if kind == "courier":
        return chrootserver.CourierServer(workdir)
    raise ValueError(kind)


def load_corpus(server):
    """Fills the server; returns the optional names it refused."""
    load_inbox(server, INBOX_COUNT)
    seed = 20
    refused = set()
    for name, count in list(CORPUS.items()) + [
            (n, 1) for n in NAMES_OPTIONAL]:
        parts = name if isinstance(name, tuple) else name.split("/")
        if name in NAMES_OPTIONAL and \
                any(server.delimiter in p for p in parts):
            refused.add(name)     # not expressible on this server
            continue
        try:
            server.create_mailbox(name)
        except RuntimeError as e:
            if name not in NAMES_OPTIONAL or " NO " not in f" {e} ":
                raise
            refused.add(name)
            continue
        if count:
            load_folder(server, name, count, seed)
        seed += 1
    return refused


@pytest.fixture(scope="module", params=SERVERS)
def env(request, imapfs_bin, tmp_path_factory):
    """This module's env: one server of each kind, filled and mounted."""
    kind = request.param
    if kind not in ALL_SERVERS:
        pytest.fail(f"IMAPFS_TEST_SERVERS: unknown server {kind!r}")
    if kind != "dovecot":
        why = chrootserver.chroot_missing_tool()
        if why:
            pytest.skip(f"{kind} runs in a chroot: {why}")
    work = str(tmp_path_factory.mktemp(f"servers-{kind}"))
    server = make_server(kind, os.path.join(work, kind))
    refused = set()

    def load(srv):
        refused.update(load_corpus(srv))

    # Read tests: a read-only mount (-o ro), like the session suite's.
    with served_and_mounted(imapfs_bin, server, work, load,
                            ["-o", "ro"]) as e:
        e.kind = kind
        e.refused = refused
        yield e


def expected_top(env):
    top = {"INBOX"} | {n.split("/")[0].replace("%", "%25")
                       for n in CORPUS}
    return top | {path for name, path in NAMES_OPTIONAL.items()
                  if name not in env.refused}


def test_refused_names_as_written_down(env):
    assert env.refused == NAMES_REFUSED[env.kind]


def test_tree_equals_list(env):
    """Directories = LIST with the personal prefix stripped; the top level
    is the same on every server (no INBOX.x, nothing nested in INBOX)."""
    boxes = env.truth.mailboxes()
    assert mount_dirs(env.mnt) == {rel for _, rel, _ in boxes}
    assert set(os.listdir(env.mnt)) == expected_top(env)
    assert {"Archive", "Archive/2024", "Archive/2024/Q1", "Entwürfe",
            "Empty"} <= mount_dirs(env.mnt)
    if env.server.prefix:
        assert all(n == "INBOX" or n.startswith(env.server.prefix)
                   for n, _, _ in boxes), boxes


def test_inbox_messages_present(env):
    """INBOX's own messages are files of INBOX/ (also where the personal
    namespace is "INBOX.")."""
    msgs = env.truth.messages("INBOX")
    assert len(msgs) == INBOX_COUNT
    files = {e for e in os.listdir(env.path("INBOX")) if e.endswith(".eml")}
    assert files == {f"{uid}.eml" for uid in msgs}


def test_find_lists_every_message(env):
    r = subprocess.run(["find", env.mnt, "-type", "f"], capture_output=True,
                       text=True, timeout=200)
    assert r.returncode == 0, r.stderr
    expected = {os.path.join(env.mnt, rel, f"{uid}.eml")
                for name, rel in env.selectable()
                for uid in env.truth.messages(name)}
    assert set(r.stdout.splitlines()) == expected
    assert len(expected) == INBOX_COUNT + sum(CORPUS.values()) + \
        len(NAMES_OPTIONAL) - len(env.refused)


def test_content_size_mtime_flags(env):
    """Every message: bytes = BODY.PEEK[], st_size = RFC822.SIZE, st_mtime
    = INTERNALDATE, user.imap.flags = FLAGS, user.imap.uid = UID."""
    n = 0
    for name, rel in env.selectable():
        for uid, meta in env.truth.messages(name).items():
            path = env.path(os.path.join(rel, f"{uid}.eml"))
            with open(path, "rb") as f:
                data = f.read()
            body = env.truth.body(name, uid)
            assert hashlib.sha256(data).digest() == \
                hashlib.sha256(body).digest(), path
            st = os.stat(path)
            assert st.st_size == meta["size"] == len(body), path
            assert int(st.st_mtime) == meta["date"], path
            flags = os.getxattr(path, "user.imap.flags").decode()
            assert set(flags.split()) == meta["flags"], (path, flags)
            assert os.getxattr(path, "user.imap.uid") == str(uid).encode()
            n += 1
    assert n == INBOX_COUNT + sum(CORPUS.values()) + \
        len(NAMES_OPTIONAL) - len(env.refused)


def test_flags_cover_keywords(env):
    """The corpus's keyword and system flags reach the xattr."""
    seen = set()
    for uid, meta in env.truth.messages("INBOX").items():
        got = os.getxattr(env.path(f"INBOX/{uid}.eml"), "user.imap.flags")
        seen |= set(got.decode().split())
    assert {"\\Seen", "\\Flagged", "$Label1", "\\Answered"} <= seen


def test_grep_r(env):
    word = b"quokka"
    expected = env.word_matches(word)
    assert any("/INBOX/" in p for p in expected), \
        "the corpus should have the word in INBOX"
    r = subprocess.run(["grep", "-r", "-l", "-a", word.decode(), env.mnt],
                       capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.splitlines()) == expected


@pytest.mark.parametrize("folder", ["", "INBOX", "Archive/2024/Q1"])
def test_enoent(env, folder):
    for name in MISSING:
        if (folder, name) == ("", "INBOX"):
            continue
        with pytest.raises(FileNotFoundError):
            os.stat(env.path(os.path.join(folder, name)))
    uid = min(env.truth.messages("INBOX"))
    with pytest.raises(NotADirectoryError):
        os.stat(env.path(f"INBOX/{uid}.eml/x"))


def quota_reply(server):
    """(has the QUOTA capability, the QUOTA responses to GETQUOTAROOT)."""
    c = server.client()
    try:
        if "QUOTA" not in c.capabilities:
            return False, []
        typ, data = c.getquotaroot("INBOX")
        assert typ == "OK", data
        return True, [x.decode() for x in data[1]]
    finally:
        c.logout()


def test_statfs_follows_quota(env):
    """statfs takes the STORAGE quota where there is one, else 1 TiB free.

    Dovecot (no quota plugin): no QUOTA capability.  Cyrus as Debian ships
    it (autocreate_quota: 0): a quota root with no resources, "INBOX ()".
    Courier with a Maildir quota: "ROOT" (STORAGE used limit).
    """
    has_quota, replies = quota_reply(env.server)
    st = os.statvfs(env.mnt)
    assert st.f_frsize == st.f_bsize == 4096 and st.f_namemax == 255
    if env.kind == "dovecot":
        assert not has_quota
    elif env.kind.startswith("cyrus"):
        assert has_quota and replies == ["INBOX ()"], replies
    else:
        assert has_quota and len(replies) == 1, replies
        m = re.fullmatch(r'"ROOT" \(STORAGE (\d+) (\d+)\)', replies[0])
        assert m, replies
        used, limit = int(m.group(1)), int(m.group(2))
        assert limit == env.server.QUOTA_BYTES // 1024
        assert used > 0
        assert st.f_blocks == limit * 1024 // 4096
        assert st.f_bavail == st.f_bfree == (limit - used) * 1024 // 4096
        return
    assert st.f_blocks == st.f_bavail == st.f_bfree == (1 << 40) // 4096


def test_readonly_errno(env):
    """With -o ro, writing is refused with EROFS on every server."""
    with pytest.raises(OSError) as ei:
        os.mkdir(env.path("NewFolder"))
    assert ei.value.errno == errno.EROFS


# -- the write path on each server -------------------------------------------
# Last in the module: the read tests above have seen the corpus as loaded.
# Everything happens in a folder the test creates through the mount.

WNEW = (b"From: w@example.org\r\nSubject: written on every server\r\n"
        b"Message-ID: <servers-write@imapfs.test>\r\n\r\nhello\r\n")


def _server_msgs(server, name):
    c = server.client()
    try:
        typ, data = c.select(testenv.imap_quote(name), readonly=True)
        assert typ == "OK", data
        if int(data[0]) == 0:
            return {}
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        out = {}
        for item in data:
            if isinstance(item, tuple):
                head = item[0].decode()
                uid = int(re.search(r"UID (\d+)", head).group(1))
                flags = set(re.search(r"FLAGS \(([^)]*)\)", head)
                            .group(1).split()) - {"\\Recent"}
                out[uid] = (flags, item[1])
        return out
    finally:
        c.logout()


@pytest.fixture(scope="module")
def wmnt(env):
    """A read-write mount of this module's server (listing_ttl=0: every
    opendir sees what the server has)."""
    mnt = os.path.join(env.workdir, "wmnt")
    os.makedirs(mnt, exist_ok=True)
    r = testenv.mount_imapfs(env.bin, env.server, mnt, options=[
        "-o", f"spool_dir={env.workdir}/spool", "-o", "listing_ttl=0"])
    assert r.returncode == 0, r.stderr
    try:
        yield mnt
    finally:
        testenv.unmount(mnt)


def _names(env):
    return [n for n, _, _ in env.truth.mailboxes()]


def test_write_path(env, wmnt):
    """mkdir, cp in, setfattr, >> (edit), mv, rm, rmdir through a
    read-write mount of the same server, checked on the server."""
    mnt = wmnt
    top = env.server.server_name("Written")
    sub = env.server.server_name("Written/Sub")
    os.makedirs(os.path.join(mnt, "Written", "Sub"))
    with open(os.path.join(mnt, "Written", "n.eml"), "wb") as f:
        f.write(WNEW)
    (uid,) = _server_msgs(env.server, top)
    assert _server_msgs(env.server, top)[uid][1] == WNEW
    p = os.path.join(mnt, "Written", f"{uid}.eml")
    os.setxattr(p, "user.imap.flags", b"\\Flagged")
    assert _server_msgs(env.server, top)[uid][0] == {"\\Flagged"}
    with open(p, "ab") as f:
        f.write(b"more\r\n")
    msgs = _server_msgs(env.server, top)
    (new,) = msgs
    assert new != uid and msgs[new] == ({"\\Flagged"}, WNEW + b"more\r\n")
    os.rename(os.path.join(mnt, "Written", f"{new}.eml"),
              os.path.join(mnt, "Written", "Sub", f"{new}.eml"))
    assert _server_msgs(env.server, top) == {}
    ((moved, (flags, body)),) = _server_msgs(env.server, sub).items()
    assert body == WNEW + b"more\r\n" and flags == {"\\Flagged"}
    os.listdir(os.path.join(mnt, "Written", "Sub"))
    os.unlink(os.path.join(mnt, "Written", "Sub", f"{moved}.eml"))
    assert _server_msgs(env.server, sub) == {}
    # The session that expunged has Sub open (Courier refuses to
    # rename or delete an open folder and has no UNSELECT).
    os.rename(os.path.join(mnt, "Written", "Sub"),
              os.path.join(mnt, "Written", "Sub2"))
    sub2 = env.server.server_name("Written/Sub2")
    names = _names(env)
    assert sub2 in names and sub not in names
    os.rmdir(os.path.join(mnt, "Written", "Sub2"))
    os.rmdir(os.path.join(mnt, "Written"))
    names = _names(env)
    assert top not in names and sub2 not in names


# Where the servers differ on a level that exists only as a parent (CREATE
# of Parentless/Child without Parentless): Dovecot and Courier list it
# \Noselect (a directory with subdirectories only: writing a message there
# is refused with EPERM, as the server cannot hold one); Cyrus creates it
# as a real, empty mailbox (a message can be stored in it).
PARENT_SELECTABLE = {"dovecot": False, "cyrus": True, "cyrus-unixsep": True,
                     "courier": False}


def test_parent_only_level(env, wmnt):
    """a/b created without a: opendir/readdir of a lists b (and no
    messages), b's messages read back byte-exact; the parent's kind is the
    server's (PARENT_SELECTABLE)."""
    child = env.server.server_name("Parentless/Child")
    parent = env.server.server_name("Parentless")
    env.server.create_mailbox("Parentless/Child")
    bodies = testenv.sample_messages(2, seed=4711)
    try:
        for b in bodies:
            env.server.append("Parentless/Child", b)
        listed = {n: attrs for n, _, attrs in env.truth.mailboxes()}
        assert ("\\Noselect" in listed[parent]) != \
            PARENT_SELECTABLE[env.kind], listed[parent]
        assert "Parentless" in os.listdir(wmnt)
        assert os.listdir(os.path.join(wmnt, "Parentless")) == ["Child"]
        assert os.path.isdir(os.path.join(wmnt, "Parentless"))
        files = sorted(os.listdir(os.path.join(wmnt, "Parentless",
                                               "Child")))
        got = sorted(open(os.path.join(wmnt, "Parentless", "Child", n),
                          "rb").read() for n in files)
        want = sorted(b for _, b in _server_msgs(env.server, child)
                      .values())
        assert len(got) == 2 and got == want
        # A new message at the parent level: stored where the parent is a
        # mailbox (Cyrus), refused where it is only a parent.
        path = os.path.join(wmnt, "Parentless", "x.eml")
        if PARENT_SELECTABLE[env.kind]:
            with open(path, "wb") as f:
                f.write(WNEW)
            assert [b for _, b in _server_msgs(env.server, parent)
                    .values()] == [WNEW]
        else:
            with pytest.raises(OSError) as ei:
                with open(path, "wb") as f:
                    f.write(WNEW)
            assert ei.value.errno == errno.EPERM
    finally:
        c = env.server.client()
        try:
            c.delete(testenv.imap_quote(child))
            c.delete(testenv.imap_quote(parent))
        finally:
            c.logout()


def _server_tree(env, top):
    """{mount-style name: {body: flags}} of every mailbox under top."""
    out = {}
    for name, rel, attrs in env.truth.mailboxes():
        if rel == top or rel.startswith(top + "/"):
            out[rel] = {} if "\\Noselect" in attrs else {
                body: flags for flags, body in
                _server_msgs(env.server, name).values()}
    return out


def test_write_folders_and_edits(env, wmnt):
    """Folder tree operations and an edit by rename-over on every server:
    mkdir -p, EEXIST, ENOTEMPTY, sed -i style replacement (flags and
    INTERNALDATE kept), cp between folders (UID COPY), mv of a folder with
    mail under another folder (RENAME), rm -r; checked on the server."""
    a = os.path.join(wmnt, "Tree")
    os.makedirs(os.path.join(a, "B"))
    os.mkdir(os.path.join(a, "C"))
    with pytest.raises(FileExistsError):
        os.mkdir(os.path.join(a, "B"))
    one = WNEW.replace(b"servers-write@", b"tree-1@")
    two = WNEW.replace(b"servers-write@", b"tree-2@")
    for n, body in (("one.eml", one), ("two.eml", two)):
        with open(os.path.join(a, "B", n), "wb") as f:
            f.write(body)
    b_name = env.server.server_name("Tree/B")
    uids = {body: uid for uid, (_, body) in
            _server_msgs(env.server, b_name).items()}
    assert set(uids) == {one, two}
    with pytest.raises(OSError) as ei:
        os.rmdir(os.path.join(a, "B"))
    assert ei.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as ei:
        os.rmdir(a)
    assert ei.value.errno == errno.ENOTEMPTY
    # sed -i: a scratch file renamed over the message.
    target = os.path.join(a, "B", f"{uids[one]}.eml")
    os.setxattr(target, "user.imap.flags", b"\\Answered $Label1")
    date = os.stat(target).st_mtime
    edited = one.replace(b"hello", b"HELLO")
    with open(os.path.join(a, "B", "sedXy12ab"), "wb") as f:
        f.write(edited)
    os.rename(os.path.join(a, "B", "sedXy12ab"), target)
    msgs = {body: flags for flags, body in
            _server_msgs(env.server, b_name).values()}
    assert msgs == {edited: {"\\Answered", "$Label1"}, two: set()}
    (new_uid,) = [u for u, (_, b) in _server_msgs(env.server, b_name)
                  .items() if b == edited]
    assert int(os.stat(os.path.join(a, "B", f"{new_uid}.eml")).st_mtime) \
        == int(date)
    # cp between folders (coreutils: copy_file_range, a UID COPY).
    r = subprocess.run(["cp", os.path.join(a, "B", f"{new_uid}.eml"),
                        os.path.join(a, "C", "copy.eml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # mv Tree/B Tree/C/B: a RENAME that takes B's mail along.
    os.rename(os.path.join(a, "B"), os.path.join(a, "C", "B"))
    tree = _server_tree(env, "Tree")
    assert tree == {
        "Tree": {}, "Tree/C": {edited: {"\\Answered", "$Label1"}},
        "Tree/C/B": {edited: {"\\Answered", "$Label1"}, two: set()}}, tree
    assert sorted(os.listdir(os.path.join(a, "C", "B"))) == sorted(
        f"{u}.eml" for u in _server_msgs(
            env.server, env.server.server_name("Tree/C/B")))
    r = subprocess.run(["rm", "-r", a], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert _server_tree(env, "Tree") == {}
    assert "Tree" not in os.listdir(wmnt)


def _status(server, name):
    """The server's STATUS (UIDVALIDITY MESSAGES UIDNEXT) of `name`."""
    c = server.client()
    try:
        typ, data = c.status(testenv.imap_quote(server.server_name(name)),
                             "(UIDVALIDITY MESSAGES UIDNEXT)")
        assert typ == "OK", data
        return tuple(int(re.search(rf"{k} (\d+)", data[0].decode()).group(1))
                     for k in ("UIDVALIDITY", "MESSAGES", "UIDNEXT"))
    finally:
        c.logout()


# Whether RENAME keeps the mailbox's UIDVALIDITY, by which the mount
# recognises a folder another client renamed (no server here says
# OLDNAME).  Courier 1.x gives the renamed folder a new one (its UIDs
# start over): to the mount that is a folder deleted and one created.
RENAME_KEEPS_UIDVALIDITY = {"dovecot": True, "cyrus": True,
                            "cyrus-unixsep": True, "courier": False}


def test_another_clients_rename_keeps_inodes(env, wmnt):
    """Another client renames a folder the mount had loaded; the next
    listing (listing_ttl=0) shows the new name.  Where RENAME keeps
    UIDVALIDITY (RENAME_KEEPS_UIDVALIDITY) it is the same directory
    inode, its messages keep theirs and an fd opened before reads the
    message (fetched under the new name); the mount learns it from
    LIST-STATUS (Dovecot, Cyrus).  Courier has no
    LIST-STATUS: the mount asks the new name STATUS, and its new
    UIDVALIDITY makes it a new folder (a new inode, the server's
    messages), never the old one's listing under the new name."""
    old, new = "Renamed by other", "Renamed by other 2"
    keeps = RENAME_KEEPS_UIDVALIDITY[env.kind]
    env.server.create_mailbox(old)
    load_folder(env.server, old, 3, 90)
    before = _status(env.server, old)
    assert old in os.listdir(wmnt)
    d = os.path.join(wmnt, old)
    files = sorted(os.listdir(d))
    assert len(files) == 3, files
    inos = {n: os.stat(os.path.join(d, n)).st_ino for n in files}
    dir_ino = os.stat(d).st_ino
    fd = os.open(os.path.join(d, files[-1]), os.O_RDONLY)
    try:
        c = env.server.client()
        try:
            typ, data = c.rename(
                testenv.imap_quote(env.server.server_name(old)),
                testenv.imap_quote(env.server.server_name(new)))
            assert typ == "OK", data
        finally:
            c.logout()
        after = _status(env.server, new)
        assert (after == before) == keeps, (before, after)
        top = os.listdir(wmnt)
        assert new in top and old not in top, top
        d2 = os.path.join(wmnt, new)
        truth = _server_msgs(env.server, env.server.server_name(new))
        assert sorted(os.listdir(d2)) == sorted(f"{u}.eml" for u in truth)
        # (The old path may stay in the kernel's cache for attr_timeout:
        # this listing, not the live view, may have applied the list.)
        if not keeps:
            assert os.stat(d2).st_ino != dir_ino
            return
        assert os.stat(d2).st_ino == dir_ino
        for n in files:
            assert os.stat(os.path.join(d2, n)).st_ino == inos[n], n
        assert os.pread(fd, 1 << 20, 0) == truth[int(files[-1][:-4])][1]
    finally:
        os.close(fd)
        env.server.delete_mailbox(new)
