"""A TLS-terminating fault-injecting IMAP proxy for the integration tests.

Stdlib only; runs under /usr/bin/python3.  `FaultProxy(server)` listens on
127.0.0.1 with implicit TLS, presenting the test server's own certificate
(issued by the per-run test CA for 127.0.0.1 and localhost), and relays each
client connection to the real server (a testenv.DovecotServer, over
verified TLS).  It sees the plaintext IMAP stream in both directions, parses
just enough of it (lines, literals, tags) to know which command a byte
belongs to, records every client command, and can break things:

    whole proxy                        one command (rules)
    -----------                        -------------------
    pause() / resume()                 Rule(r"APPEND", at=("literal", 1000))
      stop relaying, keep sockets:     Rule(r"APPEND", at="reply")
      a silent server                  Rule(r"UID MOVE", at="reply")
    blackhole(True)                    Rule(r"UID FETCH .*BODY", at="before",
      accept new TCP connections            action=callable)
      and never answer
    refuse(True)
      close the listener: new connections get ECONNREFUSED
    reset_all()
      RST every open connection

A rule matches a client command's first line (regex, case-insensitive, on
the text after the tag: "APPEND \"INBOX\" (\\Seen) {1234}", "UID MOVE 5 x")
and fires once (or `times` times, None = every time) at one point:

    "before"          the command's first byte has not been forwarded
    ("literal", N)    N bytes of the command's literal data have been
                      forwarded (counted over all its literals), no more
    "sent"            the whole command has been forwarded
    "response"        the first server line after the command was sent
                      (untagged or tagged, not a "+" continuation) has
                      arrived and not been relayed
    "reply"           the command's tagged reply (OK/NO/BAD) has arrived
                      and not been relayed
    "after_reply"     the tagged reply has been relayed

with an action:

    "drop"    close both sides of that connection (the client sees EOF)
    "reset"   abort both sides (the client sees ECONNRESET)
    "pause"   freeze that connection (both directions) until resume()
    callable  fn(conn, cmd) runs in the connection's relay thread, which
              relays nothing on that connection meanwhile; it must return
              (bounded waits)

traffic() counts what crossed the proxy in each direction: plaintext IMAP
bytes and reads (one read returns at most one TLS record, so reads are the
records each side sent; TLS adds ~22 bytes per record on the wire, not
counted), in all or per connection.

Everything is bounded: sockets have timeouts, threads are daemonic, every
loop polls a stop flag, and the proxy stops by itself after `lifetime`
seconds.  One thread per connection owns both of its TLS sockets (an
SSLSocket is never used from two threads).

The object has the attributes testenv.mount_imapfs() and client code use
(host, imaps_port, imap_port, user, password, cafile, ssl, client()), so a
mount or an imaplib client can go through it like through the server.
"""

from __future__ import annotations

import dataclasses
import imaplib
import re
import select
import socket
import ssl
import struct
import threading

from testenv import Service
import time

__all__ = ["FaultProxy", "Rule", "ProxyCommand"]

_LITERAL_RE = re.compile(rb"~?\{(\d+)(\+|-)?\}\r\n$")
_TAGGED_RE = re.compile(rb"^([^\s*+]+) (OK|NO|BAD)\b", re.I)
_POINTS = ("before", "sent", "response", "reply", "after_reply")
_IO_TIMEOUT = 30.0
_POLL = 0.1
_MAX_LINE = 1 << 20


@dataclasses.dataclass
class ProxyCommand:
    """One client command as seen by the proxy."""
    conn: int                  # connection number (1, 2, ...)
    tag: str
    name: str                  # upper-case ("APPEND", "UID MOVE", ...)
    text: str                  # first line after the tag, CRLF stripped
    sent_at: float = 0.0       # monotonic time the command was complete
    literal_bytes: int = 0     # literal bytes forwarded so far
    complete: bool = False     # the whole command was forwarded
    status: str | None = None  # OK / NO / BAD once the reply came
    reply: str | None = None   # the tagged reply line
    relayed: bool = False      # the tagged reply reached the client
    # Server bytes relayed while it was the oldest command in flight on
    # its connection (untagged data, literals and its tagged reply).
    reply_bytes: int = 0
    fired: set = dataclasses.field(default_factory=set)

    @property
    def in_flight(self) -> bool:
        """Forwarded (at least its first line) and its tagged reply not
        yet arrived from the server."""
        return self.status is None


class Rule:
    """Match a client command, act at a protocol point (see module doc)."""

    def __init__(self, match: str, at="reply", action="drop",
                 times: int | None = 1):
        self.regex = re.compile(match, re.I)
        if isinstance(at, tuple):
            if len(at) != 2 or at[0] != "literal" or int(at[1]) < 0:
                raise ValueError(f"bad point {at!r}")
            at = ("literal", int(at[1]))
        elif at not in _POINTS:
            raise ValueError(f"bad point {at!r}")
        if not callable(action) and action not in ("drop", "reset",
                                                   "pause"):
            raise ValueError(f"bad action {action!r}")
        self.at = at
        self.action = action
        self.times = times
        self.fired = 0          # how often it fired (under the proxy lock)
        self.fired_on: list[ProxyCommand] = []

    def __repr__(self):
        return f"Rule({self.regex.pattern!r}, at={self.at!r}, " \
               f"action={self.action!r}, fired={self.fired})"


class _Stop(Exception):
    """The connection ends (dropped, reset, or the proxy stops)."""


class _Conn:
    """One client connection and its upstream; run() is its thread."""

    def __init__(self, proxy: "FaultProxy", raw: socket.socket, n: int):
        self.proxy = proxy
        self.n = n
        self.raw = raw
        self.client = None      # SSLSocket to the client
        self.up = None          # SSLSocket to the server
        self.paused = False     # set by a "pause" rule; cleared by resume
        self.closed = False
        self.cbuf = bytearray()  # client bytes not yet processed
        self.sbuf = bytearray()  # server bytes not yet processed
        self.c_literal = 0      # client literal bytes still to come
        self.s_literal = 0
        self.s_owner: ProxyCommand | None = None  # of the server literal
        self.cur: ProxyCommand | None = None   # client command being read
        self.cmds: list[ProxyCommand] = []     # this connection's commands
        self.continuation = False  # AUTHENTICATE/IDLE: lines are not cmds
        self.reset_pending = False

    # -- sockets ---------------------------------------------------------
    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.up, self.raw):
            if s is None:
                continue
            try:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                else:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _send(self, sock, data) -> None:
        if not data:
            return
        try:
            sock.sendall(data)
        except (OSError, ssl.SSLError) as e:
            raise _Stop() from e

    def _frozen(self) -> bool:
        return self.paused or self.proxy._paused.is_set()

    def _wait_unfrozen(self) -> None:
        while self._frozen():
            if self.proxy._stopping.is_set() or self.reset_pending:
                raise _Stop()
            time.sleep(_POLL)

    # -- rules -------------------------------------------------------------
    def _fire(self, cmd: ProxyCommand, point) -> None:
        """Runs the rules for cmd at point (each at most once per cmd)."""
        for rule in self.proxy._matching(cmd, point):
            action = rule.action
            if callable(action):
                action(self, cmd)
            elif action == "pause":
                self.paused = True
                self._wait_unfrozen()
            elif action == "drop":
                self.close()
                raise _Stop()
            elif action == "reset":
                self.close(reset=True)
                raise _Stop()

    # -- client -> server --------------------------------------------------
    def _start_command(self, line: bytes) -> ProxyCommand | None:
        text = line.rstrip(b"\r\n").decode("latin-1")
        if self.continuation:
            # An AUTHENTICATE response or IDLE's DONE, not a command.
            if text.upper() == "DONE":
                self.continuation = False
            return None
        parts = text.split(" ", 2)
        tag = parts[0]
        name = parts[1].upper() if len(parts) > 1 else ""
        if name == "UID" and len(parts) > 2:
            name += " " + parts[2].split(" ", 1)[0].upper()
        cmd = ProxyCommand(conn=self.n, tag=tag, name=name,
                           text=text.split(" ", 1)[1] if " " in text
                           else "")
        if name in ("AUTHENTICATE", "IDLE"):
            self.continuation = True
        self.proxy._record(cmd)
        self.cmds.append(cmd)
        return cmd

    def _client_input(self) -> None:
        while self.cbuf:
            self._wait_unfrozen()
            if self.c_literal:
                k = min(self.c_literal, len(self.cbuf))
                cmd = self.cur
                if cmd is not None:
                    cut = self.proxy._literal_cut(cmd, k)
                    if cut is not None:
                        k = cut
                self._send(self.up, bytes(self.cbuf[:k]))
                del self.cbuf[:k]
                self.c_literal -= k
                if cmd is not None:
                    cmd.literal_bytes += k
                    self._fire(cmd, ("literal", cmd.literal_bytes))
                continue
            i = self.cbuf.find(b"\r\n")
            if i < 0:
                if len(self.cbuf) > _MAX_LINE:
                    raise _Stop()
                return
            line = bytes(self.cbuf[:i + 2])
            if self.cur is None:
                self.cur = self._start_command(line)
                if self.cur is not None:
                    self._fire(self.cur, "before")
            self._send(self.up, line)
            del self.cbuf[:i + 2]
            m = _LITERAL_RE.search(line)
            if m:
                self.c_literal = int(m.group(1))
                if self.cur is not None and self.c_literal == 0:
                    self._fire(self.cur, ("literal", 0))
                continue
            cmd, self.cur = self.cur, None
            if cmd is not None:
                cmd.complete = True
                cmd.sent_at = time.monotonic()
                self._fire(cmd, "sent")

    # -- server -> client --------------------------------------------------
    def _server_input(self) -> None:
        while self.sbuf:
            self._wait_unfrozen()
            if self.s_literal:
                k = min(self.s_literal, len(self.sbuf))
                if self.s_owner is not None:
                    self.s_owner.reply_bytes += k
                self._send(self.client, bytes(self.sbuf[:k]))
                del self.sbuf[:k]
                self.s_literal -= k
                continue
            i = self.sbuf.find(b"\r\n")
            if i < 0:
                if len(self.sbuf) > _MAX_LINE:
                    raise _Stop()
                return
            line = bytes(self.sbuf[:i + 2])
            tagged = None
            m = _TAGGED_RE.match(line)
            if m:
                tag = m.group(1).decode("latin-1")
                tagged = next((c for c in self.cmds
                               if c.tag == tag and c.status is None), None)
            owner = tagged or next(
                (c for c in self.cmds if c.complete and c.status is None),
                None)
            if owner is not None:
                owner.reply_bytes += len(line)
            self.s_owner = owner
            if not line.startswith(b"+"):
                for c in self.cmds:
                    if c.complete and c.status is None:
                        self._fire(c, "response")
            if tagged is not None:
                with self.proxy._lock:
                    tagged.status = m.group(2).decode("latin-1").upper()
                    tagged.reply = line.rstrip(b"\r\n").decode("latin-1")
                self._fire(tagged, "reply")
                if tagged.name in ("AUTHENTICATE", "IDLE"):
                    self.continuation = False
            self._send(self.client, line)
            del self.sbuf[:i + 2]
            if tagged is not None:
                tagged.relayed = True
                self.cmds.remove(tagged)
                self._fire(tagged, "after_reply")
            m = _LITERAL_RE.search(line)
            if m:
                self.s_literal = int(m.group(1))

    # -- the thread ----------------------------------------------------------
    def _recv(self, sock) -> bytes:
        try:
            data = sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except (socket.timeout, TimeoutError):
            return None
        except (OSError, ssl.SSLError) as e:
            raise _Stop() from e
        if not data:
            raise _Stop()
        return data

    def run(self) -> None:
        p = self.proxy
        try:
            self.raw.settimeout(_IO_TIMEOUT)
            self.client = p._server_ctx.wrap_socket(self.raw,
                                                    server_side=True)
            # A silent server also withholds the greeting.
            self._wait_unfrozen()
            upraw = socket.create_connection(
                (p.target.host, p.target.imaps_port), timeout=_IO_TIMEOUT)
            self.up = p._client_ctx.wrap_socket(
                upraw, server_hostname=p.target.host)
            while not p._stopping.is_set():
                if self.reset_pending:
                    self.close(reset=True)
                    raise _Stop()
                if self._frozen():
                    time.sleep(_POLL)
                    continue
                socks = [s for s in (self.client, self.up)
                         if s.pending() > 0]
                if not socks:
                    socks, _, _ = select.select([self.client, self.up], [],
                                                [], _POLL)
                for s in socks:
                    data = self._recv(s)
                    if data is None:
                        continue
                    p._count(self.n, s is self.client, len(data))
                    if s is self.client:
                        self.cbuf += data
                        self._client_input()
                    else:
                        self.sbuf += data
                        self._server_input()
        except (_Stop, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            self.close(reset=self.reset_pending)
            p._forget(self)


class FaultProxy(Service):
    """The proxy in front of `target` (a started testenv.DovecotServer);
    context manager (start/stop)."""

    host = "127.0.0.1"
    ssl = True
    delimiter = "."

    def __init__(self, target, lifetime: float = 900.0):
        self.target = target
        self.user = target.user
        self.password = target.password
        self.cafile = target.cafile
        self.imaps_port = 0
        self.imap_port = 0
        self.lifetime = lifetime
        self.rules: list[Rule] = []
        self.commands: list[ProxyCommand] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._blackhole = False
        self._listener: socket.socket | None = None
        self._reserved: socket.socket | None = None   # see refuse()
        self._accept_thread: threading.Thread | None = None
        self._conns: set[_Conn] = set()
        self._threads: list[threading.Thread] = []
        self._held: list[socket.socket] = []   # blackholed connections
        self._nconn = 0
        # Connection number -> [up bytes, up reads, down bytes, down
        # reads] (protected by _lock).
        self._traffic: dict[int, list[int]] = {}
        self._timer: threading.Timer | None = None
        self._server_ctx = None
        self._client_ctx = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self._listener is not None:
            return
        ssl_dir = self.target.cafile.rsplit("/", 1)[0]
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.minimum_version = ssl.TLSVersion.TLSv1_2
        sctx.load_cert_chain(f"{ssl_dir}/server.crt", f"{ssl_dir}/server.key")
        self._server_ctx = sctx
        self._client_ctx = ssl.create_default_context(
            cafile=self.target.cafile)
        self._stopping.clear()
        self._listen(0)
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def _listen(self, port: int, ls: socket.socket | None = None) -> None:
        if ls is None:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((self.host, port))
        ls.listen(64)
        ls.settimeout(_POLL)
        self._listener = ls
        self.imaps_port = ls.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, args=(ls,),
                             name="faultproxy-accept", daemon=True)
        t.start()
        self._accept_thread = t

    def stop(self) -> None:
        """Idempotent: closes the listener and every connection, joins
        every thread (bounded)."""
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        for ls in (self._listener, self._reserved):
            if ls is not None:
                try:
                    ls.close()
                except OSError:
                    pass
        self._listener = self._reserved = None
        with self._lock:
            conns = list(self._conns)
            held, self._held = self._held, []
        for c in conns:
            c.close()
        for s in held:
            try:
                s.close()
            except OSError:
                pass
        me = threading.current_thread()
        for t in [self._accept_thread] + self._threads:
            if t is not None and t is not me:
                t.join(5)
        self._threads.clear()

    # -- faults --------------------------------------------------------------
    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def pause(self) -> None:
        """Stop relaying on every connection, old and new (sockets stay
        open: the client sees a server that has gone silent)."""
        self._paused.set()

    def resume(self) -> None:
        """Undo pause() and every "pause" rule."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.paused = False
        self._paused.clear()

    def blackhole(self, on: bool = True) -> None:
        """New TCP connections are accepted and never answered (not even
        the TLS handshake) until blackhole(False) or stop()."""
        self._blackhole = on
        if not on:
            with self._lock:
                held, self._held = self._held, []
            for s in held:
                try:
                    s.close()
                except OSError:
                    pass

    def refuse(self, on: bool = True) -> None:
        """New connections are refused (ECONNREFUSED) until refuse(False).
        The port stays reserved meanwhile: a socket bound to it that does
        not listen, which the kernel answers with RST."""
        if on and self._listener is not None:
            ls, self._listener = self._listener, None
            ls.close()
            if self._accept_thread is not None:
                self._accept_thread.join(5)
            keep = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            keep.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            keep.bind((self.host, self.imaps_port))
            self._reserved = keep
        elif not on and self._listener is None and \
                not self._stopping.is_set():
            keep, self._reserved = self._reserved, None
            self._listen(self.imaps_port, keep)

    def reset_all(self) -> int:
        """Abort (RST) every open connection; returns how many."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.reset_pending = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                if not any(c in self._conns for c in conns):
                    break
            time.sleep(_POLL / 2)
        return len(conns)

    # -- inspection ----------------------------------------------------------
    def commands_snapshot(self) -> list[ProxyCommand]:
        with self._lock:
            return list(self.commands)

    def in_flight(self, regex: str = "") -> list[ProxyCommand]:
        """Commands forwarded and not yet answered, matching regex."""
        r = re.compile(regex, re.I)
        with self._lock:
            return [c for c in self.commands
                    if c.status is None and r.search(c.text)]

    def connection_count(self) -> int:
        """Client connections accepted and relayed so far."""
        with self._lock:
            return self._nconn

    def traffic(self, conn: int | None = None) -> dict[str, int]:
        """What the proxy received so far, of connection number conn
        (None: all of them, closed ones too): "up_bytes"/"up_reads" from
        the clients, "down_bytes"/"down_reads" from the server, plaintext
        bytes and reads (at most one TLS record each).  Deltas of two
        calls give the traffic in between."""
        with self._lock:
            rows = [self._traffic.get(conn, [0] * 4)] if conn is not None \
                else list(self._traffic.values())
            tot = [sum(r[i] for r in rows) for i in range(4)]
        return dict(zip(("up_bytes", "up_reads", "down_bytes",
                         "down_reads"), tot))

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def wait_for(self, predicate, timeout: float = 10.0):
        """Polls predicate() until true (returned) or timeout (None)."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(0.02)

    def client(self) -> imaplib.IMAP4_SSL:
        """A logged-in imaplib client through the proxy."""
        c = imaplib.IMAP4_SSL(self.host, self.imaps_port,
                              ssl_context=ssl.create_default_context(
                                  cafile=self.cafile), timeout=30)
        c.login(self.user, self.password)
        return c

    # -- internals -----------------------------------------------------------
    def _record(self, cmd: ProxyCommand) -> None:
        with self._lock:
            self.commands.append(cmd)

    def _matching(self, cmd: ProxyCommand, point) -> list[Rule]:
        out = []
        with self._lock:
            for i, rule in enumerate(self.rules):
                key = (i, point[0] if isinstance(point, tuple) else point)
                if key in cmd.fired or not self._point_hit(rule, point):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if not rule.regex.search(cmd.text) and \
                        not rule.regex.search(cmd.name):
                    continue
                cmd.fired.add(key)
                rule.fired += 1
                rule.fired_on.append(cmd)
                out.append(rule)
        return out

    @staticmethod
    def _point_hit(rule: Rule, point) -> bool:
        if isinstance(rule.at, tuple):
            return isinstance(point, tuple) and point[1] >= rule.at[1]
        return rule.at == point

    def _literal_cut(self, cmd: ProxyCommand, k: int) -> int | None:
        """How many of the next k literal bytes may go before a literal
        rule for cmd must fire (None: all of them)."""
        best = None
        with self._lock:
            for i, rule in enumerate(self.rules):
                if not isinstance(rule.at, tuple) or \
                        (i, "literal") in cmd.fired:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if not rule.regex.search(cmd.text):
                    continue
                room = rule.at[1] - cmd.literal_bytes
                if 0 <= room < k and (best is None or room < best):
                    best = room
        return best

    def _count(self, conn: int, up: bool, nbytes: int) -> None:
        with self._lock:
            row = self._traffic.setdefault(conn, [0] * 4)
            k = 0 if up else 2
            row[k] += nbytes
            row[k + 1] += 1

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _accept_loop(self, ls: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                raw, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._blackhole:
                with self._lock:
                    self._held.append(raw)
                continue
            with self._lock:
                self._nconn += 1
                conn = _Conn(self, raw, self._nconn)
                self._conns.add(conn)
            t = threading.Thread(target=conn.run, daemon=True,
                                 name=f"faultproxy-conn-{conn.n}")
            t.start()
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
