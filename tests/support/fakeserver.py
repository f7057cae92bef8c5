"""A scripted, deliberately misbehaving IMAP server for imapfs tests.

Stdlib only (plus the `openssl` command for its certificates); runs under
/usr/bin/python3.  The server listens on 127.0.0.1 on an ephemeral port with
implicit TLS, using a certificate signed by a CA it makes for itself, and
serves one mailbox, INBOX.  It implements exactly what imapfs sends:

    CAPABILITY, AUTHENTICATE PLAIN (with and without SASL-IR), LOGIN,
    NAMESPACE, LIST, EXAMINE, UID FETCH of listing items
    (UID RFC822.SIZE INTERNALDATE FLAGS), UID FETCH of BODY.PEEK[]<o.l>
    (and BODY[] / BODY.PEEK[] without a range), NOOP, LOGOUT.

Every command line received is recorded (`FakeImapServer.commands`), so a
test can check what the client sent.  Misbehaviour is scripted per message
UID, per mailbox, through `FakeImapServer.scripts[mailbox]` (a `Script`;
`.script` is INBOX's), which may be changed while the server runs:

    script.body[uid]       how a body FETCH for uid is answered (BODY_MODES)
    script.size_delta[uid] added to the real size in RFC822.SIZE
    script.size_text[uid]  sent verbatim instead of the RFC822.SIZE number
    script.omit_size       UIDs whose listing reply has no RFC822.SIZE
    script.examine_no      a tagged "NO ..." answer to EXAMINE of the mailbox

The object has the attributes testenv.mount_imapfs() uses (host,
imaps_port, imap_port, user, password, cafile), so it can be mounted the
same way as a DovecotServer.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time

import testenv

__all__ = ["FakeImapServer", "Script", "Command", "BODY_MODES"]

# How a body FETCH may be answered.
BODY_MODES = {
    "ok": "the requested partial, correct",
    "whole": "ignore <o.l> and send the whole message as BODY[]",
    "wrong_origin": "BODY[]<o+1> with the requested bytes",
    "too_long": "BODY[]<o> with 100 bytes more than the requested length",
    "nil": "BODY[]<o> NIL",
    "nodata": "tagged OK without any FETCH response",
    "other_uid": "a FETCH response for another UID only",
    "hang": "never answer (the connection stays open)",
    "garbage_parens": "* n FETCH ((((( then the tagged OK",
    "binary_junk": "4 KiB of binary junk (NULs, CRLFs) then the tagged OK",
    "absurd_literal": "a literal announced as {99999999999}, then silence",
    "bye": "* BYE in the middle of the command, then close",
    "deep_nesting": "a 10,000-deep nested list, then the tagged OK",
    "noperm": "tagged NO [NOPERM] (no FETCH response)",
}

_MAX_LINE = 64 * 1024
_DEFAULT_CAPS = ("IMAP4rev1", "SASL-IR", "AUTH=PLAIN", "NAMESPACE",
                 "LITERAL+")


@dataclasses.dataclass
class Command:
    """One command as received."""
    conn: int                 # connection number (1, 2, ...)
    lines: list[bytes]        # the physical lines, CRLF stripped; a line
                              # announcing a literal ends in "{n}"/"{n+}"
    literals: list[bytes]     # literal contents, in order
    tag: str = ""
    name: str = ""            # upper-case command name ("UID FETCH", ...)
    text: str = ""            # lines joined, literals shown as {n}
    mailbox: str | None = None  # the mailbox examined when it arrived
    at: float = 0.0           # time.monotonic() when it was complete

    @property
    def raw(self) -> bytes:
        return b"".join(self.lines)


class Script:
    """Per-UID misbehaviour; every field may be changed at any time."""

    def __init__(self):
        self.body: dict[int, str] = {}
        self.size_delta: dict[int, int] = {}
        self.size_text: dict[int, str] = {}
        self.omit_size: set[int] = set()
        # Capabilities announced (greeting and CAPABILITY).
        self.caps: tuple[str, ...] = _DEFAULT_CAPS
        # If set, EXAMINE of this mailbox is answered with this tagged
        # "NO ..." text (e.g. "NO [NOPERM] no access").
        self.examine_no: str | None = None

    def body_mode(self, uid: int) -> str:
        return self.body.get(uid, "ok")


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reads from a socket that notice the server stopping."""

    def __init__(self, sock, stop: threading.Event):
        self.sock = sock
        self.stop = stop
        self.buf = bytearray()

    def _fill(self):
        while True:
            if self.stop.is_set():
                raise _Closed()
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError):
                raise _Closed()
            if not data:
                raise _Closed()
            self.buf += data
            return

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            if len(self.buf) > _MAX_LINE:
                raise _Closed()
            self._fill()

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


_LITERAL_RE = re.compile(rb"\{(\d+)(\+?)\}$")


def _tokens(s: str, literals: list[bytes]) -> list:
    """Splits command arguments: atoms, quoted strings, literal refs."""
    out, i = [], 0
    lit = iter(literals)
    while i < len(s):
        c = s[i]
        if c == " ":
            i += 1
        elif c == '"':
            j, val = i + 1, []
            while j < len(s) and s[j] != '"':
                if s[j] == "\\" and j + 1 < len(s):
                    j += 1
                val.append(s[j])
                j += 1
            out.append("".join(val))
            i = j + 1
        elif c == "{":
            j = s.index("}", i)
            out.append(next(lit).decode("utf-8", "replace"))
            i = j + 1
        else:
            j = i
            depth = 0
            while j < len(s) and (s[j] != " " or depth > 0):
                if s[j] in "([":
                    depth += 1
                elif s[j] in ")]":
                    depth -= 1
                j += 1
            out.append(s[i:j])
            i = j
    return out


def _parse_set(text: str, maxuid: int) -> set[int] | None:
    out = set()
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":", 1)
            lo = maxuid if a == "*" else int(a)
            hi = maxuid if b == "*" else int(b)
            if lo > hi:
                lo, hi = hi, lo
            out.update(range(lo, hi + 1))
        elif part == "*":
            out.add(maxuid)
        else:
            out.add(int(part))
    return out


class FakeImapServer(testenv.Service):
    """A threaded scripted IMAP server; context manager (start/stop)."""

    host = "127.0.0.1"
    # The class serving each connection (a subclass of _Session; None:
    # _Session).  tests/support/fakeproviders.py sets its own.
    session_class = None

    def __init__(self, messages, user: str = "alice",
                 password: str | None = None, uidvalidity: int = 1234,
                 workdir: str | None = None, others: dict | None = None,
                 starttls_inject: bytes | None = None):
        """`messages` (INBOX) is a list of bytes (UIDs 1..n) or {uid: bytes};
        `others` maps further mailbox names (plain ASCII, "/" delimiter) to
        {uid: bytes}.  Each mailbox has its own Script in `scripts`.
        With `starttls_inject`, a plaintext listener (imap_port) offers
        STARTTLS and sends those bytes right after its "OK Begin TLS", in
        the same write, as a man in the middle would."""
        if isinstance(messages, dict):
            inbox = dict(sorted(messages.items()))
        else:
            inbox = {i + 1: m for i, m in enumerate(messages)}
        self.mailboxes: dict[str, dict[int, bytes]] = {"INBOX": inbox}
        for name, msgs in (others or {}).items():
            self.mailboxes[name] = dict(sorted(msgs.items()))
        self.user = user
        self.password = password if password is not None else \
            "fake-" + secrets.token_hex(8)
        self.uidvalidity = uidvalidity
        self.scripts = {name: Script() for name in self.mailboxes}
        self.commands: list[Command] = []
        self.imaps_port = 0
        self.imap_port = 0       # plaintext/STARTTLS listener, if any
        self._starttls_inject = starttls_inject
        self._plain_listener: socket.socket | None = None
        self.cafile = ""
        self._workdir = workdir
        self._own_workdir = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._socks: set = set()
        self._nconn = 0
        self._ctx: ssl.SSLContext | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self._listener is not None:
            return
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="imapfs-fake-")
            self._own_workdir = True
        os.makedirs(self._workdir, exist_ok=True)
        cert, key = self._make_certs()
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ctx.load_cert_chain(cert, key)
        self._stop.clear()
        self._listener, self.imaps_port = self._listen(False)
        if self._starttls_inject is not None:
            self._plain_listener, self.imap_port = self._listen(True)

    def _listen(self, starttls: bool):
        """A listener on an ephemeral port with its accept thread."""
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, 0))
        ls.listen(64)
        ls.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, args=(ls, starttls),
                             name="fake-accept-plain" if starttls else
                             "fake-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return ls, ls.getsockname()[1]

    def stop(self) -> None:
        """Idempotent; closes every connection and joins every thread."""
        self._stop.set()
        for ls in (self._listener, self._plain_listener):
            if ls is None:
                continue
            try:
                ls.close()
            except OSError:
                pass
        self._plain_listener = None
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(10)
        self._threads.clear()
        self._listener = None
        if self._own_workdir and self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _make_certs(self) -> tuple[str, str]:
        paths = testenv.make_certs(self._workdir, "fake")
        self.cafile = paths["cafile"]
        return paths["cert"], paths["key"]

    @property
    def messages(self) -> dict[int, bytes]:
        """INBOX's messages."""
        return self.mailboxes["INBOX"]

    @property
    def script(self) -> "Script":
        """INBOX's script (each mailbox has its own in `scripts`)."""
        return self.scripts["INBOX"]

    # -- inspection ----------------------------------------------------------
    def commands_snapshot(self) -> list[Command]:
        with self._lock:
            return list(self.commands)

    def fetches_for(self, uid: int, mailbox: str = "INBOX") -> list[Command]:
        """Body FETCH commands in `mailbox` whose UID set includes `uid`."""
        out = []
        for c in self.commands_snapshot():
            if c.mailbox != mailbox:
                continue
            m = re.match(r"^\S+ UID FETCH (\S+) \(.*BODY", c.text, re.I)
            if not m:
                continue
            try:
                if uid in _parse_set(m.group(1), 1 << 32):
                    out.append(c)
            except ValueError:
                continue
        return out

    def connection_count(self) -> int:
        with self._lock:
            return self._nconn

    # -- serving -------------------------------------------------------------
    def _accept_loop(self, listener=None, starttls=False):
        listener = listener or self._listener
        while not self._stop.is_set():
            try:
                raw, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                self._nconn += 1
                n = self._nconn
                self._socks.add(raw)
            t = threading.Thread(target=self._serve, args=(raw, n, starttls),
                                 name=f"fake-conn-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def _starttls_prelude(self, raw, n) -> bool:
        """Plaintext greeting, STARTTLS, then the injected bytes in the same
        write as the OK. Returns False if the client did not ask for TLS."""
        raw.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] "
                    b"fake server ready\r\n")
        line = b""
        while not line.endswith(b"\n") and len(line) < 1024:
            chunk = raw.recv(1)
            if not chunk:
                return False
            line += chunk
        text = line.decode("latin-1").strip()
        self._record(Command(conn=n, lines=[line.rstrip(b"\r\n")],
                             literals=[], tag=text.split(" ")[0],
                             name=" ".join(text.split(" ")[1:2]).upper(),
                             text=text, mailbox=None))
        parts = text.split(" ")
        if len(parts) != 2 or parts[1].upper() != "STARTTLS":
            return False
        raw.sendall(parts[0].encode() + b" OK Begin TLS now\r\n" +
                    self._starttls_inject)
        return True

    def _serve(self, raw, n, starttls=False):
        sock = None
        try:
            raw.settimeout(10)
            if starttls and not self._starttls_prelude(raw, n):
                return
            sock = self._ctx.wrap_socket(raw, server_side=True)
            sock.settimeout(0.2)
            with self._lock:
                self._socks.discard(raw)
                self._socks.add(sock)
            (self.session_class or _Session)(self, sock, n).run(
                greet=not starttls)
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            for s in (sock, raw):
                if s is None:
                    continue
                with self._lock:
                    self._socks.discard(s)
                try:
                    s.close()
                except OSError:
                    pass

    def _record(self, cmd: Command):
        cmd.at = time.monotonic()
        with self._lock:
            self.commands.append(cmd)


class _Session:
    def __init__(self, server: FakeImapServer, sock, n: int):
        self.srv = server
        self.sock = sock
        self.n = n
        self.reader = _Reader(sock, server._stop)
        self.authed = False
        self.selected: str | None = None
        self.tag = b""          # of the UID FETCH being answered

    def send(self, data: bytes):
        view = memoryview(data)
        while view:
            if self.srv._stop.is_set():
                raise _Closed()
            try:
                k = self.sock.send(view[:65536])
            except (socket.timeout, ssl.SSLWantWriteError):
                continue
            except (OSError, ssl.SSLError):
                raise _Closed()
            view = view[k:]

    def caps(self) -> str:
        return " ".join(self.srv.script.caps)

    def read_command(self) -> Command:
        lines, literals = [], []
        while True:
            line = self.reader.line()
            lines.append(line)
            m = _LITERAL_RE.search(line)
            if not m:
                break
            size = int(m.group(1))
            if size > 1024 * 1024:
                raise _Closed()
            if not m.group(2):
                self.send(b"+ go ahead\r\n")
            literals.append(self.reader.exactly(size))
        text = b"".join(lines).decode("latin-1")
        cmd = Command(conn=self.n, lines=lines, literals=literals,
                      text=text, mailbox=self.selected)
        parts = text.split(" ", 2)
        cmd.tag = parts[0]
        name = parts[1].upper() if len(parts) > 1 else ""
        if name == "UID" and len(parts) > 2:
            name += " " + parts[2].split(" ", 1)[0].upper()
        cmd.name = name
        self.srv._record(cmd)
        return cmd

    def run(self, greet=True):
        if greet:
            self.send(f"* OK [CAPABILITY {self.caps()}] fake server "
                      "ready\r\n".encode())
        while True:
            cmd = self.read_command()
            if not self.dispatch(cmd):
                return

    # Returns False to close the connection.
    def dispatch(self, cmd: Command) -> bool:
        tag = cmd.tag.encode("latin-1")
        name = cmd.name
        rest = cmd.text.split(" ", 2)[2] if cmd.text.count(" ") >= 2 \
            else ""
        if name == "CAPABILITY":
            self.send(f"* CAPABILITY {self.caps()}\r\n".encode() +
                      tag + b" OK done\r\n")
        elif name == "NOOP":
            self.send(tag + b" OK NOOP done\r\n")
        elif name == "LOGOUT":
            self.send(b"* BYE logging out\r\n" + tag + b" OK bye\r\n")
            return False
        elif name == "AUTHENTICATE":
            return self.authenticate(tag, rest)
        elif name == "LOGIN":
            args = _tokens(rest, cmd.literals)
            if len(args) == 2 and args[0] == self.srv.user and \
                    args[1] == self.srv.password:
                self.authed = True
                self.send(tag + b" OK [CAPABILITY " + self.caps().encode() +
                          b"] logged in\r\n")
            else:
                self.send(tag + b" NO [AUTHENTICATIONFAILED] "
                          b"Authentication failed.\r\n")
        elif not self.authed:
            self.send(tag + b" BAD not authenticated\r\n")
        elif name == "NAMESPACE":
            self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n' + tag +
                      b" OK done\r\n")
        elif name in ("LIST", "LSUB"):
            out = b"".join(b"* " + name.encode() +
                           b' (\\HasNoChildren) "/" "' + mb.encode() +
                           b'"\r\n' for mb in self.srv.mailboxes)
            self.send(out + tag + b" OK done\r\n")
        elif name == "EXAMINE":
            args = _tokens(rest, cmd.literals)
            mb = None
            if len(args) == 1:
                mb = "INBOX" if args[0].upper() == "INBOX" else args[0]
            if mb not in self.srv.mailboxes:
                self.selected = None
                self.send(tag + b" NO [NONEXISTENT] no such mailbox\r\n")
                return True
            refusal = self.srv.scripts[mb].examine_no
            if refusal is not None:
                self.selected = None
                self.send(tag + b" " + refusal.encode() + b"\r\n")
                return True
            self.selected = mb
            uids = list(self.srv.mailboxes[mb])
            nxt = (max(uids) + 1) if uids else 1
            self.send(f"* {len(uids)} EXISTS\r\n* 0 RECENT\r\n"
                      f"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                      f"\\Draft)\r\n"
                      f"* OK [UIDVALIDITY {self.srv.uidvalidity}] ok\r\n"
                      f"* OK [UIDNEXT {nxt}] ok\r\n".encode() + tag +
                      b" OK [READ-ONLY] EXAMINE completed\r\n")
        elif name == "UID FETCH":
            if not self.selected:
                self.send(tag + b" BAD no mailbox selected\r\n")
                return True
            return self.uid_fetch(tag, rest)
        else:
            self.send(tag + b" BAD unknown command\r\n")
        return True

    def sasl_response(self, words: list[str]) -> bytes:
        """The client's decoded SASL response: the initial response after
        the mechanism (SASL-IR), else the line after an empty challenge.
        Raises ValueError for bad base64."""
        if len(words) > 1:
            resp = words[1]
        else:
            self.send(b"+ \r\n")
            resp = self.reader.line().decode("latin-1")
        return base64.b64decode(resp, validate=True)

    def authenticate(self, tag: bytes, rest: str) -> bool:
        words = rest.split(" ")
        if not words or words[0].upper() != "PLAIN":
            self.send(tag + b" NO unsupported mechanism\r\n")
            return True
        try:
            parts = self.sasl_response(words).split(b"\0")
        except ValueError:
            self.send(tag + b" BAD bad base64\r\n")
            return True
        if len(parts) == 3 and parts[1].decode("utf-8", "replace") == \
                self.srv.user and \
                parts[2].decode("utf-8", "replace") == self.srv.password:
            self.authed = True
            self.send(tag + b" OK [CAPABILITY " + self.caps().encode() +
                      b"] logged in\r\n")
        else:
            self.send(tag + b" NO [AUTHENTICATIONFAILED] "
                      b"Authentication failed.\r\n")
        return True

    def msgs(self) -> dict[int, bytes]:
        return self.srv.mailboxes[self.selected]

    def mode(self, uid: int) -> str:
        return self.srv.scripts[self.selected].body_mode(uid)

    def uid_fetch(self, tag: bytes, rest: str) -> bool:
        # rest: "FETCH <set> (<items>)"
        m = re.match(r"FETCH (\S+) \((.*)\)$", rest, re.I)
        if not m:
            self.send(tag + b" BAD bad UID FETCH\r\n")
            return True
        msgs = self.msgs()
        try:
            uids = _parse_set(m.group(1), max(msgs) if msgs else 0)
        except ValueError:
            self.send(tag + b" BAD bad sequence set\r\n")
            return True
        items = m.group(2)
        body = re.search(r"BODY(\.PEEK)?\[\](?:<(\d+)\.(\d+)>)?", items,
                         re.I)
        if body is None:
            return self.fetch_meta(tag, uids, items)
        off = int(body.group(2)) if body.group(2) else None
        length = int(body.group(3)) if body.group(3) else None
        # A batch (imapfs's prefetch) is answered message by message with
        # each message's scripted behaviour; one that breaks the
        # connection breaks the whole batch, as it would on a real server.
        self.tag = tag
        for uid in sorted(u for u in uids if u in msgs):
            answered = self.body_item(uid, off, length)
            if answered is None:
                return True      # the tagged reply was sent
            if not answered:
                return False
        self.send(tag + b" OK FETCH done\r\n")
        return True

    def seq(self, uid: int) -> int:
        return list(self.msgs()).index(uid) + 1

    def fetch_meta(self, tag: bytes, uids: set[int], items: str) -> bool:
        sc = self.srv.scripts[self.selected]
        out = bytearray()
        msgs = self.msgs()
        for u in sorted(uids):
            if u not in msgs:
                continue
            msg = msgs[u]
            parts = [f"UID {u}"]
            if "RFC822.SIZE" in items.upper() and u not in sc.omit_size:
                size = sc.size_text.get(u)
                if size is None:
                    size = str(len(msg) + sc.size_delta.get(u, 0))
                parts.append(f"RFC822.SIZE {size}")
            if "INTERNALDATE" in items.upper():
                day = 1 + (u % 28)
                parts.append(f'INTERNALDATE "{day:02d}-Jan-2024 12:00:00 '
                             f'+0000"')
            if "FLAGS" in items.upper():
                parts.append("FLAGS (\\Seen)" if u % 2 else "FLAGS ()")
            out += f"* {self.seq(u)} FETCH ({' '.join(parts)})\r\n".encode()
        out += tag + b" OK FETCH done\r\n"
        self.send(bytes(out))
        return True

    def send_body(self, uid: int, off, length, origin=None, data=None):
        msg = self.msgs()[uid]
        if off is None:
            key, chunk = b"BODY[]", msg
        else:
            key = f"BODY[]<{off if origin is None else origin}>".encode()
            chunk = msg[off:off + length]
        if data is not None:
            chunk = data
        self.send(f"* {self.seq(uid)} FETCH (UID {uid} ".encode() + key +
                  f" {{{len(chunk)}}}\r\n".encode() + chunk + b")\r\n")

    # Sends the untagged part of the answer for one message; returns False
    # if the connection is to be closed (the tagged reply never comes),
    # None if it sent the tagged reply itself.
    def body_item(self, uid: int, off, length) -> bool:
        mode = self.mode(uid)
        seq = self.seq(uid)
        msg = self.msgs()[uid]
        if off is None:
            # Not what imapfs sends: answer plainly.
            self.send_body(uid, None, None)
        elif mode == "ok":
            self.send_body(uid, off, length)
        elif mode == "whole":
            self.send_body(uid, None, None)
        elif mode == "wrong_origin":
            self.send_body(uid, off, length, origin=off + 1)
        elif mode == "too_long":
            chunk = msg[off:off + length]
            self.send_body(uid, off, length,
                           data=chunk + b"X" * (length - len(chunk) + 100))
        elif mode == "nil":
            self.send(f"* {seq} FETCH (UID {uid} BODY[]<{off}> NIL)\r\n"
                      .encode())
        elif mode == "nodata":
            pass
        elif mode == "noperm":
            # The tagged NO ends the command: nothing for the others.
            self.send(self.tag + b" NO [NOPERM] access denied\r\n")
            return None
        elif mode == "other_uid":
            other = next((u for u in self.msgs() if u != uid), uid)
            self.send_body(other, off, length)
        elif mode == "hang":
            self.hang()
            return False
        elif mode == "garbage_parens":
            self.send(f"* {seq} FETCH (((((\r\n".encode())
        elif mode == "binary_junk":
            junk = random.Random(uid).randbytes(4096)
            self.send(b"\x00\xff" + junk + b"\r\n")
        elif mode == "absurd_literal":
            self.send(f"* {seq} FETCH (UID {uid} BODY[]<{off}> "
                      f"{{99999999999}}\r\n".encode() + msg[:100])
            self.hang()
            return False
        elif mode == "bye":
            self.send(f"* {seq} FETCH (FLAGS (\\Seen))\r\n"
                      f"* BYE server shutting down\r\n".encode())
            return False
        elif mode == "deep_nesting":
            self.send(f"* {seq} FETCH (UID {uid} BODY[]<{off}> ".encode() +
                      b"(" * 10000 + b")" * 10000 + b")\r\n")
        else:
            raise ValueError(f"unknown body mode {mode!r}")
        return True

    def hang(self):
        """Never answer; keep reading (and recording) until the peer or
        the server closes."""
        while True:
            self.read_command()
