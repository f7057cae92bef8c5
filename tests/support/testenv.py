"""A private Dovecot IMAP server, sample mail and mount helpers for imapfs.

Stdlib only; runs as root under /usr/bin/python3 (Debian 12, Dovecot 2.3).
Used by the integration tests, the demo and the benchmark scripts.

The server runs from a fresh directory below /tmp (UNIX socket paths must be
short and every parent directory must be traversable by the unprivileged
Dovecot users) and needs no system state: its own base_dir, state_dir, log,
certificates (a CA generated per run) and a Maildir++ store owned by
"nobody".  The hierarchy delimiter is ".", the listescape plugin lets
mailbox names contain "/".
"""

from __future__ import annotations

import base64
import datetime
import email.policy
import email.utils
import imaplib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl as _ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from email.message import EmailMessage

__all__ = [
    "Service",
    "ImapServer",
    "DovecotServer",
    "make_certs",
    "sample_messages",
    "big_message",
    "populate_sample",
    "mount_imapfs",
    "unmount",
    "daemon_pid",
    "mutf7_encode",
    "imap_quote",
    "wait_for",
]

MAIL_UID = 65534  # nobody
MAIL_GID = 65534  # nogroup


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02,
             what: str = "condition"):
    """Poll predicate() until it returns a true value; return that value.

    Raises TimeoutError naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for "
                               f"{what}")
        time.sleep(interval)


def process_umask() -> int:
    """The umask of this process, which the imapfs it starts inherits: by
    default the mount shows files 0666 and folders 0777 minus it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise RuntimeError("no Umask in /proc/self/status")


def mount_modes(read_only: bool = False, umask: int | None = None):
    """(file mode, folder mode) of a mount started by this process."""
    m = process_umask() if umask is None else umask
    if read_only:
        m |= 0o222
    return 0o666 & ~m, 0o777 & ~m


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def imap_quote(s: str | bytes) -> str:
    """An IMAP quoted string (imaplib sends arguments verbatim)."""
    if isinstance(s, bytes):
        s = s.decode("ascii")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mutf7_encode(name: str) -> str:
    """RFC 3501 modified UTF-7 encoding of a mailbox name."""
    out = []
    buf = []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode("ascii")
                       .rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(name: str) -> str:
    """Inverse of mutf7_encode (lenient; for test bookkeeping only)."""
    def repl(m):
        body = m.group(1)
        if body == "":
            return "&"
        b64 = body.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        return base64.b64decode(b64).decode("utf-16-be")
    return re.sub(r"&([^-]*)-", repl, name)


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:
        return []
    return [a.decode("utf-8", "surrogateescape")
            for a in raw.rstrip(b"\0").split(b"\0")]


def _proc_ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    rest = data[data.rfind(")") + 2:].split()
    try:
        return int(rest[1])
    except (IndexError, ValueError):
        return None


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return False
    state = data[data.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X")


def _run(argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(argv, **kw)


def make_certs(directory: str, label: str) -> dict[str, str]:
    """A CA made for this run and a server certificate it signs.

    The server certificate (P-256) is valid for DNS:localhost and
    IP:127.0.0.1 for two days; `label` goes into the CA's common name.
    Files are written to `directory` (which must exist); returns their paths
    as {"cafile", "cakey", "cert", "key"}.  The CA certificate is world
    readable, the keys keep openssl's default mode.
    """
    d = directory
    ca_key, ca_crt = f"{d}/ca.key", f"{d}/ca.crt"
    key, csr, crt = f"{d}/server.key", f"{d}/server.csr", f"{d}/server.crt"
    ext = f"{d}/ext.cnf"
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt,
         "-days", "2", "-subj", "/CN=imapfs test CA " + label,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj",
         "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
         ca_key, "-CAcreateserial", "-out", crt, "-days", "2",
         "-extfile", ext],
    ]
    for argv in steps:
        res = _run(argv)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{res.stderr}")
    os.chmod(ca_crt, 0o644)
    return {"cafile": ca_crt, "cakey": ca_key, "cert": crt, "key": key}


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

class Service:
    """A context manager for anything with start() and stop() (stop() must
    be idempotent)."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class ImapServer(Service):
    """What the tests use of a real IMAP server; the servers subclass it.

    A subclass sets host, delimiter, prefix (the personal namespace prefix,
    "" or e.g. "INBOX."), user, password, ssl, imap_port (plain with
    STARTTLS), imaps_port (implicit TLS, 0 without ssl) and cafile, and
    implements start() and stop(); it may override _after_create() (called
    after each CREATE).  Context manager: start() on entry, stop() on exit.
    """

    host = "127.0.0.1"
    delimiter = "."
    prefix = ""
    user = ""
    password = ""
    ssl = True
    imap_port = 0
    imaps_port = 0
    cafile = ""

    def _after_create(self) -> None:
        pass

    # -- client access -------------------------------------------------------
    def ssl_context(self) -> _ssl.SSLContext:
        ctx = _ssl.create_default_context(cafile=self.cafile or None)
        return ctx

    def client(self, user: str | None = None,
               login: bool = True) -> imaplib.IMAP4:
        """A logged-in (unless login=False) imaplib connection (IMAP4_SSL
        when ssl=True), as `user` (default: the main user; others from
        self.passwords)."""
        if self.ssl:
            c = imaplib.IMAP4_SSL(self.host, self.imaps_port,
                                  ssl_context=self.ssl_context(), timeout=60)
        else:
            c = imaplib.IMAP4(self.host, self.imap_port, timeout=60)
        if login:
            user = user or self.user
            c.login(user, self.password if user == self.user else
                    self.passwords[user])
        return c

    @staticmethod
    def _check(typ, data, what):
        if typ != "OK":
            raise RuntimeError(f"{what}: {typ} {data!r}")
        return data

    def server_name(self, name) -> str:
        """The mUTF-7 server name for a UTF-8 '/'-separated name.

        The personal namespace prefix (e.g. "INBOX.") is put in front of
        every name but INBOX itself.

        `name` may also be a tuple/list of components, which allows a
        component that itself contains '/'.
        """
        if isinstance(name, (tuple, list)):
            parts = list(name)
        else:
            parts = name.split("/")
        if parts and parts[0].upper() == "INBOX" and len(parts) == 1:
            return "INBOX"
        return self.prefix + self.delimiter.join(mutf7_encode(p)
                                                 for p in parts)

    def create_mailbox(self, name) -> None:
        c = self.client()
        try:
            self._check(*c.create(imap_quote(self.server_name(name))),
                        f"CREATE {name!r}")
        finally:
            c.logout()
        self._after_create()

    def delete_mailbox(self, name) -> None:
        c = self.client()
        try:
            self._check(*c.delete(imap_quote(self.server_name(name))),
                        f"DELETE {name!r}")
        finally:
            c.logout()

    def append(self, mailbox, message: bytes, flags: str = "",
               internaldate: datetime.datetime | None = None) -> int:
        c = self.client()
        try:
            return self._append(c, mailbox, message, flags, internaldate)
        finally:
            c.logout()

    def append_many(self, mailbox, items) -> list[int]:
        """APPEND (message, flags, internaldate) tuples over one connection."""
        c = self.client()
        try:
            return [self._append(c, mailbox, *it) for it in items]
        finally:
            c.logout()

    def _append(self, c, mailbox, message, flags, internaldate) -> int:
        if internaldate is not None and internaldate.tzinfo is None:
            internaldate = internaldate.replace(tzinfo=datetime.timezone.utc)
        date = imaplib.Time2Internaldate(internaldate) if internaldate \
            else None
        fl = f"({flags})" if flags else None
        data = self._check(*c.append(imap_quote(self.server_name(mailbox)),
                                     fl, date, message),
                           f"APPEND to {mailbox!r}")
        m = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0] or b"")
        if not m:
            raise RuntimeError(f"no APPENDUID in {data!r}")
        return int(m.group(1))


class DovecotServer(ImapServer):
    """A private Dovecot on 127.0.0.1 in a temp dir; context manager."""

    def __init__(self, basedir: str, user: str = "alice",
                 password: str | None = None, ssl: bool = True,
                 inbox_prefix: str = "", other_users: tuple = (),
                 acl: bool = False, quota: bool = False,
                 quota_rule: str = "*:storage=1G",
                 special_use: dict | None = None,
                 quota_kb: int | None = None,
                 without_caps: tuple[str, ...] = (),
                 oauth2_introspection_url: str | None = None,
                 oauth2_mechanisms: tuple[str, ...] = ("xoauth2",
                                                       "oauthbearer"),
                 max_userip_connections: int = 1000,
                 idle_notify_interval: str | None = None):
        """`inbox_prefix` is the personal namespace's prefix ("" as Dovecot
        ships, "INBOX." as Courier and Debian's Cyrus use it).
        `other_users` are more accounts (passwords in self.passwords).
        `acl` turns on the acl plugin (vfile ACLs) and a namespace of
        other users' mailboxes shared with this one, prefix
        "shared.<user>." (Dovecot's "shared.%%u."), without the listescape
        plugin (names cannot contain "/" then). `quota` turns on the
        quota plugin (QUOTA extension) with `quota_rule` (1 GiB of
        storage); `quota_kb` is the same with a storage limit of that many
        KiB (an APPEND beyond it gets NO [OVERQUOTA]). `special_use`
        ({mailbox: "\\\\Trash"}) configures special-use attributes (and
        the SPECIAL-USE capability). `without_caps`: capabilities the
        server must not announce (e.g. ("UIDPLUS", "MOVE", "LITERAL+",
        "NOTIFY")), before and after login. `oauth2_introspection_url`
        adds Dovecot's oauth2 passdb (XOAUTH2 and OAUTHBEARER, besides the
        passwords) asking that URL (introspection_mode = post) whether a
        token is active, for whom: the reply's "username" and "active":
        true. `oauth2_mechanisms` are the SASL mechanisms it offers for
        tokens. `max_userip_connections` is Dovecot's
        mail_max_userip_connections (sessions of one user from one
        address). `idle_notify_interval` is Dovecot's
        imap_idle_notify_interval (default "2 mins": how often an IDLE
        with nothing to report gets "* OK Still here"), e.g. "60 mins" for
        a server that stays silent during IDLE."""
        self.max_userip_connections = max_userip_connections
        self.idle_notify_interval = idle_notify_interval
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_mechanisms = tuple(oauth2_mechanisms)
        self.quota_kb = quota_kb
        self.without_caps = tuple(c.upper() for c in without_caps)
        self._imap_capability = ""   # set by _drop_caps()
        self.basedir = os.path.abspath(basedir)
        self.user = user
        self.password = password if password is not None else \
            "pw-" + secrets.token_hex(12)
        self.ssl = ssl
        # {mailbox name: "\\Trash"}: special-use attributes (and the
        # SPECIAL-USE capability) configured in the namespace.
        self.special_use = dict(special_use or {})
        self.inbox_prefix = inbox_prefix
        self.prefix = inbox_prefix
        self.acl = acl
        self.quota = quota or bool(quota_kb)
        self.quota_rule = f"*:storage={quota_kb}K" if quota_kb \
            else quota_rule
        self.passwords = {user: self.password}
        for u in other_users:
            self.passwords[u] = "pw-" + secrets.token_hex(12)
        self.imap_port = 0
        self.imaps_port = 0
        self.cafile = ""
        self.root = ""          # runtime directory (below /tmp)
        self.conf = ""
        self.log_path = ""
        self.mail_root = ""     # the user's Maildir++ root (INBOX)
        self._master_pid: int | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        if not shutil.which("dovecot"):
            raise RuntimeError("dovecot is not installed")
        os.makedirs(self.basedir, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix="imapfs-dc-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self._started = True
        try:
            self._prepare()
            early = self.launch_master()
            if early is not None:
                raise RuntimeError("dovecot failed to start:\n" + early +
                                   "\n" + self.log_tail())
            self._master_pid = self._read_master_pid()
            self._wait_ready()
            if self.without_caps:
                self._drop_caps()
        except BaseException as e:
            tail = self.log_tail()
            self.stop()
            if isinstance(e, RuntimeError):
                raise
            raise RuntimeError(f"dovecot start failed: {e!r}\n" + tail) \
                from e

    def launch_master(self, name: str = "dovecot.stderr") -> str | None:
        """Runs the dovecot master (it daemonizes); returns None on success,
        else what it printed. Its stdout/stderr go to a file under root,
        not a pipe we would wait on forever."""
        out = os.path.join(self.root, name)
        with open(out, "w+") as f:
            r = subprocess.run(["dovecot", "-c", self.conf], stdout=f,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=60)
            f.seek(0)
            early = f.read()
        return None if r.returncode == 0 else early

    def _read_master_pid(self) -> int:
        path = os.path.join(self.root, "run", "master.pid")

        def pid():
            # The file may exist before its content is written.
            try:
                with open(path) as f:
                    return int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                return None
        wait_for(lambda: pid() is not None, 10, what="dovecot master.pid")
        return pid()

    def _wait_ready(self) -> None:
        """Wait until the listeners accept connections and a login works."""
        def greets():
            try:
                with socket.create_connection((self.host, self.imap_port),
                                              timeout=2) as s:
                    return s.recv(64).startswith(b"* OK")
            except OSError:
                return False
        wait_for(greets, 15, what="dovecot greeting")
        c = self.client()
        try:
            c.select("INBOX")
        finally:
            c.logout()
        # INBOX was created by the mail process as nobody already; ensure
        # anything else we made is owned by nobody too.
        self._chown_mail()

    def capabilities(self, login: bool = True) -> list[str]:
        """The capabilities announced after login (or before, in reply to
        CAPABILITY on a fresh connection), upper-case."""
        c = self.client(login=login)
        try:
            typ, data = c.capability()
            self._check(typ, data, "CAPABILITY")
            return data[0].decode().upper().split()
        finally:
            try:
                c.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def _drop_caps(self) -> None:
        """Dovecot's imap_capability replaces the whole list: take the
        default one, leave out without_caps, restart the server with it."""
        keep = [c for c in self.capabilities()
                if c not in self.without_caps]
        self._imap_capability = " ".join(keep)
        self._restart()
        got = self.capabilities()
        left = [c for c in self.without_caps if c in got]
        if left:
            raise RuntimeError(f"dovecot still announces {left}")

    def _restart(self) -> None:
        """Stops the master and starts it again with a rewritten config
        (same ports, certificates and mail)."""
        master = self._master_pid
        os.kill(master, signal.SIGTERM)
        wait_for(lambda: not _pid_alive(master), 10,
                 what="dovecot master exit")
        pidfile = os.path.join(self.root, "run", "master.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        with open(self.conf, "w") as f:
            f.write(self._config_text(os.path.join(self.root, "passwd")))
        early = self.launch_master("dovecot-restart.stderr")
        if early is not None:
            raise RuntimeError("dovecot failed to restart:\n" + early)
        self._master_pid = self._read_master_pid()
        self._wait_ready()

    def _prepare(self) -> None:
        r = self.root
        for d in ("run", "state", "home", "mail", "ssl"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        os.chmod(os.path.join(r, "run"), 0o755)
        self.log_path = os.path.join(r, "dovecot.log")
        self.home = os.path.join(r, "home", self.user)
        self.mail_root = os.path.join(r, "mail", self.user)
        for u in self.passwords:
            for d in (os.path.join(r, "home", u), os.path.join(r, "mail", u)):
                os.makedirs(d, exist_ok=True)
                os.chown(d, MAIL_UID, MAIL_GID)
                os.chmod(d, 0o700)
        if self.acl:
            # The shared-mailbox dictionary is written by the mail
            # processes (as nobody).
            os.makedirs(os.path.join(r, "acl"), exist_ok=True)
            os.chown(os.path.join(r, "acl"), MAIL_UID, MAIL_GID)
        self.cafile = make_certs(os.path.join(r, "ssl"),
                                 os.path.basename(r))["cafile"]
        passwd = os.path.join(r, "passwd")
        with open(passwd, "w") as f:
            for u, pw in self.passwords.items():
                f.write(f"{u}:{{PLAIN}}{pw}::::::\n")
        os.chown(passwd, 0, _gid_of("dovecot"))
        os.chmod(passwd, 0o640)
        self.imap_port = _free_port()
        self.imaps_port = _free_port() if self.ssl else 0
        while self.ssl and self.imaps_port == self.imap_port:
            self.imaps_port = _free_port()
        self.conf = os.path.join(r, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(self._config_text(passwd))

    def _config_text(self, passwd: str) -> str:
        r = self.root
        if self.ssl:
            ssl_part = f"""ssl = yes
ssl_cert = <{r}/ssl/server.crt
ssl_key = <{r}/ssl/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
"""
            imaps = f"""  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
"""
        else:
            ssl_part = "ssl = no\ndisable_plaintext_auth = no\n"
            imaps = """  inet_listener imaps {
    port = 0
  }
"""
        return f"""# generated by tests/support/testenv.py
base_dir = {r}/run
state_dir = {r}/state
instance_name = imapfs-test-{os.path.basename(r)}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 100
first_valid_gid = 100
last_valid_uid = 0
auth_mechanisms = plain login{self._oauth2_mechs()}
{ssl_part}
mail_location = maildir:{r}/mail/%u
mail_plugins = {self._plugins()}
mail_fsync = never
{self._extra_config()}namespace inbox {{
  inbox = yes
  separator = {self.delimiter}
  prefix = {self.inbox_prefix}
{self._special_use_conf()}}}
{self._acl_config() if self.acl else ""}{self._quota_config() if self.quota else ""}{self._oauth2_passdb()}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_GID} home={r}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
{imaps}  process_min_avail = 0
}}
service imap {{
  process_limit = 256
  # Dovecot's 256 MB default is too little for a folder of a million
  # messages (its maildir sync of one ran out of memory).
  vsz_limit = 2G
}}
protocol imap {{
  mail_max_userip_connections = {self.max_userip_connections}
{self._imap_config()}}}
"""

    def _extra_config(self) -> str:
        return ""

    def _oauth2_mechs(self) -> str:
        if not self.oauth2_introspection_url:
            return ""
        return "".join(" " + m for m in self.oauth2_mechanisms)

    def _oauth2_passdb(self) -> str:
        if not self.oauth2_introspection_url:
            return ""
        ext = os.path.join(self.root, "dovecot-oauth2.conf.ext")
        with open(ext, "w") as f:
            f.write(f"""introspection_mode = post
introspection_url = {self.oauth2_introspection_url}
username_attribute = username
active_attribute = active
active_value = true
""")
        os.chmod(ext, 0o644)
        return f"""passdb {{
  driver = oauth2
  mechanisms = {" ".join(self.oauth2_mechanisms)}
  args = {ext}
}}
"""

    def _imap_config(self) -> str:
        """Lines for the protocol imap block."""
        out = ""
        if self._imap_capability:
            out += f"  imap_capability = {self._imap_capability}\n"
        if self.idle_notify_interval:
            out += ("  imap_idle_notify_interval = "
                    f"{self.idle_notify_interval}\n")
        return out

    def _special_use_conf(self) -> str:
        return "".join(f'  mailbox "{name}" {{\n    special_use = {use}\n'
                       f'  }}\n' for name, use in self.special_use.items())

    def _plugins(self) -> str:
        # listescape (names with "/") breaks Dovecot 2.3's shared
        # namespaces: EXAMINE "shared.bob.X" on a connection that has not
        # listed them fails with "Missing namespace prefix 'shared.bob/X.'".
        plugins = ["acl"] if self.acl else ["listescape"]
        if self.quota:
            plugins.append("quota")
        return " ".join(plugins)

    def _acl_config(self) -> str:
        r = self.root
        return f"""namespace shared {{
  type = shared
  separator = {self.delimiter}
  prefix = shared{self.delimiter}%%u{self.delimiter}
  location = maildir:{r}/mail/%%u
  subscriptions = no
  list = children
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_acl
}}
plugin {{
  acl = vfile
  acl_shared_dict = file:{r}/acl/shared-mailboxes.db
}}
"""

    def _quota_config(self) -> str:
        return f"""protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = count:User quota
  quota_rule = {self.quota_rule}
  quota_vsizes = yes
}}
"""

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                tail = f.readlines()[-lines:]
        except OSError:
            return "(no dovecot log)"
        return "dovecot log tail:\n" + "".join(tail)

    def _descendants(self, root_pid: int) -> set[int]:
        children: dict[int, list[int]] = {}
        for pid in _all_pids():
            pp = _proc_ppid(pid)
            if pp is not None:
                children.setdefault(pp, []).append(pid)
        out, todo = set(), [root_pid]
        while todo:
            p = todo.pop()
            for c in children.get(p, ()):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out

    def _stragglers(self) -> set[int]:
        """Dovecot processes still referring to our runtime directory."""
        found = set()
        if not self.root:
            return found
        for pid in _all_pids():
            if pid == os.getpid():
                continue
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if "dovecot" not in exe:
                continue
            refs = []
            for link in ("root", "cwd"):
                try:
                    refs.append(os.readlink(f"/proc/{pid}/{link}"))
                except OSError:
                    pass
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        refs.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                    except OSError:
                        pass
            except OSError:
                pass
            cmd = _proc_cmdline(pid) or []
            if any(self.root in x for x in refs + cmd):
                found.add(pid)
        return found

    def stop(self) -> None:
        """Stop the server; idempotent; kills every process it started."""
        if not self._started:
            return
        self._started = False
        master = self._master_pid
        self._master_pid = None
        victims: set[int] = set()
        if master is not None and _pid_alive(master):
            victims = self._descendants(master)
            try:
                os.kill(master, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                wait_for(lambda: not _pid_alive(master), 10,
                         what="dovecot master exit")
            except TimeoutError:
                try:
                    os.kill(master, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        victims |= self._stragglers()
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            wait_for(lambda: not any(_pid_alive(p) for p in victims), 5,
                     what="dovecot processes to die")
        except TimeoutError:
            pass
        # Keep the log for post-mortems next to the caller's files.
        if self.log_path and os.path.exists(self.log_path) and \
                os.path.isdir(self.basedir):
            try:
                shutil.copy(self.log_path,
                            os.path.join(self.basedir, "dovecot.log"))
            except OSError:
                pass
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- bulk loading --------------------------------------------------------
    def _maildir_path(self, mailbox) -> str:
        sname = self.server_name(mailbox)
        if sname == "INBOX":
            return self.mail_root
        # Maildir++: ".<name with '.' separators>"; listescape stores '/'
        # as "\2f" (and '\' as "\5c").
        parts = sname[len(self.prefix):].split(self.delimiter)
        esc = [p.replace("\\", "\\5c").replace("/", "\\2f") for p in parts]
        return os.path.join(self.mail_root, "." + ".".join(esc))

    def bulk_load(self, mailbox, messages: list[bytes],
                  dates: list[datetime.datetime] | None = None,
                  index: bool = True) -> None:
        """Store messages directly as Maildir files; UIDs ascend in order.

        Dovecot assigns UIDs to new maildir files sorted by the timestamp
        that starts the file name, so the names carry increasing numbers.
        INTERNALDATE is the file's mtime.  The mailbox is created if
        missing.  With `index` (the default) Dovecot indexes the files
        before this returns (an EXAMINE); without, on the next access
        (or `index_mailbox`): a caller loading a big folder in chunks
        indexes once at the end instead of once per chunk.
        """
        path = self._maildir_path(mailbox)
        if not os.path.isdir(os.path.join(path, "cur")):
            self.create_mailbox(mailbox)
        if not os.path.isdir(os.path.join(path, "cur")):
            raise RuntimeError(f"maildir for {mailbox!r} not at {path}")
        cur = os.path.join(path, "cur")
        # Names must sort after anything already there.
        base = 1_000_000_000
        for fn in os.listdir(cur):
            m = re.match(r"(\d+)\.", fn)
            if m:
                base = max(base, int(m.group(1)) + 1)
        if dates is None:
            start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
            dates = [start + datetime.timedelta(minutes=7 * i)
                     for i in range(len(messages))]
        if len(dates) != len(messages):
            raise ValueError("dates and messages differ in length")
        for i, (msg, date) in enumerate(zip(messages, dates)):
            if date.tzinfo is None:
                date = date.replace(tzinfo=datetime.timezone.utc)
            size = len(msg)
            vsize = size + msg.count(b"\n") - msg.count(b"\r\n")
            # The host part ends in a scrambled copy of the number:
            # Dovecot hashes the whole base name with an ELF-style hash
            # in which names differing only in their leading digits
            # collide by the thousand (at a million files its maildir
            # sync spent most of its time comparing names in one bucket).
            tag = ((base + i) * 2654435761) & 0xFFFFFFFF
            fn = f"{base + i}.M{i}P{os.getpid()}.imapfs{tag:08x}," \
                 f"S={size},W={vsize}:2,"
            full = os.path.join(cur, fn)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(msg)
                while view:
                    view = view[os.write(fd, view):]
                os.fchown(fd, MAIL_UID, MAIL_GID)
                ts = date.timestamp()
                os.utime(fd, (ts, ts))
            finally:
                os.close(fd)
        if index:
            self.index_mailbox(mailbox)

    def index_mailbox(self, mailbox) -> None:
        """Makes Dovecot index the folder now (an EXAMINE), so later
        readers see a stable state."""
        c = self.client()
        try:
            self._check(*c.select(imap_quote(self.server_name(mailbox)),
                                  readonly=True), f"EXAMINE {mailbox!r}")
        finally:
            c.logout()

    def _after_create(self) -> None:
        self._chown_mail()

    def _chown_mail(self) -> None:
        """Anything created by root below the mail root goes to nobody."""
        tops = [os.path.join(self.root, d, u) for u in self.passwords
                for d in ("mail", "home")]
        for top in tops:
            if not top or not os.path.isdir(top):
                continue
            for dirpath, dirnames, filenames in os.walk(top):
                for n in [dirpath] + [os.path.join(dirpath, x)
                                      for x in dirnames + filenames]:
                    try:
                        st = os.lstat(n)
                        if st.st_uid != MAIL_UID:
                            os.lchown(n, MAIL_UID, MAIL_GID)
                    except OSError:
                        pass


def _gid_of(group: str) -> int:
    import grp
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return 0


# --------------------------------------------------------------------------
# sample mail
# --------------------------------------------------------------------------

_WORDS = (
    "imap mailbox folder message server client fuse kernel inode cache "
    "network latency bandwidth protocol literal fetch select examine "
    "envelope header body part attachment quarterly report budget meeting "
    "agenda minutes project deadline release schedule review draft summary "
    "invoice payment customer support ticket update status weekly monthly "
    "coffee lunch holiday travel flight hotel conference keynote workshop "
    "the a of to and in for on with at by from as is was are be this that "
    "it not or have has had we you they will would can could should"
).split()
_UMLAUT_WORDS = ["Grüße", "Übersicht", "Straße", "café", "naïve", "Größe",
                 "Entwürfe", "señor", "Zürich", "Ærø"]
_NAMES = [("Alice Example", "alice@example.org"),
          ("Bob Builder", "bob@example.net"),
          ("Jürgen Müller", "juergen@example.de"),
          ("Chloé Dubois", "chloe@example.fr"),
          ("Carol", "carol@example.com"),
          ("Dave O'Brien", "dave@example.ie")]
_SUBJECTS = ["Quarterly report", "Re: meeting agenda", "Grüße aus Zürich",
             "Invoice #{n}", "Fwd: conference keynote", "Übersicht Projekt",
             "Lunch?", "Status update {n}", "Ticket {n}: cache latency",
             "Café au lait ☕", "Release schedule", "日本語の件名 {n}"]
# Words the integration tests grep for; each appears in plain-text bodies of
# a known subset of the sample messages.
MARKER_WORDS = ("quokka", "zeppelin")


def _text(rng: random.Random, nbytes: int) -> str:
    lines, total = [], 0
    while total < nbytes:
        k = rng.randint(6, 12)
        words = rng.choices(_WORDS, k=k)
        if rng.random() < 0.08:
            words[rng.randrange(k)] = rng.choice(_UMLAUT_WORDS)
        line = " ".join(words)
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def _one_message(rng: random.Random, i: int, target: int,
                 date: datetime.datetime) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    fn, fa = rng.choice(_NAMES)
    tn, ta = rng.choice(_NAMES)
    msg["From"] = email.utils.formataddr((fn, fa))
    msg["To"] = email.utils.formataddr((tn, ta))
    msg["Subject"] = rng.choice(_SUBJECTS).format(n=i)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = f"<sample-{i}-{rng.getrandbits(48):012x}@example.org>"
    body = _text(rng, max(200, min(target, 8000) - 700))
    for w in MARKER_WORDS:
        if rng.random() < 0.2:
            body = f"Note: the {w} says hello.\r\n" + body
    body = body.replace("\r\n", "\n")
    msg.set_content(body)
    if target > 9000 or rng.random() < 0.25:
        remaining = max(512, target - 9000)
        natt = 1 if remaining < 20000 else rng.randint(1, 3)
        for k in range(natt):
            raw = rng.randbytes(max(256, int(remaining / natt * 0.72)))
            kind = rng.choice([("application", "octet-stream", "bin"),
                               ("application", "pdf", "pdf"),
                               ("image", "png", "png")])
            msg.add_attachment(raw, maintype=kind[0], subtype=kind[1],
                               filename=f"file-{i}-{k}.{kind[2]}")
    return msg.as_bytes()


def sample_messages(count: int, seed: int = 1,
                    sizes: tuple[int, int] | None = None) -> list[bytes]:
    """Deterministic realistic MIME messages (CRLF), ~1 KB to ~200 KB, or
    of about sizes=(low, high) bytes each."""
    rng = random.Random(seed)
    start = datetime.datetime(2023, 6, 1, 9, 0, tzinfo=datetime.timezone.utc)
    out = []
    for i in range(count):
        r = rng.random()
        if sizes is not None:
            target = rng.randint(*sizes)
        elif r < 0.6:
            target = rng.randint(1000, 6000)
        elif r < 0.9:
            target = rng.randint(6000, 50000)
        else:
            target = rng.randint(50000, 200000)
        date = start + datetime.timedelta(minutes=37 * i + rng.randint(0, 30))
        out.append(_one_message(rng, i, target, date))
    return out


def big_message(size: int, seed: int = 1) -> bytes:
    """One multipart message of about `size` bytes (a big attachment)."""
    rng = random.Random(seed)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice Example <alice@example.org>"
    msg["To"] = "Bob Builder <bob@example.net>"
    msg["Subject"] = f"Big attachment ({size} bytes)"
    msg["Date"] = "Mon, 01 Jan 2024 12:00:00 +0000"
    msg["Message-ID"] = f"<big-{seed}-{size}@example.org>"
    msg.set_content("The attachment is large.\n")
    # base64 with 76-char lines + CRLF: 4/3 * 78/76 expansion.
    raw = max(0, int((size - 1200) * 3 / 4 * 76 / 78))
    msg.add_attachment(rng.randbytes(raw), maintype="application",
                       subtype="octet-stream", filename="big.bin")
    return msg.as_bytes()


def populate_sample(server: DovecotServer) -> dict:
    """The demo tree; returns {folder_name: message_count}."""
    plan = {
        "INBOX": 300,
        "Archive": 20,
        "Archive/2024": 10,
        "Archive/2024/Q1": 40,
        "Archive/2024/Q2": 35,
        "Archive/2023": 25,
        "Entwürfe": 5,
        "Sent": 30,
        "Projects/imapfs": 12,
    }
    seed = 100
    # Arrival times spread over two years, newest last, so ls -l and
    # find -newer have something to show.
    start = datetime.datetime(2023, 1, 2, 8, 30, tzinfo=datetime.timezone.utc)
    for name, n in plan.items():
        msgs = sample_messages(n, seed=seed)
        dates = [start + datetime.timedelta(hours=(700 * 24 * i) // n,
                                            minutes=seed + 7 * i)
                 for i in range(n)]
        seed += 1
        server.bulk_load(name, msgs, dates)
    # A few flags so the demo xattrs show something.
    c = server.client()
    try:
        c.select("INBOX")
        c.uid("STORE", "1:50", "+FLAGS.SILENT", r"(\Seen)")
        c.uid("STORE", "3,7,11", "+FLAGS.SILENT", r"(\Flagged $Label1)")
    finally:
        c.logout()
    return dict(plan)


# --------------------------------------------------------------------------
# mounting
# --------------------------------------------------------------------------

def _is_mounted(mountpoint: str) -> bool:
    mp = os.path.realpath(mountpoint)
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and \
                        fields[1].replace("\\040", " ") == mp:
                    return True
    except OSError:
        pass
    return False


def _imapfs_argv(binary, server, mountpoint, starttls, options,
                 password_file):
    """(argv, password file or None) of an imapfs run for `server`."""
    scheme, port = ("imap", server.imap_port) if starttls else \
        ("imaps", server.imaps_port)
    url = f"{scheme}://{urllib.parse.quote(server.user, safe='')}@" \
          f"{server.host}:{port}"
    argv = [binary]
    if server.cafile:
        argv += ["-o", f"cafile={server.cafile}"]
    pwfile = None
    if password_file:
        fd, pwfile = tempfile.mkstemp(prefix="imapfs-pw-")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(server.password + "\n")
        argv += ["-o", f"password_file={pwfile}"]
    return argv + list(options) + [url, mountpoint], pwfile


def mount_traced(binary: str, server: DovecotServer, mountpoint: str,
                 trace_path: str, options: list[str] = (),
                 timeout: float = 60,
                 password_file: bool = True) -> subprocess.Popen:
    """Run imapfs in the foreground with the -d trace going to
    `trace_path`; return the process once the mount is live.  Raises RuntimeError (with
    the trace's tail) if it exits, TimeoutError if it does not mount
    within `timeout`.  Stop it with stop_traced().  With
    password_file=False no password option is passed."""
    argv, pwfile = _imapfs_argv(binary, server, mountpoint, False,
                                ["-f", "-d"] + list(options), password_file)
    with open(trace_path, "wb") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=out)
    try:
        wait_for(lambda: _is_mounted(mountpoint) or p.poll() is not None,
                 timeout, what="foreground mount")
    except TimeoutError:
        force_unmount(mountpoint)
        p.kill()
        p.wait()
        raise
    finally:
        if pwfile:
            os.unlink(pwfile)
    if p.poll() is not None:
        with open(trace_path, errors="replace") as f:
            raise RuntimeError(f"imapfs exited {p.returncode}:\n" +
                               f.read()[-3000:])
    return p


def stop_traced(mountpoint: str, proc: subprocess.Popen | None) -> None:
    """Unmounts a mount_traced() mount and waits (bounded) for its
    process; kills it if it does not exit."""
    unmount(mountpoint)
    if proc is None:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        force_unmount(mountpoint)
        proc.kill()
        proc.wait()


def mount_imapfs(binary: str, server: DovecotServer, mountpoint: str, *,
                 starttls: bool = False, options: list[str] = (),
                 env: dict | None = None, password_file: bool = True,
                 timeout: float = 60) -> subprocess.CompletedProcess:
    """Run imapfs and return when it returns (after the mount is live).

    `options` are extra raw argv items placed before URL (e.g.
    ["-o", "connections=2"] or ["-d"]).  `env` entries are added to the
    environment.  With password_file=False no password option is passed
    (to test the other password sources).  The password file is removed
    when the command has returned.
    """
    argv, pwfile = _imapfs_argv(binary, server, mountpoint, starttls,
                                options, password_file)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=full_env, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    finally:
        if pwfile:
            os.unlink(pwfile)


def force_unmount(mountpoint: str) -> None:
    """Tears a mount down whatever state its daemon is in: lazy unmount
    (so blocked system calls return), then SIGKILL of the daemon."""
    pid = daemon_pid(mountpoint)
    subprocess.run(["fusermount3", "-uz", mountpoint],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if pid:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def short_runtime_dir():
    """A private 0700 directory directly below /tmp, for XDG_RUNTIME_DIR:
    unix socket paths (imapfs's control socket, gpg-agent's in systemd's
    units) must fit in 108 bytes, which a pytest tmp_path below
    check.sh's TMPDIR does not. Remove it with shutil.rmtree."""
    return tempfile.mkdtemp(prefix="imapfs-run-", dir="/tmp")


def proc_status_kb(pid: int, field: str) -> int:
    """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing for {pid}")


def run_bounded(mountpoint: str, fn, bound: float):
    """Runs fn() in a thread and returns (result, exception, seconds).

    If it is still running after `bound` seconds the mount is torn down
    (force_unmount, which makes the blocked system call return) and
    TimeoutError is raised: a hang becomes a failure, not a stuck suite.
    """
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: B902 - handed to the caller
            box["exc"] = e

    t0 = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(bound)
    elapsed = time.monotonic() - t0
    if t.is_alive():
        force_unmount(mountpoint)
        t.join(10)
        raise TimeoutError(f"operation still blocked after {bound}s; "
                           f"mount torn down")
    return box.get("result"), box.get("exc"), elapsed


def daemon_pid(mountpoint: str) -> int | None:
    """PID of the imapfs process whose argv names `mountpoint`."""
    targets = {mountpoint, os.path.abspath(mountpoint),
               os.path.realpath(mountpoint)}
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        argv = _proc_cmdline(pid)
        if not argv:
            continue
        if os.path.basename(argv[0]) != "imapfs" and \
                not os.path.basename(argv[0]).startswith("imapfs"):
            continue
        if any(a in targets or os.path.abspath(a) in targets
               for a in argv[1:] if a and not a.startswith("-")):
            if _pid_alive(pid):
                return pid
    return None


def remount_rw(mountpoint: str) -> None:
    """Clears the kernel's ro flag of a (-o ro) FUSE mount, without telling
    the daemon (FUSE sends nothing for a remount): what then refuses a
    write is the daemon's own handlers. mount -i: no mount.fuse3 helper."""
    r = subprocess.run(["mount", "-i", "-o", "remount,rw", mountpoint],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"remount,rw of {mountpoint}: {r.stdout}")


def mount_options(mountpoint: str) -> list[str]:
    """The kernel's options of the mount at `mountpoint` (/proc/mounts)."""
    real = os.path.realpath(mountpoint)
    with open("/proc/mounts") as f:
        rows = [line.split() for line in f if line.split()[1] == real]
    if len(rows) != 1:
        raise RuntimeError(f"{len(rows)} mounts at {mountpoint}")
    return rows[0][3].split(",")


def unmount(mountpoint: str) -> None:
    """fusermount3 -u with retries, then lazy; never raises.

    Also waits (bounded) for the serving daemon to exit.
    """
    pid = daemon_pid(mountpoint)
    deadline = time.monotonic() + 10
    while _is_mounted(mountpoint):
        r = subprocess.run(["fusermount3", "-u", mountpoint],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode == 0 or not _is_mounted(mountpoint):
            break
        if time.monotonic() > deadline:
            subprocess.run(["fusermount3", "-uz", mountpoint],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            break
        time.sleep(0.1)
    if pid is not None:
        try:
            wait_for(lambda: not _pid_alive(pid), 10, what="imapfs exit")
        except TimeoutError:
            pass


def timed(fn):
    """(result, exception, seconds) of fn(): for tests that judge both
    how a call ended and how long it took."""
    t = time.monotonic()
    try:
        return fn(), None, time.monotonic() - t
    except Exception as e:  # noqa: BLE001 - the caller judges it
        return None, e, time.monotonic() - t
