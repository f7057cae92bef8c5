"""Name resolution is bounded by the timeout (imap/resolve.c; issue 6).

In a private mount namespace (unshare -m) /etc/resolv.conf names a local
UDP "DNS server" that reads every query and never answers, with glibc's
options set to wait 20 s per attempt, 3 attempts; /etc/nsswitch.conf sends
host names to files, then DNS. Without a bound of our own getaddrinfo()
would wait a minute; the mount must fail within about its timeout, with a
clear error, and so must a read that has to reconnect after the server's
name stopped resolving.
"""

import errno
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import types

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402

TIMEOUT = 3
NAME = "mail.imapfs-dns.test"
RESOLVER_WAIT_S = 20 * 3  # what glibc would wait with the options below

SCRIPT = r"""
set -e
mount --bind "$RESOLV" /etc/resolv.conf
mount --bind "$NSS" /etc/nsswitch.conf
mount --bind "$HOSTS" /etc/hosts
exec "$@"
"""


class SilentDns:
    """A UDP socket on port 53 of a random 127.53.x.y (all of 127/8 is
    local, so no clash with a real resolver or another test run) that
    counts queries and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.addr = f"127.53.{random.randrange(256)}." \
                        f"{random.randrange(1, 255)}"
            try:
                self.sock.bind((self.addr, 53))
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        else:
            raise OSError(errno.EADDRINUSE, "no free 127.53.x.y:53")
        self.sock.settimeout(0.1)
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sock.recvfrom(4096)
                self.queries += 1
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def silent_dns():
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    dns = SilentDns()  # port 53 needs root, as the whole suite does
    try:
        yield dns
    finally:
        dns.close()


def namespace_files(tmp_path, dns) -> dict:
    """The files bound over /etc in the namespace (environment for the
    scripts) and an empty mount point at tmp_path/mnt."""
    files = {"RESOLV": ("resolv.conf", f"nameserver {dns.addr}\n"
                        "options timeout:20 attempts:3\n"),
             "NSS": ("nsswitch.conf", "hosts: files dns\n"),
             "HOSTS": ("hosts", "127.0.0.1 localhost\n"),
             "NOHOSTS": ("nohosts", "# localhost must come from DNS now\n")}
    e = dict(os.environ)
    for key, (name, text) in files.items():
        (tmp_path / name).write_text(text)
        e[key] = str(tmp_path / name)
    (tmp_path / "mnt").mkdir()
    return e


def named_argv(env, imapfs_bin, host, mnt, options):
    """imapfs argv (and password file) for the real server's port and
    credentials under the name `host`."""
    named = types.SimpleNamespace(host=host, imaps_port=env.server.imaps_port,
                                  imap_port=env.server.imap_port,
                                  user=env.server.user,
                                  password=env.server.password,
                                  cafile=env.server.cafile)
    return testenv._imapfs_argv(imapfs_bin, named, str(mnt), False,
                                ["-f", "-o", f"timeout={TIMEOUT}"] + options,
                                True)


def test_unanswered_dns_fails_the_mount_within_timeout(env, silent_dns,
                                                      imapfs_bin, tmp_path):
    e = namespace_files(tmp_path, silent_dns)
    # A name only DNS knows.
    argv, pwfile = named_argv(env, imapfs_bin, NAME, tmp_path / "mnt", [])
    start = time.monotonic()
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            "sh", "-c", SCRIPT, "sh", *argv], env=e,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=RESOLVER_WAIT_S + 30)
    finally:
        if pwfile:
            os.unlink(pwfile)
    took = time.monotonic() - start
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert silent_dns.queries > 0, f"the name never went to DNS:\n{out}"
    assert took < 3 * TIMEOUT + 5, f"failed after {took:.1f}s:\n{out}"
    assert f"resolving {NAME} timed out" in out, out


# Runs inside the namespace: mount by the name "localhost" (in the hosts
# file, and in the test certificate), list INBOX, then take the name out of
# the hosts file (so it goes to the silent DNS server) and kick the
# connections: the read of a message not cached yet must reconnect, and
# fails within the timeout. Prints "RESULT <seconds> <errno>".
RECONNECT = r"""
import os, subprocess, sys, time
sys.path.insert(0, os.environ["SUPPORT"])
import testenv
for src, dst in (("RESOLV", "/etc/resolv.conf"), ("NSS", "/etc/nsswitch.conf"),
                 ("HOSTS", "/etc/hosts")):
    subprocess.run(["mount", "--bind", os.environ[src], dst], check=True)
argv = sys.argv[1:]
mnt = argv[-1]
with open(os.environ["TRACE"], "wb") as out:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=out)
try:
    testenv.wait_for(lambda: testenv._is_mounted(mnt) or
                     proc.poll() is not None, 30, what="the mount")
    names = sorted(os.listdir(os.path.join(mnt, "INBOX")))
    subprocess.run(["mount", "--bind", os.environ["NOHOSTS"], "/etc/hosts"],
                   check=True)
    subprocess.run(["doveadm", "-c", os.environ["DOVECONF"], "kick",
                    os.environ["KICKUSER"]], check=True,
                   stdout=subprocess.DEVNULL)
    time.sleep(1)  # the BYEs arrive
    start = time.monotonic()
    err = 0
    try:
        with open(os.path.join(mnt, "INBOX", names[-1]), "rb") as f:
            f.read()
    except OSError as e:
        err = e.errno
    print("RESULT", time.monotonic() - start, err, flush=True)
finally:
    subprocess.run(["fusermount3", "-u", mnt])
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
"""


def test_unanswered_dns_fails_a_reconnect_within_timeout(env, silent_dns,
                                                         imapfs_bin,
                                                         tmp_path):
    e = namespace_files(tmp_path, silent_dns)
    trace = tmp_path / "trace"
    argv, pwfile = named_argv(env, imapfs_bin, "localhost", tmp_path / "mnt",
                              ["-d", "-o", "watch=0",
                               "-o", "listing_ttl=3600"])
    e.update(TRACE=str(trace), DOVECONF=env.server.conf,
             KICKUSER=env.server.user,
             SUPPORT=os.path.join(_ROOT, "tests", "support"))
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            sys.executable, "-c", RECONNECT, *argv], env=e,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=RESOLVER_WAIT_S + 60)
    finally:
        if pwfile:
            os.unlink(pwfile)
    with open(trace, errors="replace") as f:
        t = f.read()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out + t[-3000:]
    result = [ln.split() for ln in r.stdout.splitlines()
              if ln.startswith("RESULT")]
    assert result, out
    took, err = float(result[0][1]), int(result[0][2])
    assert err == errno.EIO, f"read: errno {err}\n{t[-3000:]}"
    assert took < 3 * TIMEOUT + 5, f"EIO after {took:.1f}s\n{t[-3000:]}"
    assert silent_dns.queries > 0, "the name never went to DNS"
    assert "resolving localhost timed out" in t, t[-3000:]
