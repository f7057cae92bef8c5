"""Cyrus IMAP and Courier IMAP for the tests, each in a Debian 12 chroot.

Debian's cyrus-imapd, courier-imap and dovecot-imapd conflict with each
other (Conflicts: imap-server), so only Dovecot is installed on the host.
Cyrus and Courier run from chroots made with `debootstrap --variant=minbase
bookworm` and the server package installed inside with apt, exactly as
Debian configures it; the servers are then changed only where a test needs
it: a TLS certificate signed by a CA made for the run (testenv.make_certs),
one user with a password, and listeners on free ports of 127.0.0.1 (the
chroot shares the host's network).

The chroots are cached below CACHE_DIR (default
/var/cache/imapfs-test/chroots, or $IMAPFS_CHROOT_CACHE): "base" (the
debootstrap, with apt's lists) and one copy of it per server package, each
rebuilt when missing or when their recorded stamp (recipe
version, suite, mirror, packages) differs.  A build happens in a temporary
directory next to the cache entry and is renamed into place only when
complete, so an interrupted build is never reused; an flock on
<name>.lock serializes builders and keeps a chroot from being replaced
while a server runs from it (runs hold the lock shared).

Each server instance runs from its own writable copy of the cached chroot
(an overlay mount, or `cp -a` where overlayfs is not available) below a
fresh directory in /tmp, so concurrent runs never share state and a cached
chroot stays pristine.  No /proc or /dev mount is made: debootstrap's /dev
nodes are enough for both servers.  Every process whose root directory is
the instance's copy is one of ours: stop() kills them all, then unmounts
the overlay and removes the copy.

Command line:  chrootserver.py prepare [cyrus] [courier]
builds (or checks) the cached chroots and prints how long that took.
"""

from __future__ import annotations

import fcntl
import imaplib
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import testenv

__all__ = ["CyrusServer", "CourierServer", "ensure_chroot", "CACHE_DIR",
           "chroot_missing_tool"]

CACHE_DIR = os.environ.get("IMAPFS_CHROOT_CACHE",
                           "/var/cache/imapfs-test/chroots")
SUITE = "bookworm"
# Bump when the recipe below changes: cached chroots are then rebuilt.
RECIPE = 2
# Per cached chroot: the Debian packages installed into it.
CHROOTS = {
    "cyrus": ["cyrus-imapd", "sasl2-bin"],
    "courier": ["courier-imap"],
}
# The plain debootstrap both are copied from (cached too: it is the slow
# part, about a minute).
BASE = "base"
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}


def chroot_missing_tool() -> str | None:
    """Why no chroot server can run here (a missing tool), or None."""
    if os.geteuid() != 0:
        return "chroot servers need root"
    for tool in ("debootstrap", "chroot", "openssl"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


def debian_mirror() -> str:
    """The Debian mirror the host's apt uses ($IMAPFS_DEBIAN_MIRROR wins).

    Reads /etc/apt/sources.list and sources.list.d (both the one-line and
    the deb822 format) for the first "deb" source of SUITE's main archive.
    """
    env = os.environ.get("IMAPFS_DEBIAN_MIRROR")
    if env:
        return env
    files = ["/etc/apt/sources.list"] + \
        sorted(glob.glob("/etc/apt/sources.list.d/*.list")) + \
        sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
                    if m:
                        fields[m.group(1).lower()] = m.group(2).split()
                if "deb" in fields.get("types", []) and \
                        SUITE in fields.get("suites", []) and \
                        fields.get("uris"):
                    return fields["uris"][0]
        else:
            for line in text.splitlines():
                w = line.split("#")[0].split()
                w = [x for x in w if not x.startswith("[")]
                if len(w) >= 3 and w[0] == "deb" and w[2] == SUITE:
                    return w[1]
    return "http://deb.debian.org/debian"


def _stamp(name: str, mirror: str) -> str:
    return (f"recipe={RECIPE} suite={SUITE} mirror={mirror} "
            f"packages={','.join(CHROOTS.get(name, []))}\n")


def _mounts_below(path: str) -> list[str]:
    """Mount points at or below path, deepest first."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1]
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                        mp)
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def _remove_tree(path: str) -> None:
    """rm -rf that first unmounts anything below (an interrupted
    debootstrap leaves its /proc and /sys mounts) and never crosses into
    another file system."""
    for mp in _mounts_below(path):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    if _mounts_below(path):
        raise RuntimeError(f"cannot unmount below {path}")
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", path],
                       timeout=600, check=True)


def _checked(argv, what: str, timeout: float = 900, **kw) -> str:
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(argv)}` exit "
                           f"{r.returncode}:\n{r.stdout[-4000:]}")
    return r.stdout


def _build_base(dest: str, mirror: str) -> None:
    """debootstrap into dest (which must not exist), with a policy-rc.d
    that keeps maintainer scripts from starting the servers later."""
    os.makedirs(dest)
    _checked(["debootstrap", "--variant=minbase", SUITE, dest, mirror],
             "debootstrap")
    policy = os.path.join(dest, "usr/sbin/policy-rc.d")
    with open(policy, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(policy, 0o755)
    _checked(["chroot", dest, "apt-get", "update"], "apt-get update",
             env=CHROOT_ENV)
    if _mounts_below(dest):
        raise RuntimeError(f"debootstrap left mounts below {dest}")


def _build(name: str, dest: str, mirror: str, log=None) -> None:
    """A copy of the base chroot with CHROOTS[name] installed, into dest
    (which must not exist)."""
    base, fd = ensure_chroot(BASE, log)
    try:
        _checked(["cp", "-a", "--reflink=auto", base, dest],
                 "copying the base chroot", timeout=600)
    finally:
        os.close(fd)
    os.unlink(os.path.join(dest, ".imapfs-stamp"))
    _checked(["chroot", dest, "apt-get", "install", "-y",
              "--no-install-recommends", *CHROOTS[name]],
             f"installing {' '.join(CHROOTS[name])} in the {name} chroot",
             env=CHROOT_ENV)
    _checked(["chroot", dest, "apt-get", "clean"], "apt-get clean",
             env=CHROOT_ENV)
    versions = _checked(["chroot", dest, "dpkg-query", "-W", *CHROOTS[name]],
                        "dpkg-query", env=CHROOT_ENV)
    with open(os.path.join(dest, ".imapfs-versions"), "w") as f:
        f.write(versions)
    if _mounts_below(dest):
        raise RuntimeError(f"apt-get left mounts below {dest}")


def ensure_chroot(name: str, log=None) -> tuple[str, int]:
    """The cached chroot for `name` ("cyrus" or "courier"), built if needed.

    Returns (path, lock_fd): lock_fd holds a shared flock on the cache
    entry; the caller keeps it open while it uses the chroot and closes it
    afterwards.  Raises RuntimeError (with the failing command's output)
    when the build fails.  `log`, if given, is called with progress text.
    """
    mirror = debian_mirror()
    stamp = _stamp(name, mirror)
    os.makedirs(CACHE_DIR, mode=0o755, exist_ok=True)
    path = os.path.join(CACHE_DIR, name)
    fd = os.open(os.path.join(CACHE_DIR, name + ".lock"),
                 os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with open(os.path.join(path, ".imapfs-stamp")) as f:
                current = f.read() == stamp
        except OSError:
            current = False
        if not current:
            # Under the lock, leftovers of earlier builds are stale.
            for old in glob.glob(os.path.join(CACHE_DIR, f".{name}.*")):
                _remove_tree(old)
            t0 = time.monotonic()
            if log:
                log(f"building the {name} chroot in {path} from {mirror}")
            tmp = tempfile.mkdtemp(prefix=f".{name}.build-", dir=CACHE_DIR)
            os.rmdir(tmp)
            try:
                if name == BASE:
                    _build_base(tmp, mirror)
                else:
                    _build(name, tmp, mirror, log)
                with open(os.path.join(tmp, ".imapfs-stamp"), "w") as f:
                    f.write(stamp)
            except BaseException:
                _remove_tree(tmp)
                raise
            if os.path.lexists(path):
                trash = tempfile.mkdtemp(prefix=f".{name}.old-",
                                         dir=CACHE_DIR)
                os.rename(path, os.path.join(trash, "root"))
                os.rename(tmp, path)
                _remove_tree(trash)
            else:
                os.rename(tmp, path)
            if log:
                log(f"built the {name} chroot in "
                    f"{time.monotonic() - t0:.0f}s")
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return path, fd


class _ChrootServer(testenv.ImapServer):
    """One server instance running from a private copy of a cached chroot.

    Subclasses set CHROOT (the cache entry), NAME, prefix and delimiter,
    and implement _configure() (edit files below self.top, add the user)
    and _launch() (start the daemons).
    """

    CHROOT = ""
    NAME = ""

    def __init__(self, basedir: str, user: str = "alice",
                 password: str | None = None):
        self.basedir = os.path.abspath(basedir)
        self.user = user
        self.password = password if password is not None else \
            "pw-" + secrets.token_hex(12)
        self.ssl = True
        self.root = ""       # per-run directory below /tmp
        self.top = ""        # the chroot copy the server runs in
        self.overlay = False
        self.version = ""    # the server package's Debian version
        self._lock_fd: int | None = None
        self._started = False
        self._procs: list[subprocess.Popen] = []

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        why = chroot_missing_tool()
        if why:
            raise RuntimeError(why)
        os.makedirs(self.basedir, exist_ok=True)
        self._started = True
        try:
            cached, self._lock_fd = ensure_chroot(self.CHROOT)
            with open(os.path.join(cached, ".imapfs-versions")) as f:
                self.version = f.read().split()[1]
            self.root = tempfile.mkdtemp(prefix=f"imapfs-{self.NAME}-",
                                         dir="/tmp")
            os.chmod(self.root, 0o755)
            self._make_copy(cached)
            ssl_dir = os.path.join(self.root, "ssl")
            os.mkdir(ssl_dir)
            self._certs = testenv.make_certs(ssl_dir, os.path.basename(
                self.root))
            self.cafile = self._certs["cafile"]
            self.imap_port = testenv._free_port()
            self.imaps_port = testenv._free_port()
            while self.imaps_port == self.imap_port:
                self.imaps_port = testenv._free_port()
            self._make_run_dirs()
            self._configure()
            self._launch()
            self._wait_ready()
        except BaseException as e:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"{self.NAME} start failed: {e}\n{tail}") \
                from e

    def _make_copy(self, cached: str) -> None:
        self.top = os.path.join(self.root, "top")
        upper, work = (os.path.join(self.root, d) for d in ("upper", "work"))
        for d in (self.top, upper, work):
            os.mkdir(d)
        r = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={cached},upperdir={upper},workdir={work}", self.top],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=60)
        if r.returncode == 0:
            self.overlay = True
            return
        os.rmdir(self.top)
        _checked(["cp", "-a", "--reflink=auto", cached, self.top],
                 "copying the chroot", timeout=600)

    def _make_run_dirs(self) -> None:
        """What systemd-tmpfiles does at boot: the packages' "d" entries
        below /run (their daemons expect those directories)."""
        for conf in sorted(glob.glob(os.path.join(
                self.top, "usr/lib/tmpfiles.d/*.conf"))):
            with open(conf) as f:
                for line in f:
                    w = line.split()
                    if len(w) >= 5 and w[0] == "d" and \
                            w[1].startswith("/run/"):
                        self.run_in(["install", "-d", "-m", w[2], "-o", w[3],
                                     "-g", w[4], w[1]])

    def run_in(self, argv, input: str | None = None,
               what: str | None = None) -> str:
        """Runs argv inside the chroot with a clean environment; raises
        RuntimeError on failure.  Secrets go through `input`, not argv."""
        r = subprocess.run(["chroot", self.top, *argv], input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=CHROOT_ENV, timeout=120,
                           stdin=None if input is not None else
                           subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{what or argv[0]} in the {self.NAME} "
                               f"chroot: exit {r.returncode}:\n{r.stdout}")
        return r.stdout

    def file(self, path: str) -> str:
        """Host path of a file inside the chroot."""
        return os.path.join(self.top, path.lstrip("/"))

    def _edit(self, path: str, fn) -> None:
        with open(self.file(path)) as f:
            text = f.read()
        with open(self.file(path), "w") as f:
            f.write(fn(text))

    def _wait_ready(self) -> None:
        def greets():
            try:
                with socket.create_connection((self.host, self.imaps_port),
                                              timeout=2) as s:
                    return s.fileno() >= 0
            except OSError:
                return False
        testenv.wait_for(greets, 30, what=f"{self.NAME} listener")
        c = testenv.wait_for(self._try_login, 30, interval=0.2,
                             what=f"{self.NAME} login")
        try:
            typ, data = c.namespace()
            personal = re.match(rb'\(\("([^"]*)" "(.)"\)', data[0] or b"")
            if typ != "OK" or not personal or \
                    personal.group(1).decode() != self.prefix or \
                    personal.group(2).decode() != self.delimiter:
                raise RuntimeError(f"{self.NAME}: NAMESPACE {data!r}, "
                                   f"expected prefix {self.prefix!r} "
                                   f"delimiter {self.delimiter!r}")
            self._check(*c.select("INBOX"), "SELECT INBOX")
        finally:
            c.logout()

    def _try_login(self):
        try:
            return self.client()
        except (OSError, EOFError, imaplib.IMAP4.error):
            return None

    def processes(self) -> set[int]:
        """Every live process whose root directory is our chroot copy."""
        found = set()
        if not self.top:
            return found
        top = os.path.realpath(self.top)
        for pid in testenv._all_pids():
            try:
                if os.readlink(f"/proc/{pid}/root") == top and \
                        testenv._pid_alive(pid):
                    found.add(pid)
            except OSError:
                pass
        return found

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(glob.glob(os.path.join(self.root, "*.log")))\
                if self.root else []:
            try:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            out.append(f"{os.path.basename(path)} tail:\n" + "".join(tail))
        return "\n".join(out) or f"(no {self.NAME} log)"

    def stop(self) -> None:
        """Idempotent: kills every process in the chroot copy, unmounts
        and removes it, releases the cache lock."""
        if not self._started:
            return
        self._started = False
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            victims = self.processes()
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                testenv.wait_for(lambda: not self.processes(), wait,
                                 what=f"{self.NAME} processes to exit")
                break
            except TimeoutError:
                pass
        for p in self._procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()
        leftover = self.processes()
        if self.root:
            for path in glob.glob(os.path.join(self.root, "*.log")):
                try:
                    shutil.copy(path, self.basedir)
                except OSError:
                    pass
            try:
                _remove_tree(self.root)
            except (RuntimeError, subprocess.SubprocessError) as e:
                sys.stderr.write(f"{self.NAME}: {e}\n")
            self.root = ""
        self.top = ""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if leftover:
            raise RuntimeError(f"{self.NAME}: processes {sorted(leftover)} "
                               f"survived SIGKILL")


class CyrusServer(_ChrootServer):
    """Debian 12's Cyrus IMAP 3.6 as packaged: altnamespace: no, so the
    personal namespace is "INBOX." with "." as separator; INBOX is created
    at the first login (Debian's autocreate_quota: 0).  With
    unixhierarchysep=True ("unixhierarchysep: yes") the separator is "/".

    Changes to Debian's configuration: tls_server_cert/key; an "imaps"
    service; "imap" listens on 127.0.0.1:<port>; the other TCP services
    (pop3, nntp, http, sieve) are commented out so runs cannot collide on
    their fixed ports; the user is added to /etc/sasldb2 with saslpasswd2
    (Debian's sasl_pwcheck_method: auxprop reads it).
    """

    CHROOT = "cyrus"
    NAME = "cyrus"
    prefix = "INBOX."
    delimiter = "."

    def __init__(self, basedir: str, unixhierarchysep: bool = False, **kw):
        super().__init__(basedir, **kw)
        self.unixhierarchysep = unixhierarchysep
        if unixhierarchysep:
            self.NAME = "cyrus-unixsep"
            self.prefix = "INBOX/"
            self.delimiter = "/"

    def _configure(self) -> None:
        d = "/etc/imapfs-test"
        os.makedirs(self.file(d))
        for k in ("cert", "key"):
            shutil.copy(self._certs[k], self.file(f"{d}/server.{k}"))
        self.run_in(["chown", "-R", "cyrus:mail", d])
        os.chmod(self.file(d), 0o750)

        def imapd_conf(text):
            settings = {"tls_server_cert": f"{d}/server.cert",
                        "tls_server_key": f"{d}/server.key"}
            if self.unixhierarchysep:
                settings["unixhierarchysep"] = "yes"
            for k, v in settings.items():
                text, n = re.subn(rf"(?m)^{k}:.*$", f"{k}: {v}", text)
                if n == 0:
                    text += f"{k}: {v}\n"
            return text
        self._edit("/etc/imapd.conf", imapd_conf)

        def cyrus_conf(text):
            out = []
            for line in text.splitlines():
                w = line.split()
                if w and w[0] in ("pop3", "pop3s", "nntp", "nntps", "http",
                                  "https", "sieve"):
                    out.append("#" + line)
                elif w and w[0] == "imap":
                    out.append(line.replace(
                        'listen="imap"',
                        f'listen="127.0.0.1:{self.imap_port}"'))
                    out.append(f'\timaps\t\tcmd="imapd -s -U 30" '
                               f'listen="127.0.0.1:{self.imaps_port}" '
                               f'prefork=0 maxchild=100')
                else:
                    out.append(line)
            return "\n".join(out) + "\n"
        self._edit("/etc/cyrus.conf", cyrus_conf)
        # saslpasswd2 -p reads the password from stdin (never argv).
        self.run_in(["saslpasswd2", "-p", "-c", self.user],
                    input=self.password, what="saslpasswd2")

    def _launch(self) -> None:
        log = open(os.path.join(self.root, "cyrmaster.log"), "w")
        with log:
            # Foreground master (Debian's init script adds -d); it forks
            # the services, which stay in the chroot.
            self._procs.append(subprocess.Popen(
                ["chroot", self.top, "/usr/sbin/cyrmaster", "-p",
                 "/run/cyrus-master.pid"], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=CHROOT_ENV))


class CourierServer(_ChrootServer):
    """Debian 12's Courier IMAP 5.0 as packaged: personal namespace
    "INBOX." with "." as separator, mail in ~/Maildir, logins checked by
    courier-authdaemon's authpam (Debian's authmodulelist), so the user is
    a system user of the chroot with a password set by chpasswd.

    Changes to Debian's configuration: ADDRESS/PORT in /etc/courier/imapd
    and SSLADDRESS/SSLPORT in imapd-ssl; our key and certificate in
    /etc/courier/imapd.pem (Debian's TLS_CERTFILE).  The Maildir gets a
    quota (`maildirmake -q QUOTA_BYTES S`) so GETQUOTAROOT reports
    STORAGE; without one Courier answers `* QUOTA "ROOT"` with no
    resources.
    """

    CHROOT = "courier"
    NAME = "courier"
    prefix = "INBOX."
    delimiter = "."
    QUOTA_BYTES = 200 << 20    # Courier rounds KiB up: keep it exact

    def _configure(self) -> None:
        with open(self.file("/etc/courier/imapd.pem"), "w") as out:
            for k in ("key", "cert"):
                with open(self._certs[k]) as f:
                    out.write(f.read())

        def setvar(name, value):
            return lambda text: re.sub(rf"(?m)^{name}=.*$",
                                       f"{name}={value}", text)
        self._edit("/etc/courier/imapd", setvar("ADDRESS", "127.0.0.1"))
        self._edit("/etc/courier/imapd", setvar("PORT", self.imap_port))
        self._edit("/etc/courier/imapd-ssl",
                   setvar("SSLADDRESS", "127.0.0.1"))
        self._edit("/etc/courier/imapd-ssl",
                   setvar("SSLPORT", self.imaps_port))
        self.run_in(["useradd", "-m", "-s", "/usr/sbin/nologin", self.user])
        self.run_in(["chpasswd"], input=f"{self.user}:{self.password}\n",
                    what="chpasswd")
        maildir = f"/home/{self.user}/Maildir"
        for argv in (["maildirmake", maildir],
                     ["maildirmake", "-q", f"{self.QUOTA_BYTES}S", maildir]):
            self.run_in(["runuser", "-u", self.user, "--", *argv])

    def _launch(self) -> None:
        # Each script daemonizes (courierlogger) and returns.
        for argv in (["/usr/sbin/authdaemond", "start"],
                     ["/usr/sbin/imapd", "start"],
                     ["/usr/sbin/imapd-ssl", "start"]):
            self.run_in(argv)


def _main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] != "prepare":
        sys.stderr.write("usage: chrootserver.py prepare [cyrus] "
                         "[courier]\n")
        return 2
    why = chroot_missing_tool()
    if why:
        sys.stderr.write(f"chrootserver: {why}\n")
        return 1
    failed = []

    def prepare(name):
        t0 = time.monotonic()
        try:
            path, fd = ensure_chroot(
                name, log=lambda s: print(f"chrootserver: {s}", flush=True))
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            print(f"chrootserver: {name}: {e}", flush=True)
            failed.append(name)
            return
        os.close(fd)
        with open(os.path.join(path, ".imapfs-versions")) as f:
            versions = " ".join(f.read().split())
        print(f"chrootserver: {name} chroot ready in "
              f"{time.monotonic() - t0:.1f}s ({path}: {versions})",
              flush=True)

    # One after the other: unpacking is CPU bound, and both copy the base.
    for name in argv[1:] or sorted(CHROOTS):
        prepare(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
