"""File content, attributes and xattrs equal what the server holds."""

import concurrent.futures
import errno
import hashlib
import os
import random
import shutil
import stat

import pytest

from conftest import BIG_SIZE
from testenv import mount_modes


def all_messages(env):
    for name, rel in env.selectable():
        for uid, meta in env.truth.messages(name).items():
            yield name, rel, uid, meta


def test_content_and_attributes(env):
    n = 0
    for name, rel, uid, meta in all_messages(env):
        path = env.path(os.path.join(rel, f"{uid}.eml"))
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
        body = env.truth.body(name, uid)
        assert hashlib.sha256(data).hexdigest() == \
            hashlib.sha256(body).hexdigest(), path
        assert st.st_size == meta["size"] == len(data), path
        assert int(st.st_mtime) == meta["date"], path
        # SEMANTICS: st_blocks = ceil(size/512), never 0.
        assert st.st_blocks == max(-(-len(body) // 512), 1), \
            (path, st.st_blocks, len(body))
        assert stat.S_IMODE(st.st_mode) == mount_modes(True)[0], path
        assert stat.S_ISREG(st.st_mode), path
        assert st.st_uid == os.getuid() and st.st_gid == os.getgid(), path
        n += 1
    assert n > 80


def test_directory_attributes(env):
    for dirpath, dirnames, _ in os.walk(env.mnt):
        for d in [dirpath] + [os.path.join(dirpath, x) for x in dirnames]:
            st = os.stat(d)
            assert stat.S_ISDIR(st.st_mode), d
            assert stat.S_IMODE(st.st_mode) == mount_modes(True)[1], d
            assert st.st_uid == os.getuid() and st.st_gid == os.getgid(), d


def test_messages_have_crlf_and_headers(env):
    """The file is the full RFC 822 message as stored (CRLF)."""
    name, rel = "INBOX", "INBOX"
    uid = min(env.truth.messages(name))
    with open(env.path(f"{rel}/{uid}.eml"), "rb") as f:
        data = f.read()
    assert b"\r\nSubject: " in data
    assert b"\r\n\r\n" in data
    assert data.count(b"\n") == data.count(b"\r\n")


def test_xattrs(env):
    seen_keyword = seen_empty = seen_flag = False
    for name, rel, uid, meta in all_messages(env):
        path = env.path(os.path.join(rel, f"{uid}.eml"))
        names = os.listxattr(path)
        assert "user.imap.flags" in names and "user.imap.uid" in names
        flags = os.getxattr(path, "user.imap.flags").decode()
        assert set(flags.split()) == meta["flags"], (path, flags)
        assert "\\Recent" not in flags.split()
        assert os.getxattr(path, "user.imap.uid") == str(uid).encode()
        seen_keyword |= "$Label1" in meta["flags"]
        seen_flag |= "\\Flagged" in meta["flags"]
        if not meta["flags"]:
            seen_empty = True
            assert flags == ""
        for missing in ("user.imap.nosuchthing", "user.other",
                        "user.imap.flag"):
            with pytest.raises(OSError) as ei:
                os.getxattr(path, missing)
            assert ei.value.errno == errno.ENODATA, missing
    assert seen_keyword and seen_empty and seen_flag


def test_xattr_size_probe(env):
    """getxattr with a too-small buffer reports ERANGE (size protocol)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getxattr.restype = ctypes.c_ssize_t
    libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_void_p, ctypes.c_size_t]
    uid = max(env.truth.messages("INBOX"))
    path = env.path(f"INBOX/{uid}.eml").encode()
    need = libc.getxattr(path, b"user.imap.uid", None, 0)
    assert need == len(str(uid))
    buf = ctypes.create_string_buffer(1)
    if need > 1:
        r = libc.getxattr(path, b"user.imap.uid", buf, 1)
        assert r == -1 and ctypes.get_errno() == errno.ERANGE


def test_reading_does_not_set_seen(env):
    before = env.truth.all_flags()
    unseen = sum(1 for box in before.values() for f in box.values()
                 if "\\Seen" not in f)
    assert unseen > 20, "corpus must contain unseen messages"
    for dirpath, _, filenames in os.walk(env.mnt):
        for fn in filenames:
            with open(os.path.join(dirpath, fn), "rb") as f:
                while f.read(1 << 20):
                    pass
            # also partial reads and mmap-style access patterns
            fd = os.open(os.path.join(dirpath, fn), os.O_RDONLY)
            try:
                os.pread(fd, 100, 10)
            finally:
                os.close(fd)
    after = env.truth.all_flags()
    assert after == before


@pytest.fixture(scope="module")
def big(env):
    (uid,) = env.truth.messages("Big")
    return env.path(f"Big/{uid}.eml"), env.truth.body("Big", uid)


def test_big_size(big):
    path, body = big
    assert len(body) >= BIG_SIZE * 0.95
    assert os.stat(path).st_size == len(body)


def test_big_random_reads(big):
    path, body = big
    size = len(body)
    rng = random.Random(42)
    pairs = []
    for unit in (4096, 128 * 1024, 1 << 20):
        for k in (1, 2, 3, 7, 15):
            b = unit * k
            if b < size:
                pairs += [(b - 1, 2), (b - 1, unit + 2), (b, 1),
                          (b + 1, 4096), (b - 4096, 8192)]
    while len(pairs) < 200:
        off = rng.randrange(size)
        length = rng.choice([1, 17, 4096, 65536, 131072, 300000,
                             rng.randrange(1, 2 << 20)])
        pairs.append((off, length))
    rng.shuffle(pairs)
    fd = os.open(path, os.O_RDONLY)
    try:
        for off, length in pairs:
            got = os.pread(fd, length, off)
            # FUSE may split reads; collect until length or EOF.
            while len(got) < length and off + len(got) < size:
                more = os.pread(fd, length - len(got), off + len(got))
                assert more, (off, length)
                got += more
            assert got == body[off:off + length], (off, length)
        assert os.pread(fd, 10, size) == b""
        assert os.pread(fd, 10, size + 12345) == b""
        assert os.pread(fd, 100, size - 10) == body[-10:]
        assert os.pread(fd, 1, size - 1) == body[-1:]
    finally:
        os.close(fd)


def test_copyfile(big, tmp_path):
    path, body = big
    dst = tmp_path / "copy.eml"
    shutil.copyfile(path, dst)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == \
        hashlib.sha256(body).hexdigest()


def test_parallel_reads(env):
    jobs = []
    for name, rel, uid, meta in all_messages(env):
        jobs.append((name, rel, uid))
    # the 16 largest messages, one per thread at a time, 8 threads
    jobs.sort(key=lambda j: -len(env.truth.body(j[0], j[2])))
    jobs = jobs[:16]
    assert len(jobs) == 16

    def work(job, seed):
        name, rel, uid = job
        rng = random.Random(seed)
        out = bytearray()
        with open(env.path(f"{rel}/{uid}.eml"), "rb",
                  buffering=0) as f:
            while True:
                chunk = f.read(rng.choice([1000, 4096, 65536, 200000]))
                if not chunk:
                    break
                out += chunk
        return job, bytes(out)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(work, j, i) for i, j in enumerate(jobs * 2)]
        for fu in futs:
            (name, rel, uid), data = fu.result(timeout=200)
            assert data == env.truth.body(name, uid), (rel, uid)
