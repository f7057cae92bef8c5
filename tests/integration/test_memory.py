"""Reading a message much larger than the cache needs no more memory than
the cache: a 100 MB message through a mount with cache_size=16."""

import hashlib
import os
import sys

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402

SIZE = 100 * 1024 * 1024
CACHE_MB = 16


def test_100mb_message_with_16mb_cache(imapfs_bin, tmp_path):
    if os.environ.get("IMAPFS_SANITIZED"):
        pytest.skip("under AddressSanitizer the allocator keeps freed "
                    "memory in quarantine (256 MB), so RSS says nothing "
                    "about imapfs; the plain build runs this test")
    server = testenv.DovecotServer(str(tmp_path / "server"))
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    server.start()
    try:
        big = testenv.big_message(SIZE, seed=3)
        want = hashlib.sha256(big).hexdigest()
        server.bulk_load("Huge", [big])
        del big
        r = testenv.mount_imapfs(imapfs_bin, server, mnt,
                                 options=["-o", f"cache_size={CACHE_MB}"])
        assert r.returncode == 0, r.stderr
        pid = testenv.daemon_pid(mnt)
        assert pid is not None
        path = os.path.join(mnt, "Huge", "1.eml")
        before = testenv.proc_status_kb(pid, "VmRSS")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        assert h.hexdigest() == want, "the 100 MB message read wrong"
        peak = testenv.proc_status_kb(pid, "VmHWM")
        # The cache (16 MB) plus one read-ahead window in flight and the
        # allocator's slack; far from the message's 100 MB.
        assert peak - before < 48 * 1024, \
            f"daemon grew by {(peak - before) // 1024} MB reading 100 MB"
    finally:
        testenv.unmount(mnt)
        server.stop()
