"""Non-existent names, directories as files, write operations, statfs."""

import errno
import os

import pytest

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


def _msg(env):
    return env.path(f"INBOX/{min(env.truth.messages('INBOX'))}.eml")


def _write_ops(env):
    f = _msg(env)
    d = env.path("INBOX")
    return {
        "open_wronly": lambda: os.close(os.open(f, os.O_WRONLY)),
        "open_rdwr": lambda: os.close(os.open(f, os.O_RDWR)),
        "open_trunc": lambda: os.close(os.open(f, os.O_RDONLY | os.O_TRUNC)),
        "creat": lambda: os.close(os.open(os.path.join(d, "new.eml"),
                                          os.O_WRONLY | os.O_CREAT, 0o600)),
        "mkdir": lambda: os.mkdir(env.path("NewFolder")),
        "mkdir_sub": lambda: os.mkdir(os.path.join(d, "Sub")),
        "unlink": lambda: os.unlink(f),
        "rmdir": lambda: os.rmdir(env.path("Empty")),
        "rename": lambda: os.rename(f, os.path.join(d, "x.eml")),
        "rename_dir": lambda: os.rename(env.path("Empty"),
                                        env.path("Empty2")),
        "setxattr": lambda: os.setxattr(f, "user.imap.flags", b"\\Seen"),
        "removexattr": lambda: os.removexattr(f, "user.imap.flags"),
        "truncate": lambda: os.truncate(f, 0),
        "chmod": lambda: os.chmod(f, 0o644),
        "chown": lambda: os.chown(f, 1, 1),
        "utime": lambda: os.utime(f, (0, 0)),
        "symlink": lambda: os.symlink("x", os.path.join(d, "link")),
        "link": lambda: os.link(f, os.path.join(d, "hard.eml")),
        "mknod": lambda: os.mknod(os.path.join(d, "fifo"), 0o600 | 0o10000),
    }


OPS = ["open_wronly", "open_rdwr", "open_trunc", "creat", "mkdir",
       "mkdir_sub", "unlink", "rmdir", "rename", "rename_dir", "setxattr",
       "removexattr", "truncate", "chmod", "chown", "utime", "symlink",
       "link", "mknod"]


@pytest.mark.parametrize("op", OPS)
def test_erofs(env, op):
    """We run as root, so mode bits do not stop these: imapfs must."""
    before = sorted(os.listdir(env.path("INBOX")))
    with pytest.raises(OSError) as ei:
        _write_ops(env)[op]()
    assert ei.value.errno == errno.EROFS, \
        f"{op}: {errno.errorcode.get(ei.value.errno)}"
    assert sorted(os.listdir(env.path("INBOX"))) == before
    with open(_msg(env), "rb") as f:
        assert f.read(5)


def test_statfs(env):
    st = os.statvfs(env.mnt)
    assert st.f_namemax == 255
    assert st.f_bsize > 0
    assert st.f_bavail > 0
    assert st.f_blocks >= st.f_bavail
