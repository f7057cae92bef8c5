"""Session fixture for the imapfs integration tests.

One private Dovecot (TLS) is started, filled with the corpus below and
mounted once through the imapfs command line.  Tests compute the truth over
a separate imaplib connection with EXAMINE and BODY.PEEK, so the tests
themselves never change a flag.
"""

import atexit
import contextlib
import datetime
import hashlib
import os
import re
import shutil
import signal
import sys
import threading

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402

# Seconds one test may take before the watchdog tears the mount down, so a
# hung FUSE request fails the test instead of hanging the suite.
TEST_WATCHDOG = 240
BIG_SIZE = 20 * 1024 * 1024
UTC = datetime.timezone.utc
CEST = datetime.timezone(datetime.timedelta(hours=2))
NZ = datetime.timezone(datetime.timedelta(hours=-9, minutes=-30))


def inbox_flags(i: int) -> str:
    flags = []
    if i % 3 == 0:
        flags.append("\\Seen")
    if i % 7 == 0:
        flags.append("\\Flagged")
    if i % 11 == 0:
        flags.append("$Label1")
    if i % 13 == 0:
        flags.append("\\Answered")
    if i == 59:
        flags.append("\\Draft")
    return " ".join(flags)


def inbox_date(i: int) -> datetime.datetime:
    tz = (UTC, CEST, NZ)[i % 3]
    base = datetime.datetime(2024, 3, 1, 8, 0, 0, tzinfo=UTC)
    return (base + datetime.timedelta(hours=3 * i, minutes=17 * i,
                                      seconds=i)).astimezone(tz)


# Folder name (UTF-8, "/"-separated, or a tuple of components) ->
# number of sample messages.  "Archive" holds messages and has children;
# "Ghost" only exists as the parent of "Ghost/Child" and is \Noselect.
CORPUS = {
    "Archive": 3,
    "Archive/2024": 2,
    "Archive/2024/Q1": 5,
    "Archive/2024/Q2": 4,
    "Archive/2023": 0,
    "Entwürfe": 3,
    "Entwürfe/Alt": 1,
    "R&D": 2,
    'Say "hi"': 1,
    "My Folder": 2,
    "100%": 1,
    ("a/b",): 1,
    "Ghost/Child": 1,
    "Empty": 0,
    "Big": 0,
}
INBOX_COUNT = 60


def map_name(server_name: str, delim: str, prefix: str = "") -> str:
    """Server (mUTF-7) mailbox name -> path relative to the mount.

    The personal namespace prefix (e.g. "INBOX.") is not shown: such a
    server's "INBOX.Archive" is "Archive", like Dovecot's "Archive".
    """
    if prefix and server_name.startswith(prefix):
        server_name = server_name[len(prefix):]
    parts = testenv.mutf7_decode(server_name).split(delim)
    return "/".join(p.replace("%", "%25").replace("/", "%2F")
                    for p in parts)


def parse_internaldate(s: str) -> int:
    return int(datetime.datetime.strptime(
        s.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())


_LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) '
                      rb'(?P<name>.*)$')


class Truth:
    """What the server says, fetched over its own imaplib connection."""

    def __init__(self, server):
        self.server = server
        self._bodies = {}
        self._lock = threading.Lock()

    def mailboxes(self):
        """[(server_name, mount_relpath, attrs_set)]"""
        c = self.server.client()
        try:
            typ, data = c.list('""', '"*"')
            assert typ == "OK", data
            out = []
            i = 0
            while i < len(data):
                item = data[i]
                if isinstance(item, tuple):
                    # name sent as a literal
                    head, lit = item
                    m = _LIST_RE.match(head.split(b" {")[0] + b" x")
                    name = lit.decode()
                    i += 2 if i + 1 < len(data) and data[i + 1] == b"" \
                        else 1
                else:
                    m = _LIST_RE.match(item)
                    name = m.group("name").decode()
                    if name.startswith('"'):
                        name = re.sub(r'\\(.)', r'\1', name[1:-1])
                    i += 1
                attrs = set(m.group("attrs").decode().split())
                out.append((name, map_name(name, self.server.delimiter,
                                           self.server.prefix), attrs))
            return out
        finally:
            c.logout()

    def messages(self, server_name):
        """{uid: {"flags": set, "date": epoch, "size": int}} (EXAMINE)."""
        c = self.server.client()
        try:
            typ, data = c.select(testenv.imap_quote(server_name),
                                 readonly=True)
            assert typ == "OK", data
            exists = int(data[0])
            out = {}
            if exists == 0:
                return out
            typ, data = c.uid("FETCH", "1:*",
                              "(UID FLAGS INTERNALDATE RFC822.SIZE)")
            assert typ == "OK", data
            for item in data:
                if not isinstance(item, bytes):
                    continue
                s = item.decode()
                uid = int(re.search(r"UID (\d+)", s).group(1))
                flags = set(re.search(r"FLAGS \(([^)]*)\)", s).group(1)
                            .split()) - {"\\Recent"}
                date = re.search(r'INTERNALDATE "([^"]+)"', s).group(1)
                size = int(re.search(r"RFC822\.SIZE (\d+)", s).group(1))
                out[uid] = {"flags": flags, "date": parse_internaldate(date),
                            "size": size}
            assert len(out) == exists
            return out
        finally:
            c.logout()

    def body(self, server_name, uid) -> bytes:
        key = (server_name, uid)
        with self._lock:
            if key in self._bodies:
                return self._bodies[key]
        c = self.server.client()
        try:
            typ, data = c.select(testenv.imap_quote(server_name),
                                 readonly=True)
            assert typ == "OK", data
            typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
            assert typ == "OK", data
            body = next(x[1] for x in data if isinstance(x, tuple))
        finally:
            c.logout()
        with self._lock:
            self._bodies[key] = body
        return body

    def all_flags(self):
        return {name: {u: m["flags"] for u, m in
                       self.messages(name).items()}
                for name, _, attrs in self.mailboxes()
                if "\\Noselect" not in attrs and
                "\\NonExistent" not in attrs}


class Env:
    def __init__(self, binary, server, mountpoint, workdir):
        self.bin = binary
        self.server = server
        self.mnt = mountpoint
        self.workdir = workdir
        self.truth = Truth(server)

    def path(self, rel="") -> str:
        return os.path.join(self.mnt, rel) if rel else self.mnt

    def selectable(self):
        return [(n, rel) for n, rel, attrs in self.truth.mailboxes()
                if "\\Noselect" not in attrs and
                "\\NonExistent" not in attrs]

    def word_matches(self, word: bytes):
        """Mount paths of every message whose server bytes contain word."""
        out = set()
        for name, rel in self.selectable():
            for uid in self.truth.messages(name):
                if word in self.truth.body(name, uid):
                    out.add(os.path.join(self.mnt, rel, f"{uid}.eml"))
        return out


def _missing_prerequisite():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not shutil.which("dovecot"):
        return "dovecot is not installed"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed"
    return None


# The 10-minute quiet-IDLE test runs apart (contrib/check.sh starts it in
# the background of phase plain with IMAPFS_LONG_TESTS=1 and counts it);
# the integration suite leaves it out rather than skip it.
collect_ignore = [] if os.environ.get("IMAPFS_LONG_TESTS") == "1" else \
    ["test_quiet_long.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "mount_options(*argv): extra imapfs "
                            "arguments for a test's own mount")


def pytest_sessionfinish(session, exitstatus):
    """Without FUSE or Dovecot nothing here can run: report that as a skip
    (exit 77, which meson shows as SKIP), never as a pass."""
    reason = _missing_prerequisite()
    if reason is not None and exitstatus == 0:
        sys.stderr.write(f"\nintegration suite skipped: {reason}\n")
        session.exitstatus = 77


@pytest.fixture(scope="session")
def imapfs_bin():
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"integration tests need FUSE and Dovecot: {why}")
    binary = os.environ.get("IMAPFS_BIN")
    if not binary:
        pytest.fail("IMAPFS_BIN is not set (path of the built imapfs)")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"IMAPFS_BIN={binary} is not an executable file")
    return os.path.abspath(binary)


def load_inbox(server, count):
    """INBOX's corpus: sample messages with inbox_flags and inbox_date."""
    server.append_many("INBOX", [
        (m, inbox_flags(i), inbox_date(i))
        for i, m in enumerate(testenv.sample_messages(count, seed=7))])


def load_folder(server, name, count, seed):
    """`count` sample messages made from `seed` into the folder `name`
    (which exists), every other one \\Seen."""
    start = datetime.datetime(2022, 5, 1, 12, 0, tzinfo=UTC)
    server.append_many(name, [
        (m, "\\Seen" if i % 2 else "",
         start + datetime.timedelta(days=seed, hours=i))
        for i, m in enumerate(testenv.sample_messages(count, seed=seed))])


def load_corpus(server):
    load_inbox(server, INBOX_COUNT)
    seed = 20
    for name, count in CORPUS.items():
        server.create_mailbox(name)
        if count:
            load_folder(server, name, count, seed)
        seed += 1
    server.append("Big", testenv.big_message(BIG_SIZE, seed=3), "",
                  datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))


@contextlib.contextmanager
def served_and_mounted(imapfs_bin, server, work, load, options=()):
    """Starts `server`, calls load(server), mounts it below `work` (with the
    imapfs `options`); yields the Env.  Afterwards unmounts, stops the server and fails if the
    imapfs daemon outlived its unmount."""
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)

    def cleanup():
        testenv.unmount(mnt)
        pid = testenv.daemon_pid(mnt)
        if pid is not None:
            os.kill(pid, 9)
        server.stop()
        return pid

    atexit.register(cleanup)

    # meson's timeout (and CI runners) send SIGTERM, which would otherwise
    # end Python without running finally blocks or atexit handlers.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        server.start()
        load(server)
        r = testenv.mount_imapfs(imapfs_bin, server, mnt, options=options)
        if r.returncode != 0:
            pytest.fail(f"mounting failed (exit {r.returncode}):\n"
                        f"{r.stderr}\n{server.log_tail()}")
        assert os.path.ismount(mnt), "imapfs returned but nothing mounted"
        yield Env(imapfs_bin, server, mnt, work)
    finally:
        survivor = cleanup()
        atexit.unregister(cleanup)
        signal.signal(signal.SIGTERM, old_term)
    assert survivor is None, \
        f"imapfs daemon {survivor} did not exit after fusermount3 -u"


@pytest.fixture(scope="session")
def env(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("imapfs"))
    server = testenv.DovecotServer(os.path.join(work, "dovecot"))
    # The corpus must not change under the read tests: this mount is
    # read-only (-o ro, enforced by imapfs's own handlers, not the kernel
    # flag; test_errors.py checks every one of them). The read path of
    # read-write mounts is covered by test_write*.py.
    with served_and_mounted(imapfs_bin, server, work, load_corpus,
                            ["-o", "ro"]) as e:
        yield e


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Tear mounts down if a test hangs so the suite cannot block."""
    names = [n for n in ("env", "wenv") if n in request.fixturenames]
    if not names:
        yield
        return
    env = request.getfixturevalue(names[0])

    def fire():
        sys.stderr.write(f"\nwatchdog: {request.node.nodeid} exceeded "
                         f"{TEST_WATCHDOG}s; unmounting {env.mnt}\n")
        testenv.force_unmount(env.mnt)

    t = threading.Timer(TEST_WATCHDOG, fire)
    t.daemon = True
    t.start()
    try:
        yield
    finally:
        t.cancel()


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------
# The write path: a Dovecot and a read-write mount of their own per test
# module, so that changes never disturb the read-only corpus above.
# --------------------------------------------------------------------------

# In every folder of a write environment: a message another client has
# flagged \Deleted. A bare EXPUNGE (or any command that purges more than
# the one message meant) would remove it; every write test checks it.
SENTINEL = (b"From: other@client\r\nSubject: flagged deleted elsewhere\r\n"
            b"Message-ID: <sentinel@other>\r\n\r\nkeep me\r\n")
WRITE_FOLDERS = ("INBOX", "Archive", "Work")


class WriteEnv:
    """A Dovecot with WRITE_FOLDERS, a sentinel in each, and a mount."""

    def __init__(self, binary, server, mnt, work, options):
        self.bin = binary
        self.server = server
        self.mnt = mnt
        self.work = work
        self.options = options
        self.spool = os.path.join(work, "spool")
        self.log = os.path.join(work, "imapfs.log")

    def path(self, *rel) -> str:
        return os.path.join(self.mnt, *rel)

    def messages(self, mailbox):
        """{uid: {"flags", "date", "size", "body"}} from the server."""
        c = self.server.client()
        try:
            typ, data = c.select(testenv.imap_quote(
                self.server.server_name(mailbox)), readonly=True)
            assert typ == "OK", data
            out = {}
            if int(data[0]) == 0:
                return out
            typ, data = c.uid("FETCH", "1:*",
                              "(UID FLAGS INTERNALDATE RFC822.SIZE "
                              "BODY.PEEK[])")
            assert typ == "OK", data
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode()
                uid = int(re.search(r"UID (\d+)", head).group(1))
                flags = set(re.search(r"FLAGS \(([^)]*)\)", head)
                            .group(1).split()) - {"\\Recent"}
                date = re.search(r'INTERNALDATE "([^"]+)"', head).group(1)
                out[uid] = {"flags": flags,
                            "date": parse_internaldate(date),
                            "size": int(re.search(r"RFC822\.SIZE (\d+)",
                                                  head).group(1)),
                            "body": item[1]}
            return out
        finally:
            c.logout()

    def bodies(self, mailbox):
        return sorted(m["body"] for m in self.messages(mailbox).values()
                      if m["body"] != SENTINEL)

    def append(self, mailbox, body: bytes, flags="", date=None) -> int:
        return self.server.append(mailbox, body, flags, date)

    def check_sentinels(self):
        for f in WRITE_FOLDERS:
            if f not in self.server_folders():
                continue
            found = [m for m in self.messages(f).values()
                     if m["body"] == SENTINEL]
            assert len(found) == 1 and "\\Deleted" in found[0]["flags"], \
                f"another client's \\Deleted message in {f} was touched"

    def server_folders(self):
        c = self.server.client()
        try:
            typ, data = c.list('""', '"*"')
            out = set()
            for d in data:
                if not isinstance(d, bytes):
                    continue
                m = _LIST_RE.match(d)
                name = m.group("name").decode()
                if name.startswith('"'):
                    name = re.sub(r'\\(.)', r'\1', name[1:-1])
                out.add(name)
            return out
        finally:
            c.logout()


def write_server(work, **server_kw):
    """A started Dovecot in @work with WRITE_FOLDERS, a sentinel in each."""
    server = testenv.DovecotServer(os.path.join(work, "dovecot"), **server_kw)
    server.start()
    for f in WRITE_FOLDERS:
        if f != "INBOX":
            server.create_mailbox(f)
        server.append(f, SENTINEL, "\\Deleted")
    return server


@contextlib.contextmanager
def proxied_write_env(binary, work, options=(), **server_kw):
    """mount_write_env() through a fault proxy of its own, which sees every
    command: yields (env, proxy); unmounts and stops both afterwards."""
    import faultproxy

    server = write_server(work, **server_kw)
    proxy = env = None
    try:
        proxy = faultproxy.FaultProxy(server, lifetime=600)
        proxy.start()
        env = mount_write_env(binary, work, options, server=server,
                              via=proxy)
        yield env, proxy
    finally:
        if env is not None:
            testenv.unmount(env.mnt)
        if proxy is not None:
            proxy.stop()
        server.stop()


def mount_write_env(binary, work, options=(), server=None, via=None,
                    **server_kw):
    """Starts (unless given) a Dovecot with the write folders and mounts
    it read-write with a spool in @work, through @via (a FaultProxy in
    front of the server) if given. Returns a WriteEnv whose truth comes
    from the server directly."""
    if server is None:
        server = write_server(work, **server_kw)
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    env = WriteEnv(binary, server, mnt, work, list(options))
    # listing_ttl=0: folders are listed again on every access, so that a
    # message the test adds through its own client is seen at once (the
    # live view is another issue's), and the write path's deltas are
    # exercised against listings all the time.
    r = testenv.mount_imapfs(binary, via or server, mnt, options=[
        "-o", f"spool_dir={env.spool}", "-o", "listing_ttl=0", *options])
    if r.returncode != 0:
        server.stop()
        pytest.fail(f"mounting failed (exit {r.returncode}):\n{r.stderr}")
    return env


@pytest.fixture(scope="module")
def wenv(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("imapfs-write"))
    env = mount_write_env(imapfs_bin, work)
    try:
        yield env
    finally:
        testenv.unmount(env.mnt)
        pid = testenv.daemon_pid(env.mnt)
        if pid is not None:
            os.kill(pid, 9)
        env.server.stop()
