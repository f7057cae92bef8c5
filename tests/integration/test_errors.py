"""Non-existent names, directories as files, write operations, statfs."""

import errno
import os
import signal
import subprocess

import pytest

import testenv

MISSING = ["999999.eml", "0.eml", "abc", ".hidden", ".Trash", ".Trash-0",
           "autorun.inf", ".xdg-volume-info", "NoSuchFolder", "01.eml",
           "+1.eml", "1.eml.swp", "1.EML", "1"]


@pytest.mark.parametrize("name", MISSING)
@pytest.mark.parametrize("folder", ["", "INBOX", "Archive/2024/Q1"])
def test_enoent(env, folder, name):
    with pytest.raises(FileNotFoundError):
        os.stat(env.path(os.path.join(folder, name)))


def test_enoent_below_file(env):
    uid = min(env.truth.messages("INBOX"))
    with pytest.raises(NotADirectoryError):
        os.stat(env.path(f"INBOX/{uid}.eml/x"))


def test_read_directory_eisdir(env):
    fd = os.open(env.path("INBOX"), os.O_RDONLY)
    try:
        with pytest.raises(IsADirectoryError):
            os.read(fd, 10)
    finally:
        os.close(fd)


def _ro_mount(env, name, remount_rw):
    mnt = os.path.join(env.workdir, name)
    os.makedirs(mnt, exist_ok=True)
    r = testenv.mount_imapfs(env.bin, env.server, mnt,
                             options=["-o", "ro", "-o", "attr_timeout=3600"])
    if r.returncode != 0:
        pytest.fail(f"mounting with -o ro failed: {r.stderr}")
    try:
        assert "ro" in testenv.mount_options(mnt), "-o ro: kernel flag"
        if remount_rw:
            testenv.remount_rw(mnt)
        # One read first: its open is the one that reaches the daemon
        # (ENOSYS), after which the kernel opens every file alone, so
        # every test below sees the state a -o ro mount is in.
        uid = min(env.truth.messages("INBOX"))
        with open(os.path.join(mnt, "INBOX", f"{uid}.eml"), "rb") as f:
            f.read()
        yield mnt
    finally:
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)


@pytest.fixture(scope="module")
def ro_mount(env):
    """A second mount of the same server with -o ro, remounted rw in the
    kernel (the daemon still runs with -o ro): what refuses writes there
    is the daemon's handlers alone."""
    yield from _ro_mount(env, "mnt-ro", True)


@pytest.fixture(scope="module")
def kro_mount(env):
    """A -o ro mount as a user gets it (the kernel's ro flag on too)."""
    yield from _ro_mount(env, "mnt-kro", False)


def _open_and_write(path, flags):
    """A write through an open: on a -o ro mount the kernel opens by
    itself (zero-message opens), so EROFS comes from the daemon's WRITE
    handler at the first write()."""
    fd = os.open(path, flags)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)


def _copy_range(src, dst):
    """copy_file_range(2) between two messages of the mount (the kernel
    sends COPY_FILE_RANGE; the open of dst is the kernel's own)."""
    fi = os.open(src, os.O_RDONLY)
    try:
        fo = os.open(dst, os.O_WRONLY)
        try:
            os.copy_file_range(fi, fo, 100)
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def _write_ops(mnt, uid):
    f = os.path.join(mnt, "INBOX", f"{uid}.eml")
    d = os.path.join(mnt, "INBOX")
    return {
        "open_wronly": lambda: _open_and_write(f, os.O_WRONLY),
        "open_rdwr": lambda: _open_and_write(f, os.O_RDWR),
        "open_append": lambda: _open_and_write(f, os.O_WRONLY | os.O_APPEND),
        "open_trunc": lambda: os.close(os.open(f, os.O_RDONLY | os.O_TRUNC)),
        "creat": lambda: os.close(os.open(os.path.join(d, "new.eml"),
                                          os.O_WRONLY | os.O_CREAT, 0o600)),
        "creat_scratch": lambda: os.close(os.open(
            os.path.join(d, ".new.eml.swp"), os.O_WRONLY | os.O_CREAT,
            0o600)),
        "mkdir": lambda: os.mkdir(os.path.join(mnt, "NewFolder")),
        "mkdir_sub": lambda: os.mkdir(os.path.join(d, "Sub")),
        "unlink": lambda: os.unlink(f),
        "rmdir": lambda: os.rmdir(os.path.join(mnt, "Empty")),
        "rename": lambda: os.rename(f, os.path.join(d, "x.eml")),
        "rename_to_folder": lambda: os.rename(
            f, os.path.join(mnt, "Archive", f"{uid}.eml")),
        "rename_dir": lambda: os.rename(os.path.join(mnt, "Empty"),
                                        os.path.join(mnt, "Empty2")),
        "setxattr": lambda: os.setxattr(f, "user.imap.flags", b"\\Seen"),
        "removexattr": lambda: os.removexattr(f, "user.imap.flags"),
        "truncate": lambda: os.truncate(f, 0),
        "chmod": lambda: os.chmod(f, 0o644),
        "chown": lambda: os.chown(f, 1, 1),
        "utime": lambda: os.utime(f, (0, 0)),
        "symlink": lambda: os.symlink("x", os.path.join(d, "link")),
        "link": lambda: os.link(f, os.path.join(d, "hard.eml")),
        "mknod": lambda: os.mknod(os.path.join(d, "fifo"), 0o600 | 0o10000),
        "copy_file_range": lambda: _copy_range(
            f, os.path.join(d, f"{uid + 1}.eml")),
    }


OPS = ["open_wronly", "open_rdwr", "open_append", "open_trunc", "creat",
       "creat_scratch", "mkdir", "mkdir_sub", "unlink", "rmdir", "rename",
       "rename_to_folder", "rename_dir", "setxattr", "removexattr",
       "truncate", "chmod", "chown", "utime", "symlink", "link", "mknod",
       "copy_file_range"]


def _mount_options(mnt):
    return testenv.mount_options(mnt)


def test_ro_mount_kernel_flag(kro_mount, ro_mount):
    """-o ro sets the kernel's ro flag too (a user's mount, kro_mount);
    the handler tests below run where it was cleared again (ro_mount),
    since the flag would hide whether the daemon's handlers refuse
    writes."""
    assert "ro" in _mount_options(kro_mount)
    assert "ro" not in _mount_options(ro_mount)


@pytest.mark.parametrize("op", OPS)
def test_erofs(env, ro_mount, op):
    """On a -o ro mount every write gets EROFS from the daemon's handlers
    (we run as root, so mode bits do not stop these), and nothing changes
    on the server."""
    assert "ro" not in _mount_options(ro_mount), \
        "the kernel's ro flag is set: this would not test the handlers"
    uid = min(env.truth.messages("INBOX"))
    before = {name: env.truth.messages(name) for name in
              ("INBOX", "Archive")}
    boxes = sorted(n for n, _ in env.selectable())
    listing = sorted(os.listdir(os.path.join(ro_mount, "INBOX")))
    with pytest.raises(OSError) as ei:
        _write_ops(ro_mount, uid)[op]()
    assert ei.value.errno == errno.EROFS, \
        f"{op}: {errno.errorcode.get(ei.value.errno)}"
    assert sorted(os.listdir(os.path.join(ro_mount, "INBOX"))) == listing
    assert {name: env.truth.messages(name) for name in before} == before
    assert sorted(n for n, _ in env.selectable()) == boxes
    path = os.path.join(ro_mount, "INBOX", f"{uid}.eml")
    with open(path, "rb") as f:
        assert f.read() == env.truth.body("INBOX", uid)


def test_ro_open_reaches_no_daemon(env, kro_mount):
    """-o ro opens are zero-message (FUSE_CAP_NO_OPEN_SUPPORT, no FLUSH,
    no RELEASE, page cache kept, and with the kernel's ro flag st_atime
    is not forgotten after a read, so fstat asks nothing either): with the
    daemon stopped, a message read before opens, reads, fstats and closes
    again. A mount whose opens reached the daemon would hang here until
    the daemon runs again."""
    uid = max(env.truth.messages("INBOX"))
    path = os.path.join(kro_mount, "INBOX", f"{uid}.eml")
    with open(path, "rb") as f:
        body = f.read()
    assert body == env.truth.body("INBOX", uid)
    pid = testenv.daemon_pid(kro_mount)
    assert pid is not None
    out = os.path.join(env.workdir, "ro-open.out")
    os.kill(pid, signal.SIGSTOP)
    try:
        with open(out, "wb") as f:
            p = subprocess.Popen(["cat", path], stdout=f)
        try:
            p.wait(timeout=10)
            waited = False
        except subprocess.TimeoutExpired:
            # Blocked in a FUSE request (a FLUSH cannot even be killed):
            # only the daemon can release it.
            waited = True
    finally:
        os.kill(pid, signal.SIGCONT)
    p.wait(timeout=60)
    assert not waited, \
        "open/read/close of a cached message waited for the daemon"
    with open(out, "rb") as f:
        assert p.returncode == 0 and f.read() == body


def test_statfs(env):
    st = os.statvfs(env.mnt)
    assert st.f_namemax == 255
    assert st.f_bsize > 0
    assert st.f_bavail > 0
    assert st.f_blocks >= st.f_bavail
