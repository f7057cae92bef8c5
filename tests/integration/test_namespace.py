"""Namespaces on a server configured like Courier (and Debian's Cyrus).

A Dovecot of its own whose personal namespace has the prefix "INBOX."
(separator ".", inbox = yes), so that INBOX's children are "INBOX.Archive"
and LIST "" "INBOX.*" cannot match INBOX itself; a second user, bob, who
shares mailboxes with alice through the acl plugin (a namespace "shared."
of other users' mailboxes); and the quota plugin.  The mount shows the
personal namespace with its prefix stripped, the way mail clients do:
INBOX, Archive, Sent... at the top, exactly like a Dovecot with prefix "".
"""

import datetime
import os
import re
import signal
import stat
import subprocess
import time

import pytest

import testenv
from conftest import map_name, Truth

PREFIX = "INBOX."
UTC = datetime.timezone.utc

# Personal mailboxes (relative to the prefix) -> number of messages.
PERSONAL = {
    "Archive": 3,
    "Archive/2024": 2,
    "Sent": 2,
    "Drafts": 0,
    'Say "hi"': 1,
    "100%": 1,
    "R&D": 1,
    "Entwürfe": 1,
    "Parent/Kid": 1,      # "Parent" itself is never created
    "Later": 1,           # deleted before the mount, Later.Kid stays
    "Later/Kid": 1,
}
INBOX_COUNT = 6
# Shared with "l" only: listed, not readable.
UNREADABLE = "shared.bob.Listed"
# bob's mailboxes: name -> (messages, rights granted to alice or None)
BOB = {
    "Projects": (2, "lr"),
    "Listed": (1, "l"),
    "Private": (1, None),
}


def mount_path(server_name: str) -> str:
    """The documented mapping: the personal prefix stripped, INBOX stays,
    other namespaces keep their full names.  (A mailbox named INBOX below
    the prefix, "%49NBOX", is unit-tested: Dovecot takes INBOX.INBOX for
    INBOX itself.)"""
    if server_name == "INBOX":
        return "INBOX"
    if server_name.startswith(PREFIX):
        return map_name(server_name[len(PREFIX):], ".")
    return map_name(server_name, ".")


class _ListingFirst:
    """The server, for conftest.Truth: its connections LIST before they
    EXAMINE, since Dovecot (with listescape) refuses "shared.bob.X" on a
    connection that has not listed the shared namespace yet."""

    def __init__(self, server):
        self._server = server

    def __getattr__(self, name):
        return getattr(self._server, name)

    def client(self, user=None):
        c = self._server.client(user)
        c.list('""', '"*"')
        return c


class NsEnv:
    def __init__(self, server, mnt, trace, proc):
        self.server = server
        self.mnt = mnt
        self.trace = trace
        self.proc = proc
        self.truth = Truth(_ListingFirst(server))

    def path(self, rel=""):
        return os.path.join(self.mnt, rel) if rel else self.mnt

    def trace_text(self) -> str:
        with open(self.trace, errors="replace") as f:
            return f.read()

    def sent(self, regex) -> list:
        """Commands imapfs sent that match `regex` (after the tag)."""
        pat = re.compile(r"C: \S+ (" + regex + ")")
        return [m.group(1) for m in pat.finditer(self.trace_text())]


def _messages(n, seed):
    return testenv.sample_messages(n, seed=seed)


def load(server):
    server.append_many("INBOX", [
        (m, "\\Seen" if i % 2 else "",
         datetime.datetime(2024, 2, 1 + i, 9, 0, tzinfo=UTC))
        for i, m in enumerate(_messages(INBOX_COUNT, 70))])
    seed = 71
    for name, count in PERSONAL.items():
        server.create_mailbox(name)
        if count:
            server.append_many(name, [(m, "", None)
                                      for m in _messages(count, seed)])
        seed += 1
    server.delete_mailbox("Later")
    b = server.client("bob")
    try:
        for name, (count, rights) in BOB.items():
            box = PREFIX + name
            server._check(*b.create(box), f"CREATE {box}")
            for m in _messages(count, seed):
                server._check(*b.append(box, None, None, m), "APPEND")
            seed += 1
            if rights:
                server._check(*b.setacl(box, server.user, rights), "SETACL")
    finally:
        b.logout()
    server._chown_mail()


def _on_term(signum, frame):
    # meson's timeout sends SIGTERM: unwind so the fixture cleans up.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")
def ns(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("ns"))
    server = testenv.DovecotServer(os.path.join(work, "dovecot"),
                                   inbox_prefix=PREFIX, other_users=("bob",),
                                   acl=True, quota=True)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    trace = os.path.join(work, "trace.txt")
    proc = None
    old_term = signal.signal(signal.SIGTERM, _on_term)
    try:
        server.start()
        load(server)
        proc = testenv.mount_traced(
            imapfs_bin, server, mnt, trace,
            ["-o", "listing_ttl=1", "-o", "attr_timeout=0"])
        yield NsEnv(server, mnt, trace, proc)
    finally:
        testenv.stop_traced(mnt, proc)
        server.stop()
        signal.signal(signal.SIGTERM, old_term)


def bounded(ns, fn, bound=60):
    result, exc, _ = testenv.run_bounded(ns.mnt, fn, bound)
    if exc is not None:
        raise exc
    return result


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_inbox_messages_present_and_exact(ns):
    uids = ns.truth.messages("INBOX")
    assert len(uids) == INBOX_COUNT
    names = bounded(ns, lambda: sorted(os.listdir(ns.path("INBOX"))))
    assert names == sorted(f"{u}.eml" for u in uids)
    for uid in uids:
        assert read(ns.path(f"INBOX/{uid}.eml")) == \
            ns.truth.body("INBOX", uid), uid
    # INBOX itself was listed: the fix, not an accident of the pattern.
    assert ns.sent(r'LIST "" "?INBOX"?(?=\s|$)'), "no LIST of INBOX itself"


def test_top_level_like_dovecot(ns):
    top = set(bounded(ns, lambda: os.listdir(ns.mnt)))
    assert top == {"INBOX", "Archive", "Sent", "Drafts", 'Say "hi"',
                   "100%25", "R&D", "Entwürfe", "Parent", "Later",
                   "shared"}
    # INBOX's children are the top level: INBOX holds only messages.
    assert all(n.endswith(".eml") for n in os.listdir(ns.path("INBOX")))


def test_tree_and_counts_equal_server(ns):
    """find sees exactly the server's mailboxes and messages, each message
    at its mapped path and byte-exact."""
    expected_dirs, expected_files = set(), {}
    for name, _, attrs in ns.truth.mailboxes():
        rel = mount_path(name)
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            expected_dirs.add("/".join(parts[:i]))
        if "\\Noselect" in attrs or "\\NonExistent" in attrs or \
                name in ("INBOX.Later", UNREADABLE):
            continue
        for uid in ns.truth.messages(name):
            expected_files[f"{rel}/{uid}.eml"] = (name, uid)

    def walk():
        dirs, files = set(), set()
        for dirpath, dirnames, filenames in os.walk(ns.mnt):
            for d in dirnames:
                dirs.add(os.path.relpath(os.path.join(dirpath, d), ns.mnt))
            for f in filenames:
                files.add(os.path.relpath(os.path.join(dirpath, f), ns.mnt))
        return dirs, files

    dirs, files = bounded(ns, walk)
    assert dirs == expected_dirs
    assert files == set(expected_files)
    r = subprocess.run(["find", ns.mnt, "-path",
                        ns.path(mount_path(UNREADABLE)), "-prune", "-o",
                        "-type", "f", "-print"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(expected_files)
    for rel, (name, uid) in expected_files.items():
        assert read(ns.path(rel)) == ns.truth.body(name, uid), rel


def test_nested_and_special_names(ns):
    for rel, server in (("Archive/2024", "INBOX.Archive.2024"),
                        ('Say "hi"', 'INBOX.Say "hi"'),
                        ("100%25", "INBOX.100%"),
                        ("Entwürfe", "INBOX." + testenv.mutf7_encode(
                            "Entwürfe"))):
        uids = ns.truth.messages(server)
        assert uids, server
        assert sorted(os.listdir(ns.path(rel))) == \
            sorted(f"{u}.eml" for u in uids)
        for uid in uids:
            assert read(ns.path(f"{rel}/{uid}.eml")) == \
                ns.truth.body(server, uid)


def assert_parent_only(ns, name):
    """Directory `name` holds only Kid, Kid's messages are all there, and
    INBOX.`name` was never EXAMINEd."""
    assert bounded(ns, lambda: os.listdir(ns.path(name))) == ["Kid"]
    kid = ns.truth.messages(f"INBOX.{name}.Kid")
    assert sorted(os.listdir(ns.path(f"{name}/Kid"))) == \
        sorted(f"{u}.eml" for u in kid)
    assert not ns.sent(rf'EXAMINE "?INBOX\.{name}"?(?=\s|$)')


def test_parent_that_is_no_mailbox(ns):
    """INBOX.Parent.Kid exists, INBOX.Parent does not (LIST says
    \\NonExistent or \\Noselect): Parent holds only Kid, and opening it
    sends no EXAMINE."""
    attrs = {n: a for n, _, a in ns.truth.mailboxes()}
    assert attrs["INBOX.Parent"] & {"\\Noselect", "\\NonExistent"}
    assert_parent_only(ns, "Parent")


def test_parent_whose_mailbox_was_deleted(ns):
    """INBOX.Later was deleted while INBOX.Later.Kid stays.  Dovecot goes on
    listing INBOX.Later as if it existed (no \\Noselect), while EXAMINE
    of it fails; the LIST-STATUS reply has no STATUS for it, which is how
    imapfs tells.  Later holds only Kid and opening it sends no EXAMINE."""
    attrs = {n: a for n, _, a in ns.truth.mailboxes()}
    assert not attrs["INBOX.Later"] & {"\\Noselect", "\\NonExistent"}
    c = ns.server.client()
    try:
        assert c.select("INBOX.Later", readonly=True)[0] == "NO"
    finally:
        c.logout()
    assert_parent_only(ns, "Later")


def test_shared_mailbox_readable_and_read_only(ns):
    assert bounded(ns, lambda: os.listdir(ns.path("shared"))) == ["bob"]
    assert sorted(os.listdir(ns.path("shared/bob"))) == ["Listed", "Projects"]
    box = "shared.bob.Projects"
    uids = ns.truth.messages(box)
    assert len(uids) == BOB["Projects"][0]
    d = ns.path("shared/bob/Projects")
    assert sorted(os.listdir(d)) == sorted(f"{u}.eml" for u in uids)
    mode = stat.S_IMODE(os.stat(d).st_mode)
    assert mode & 0o222 == 0 and mode & 0o500 == 0o500, oct(mode)
    for uid in uids:
        p = os.path.join(d, f"{uid}.eml")
        assert read(p) == ns.truth.body(box, uid)
        fmode = stat.S_IMODE(os.stat(p).st_mode)
        assert fmode & 0o222 == 0 and fmode & 0o400, oct(fmode)
    assert ns.sent(r'MYRIGHTS "?shared\.bob\.Projects"?')
    # Never mixed into the personal tree.
    assert not os.path.exists(ns.path("Projects"))


def test_shared_mailbox_without_read_right(ns):
    """bob granted only "l" on Listed: it is listed, but its directory has
    no read bits (MYRIGHTS decides the mode) and reading it is refused."""
    d = ns.path("shared/bob/Listed")
    mode = stat.S_IMODE(bounded(ns, lambda: os.stat(d)).st_mode)
    assert mode & 0o444 == 0, oct(mode)
    with pytest.raises(PermissionError):
        os.listdir(d)


def test_statfs_quota_is_cached(ns):
    before = len(ns.sent(r"GETQUOTAROOT"))
    results = [bounded(ns, lambda: os.statvfs(ns.mnt)) for _ in range(6)]
    r = subprocess.run(["df", "-k", ns.mnt], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    after = len(ns.sent(r"GETQUOTAROOT"))
    assert after - before <= 1, after - before
    st = results[-1]
    # Dovecot's quota_rule: 1 GiB of storage.
    assert st.f_blocks * st.f_frsize == 1 << 30


def test_statfs_without_storage_quota_is_cached(imapfs_bin, tmp_path):
    """A QUOTA reply without a STORAGE resource (here a message-count
    quota; Courier sends no resource at all) gives the default totals, and
    that answer is cached as well."""
    server = testenv.DovecotServer(str(tmp_path / "dovecot"), quota=True,
                                   quota_rule="*:messages=1000")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    proc = None
    try:
        server.start()
        c = server.client()
        try:
            typ, _ = c._simple_command("GETQUOTAROOT", "INBOX")
            assert typ == "OK"
            assert b"MESSAGE" in b" ".join(c.untagged_responses["QUOTA"])
        finally:
            c.logout()
        trace = str(tmp_path / "trace.txt")
        proc = testenv.mount_traced(imapfs_bin, server, mnt, trace)
        sts = [os.statvfs(mnt) for _ in range(5)]
        with open(trace, errors="replace") as f:
            sent = re.findall(r"C: \S+ GETQUOTAROOT", f.read())
        assert len(sent) == 1, sent
        assert all(st.f_blocks * st.f_frsize == 1 << 40 for st in sts)
    finally:
        testenv.stop_traced(mnt, proc)
        server.stop()


# -- the write path on a server with prefix INBOX. and ACLs -----------------

NEW = (b"From: w@example.org\r\nSubject: ns write\r\n"
       b"Message-ID: <ns-write@imapfs.test>\r\n\r\nhello\r\n")


def test_write_into_inbox_and_mkdir_at_top(ns):
    before = len(ns.truth.messages("INBOX"))
    with open(ns.path("INBOX/ns-new.eml"), "wb") as f:
        f.write(NEW)
    msgs = ns.truth.messages("INBOX")
    assert len(msgs) == before + 1
    assert any(ns.truth.body("INBOX", u) == NEW for u in msgs)
    # A top-level directory is a child of INBOX. on this server.
    os.mkdir(ns.path("Made Here"))
    names = [n for n, _, _ in ns.truth.mailboxes()]
    assert "INBOX.Made Here" in names
    os.mkdir(ns.path("Made Here/Sub"))
    assert "INBOX.Made Here.Sub" in [n for n, _, _ in ns.truth.mailboxes()]
    os.rmdir(ns.path("Made Here/Sub"))
    os.rmdir(ns.path("Made Here"))
    assert not [n for n, _, _ in ns.truth.mailboxes() if "Made" in n]


def test_read_only_shared_mailbox_refuses_writes_before_sending(ns):
    """MYRIGHTS without i/t/e/w: EACCES at open, unlink, rename, setxattr,
    mkdir -- and not one APPEND, STORE, EXPUNGE, MOVE or CREATE sent."""
    d = ns.path("shared/bob/Projects")
    uids = sorted(ns.truth.messages("shared.bob.Projects"))
    p = os.path.join(d, f"{uids[0]}.eml")
    assert f"{uids[0]}.eml" in os.listdir(d)
    read(p)
    mark = len(ns.trace_text())
    ops = [lambda: open(os.path.join(d, "new.eml"), "wb"),
           lambda: open(p, "ab"),
           lambda: os.unlink(p),
           lambda: os.rename(p, ns.path("INBOX/moved.eml")),
           lambda: os.setxattr(p, "user.imap.flags", b"\\Flagged"),
           lambda: os.mkdir(os.path.join(d, "Sub"))]
    for op in ops:
        with pytest.raises(PermissionError):
            op()
    sent = ns.trace_text()[mark:]
    assert not re.search(r"C: \S+ (UID )?(APPEND|STORE|EXPUNGE|MOVE|COPY|"
                         r"CREATE)", sent), sent
    assert sorted(ns.truth.messages("shared.bob.Projects")) == uids


def test_personal_mailbox_named_like_a_namespace(ns):
    """A personal INBOX.shared would be the top-level "shared" like the
    namespace directory: the personal mailbox keeps the name, the
    namespace directory becomes "shared%" (no escaped name ends in a lone
    "%", so the two can never collide)."""
    ns.server.create_mailbox("shared")
    uid = ns.server.append("shared", _messages(1, 99)[0])
    time.sleep(1.5)  # let the 1 s listing TTL expire (no assertion on it)
    top = set(bounded(ns, lambda: os.listdir(ns.mnt)))
    assert {"shared", "shared%"} <= top
    assert os.listdir(ns.path("shared")) == [f"{uid}.eml"]
    assert sorted(os.listdir(ns.path("shared%/bob"))) == \
        ["Listed", "Projects"]
