"""imapfs against a scripted hostile IMAP server (tests/support/fakeserver).

One fake server and one mount (with -o timeout=2 so that a server that never
answers costs seconds, not minutes) serve the whole module.  INBOX holds the
messages whose RFC822.SIZE lies; each body-FETCH misbehaviour has two small
folders of its own, one where the bad message is fetched on demand and one
where a prefetch batch meets it first.  Every test asserts the outcome for
the user (exact bytes, or EIO/ESTALE) and that the daemon is still alive,
serving and small: it reads a control message (in its own folder, never
prefetched) and checks that this reached the server, and checks VmRSS.
The last test audits every command the server received.
"""

import errno
import os
import subprocess
import re
import sys
import threading
import time

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import fakeserver  # noqa: E402
import testenv  # noqa: E402

TIMEOUT_S = 2
# Upper bound for any single operation; a hang beyond it is a failure.
OP_BOUND_S = 60
# The daemon's memory must stay bounded whatever the server claims. Under
# AddressSanitizer (contrib/check.sh sets IMAPFS_SANITIZED) shadow memory
# and the free quarantine (256 MB) come on top, so the bound is wider.
MAX_RSS_KB = (1200 if os.environ.get("IMAPFS_SANITIZED") else 200) * 1024
BLOCK = 128 * 1024


def _small(seed):
    return testenv.sample_messages(1, seed=seed)[0]


def _big(size, seed):
    return testenv.big_message(size, seed=seed)


# INBOX UID -> (message, how the server misbehaves): the size lies.
CASES = {
    1: ("small", {"size_delta": -7}),
    2: ("small", {"size_delta": +500}),
    3: ("big", {"size_delta": -1000}),
    4: ("big", {"size_delta": +70000}),
    5: ("big", {"size_delta": -BLOCK - 5000}),
    6: ("big", {"body": "whole"}),
    18: ("small", {"omit_size": True}),
    19: ("small", {"size_text": "99999999999999999999999"}),
    20: ("small", {"size_text": "18446744073709551615"}),
    21: ("small", {"size_text": "9223372036854775808"}),
    22: ("small", {"size_text": "-5"}),
    23: ("small", {"size_text": "0"}),
    24: ("big", {"body": "whole", "size_delta": -3000}),
    25: ("small", {"size_text": "9007199254740993"}),
}
# Many messages with the same lie, each read once: the first read of a file
# is where a race between the read reply and the kernel invalidation shows.
SIZE_LARGER = range(30, 45)
SIZE_SMALLER = range(45, 85)
for _u in SIZE_LARGER:
    CASES[_u] = ("small", {"size_delta": +500})
for _u in SIZE_SMALLER:
    CASES[_u] = ("small", {"size_delta": -7})

# Body-FETCH misbehaviours.  imapfs prefetches the next messages of a
# folder when it sees them read in UID order, in one batched FETCH on
# another connection, so each misbehaviour gets two folders:
#   "M-<mode>": UID 1 fine, UID 2 misbehaves; only UID 2 is read, as the
#               first read in the folder, so it is fetched on demand;
#   "P-<mode>": UIDs 1-3 fine, UID 4 misbehaves; all are read in order, so
#               UID 4 is (also) asked for by a prefetch batch.
FAIL_MODES = ["wrong_origin", "nil", "too_long", "hang", "garbage_parens",
              "binary_junk", "absurd_literal", "bye", "deep_nesting"]
# What the server says when a message has been expunged: ESTALE is right,
# EIO acceptable.
GONE_MODES = ["nodata", "other_uid"]
ALL_MODES = FAIL_MODES + GONE_MODES
# Control messages (never scripted) live in their own folder and are read
# in descending UID order (a step backwards is not a walk to prefetch), so
# reading one always reaches the server.
CONTROL = "Control"
CONTROL_FIRST = 1
CONTROL_COUNT = 60
# Good messages only, read in UID order by test_prefetch_happens.
PREFETCH_CHECK = "Prefetch"
# EXAMINE answered NO [NOPERM]; body FETCH of UID 2 answered NO [NOPERM].
NOPERM_EXAMINE = "NoPerm-examine"
NOPERM_FETCH = "NoPerm-fetch"


def _build_messages():
    msgs = {}
    for uid, (kind, _) in CASES.items():
        msgs[uid] = _small(1000 + uid) if kind == "small" else \
            _big(300_000 + uid * 1000, seed=uid)
    others = {CONTROL: {CONTROL_FIRST + i: _small(2000 + i)
                        for i in range(CONTROL_COUNT)},
              PREFETCH_CHECK: {u: _small(5000 + u) for u in (1, 2, 3, 4)},
              NOPERM_EXAMINE: {1: _small(6001)},
              NOPERM_FETCH: {1: _small(6002), 2: _small(6003)}}
    for k, mode in enumerate(ALL_MODES):
        others[f"M-{mode}"] = {u: _small(3000 + 10 * k + u)
                               for u in (1, 2)}
        others[f"P-{mode}"] = {u: _small(4000 + 10 * k + u)
                               for u in (1, 2, 3, 4)}
    return msgs, others


def _apply_scripts(scripts):
    script = scripts["INBOX"]
    for uid, (_, how) in CASES.items():
        if "size_delta" in how:
            script.size_delta[uid] = how["size_delta"]
        if "size_text" in how:
            script.size_text[uid] = how["size_text"]
        if "body" in how:
            script.body[uid] = how["body"]
        if how.get("omit_size"):
            script.omit_size.add(uid)
    for mode in ALL_MODES:
        scripts[f"M-{mode}"].body[2] = mode
        scripts[f"P-{mode}"].body[4] = mode
    scripts[NOPERM_EXAMINE].examine_no = "NO [NOPERM] no access"
    scripts[NOPERM_FETCH].body[2] = "noperm"


class Mount:
    def __init__(self, server, mnt):
        self.server = server
        self.mnt = mnt
        self.pid = None
        self._next_control = CONTROL_FIRST + CONTROL_COUNT - 1
        self._lock = threading.Lock()

    def path(self, uid, folder="INBOX"):
        return os.path.join(self.mnt, folder, f"{uid}.eml")

    def body(self, uid, folder="INBOX"):
        return self.server.mailboxes[folder][uid]

    def control_path(self, uid):
        return os.path.join(self.mnt, CONTROL, f"{uid}.eml")

    def control_body(self, uid):
        return self.server.mailboxes[CONTROL][uid]

    def fresh_control(self):
        with self._lock:
            uid = self._next_control
            self._next_control -= 1
        assert uid >= CONTROL_FIRST, "out of control files"
        return uid


def bounded(m, fn, bound=OP_BOUND_S):
    """Runs fn() with a bound; a hang tears the mount down and fails."""
    try:
        return testenv.run_bounded(m.mnt, fn, bound)
    except TimeoutError as e:
        pytest.fail(str(e))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pread_at(path, offset, size):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def assert_alive(m):
    """The daemon still runs and still talks to the server."""
    assert m.pid is not None and os.path.exists(f"/proc/{m.pid}"), \
        "imapfs daemon died"
    assert testenv.daemon_pid(m.mnt) == m.pid, "imapfs daemon died"
    uid = m.fresh_control()
    before = len(m.server.fetches_for(uid, CONTROL))
    data, exc, _ = bounded(m, lambda: read_file(m.control_path(uid)))
    assert exc is None, f"control file {uid} failed after the test: {exc!r}"
    assert data == m.control_body(uid), f"control file {uid} read wrong " \
        f"bytes"
    assert len(m.server.fetches_for(uid, CONTROL)) > before, \
        "control read did not reach the server"
    assert rss_kb(m.pid) < MAX_RSS_KB, \
        f"daemon RSS {rss_kb(m.pid)} kB exceeds {MAX_RSS_KB} kB"


def assert_fails(m, path, real, errnos=(errno.EIO,), real_ok=False):
    """Reading `path` fails with one of `errnos`, within OP_BOUND_S (or,
    with real_ok, returns exactly the real message)."""
    data, exc, elapsed = bounded(m, lambda: read_file(path))
    if exc is None and real_ok and data == real:
        return elapsed
    if exc is None:
        what = "the real message" if data == real else \
            f"{len(data)} bytes that are NOT the message" if \
            not real.startswith(data) else f"a {len(data)}-byte prefix"
        pytest.fail(f"{path}: read returned {what} instead of failing")
    assert isinstance(exc, OSError) and exc.errno in errnos, \
        f"{path}: expected {[errno.errorcode[e] for e in errnos]}, got " \
        f"{exc!r}"
    return elapsed


@pytest.fixture(scope="module")
def fake(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("hostile"))
    inbox, others = _build_messages()
    server = fakeserver.FakeImapServer(inbox, others=others,
                                       workdir=os.path.join(work, "srv"))
    _apply_scripts(server.scripts)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    server.start()
    try:
        r = testenv.mount_imapfs(imapfs_bin, server, mnt,
                                 options=["-o", f"timeout={TIMEOUT_S}"])
        if r.returncode != 0:
            pytest.fail(f"mounting the fake server failed (exit "
                        f"{r.returncode}):\n{r.stderr}")
        m = Mount(server, mnt)
        m.pid = testenv.daemon_pid(mnt)
        assert m.pid is not None, "no imapfs daemon after mounting"
        yield m
    finally:
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)
        server.stop()


@pytest.fixture(scope="module")
def listing(fake):
    names, exc, _ = bounded(fake, lambda: os.listdir(
        os.path.join(fake.mnt, "INBOX")))
    assert exc is None, f"listing INBOX failed: {exc!r}"
    return set(names)


# -- sizes ---------------------------------------------------------------

def _poll_size(path, want, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        size = os.stat(path).st_size
        if size == want or time.monotonic() > deadline:
            return size
        time.sleep(0.05)


def _first_read(fake, uid):
    path = fake.path(uid)
    real = fake.body(uid)
    claimed = len(real) + fake.server.script.size_delta[uid]
    assert os.stat(path).st_size == claimed
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None, f"UID {uid}: read failed: {exc!r}"
    return data, real, claimed


def _describe(data, real, claimed):
    if data == real:
        return "exact"
    if len(data) > len(real) and data.startswith(real):
        pad = data[len(real):]
        what = "NUL bytes" if pad.count(0) == len(pad) else "junk"
        return f"the message plus {len(pad)} {what} (RFC822.SIZE said " \
               f"{claimed}, message has {len(real)})"
    if real.startswith(data):
        return f"truncated to {len(data)} of {len(real)} bytes (RFC822.SIZE " \
               f"said {claimed})"
    return f"{len(data)} bytes that are not the message"


@pytest.mark.parametrize("uid", [1, 2, 3, 4, 5])
def test_wrong_rfc822_size(fake, listing, uid):
    """A wrong RFC822.SIZE: a read never returns bytes that are not the
    message's, st_size heals once a read found the real end, and from then
    on reads give the real bytes exactly."""
    path = fake.path(uid)
    assert f"{uid}.eml" in listing
    data, real, claimed = _first_read(fake, uid)
    assert real.startswith(data) or data == real, \
        f"first read returned {_describe(data, real, claimed)}"
    assert _poll_size(path, len(real)) == len(real), \
        f"st_size is still {os.stat(path).st_size}, not the real " \
        f"{len(real)} (first read: {_describe(data, real, claimed)})"
    data2, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None, repr(exc)
    assert data2 == real, f"read after the size healed returned " \
        f"{_describe(data2, real, claimed)}"
    assert_alive(fake)


@pytest.mark.parametrize("uids", [SIZE_LARGER, SIZE_SMALLER],
                         ids=["larger", "smaller"])
def test_wrong_rfc822_size_first_read_exact(fake, listing, uids):
    """The very first read of a file whose RFC822.SIZE is wrong already
    returns exactly the message (tried on many files: the failure modes
    are races between the read reply and the kernel invalidation)."""
    bad = {}
    for uid in uids:
        data, real, claimed = _first_read(fake, uid)
        if data != real:
            bad[uid] = _describe(data, real, claimed)
    assert not bad, f"{len(bad)} of {len(uids)} first reads were wrong: " + \
        "; ".join(f"UID {u}: {d}" for u, d in sorted(bad.items()))
    assert_alive(fake)


@pytest.mark.parametrize("uid", [6, 24])
def test_whole_body_instead_of_partial(fake, listing, uid):
    """The server ignores <offset.length>: every offset still reads right."""
    path = fake.path(uid)
    real = fake.body(uid)
    size = os.stat(path).st_size
    offsets = [0, 1, 4095, 4096, BLOCK - 1, BLOCK, BLOCK + 12345,
               2 * BLOCK + 7, len(real) - 100, len(real) - 1]
    for off in sorted(set(offsets), reverse=True):
        got, exc, _ = bounded(fake, lambda: pread_at(path, off, 5000))
        assert exc is None, f"pread at {off} failed: {exc!r}"
        assert got == real[off:off + len(got)], f"wrong bytes at {off}"
        # st_size may still be the server's (wrong) RFC822.SIZE, which
        # can cut a read short, never make it return other bytes.
        if off + 5000 <= min(size, len(real)):
            assert len(got) == 5000, f"short read at {off}"
    # A full read finds the real end (it may itself be cut short by the
    # race tested above); after the size healed a read must be exact.
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None and real.startswith(data), repr(exc)
    assert _poll_size(path, len(real)) == len(real)
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None and data == real
    assert_alive(fake)


# -- replies that must fail the read, not the daemon ---------------------

def _expected(mode):
    return (errno.ESTALE, errno.EIO) if mode in GONE_MODES else (errno.EIO,)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_bad_body_reply_on_demand(fake, mode):
    """Wrong origin, NIL, more bytes than asked for, no data, another
    message's data, no answer, garbage, an absurd literal, BYE, deep
    nesting: the read fails (EIO; ESTALE where the reply says "expunged"),
    in bounded time, and the daemon survives with bounded memory."""
    folder = f"M-{mode}"
    conns = fake.server.connection_count()
    elapsed = assert_fails(fake, fake.path(2, folder), fake.body(2, folder),
                           _expected(mode))
    sys.stderr.write(f"\n{mode}: failed after {elapsed:.1f}s\n")
    assert elapsed < 20, f"took {elapsed:.1f}s (timeout={TIMEOUT_S}s)"
    assert fake.server.fetches_for(2, folder), "no FETCH reached the server"
    if mode == "hang":
        # A command the server never answers is a silent server: the
        # mount goes offline and checks a new connection in the background
        # (SEMANTICS.md, Offline). It must be back within a few seconds.
        wait_online(fake)
    if mode in ("bye", "hang", "garbage_parens", "binary_junk",
                "absurd_literal", "deep_nesting"):
        assert fake.server.connection_count() > conns, \
            "imapfs did not replace the broken connection"
    # The folder's good message is still fine.
    data, exc, _ = bounded(fake, lambda: read_file(fake.path(1, folder)))
    assert exc is None and data == fake.body(1, folder), repr(exc)
    assert_alive(fake)


def wait_online(fake, bound=15):
    """Waits until `imapfs status` says the server is online again."""
    def online():
        r = subprocess.run([os.environ.get("IMAPFS_BIN", "imapfs"),
                            "status", fake.mnt], capture_output=True,
                           text=True, timeout=10)
        return "server:       online" in r.stdout
    testenv.wait_for(online, bound, interval=0.1, what="the mount online")


@pytest.mark.parametrize("mode", ALL_MODES)
def test_bad_body_reply_in_prefetch(fake, mode):
    """The same misbehaviours met by a prefetch batch: the good messages
    before it read right, the bad one fails as on demand or (a batch reply
    being cut to the requested length) reads exactly right; it never
    returns bytes that are not the message, and the daemon survives."""
    folder = f"P-{mode}"
    for uid in (1, 2, 3):
        data, exc, _ = bounded(fake, lambda: read_file(fake.path(uid,
                                                                 folder)))
        assert exc is None, f"good UID {uid} failed: {exc!r}"
        assert data == fake.body(uid, folder), f"good UID {uid} wrong"
    try:
        testenv.wait_for(lambda: _batched(fake, folder, 4), 20,
                         what="a batched FETCH")
    except TimeoutError:
        pytest.fail(f"no prefetch batch asked for UID 4 of {folder}")
    elapsed = assert_fails(fake, fake.path(4, folder), fake.body(4, folder),
                           _expected(mode), real_ok=True)
    assert elapsed < 20, f"took {elapsed:.1f}s"
    assert_alive(fake)


def _batched(fake, folder, uid):
    """Body FETCHes in folder that asked for uid together with others (a
    prefetch batch; reads ask for one message)."""
    return [c for c in fake.server.fetches_for(uid, folder)
            if re.search(r"UID FETCH \d+[:,]", c.text)]


def test_prefetch_happens(fake):
    """Reading a folder's first messages in UID order makes imapfs fetch
    the next ones in one batched FETCH (the premise of the prefetch cases
    above, checked on a folder of good messages of its own)."""
    for uid in (1, 2):
        data, exc, _ = bounded(fake, lambda: read_file(
            fake.path(uid, PREFETCH_CHECK)))
        assert exc is None and data == fake.body(uid, PREFETCH_CHECK)
    try:
        testenv.wait_for(lambda: _batched(fake, PREFETCH_CHECK, 3), 20,
                         what="a batched FETCH")
    except TimeoutError:
        pytest.fail("reading UIDs 1 and 2 in order sent no batched "
                    "(prefetch) FETCH of the next messages: " +
                    "; ".join(c.text for c in fake.server.commands_snapshot()
                              if c.mailbox == PREFETCH_CHECK))
    for uid in (3, 4):
        data, exc, _ = bounded(fake, lambda: read_file(
            fake.path(uid, PREFETCH_CHECK)))
        assert exc is None and data == fake.body(uid, PREFETCH_CHECK)


# -- refusals ----------------------------------------------------------------

def test_noperm_examine_is_eacces(fake):
    """EXAMINE answered NO [NOPERM]: listing the folder and looking up a
    message in it give EACCES; the daemon survives."""
    folder = os.path.join(fake.mnt, NOPERM_EXAMINE)
    _, exc, _ = bounded(fake, lambda: os.listdir(folder))
    assert isinstance(exc, OSError) and exc.errno == errno.EACCES, repr(exc)
    _, exc, _ = bounded(fake, lambda: os.stat(os.path.join(folder,
                                                           "1.eml")))
    assert isinstance(exc, OSError) and exc.errno == errno.EACCES, repr(exc)
    assert_alive(fake)


def test_noperm_fetch_is_eacces(fake):
    """A body FETCH answered NO [NOPERM]: the read gives EACCES, the
    folder's other message still reads, the daemon survives."""
    assert_fails(fake, fake.path(2, NOPERM_FETCH),
                 fake.body(2, NOPERM_FETCH), (errno.EACCES,))
    data, exc, _ = bounded(fake, lambda: read_file(fake.path(1,
                                                             NOPERM_FETCH)))
    assert exc is None and data == fake.body(1, NOPERM_FETCH), repr(exc)
    assert_alive(fake)


# -- listing oddities ----------------------------------------------------

def test_missing_rfc822_size(fake, listing):
    """A listing reply without RFC822.SIZE: the message is left out of the
    directory (imapfs cannot give it a size) and a lookup of its name is
    ENOENT; the other messages are listed normally and the daemon lives."""
    assert "1.eml" in listing and "6.eml" in listing
    assert "18.eml" not in listing
    with pytest.raises(FileNotFoundError):
        os.stat(fake.path(18))
    assert_alive(fake)


@pytest.mark.parametrize("uid", [19, 22])
def test_unparsable_rfc822_size(fake, listing, uid):
    """An RFC822.SIZE that is not a number imapfs can hold (beyond 2^64,
    negative) counts as missing: not listed, ENOENT, daemon alive."""
    assert f"{uid}.eml" not in listing
    with pytest.raises(FileNotFoundError):
        os.stat(fake.path(uid))
    assert_alive(fake)


@pytest.mark.parametrize("uid", [20, 21, 25])
def test_absurd_rfc822_size(fake, listing, uid):
    """A size that parses but is implausible (2^64-1, 2^63, 2^53+1: above
    2^53): the message is listed by name, and stat and open fail with EIO
    (imapfs refuses it; the kernel would also reject the first two); the
    daemon survives."""
    assert f"{uid}.eml" in listing
    with pytest.raises(OSError) as ei:
        os.stat(fake.path(uid))
    assert ei.value.errno == errno.EIO, repr(ei.value)
    _, exc, _ = bounded(fake, lambda: read_file(fake.path(uid)))
    assert isinstance(exc, OSError) and exc.errno == errno.EIO, repr(exc)
    assert_alive(fake)


def test_zero_rfc822_size(fake, listing):
    """RFC822.SIZE 0 for a non-empty message: the file must not read as
    empty (it would stay empty forever: the kernel never asks for data
    beyond st_size), so imapfs measures such a message before it reports
    its size."""
    path = fake.path(23)
    assert os.stat(path).st_size == len(fake.body(23))
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None, repr(exc)
    assert data == fake.body(23), \
        f"read {len(data)} bytes of a {len(fake.body(23))}-byte message " \
        f"whose RFC822.SIZE was 0"


# -- what imapfs sent ----------------------------------------------------

_ALLOWED = {"CAPABILITY", "AUTHENTICATE", "LOGIN", "NAMESPACE", "LIST",
            "EXAMINE", "UID FETCH", "NOOP", "LOGOUT", "ENABLE", "ID",
            "GETQUOTAROOT", "STATUS", "UID SEARCH"}
_TAG_RE = re.compile(r"^[A-Za-z0-9.]+$")
# Partial fetches of a block range, or whole messages (prefetch batches
# and sequential reads of messages that fit the cache).
_BODY_FETCH_RE = re.compile(r"^\S+ UID FETCH [0-9:,]+ \(UID BODY\.PEEK\[\]"
                            r"(<\d+\.\d+>)?\)$")
_META_FETCH_RE = re.compile(r"^\S+ UID FETCH \d+:(\d+|\*) \(UID RFC822\.SIZE "
                            r"INTERNALDATE FLAGS\)$")
# A refresh of a listed folder: flags (CONDSTORE: only changed ones), the
# UIDs that exist (without ESEARCH).
_REFRESH_FETCH_RE = re.compile(r"^\S+ UID FETCH \d+:\d+ \(UID( FLAGS)?\)"
                               r"( \(CHANGEDSINCE \d+\))?$")


def test_commands_well_formed(fake, listing):
    """Every command imapfs sent is well-formed and read-only."""
    # Make sure there is something to audit even if run alone.
    assert_alive(fake)
    cmds = fake.server.commands_snapshot()
    assert cmds, "the server received nothing"
    tags = set()
    for c in cmds:
        for line in c.lines:
            assert b"\r" not in line and b"\n" not in line, \
                f"raw CR/LF inside a command: {c.raw!r}"
            assert all(0x20 <= b < 0x7f for b in line), \
                f"control or 8-bit byte outside a literal: {c.raw!r}"
        assert _TAG_RE.match(c.tag), f"bad tag in {c.text!r}"
        assert (c.conn, c.tag) not in tags, f"tag reused: {c.text!r}"
        tags.add((c.conn, c.tag))
        assert c.name in _ALLOWED, f"unexpected command {c.text!r}"
        up = c.text.upper()
        assert "STORE" not in up and "EXPUNGE" not in up and \
            "SELECT" not in up.replace("EXAMINE", ""), c.text
        if c.name == "UID FETCH":
            assert _BODY_FETCH_RE.match(c.text) or \
                _META_FETCH_RE.match(c.text) or \
                _REFRESH_FETCH_RE.match(c.text), \
                f"unexpected FETCH form: {c.text!r}"
            assert re.search(r"BODY\[", up) is None or "BODY.PEEK[" in up, \
                f"BODY[ without PEEK would set \\Seen: {c.text!r}"
    names = {c.name for c in cmds}
    assert "EXAMINE" in names and "SELECT" not in names
    assert any(_BODY_FETCH_RE.match(c.text) for c in cmds), \
        "no BODY.PEEK fetch seen"
    # Body requests are for whole blocks at block-aligned offsets.
    for c in cmds:
        m = re.search(r"BODY\.PEEK\[\]<(\d+)\.(\d+)>", c.text)
        if m:
            off, length = int(m.group(1)), int(m.group(2))
            assert off % BLOCK == 0 and length % BLOCK == 0 and length > 0, \
                c.text
