"""Smoke test of the INSTALLED Debian package imapfs.

contrib/check.sh (phase "deb") builds the package with
`dpkg-buildpackage -us -uc -b` in a temporary copy of the tree, installs it
with `apt-get install -y ./imapfs_*.deb`, runs this file and removes the
package again.  Nothing here uses the build directory: the binary is
/usr/bin/imapfs as dpkg installed it (owned by the package imapfs, of the
version in debian/changelog), mounting a private Dovecot and reading a
message byte-exact; man(1) finds imapfs(1); the unit and the docs are where
the package puts them.

Run by hand (as root, the package installed):
    pytest-3 -v -p no:cacheprovider tests/package
Skipped (exit 77) only when dpkg-buildpackage is not installed.
"""

import gzip
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import testenv  # noqa: E402

BIN = "/usr/bin/imapfs"
MAN = "/usr/share/man/man1/imapfs.1.gz"
UNIT = "/usr/lib/systemd/user/imapfs@.service"
DOC = "/usr/share/doc/imapfs"

if shutil.which("dpkg-buildpackage") is None:
    pytest.skip("dpkg-buildpackage is not installed (apt-get install "
                "dpkg-dev): no package to test", allow_module_level=True)


def run(argv, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60, **kw)


def changelog_version():
    r = run(["dpkg-parsechangelog", "-l",
             os.path.join(ROOT, "debian", "changelog"), "-S", "Version"])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def package():
    """The installed package's file list; fails unless imapfs of this
    tree's version is installed."""
    r = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}",
             "imapfs"])
    assert r.returncode == 0 and r.stdout.startswith("ii"), \
        "package imapfs is not installed (contrib/check.sh phase deb " \
        f"builds and installs it): {r.stdout}{r.stderr}"
    assert r.stdout.split()[-1] == changelog_version()
    r = run(["dpkg-query", "-L", "imapfs"])
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split("\n"))


def test_package_contents(package):
    for path in (BIN, MAN, UNIT, DOC + "/copyright",
                 DOC + "/README.md.gz", DOC + "/SEMANTICS.md.gz",
                 DOC + "/config.example",
                 DOC + "/oauth2-token-example.sh"):
        assert path in package, f"{path} is not in the package"
        assert os.path.isfile(path), path
    r = run(["dpkg-query", "-S", BIN])
    assert r.stdout.startswith("imapfs: "), r.stdout + r.stderr
    with open(UNIT) as f, \
            open(os.path.join(ROOT, "contrib", "imapfs@.service")) as g:
        assert f.read() == g.read()
    with gzip.open(DOC + "/README.md.gz", "rt") as f, \
            open(os.path.join(ROOT, "README.md")) as g:
        assert f.read() == g.read()
    depends = run(["dpkg-query", "-W", "-f", "${Depends}", "imapfs"]).stdout
    names = {d.split()[0] for d in depends.split(", ")}
    assert {"fuse3", "libfuse3-3", "libglib2.0-0", "libssl3"} <= names, \
        depends


def test_version(package):
    r = run([BIN, "--version"])
    assert r.returncode == 0, r.stderr
    upstream = changelog_version().rsplit("-", 1)[0]
    assert r.stdout.startswith(f"imapfs {upstream} "), r.stdout


def test_man_page(package):
    """`man -w imapfs` finds the packaged page (a copy that `meson
    install` put below /usr/local would come first, so all are asked for),
    and it renders."""
    r = run(["man", "-w", "imapfs"])
    assert r.returncode == 0, r.stderr
    r = run(["man", "-a", "-w", "imapfs"])
    assert MAN in r.stdout.split(), r.stdout + r.stderr
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = run(["man", "-l", MAN], env=env)
    assert r.returncode == 0, r.stderr
    assert "password_command" in r.stdout and "fusermount3" in r.stdout


MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@example.org>\r\n"
           b"Subject: package smoke test\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n"
           b"\r\n"
           b"Gr\xc3\xbc\xc3\x9fe aus dem Paket.\r\n" +
           b"".join(b"line %05d of the body\r\n" % i for i in range(3000)))


def test_mount_read_unmount(package, tmp_path):
    """The installed binary mounts a real Dovecot, a message reads back
    exactly as the server stores it, and fusermount3 -u unmounts."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with testenv.DovecotServer(str(tmp_path / "dovecot")) as server:
        uid = server.append("INBOX", MESSAGE)
        r = testenv.mount_imapfs(BIN, server, str(mnt))
        try:
            assert r.returncode == 0, r.stderr
            pid = testenv.daemon_pid(str(mnt))
            assert pid is not None
            assert os.readlink(f"/proc/{pid}/exe") == BIN
            with open(mnt / "INBOX" / f"{uid}.eml", "rb") as f:
                data = f.read()
            assert data == MESSAGE
        finally:
            testenv.unmount(str(mnt))
        assert not os.path.ismount(mnt)
