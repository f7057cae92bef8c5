"""Statements of docs/SEMANTICS.md not covered elsewhere.

Each test names the statement it checks.
"""

import errno
import os
import shutil
import stat
import subprocess

import pytest


def first_message(env, folder="INBOX"):
    names = sorted(n for n in os.listdir(env.path(folder)) if n.endswith(".eml"))
    assert names, "corpus has no message in " + folder
    return env.path(os.path.join(folder, names[0]))


@pytest.mark.parametrize("name", ["security.selinux", "system.posix_acl_access",
                                  "system.posix_acl_default"])
def test_unsupported_xattr_namespaces(env, name):
    """Labels and ACLs answer EOPNOTSUPP (so ls -l asks once per mount)."""
    for path in (first_message(env), env.path("INBOX"), env.path()):
        with pytest.raises(OSError) as ei:
            os.getxattr(path, name)
        assert ei.value.errno == errno.EOPNOTSUPP, (path, name)


def test_other_security_xattr_is_enodata(env):
    """Any other unknown name, including other security.* names: ENODATA."""
    path = first_message(env)
    for name in ("security.capability", "trusted.x", "user.imap"):
        with pytest.raises(OSError) as ei:
            os.getxattr(path, name)
        assert ei.value.errno == errno.ENODATA, name


def test_ls_long_asks_labels_once(env):
    """ls -l of a folder does not probe labels/ACLs per file."""
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    folder = env.path("INBOX")
    r = subprocess.run(["strace", "-f", "-e", "trace=getxattr,lgetxattr",
                        "ls", "-l", folder], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = [n for n in os.listdir(folder) if n.endswith(".eml")]
    probes = [l for l in r.stderr.splitlines() if "getxattr(" in l]
    assert len(files) > 20
    # a handful for the directory itself, not two per file
    assert len(probes) <= 6, probes[:10]
    # and ls -l still lists every file with its size
    assert len([l for l in r.stdout.splitlines() if ".eml" in l]) == len(files)


def test_mount_options_in_kernel(env):
    """The kernel mount is nosuid, nodev, type fuse.imapfs, remote-looking
    source; this session mount is -o ro, which the kernel gets too (its
    handlers refuse changes themselves as well: test_errors.py::test_erofs
    checks them with the kernel flag cleared)."""
    mnt = os.path.realpath(env.path())
    with open("/proc/mounts") as f:
        rows = [l.split() for l in f if l.split()[1] == mnt]
    assert len(rows) == 1, rows
    src, _, fstype, opts = rows[0][:4]
    opts = opts.split(",")
    assert fstype == "fuse.imapfs"
    assert src.startswith("imapfs:") and "@" in src
    assert "ro" in opts and "rw" not in opts
    assert "nosuid" in opts and "nodev" in opts
    assert "default_permissions" in opts


def test_read_past_end_and_directory_read(env):
    path = first_message(env)
    size = os.stat(path).st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(fd, 10, size) == b""
        assert os.pread(fd, 10, size + 12345) == b""
        assert len(os.pread(fd, size + 100, 0)) == size
    finally:
        os.close(fd)
    fd = os.open(env.path("INBOX"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as ei:
            os.read(fd, 10)
        assert ei.value.errno == errno.EISDIR
    finally:
        os.close(fd)


def test_name_too_long(env):
    with pytest.raises(OSError) as ei:
        os.stat(env.path("INBOX/" + "x" * 300))
    assert ei.value.errno == errno.ENAMETOOLONG


def test_mmap_works(env):
    import mmap
    path = first_message(env)
    with open(path, "rb") as f:
        data = f.read()
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            assert m[:] == data
        finally:
            m.close()


def test_nlink_and_dir_modes(env):
    st = os.stat(env.path("INBOX"))
    assert stat.S_ISDIR(st.st_mode) and st.st_nlink >= 2
    st = os.stat(first_message(env))
    assert st.st_nlink == 1


def test_fsync_succeeds(env):
    fd = os.open(first_message(env), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
