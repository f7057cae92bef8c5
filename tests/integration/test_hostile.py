"""imapfs against a scripted hostile IMAP server (tests/support/fakeserver).

One fake server and one mount (with -o timeout=2 so that a server that never
answers costs seconds, not minutes) serve the whole module.  Every message
UID has its own misbehaviour, so one test's damage (a connection the server
closed, a reply the parser rejected) is also a test that the daemon recovers
for the next one.  Each test asserts the outcome for the user (exact bytes,
or EIO) and that the daemon is still alive and serving: it reads a control
message that was never read before and checks that this reached the server.
"""

import errno
import os
import re
import subprocess
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
MAX_RSS_KB = 200 * 1024
BLOCK = 128 * 1024


def _small(seed):
    return testenv.sample_messages(1, seed=seed)[0]


def _big(size, seed):
    return testenv.big_message(size, seed=seed)


# UID -> (message, how the server misbehaves).  Control messages (never
# scripted) start at CONTROL_FIRST.
CASES = {
    1: ("small", {"size_delta": -7}),
    2: ("small", {"size_delta": +500}),
    3: ("big", {"size_delta": -1000}),
    4: ("big", {"size_delta": +70000}),
    5: ("big", {"size_delta": -BLOCK - 5000}),
    6: ("big", {"body": "whole"}),
    7: ("small", {"body": "wrong_origin"}),
    8: ("small", {"body": "nil"}),
    9: ("small", {"body": "nodata"}),
    10: ("small", {"body": "other_uid"}),
    11: ("small", {"body": "too_long"}),
    12: ("small", {"body": "hang"}),
    13: ("small", {"body": "garbage_parens"}),
    14: ("small", {"body": "binary_junk"}),
    15: ("small", {"body": "absurd_literal"}),
    16: ("small", {"body": "bye"}),
    17: ("small", {"body": "deep_nesting"}),
    18: ("small", {"omit_size": True}),
    19: ("small", {"size_text": "99999999999999999999999"}),
    20: ("small", {"size_text": "18446744073709551615"}),
    21: ("small", {"size_text": "9223372036854775808"}),
    22: ("small", {"size_text": "-5"}),
    23: ("small", {"size_text": "0"}),
    24: ("big", {"body": "whole", "size_delta": -3000}),
}
CONTROL_FIRST = 101
CONTROL_COUNT = 40


def _build_messages():
    msgs = {}
    for uid, (kind, _) in CASES.items():
        msgs[uid] = _small(1000 + uid) if kind == "small" else \
            _big(300_000 + uid * 1000, seed=uid)
    for i in range(CONTROL_COUNT):
        msgs[CONTROL_FIRST + i] = _small(2000 + i)
    return msgs


def _apply_script(script):
    for uid, (_, how) in CASES.items():
        if "size_delta" in how:
            script.size_delta[uid] = how["size_delta"]
        if "size_text" in how:
            script.size_text[uid] = how["size_text"]
        if "body" in how:
            script.body[uid] = how["body"]
        if how.get("omit_size"):
            script.omit_size.add(uid)


class Mount:
    def __init__(self, server, mnt):
        self.server = server
        self.mnt = mnt
        self.pid = None
        self._next_control = CONTROL_FIRST
        self._lock = threading.Lock()

    def path(self, uid):
        return os.path.join(self.mnt, "INBOX", f"{uid}.eml")

    def body(self, uid):
        return self.server.messages[uid]

    def fresh_control(self):
        with self._lock:
            uid = self._next_control
            self._next_control += 1
        assert uid < CONTROL_FIRST + CONTROL_COUNT, "out of control files"
        return uid


def _kill_mount(mnt):
    pid = testenv.daemon_pid(mnt)
    subprocess.run(["fusermount3", "-uz", mnt], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if pid:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def bounded(m, fn, bound=OP_BOUND_S):
    """Runs fn() in a thread; returns (result, exception, seconds).

    If it has not finished after `bound` seconds the mount is torn down
    (which makes the blocked system call return) and the test fails.
    """
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: B902 - reported to the caller
            box["exc"] = e

    t0 = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(bound)
    elapsed = time.monotonic() - t0
    if t.is_alive():
        _kill_mount(m.mnt)
        t.join(10)
        pytest.fail(f"operation still blocked after {bound}s; mount torn "
                    f"down")
    return box.get("result"), box.get("exc"), elapsed


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
    before = len(m.server.fetches_for(uid))
    data, exc, _ = bounded(m, lambda: read_file(m.path(uid)))
    assert exc is None, f"control file {uid} failed after the test: {exc!r}"
    assert data == m.body(uid), f"control file {uid} read wrong bytes"
    assert len(m.server.fetches_for(uid)) > before, \
        "control read did not reach the server"
    assert rss_kb(m.pid) < MAX_RSS_KB, \
        f"daemon RSS {rss_kb(m.pid)} kB exceeds {MAX_RSS_KB} kB"


def assert_eio(m, uid):
    data, exc, elapsed = bounded(m, lambda: read_file(m.path(uid)))
    assert exc is not None, \
        f"UID {uid}: read returned {len(data)} bytes instead of failing " \
        f"(mode {m.server.script.body_mode(uid)})"
    assert isinstance(exc, OSError) and exc.errno == errno.EIO, \
        f"UID {uid}: expected EIO, got {exc!r}"
    return elapsed


@pytest.fixture(scope="module")
def fake(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("hostile"))
    server = fakeserver.FakeImapServer(_build_messages(),
                                       workdir=os.path.join(work, "srv"))
    _apply_script(server.script)
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
            _kill_mount(mnt)
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


@pytest.mark.parametrize("uid", [1, 2, 3, 4, 5])
def test_wrong_rfc822_size(fake, listing, uid):
    """A wrong RFC822.SIZE: reads give the real bytes, st_size heals."""
    path = fake.path(uid)
    real = fake.body(uid)
    assert f"{uid}.eml" in listing
    assert os.stat(path).st_size == len(real) + \
        fake.server.script.size_delta[uid]
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None, f"read failed: {exc!r}"
    # Compare lengths first: the assertion message stays readable.
    assert len(data) == len(real), \
        f"read {len(data)} bytes, message has {len(real)} (RFC822.SIZE " \
        f"said {len(real) + fake.server.script.size_delta[uid]})"
    assert data == real
    assert _poll_size(path, len(real)) == len(real), \
        "st_size was not corrected after the read found the real end"
    # A second open reads the same, now with the right size.
    data2, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None and data2 == real
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
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None and data == real
    assert_alive(fake)


# -- replies that must fail the read, not the daemon ---------------------

@pytest.mark.parametrize("uid", [7, 8, 11], ids=["wrong_origin", "nil",
                                                 "too_long"])
def test_bad_partial_reply_is_eio(fake, listing, uid):
    """Wrong origin, NIL, more bytes than asked for: EIO."""
    assert_eio(fake, uid)
    assert_alive(fake)


@pytest.mark.parametrize("uid", [9, 10], ids=["nodata", "other_uid"])
def test_reply_without_our_data(fake, listing, uid):
    """Tagged OK but no FETCH data for our UID (only another message's, or
    none): that is what an expunged message looks like, so imapfs answers
    ESTALE (EIO would do too); it never returns another message's bytes."""
    data, exc, _ = bounded(fake, lambda: read_file(fake.path(uid)))
    assert exc is not None, f"read returned {len(data)} bytes"
    assert isinstance(exc, OSError) and \
        exc.errno in (errno.EIO, errno.ESTALE), repr(exc)
    assert_alive(fake)


def test_hang_is_bounded(fake, listing):
    """A server that never answers a body FETCH: EIO after the timeout."""
    elapsed = assert_eio(fake, 12)
    sys.stderr.write(f"\nhang: read failed with EIO after {elapsed:.1f}s "
                     f"(timeout={TIMEOUT_S}s)\n")
    assert elapsed < 20, f"hung read took {elapsed:.1f}s"
    assert_alive(fake)


@pytest.mark.parametrize("uid", [13, 14, 15, 17],
                         ids=["parens", "binary_junk", "absurd_literal",
                              "deep_nesting"])
def test_garbage_is_eio(fake, listing, uid):
    """Unparseable replies: EIO, the daemon survives, memory is bounded."""
    elapsed = assert_eio(fake, uid)
    assert elapsed < 20, f"took {elapsed:.1f}s"
    assert_alive(fake)


def test_bye_mid_command(fake, listing):
    """* BYE and a closed connection in the middle of a FETCH: EIO (the
    retry on a fresh connection meets the same BYE), daemon alive."""
    conns = fake.server.connection_count()
    assert_eio(fake, 16)
    assert fake.server.connection_count() > conns, \
        "imapfs did not reconnect after BYE"
    assert_alive(fake)


# -- listing oddities ----------------------------------------------------

def test_missing_rfc822_size(fake, listing):
    """A listing reply without RFC822.SIZE does not crash imapfs.

    Observed behaviour: the message is left out of the directory (imapfs
    cannot give it a size); the other messages are listed normally.
    """
    assert "1.eml" in listing and f"{CONTROL_FIRST}.eml" in listing
    if "18.eml" in listing:
        data, exc, _ = bounded(fake, lambda: read_file(fake.path(18)))
        assert exc is None and data == fake.body(18)
    else:
        with pytest.raises(FileNotFoundError):
            os.stat(fake.path(18))
    assert_alive(fake)


@pytest.mark.parametrize("uid", [19, 20, 21, 22])
def test_absurd_rfc822_size(fake, listing, uid):
    """Sizes that overflow uint64, do not fit off_t or are negative: the
    daemon survives; a listed file has a sane size or reads the truth."""
    name = f"{uid}.eml"
    if name in listing:
        # Observed: sizes beyond INT64_MAX are passed on and the kernel
        # rejects the attributes, so stat fails with EIO; that is bounded
        # and acceptable.  A size it accepts must be sane.
        try:
            st = os.stat(fake.path(uid))
        except OSError as e:
            assert e.errno == errno.EIO, repr(e)
            assert_alive(fake)
            return
        assert st.st_size >= 0, f"negative st_size {st.st_size}"
        data, exc, _ = bounded(fake, lambda: read_file(fake.path(uid)))
        if exc is None:
            assert data == fake.body(uid), \
                f"read {len(data)} bytes, not the real message"
        else:
            assert isinstance(exc, OSError) and exc.errno == errno.EIO, \
                repr(exc)
    assert_alive(fake)


@pytest.mark.xfail(reason="imapfs limitation: with st_size 0 the kernel "
                   "never sends a read, so the wrong size is never found "
                   "out (RFC822.SIZE 0 could be treated as unknown)",
                   strict=False)
def test_zero_rfc822_size(fake, listing):
    """RFC822.SIZE 0 for a non-empty message: the file must not read as
    empty (it would stay empty forever: the kernel never asks for data
    beyond st_size, so imapfs never learns the real end)."""
    path = fake.path(23)
    data, exc, _ = bounded(fake, lambda: read_file(path))
    assert exc is None, repr(exc)
    assert data == fake.body(23), \
        f"read {len(data)} bytes of a {len(fake.body(23))}-byte message " \
        f"whose RFC822.SIZE was 0"


# -- what imapfs sent ----------------------------------------------------

_ALLOWED = {"CAPABILITY", "AUTHENTICATE", "LOGIN", "NAMESPACE", "LIST",
            "EXAMINE", "UID FETCH", "NOOP", "LOGOUT", "ENABLE", "ID",
            "GETQUOTAROOT", "STATUS"}
_TAG_RE = re.compile(r"^[A-Za-z0-9.]+$")
_BODY_FETCH_RE = re.compile(r"^\S+ UID FETCH \d+ \(UID BODY\.PEEK\[\]"
                            r"<\d+\.\d+>\)$")
_META_FETCH_RE = re.compile(r"^\S+ UID FETCH \d+:(\d+|\*) \(UID RFC822\.SIZE "
                            r"INTERNALDATE FLAGS\)$")


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
                _META_FETCH_RE.match(c.text), \
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
