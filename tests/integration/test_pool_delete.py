"""Our own DELETE or RENAME of a mailbox that other sessions of the pool
have selected (imap/pool.h: imap_pool_hold()).

Dovecot disconnects, at its next command, every session whose selected
mailbox another session deleted or renamed ("* BYE IMAP session state is
inconsistent, please relogin."), and an APPEND sent there may or may not
have been stored: without the hold, `rm -r X` followed by copies into
another folder failed with EIO on the sessions that had read X.  With it
the mount's other sessions leave X (UNSELECT) before the DELETE or
RENAME is sent, and nothing fails or gets lost.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402
from conftest import _missing_prerequisite  # noqa: E402

CONNECTIONS = 4
MESSAGES = 24   # in the folder that goes
COPIES = 12     # files copied into another folder meanwhile and after


def msg(tag: str) -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.org\r\n"
            f"Subject: pool {tag}\r\nMessage-ID: <{tag}@example.org>\r\n"
            f"\r\nbody {tag}\r\n").encode()


@pytest.fixture
def dovecot(tmp_path):
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    srv = testenv.DovecotServer(str(tmp_path / "dovecot"),
                                without_caps=("NOTIFY",))
    srv.start()
    try:
        srv.create_mailbox("Dest")
        srv.create_mailbox("X")
        srv.append_many("X", [(msg(f"x{i}"), "", None)
                              for i in range(MESSAGES)])
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def mount(imapfs_bin, dovecot, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    trace = str(tmp_path / "trace")
    proc = testenv.mount_traced(imapfs_bin, dovecot, mnt, trace,
                                ["-o", f"connections={CONNECTIONS}",
                                 "-o", "timeout=10"])
    try:
        yield mnt, trace
    finally:
        testenv.stop_traced(mnt, proc)


def read_all_in_parallel(folder):
    """Reads every message of @folder on CONNECTIONS threads at once, so
    that every pool session ends up with the folder selected."""
    paths = [os.path.join(folder, n) for n in sorted(os.listdir(folder))]

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as ex:
        bodies = list(ex.map(read, paths))
    assert all(b"Subject: pool" in b for b in bodies)
    return len(paths)


def make_sources(tmp_path, tag):
    src = tmp_path / f"src-{tag}"
    src.mkdir()
    for i in range(COPIES):
        (src / f"{tag}{i}.eml").write_bytes(msg(f"{tag}{i}"))
    return src


def copy_into(src, dest):
    """cp of every file of @src into @dest, CONNECTIONS at a time (so that
    every pool session gets one); returns the failures."""
    def copy(n):
        try:
            shutil.copyfile(os.path.join(src, n), os.path.join(dest, n))
            return None
        except OSError as e:
            return f"{n}: {e}"

    with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as ex:
        return [e for e in ex.map(copy, sorted(os.listdir(src))) if e]


def server_subjects(srv, box):
    c = srv.client()
    try:
        c.select(testenv.imap_quote(srv.server_name(box)), readonly=True)
        _, data = c.search(None, "ALL")
        subjects = []
        for n in data[0].split():
            _, d = c.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(d[0][1].decode().strip())
        return subjects
    finally:
        c.logout()


def server_has(srv, box) -> bool:
    c = srv.client()
    try:
        typ, _ = c.status(testenv.imap_quote(srv.server_name(box)),
                          "(MESSAGES)")
        return typ == "OK"
    finally:
        c.logout()


def check_copied(srv, tags):
    subjects = server_subjects(srv, "Dest")
    for tag in tags:
        for i in range(COPIES):
            want = f"Subject: pool {tag}{i}"
            assert subjects.count(want) == 1, \
                f"{want} stored {subjects.count(want)} times"


@pytest.mark.parametrize("how", ["rm", "mv"])
def test_delete_or_rename_folder_other_sessions_have_selected(
        dovecot, mount, tmp_path, how):
    """CONNECTIONS pool sessions hold folder X selected (its messages were
    read in parallel); `rm -r X` (or `mv X Y`) runs while files are
    copied into Dest, and more are copied after it: no copy fails (no
    EIO from a session Dovecot cut off for having X selected), each is
    stored exactly once, and X is gone (or renamed) on the server."""
    srv = dovecot
    mnt, trace = mount
    x = os.path.join(mnt, "X")
    assert read_all_in_parallel(x) == MESSAGES
    during = make_sources(tmp_path, "during")
    after = make_sources(tmp_path, "after")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        copying = ex.submit(copy_into, during, os.path.join(mnt, "Dest"))
        if how == "rm":
            r = subprocess.run(["rm", "-r", x], capture_output=True,
                               text=True, timeout=120)
        else:
            r = subprocess.run(["mv", x, os.path.join(mnt, "Moved")],
                               capture_output=True, text=True, timeout=120)
        errors = copying.result(timeout=120)
    assert r.returncode == 0, r.stderr
    errors += copy_into(after, os.path.join(mnt, "Dest"))
    assert not errors, "\n".join(errors)
    check_copied(srv, ("during", "after"))
    assert not server_has(srv, "X")
    if how == "mv":
        assert len(os.listdir(os.path.join(mnt, "Moved"))) == MESSAGES
        assert server_has(srv, "Moved")
    else:
        assert not os.path.exists(x)
    t = open(trace, errors="replace").read()
    assert "inconsistent" not in t, "a session was cut off by the server"
