"""Scripted Gmail and Microsoft 365 for imapfs tests (extends fakeserver).

No Debian server reproduces what the two big providers do, so this module
scripts it on top of tests/support/fakeserver.py (same TLS listener, same
command recording, same attributes for testenv.mount_imapfs()).  A
ProviderServer is a small but complete read-write IMAP server with one of
two profiles:

"gmail" -- labels shown as folders, as Gmail's IMAP does it:
    * capabilities as Gmail announces them after login (X-GM-EXT-1,
      CONDSTORE, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, MOVE, UIDPLUS,
      UNSELECT, QUOTA, LITERAL-, APPENDLIMIT ...);
    * a `[Gmail]` \\Noselect parent with the special-use children
      `All Mail` (\\All), `Important` (\\Important), `Sent Mail` (\\Sent),
      `Starred` (\\Flagged), `Trash` (\\Trash), `Drafts`, `Spam` (\\Junk);
    * one message (one X-GM-MSGID, one set of flags) is in every folder
      whose label it carries, with its own UID in each, and always in All
      Mail unless it is in Trash or Spam; APPEND to a label folder adds the
      message to All Mail too; COPY adds a label, MOVE moves a label;
    * STORE +FLAGS \\Deleted removes the message from that folder at once
      (Gmail's auto-expunge), with an untagged EXPUNGE: in a label folder
      (INBOX too) it removes the label, in Trash it deletes the message for
      good, and in All Mail it has no effect on the message (Gmail's
      default for "expunged from the last visible folder" is to archive
      it, and it is archived already): it stays in All Mail.  COPY or MOVE
      to Trash removes every label.
    * UID FETCH knows X-GM-MSGID, X-GM-THRID and X-GM-LABELS.

"m365" -- Microsoft 365 (Exchange Online):
    * capabilities as Outlook.com announces them: no CONDSTORE, no QRESYNC,
      no LIST-EXTENDED/SPECIAL-USE (the special folders still carry
      \\Sent, \\Trash ... in LIST), MOVE, UIDPLUS, UNSELECT, CHILDREN,
      LITERAL+;
    * one copy of a message per folder, as on any plain server.

Both serve IDLE (RFC 2177; news of the selected folder pushed while
idling) and FETCH by sequence number, as the real ones do; a STATUS item a
profile does not know (HIGHESTMODSEQ on m365, which lacks CONDSTORE)
draws BAD.  Every BAD is kept in `bad_tags` as (connection, tag).

Either profile may be made OAuth2-only (`oauth2_token`): AUTH=XOAUTH2 and
LOGINDISABLED are announced, LOGIN and AUTHENTICATE PLAIN are refused, and
AUTHENTICATE XOAUTH2 accepts "user=<user>^Aauth=Bearer <token>^A^A" (a
refusal answers with Gmail's JSON challenge first, then NO).

Throttling is scripted with throttle(): the next `count` commands whose
name matches get a tagged `NO [THROTTLED] ...` (mode "no"; Gmail's form),
a tagged `NO Request is throttled. Suggested Backoff Time: N milliseconds`
(mode "text"; Microsoft's form) or `* BYE [THROTTLED] ...` and the
connection closed (mode "bye"); mode "ok" answers the command as usual with
`OK [THROTTLED] Success` (Gmail's warning on a command that did succeed).

Stdlib only; the server's state (`folders`, `msgs`) may be read by a test
under `lock` and is the truth a test compares the mount with.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import select
import threading

import fakeserver
from fakeserver import _parse_set, _tokens

__all__ = ["ProviderServer", "GMAIL_FOLDERS", "M365_FOLDERS"]

_GMAIL_CAPS = ("IMAP4rev1", "UNSELECT", "IDLE", "NAMESPACE", "QUOTA", "ID",
               "XLIST", "CHILDREN", "X-GM-EXT-1", "UIDPLUS",
               "COMPRESS=DEFLATE", "ENABLE", "MOVE", "CONDSTORE", "ESEARCH",
               "UTF8=ACCEPT", "LIST-EXTENDED", "LIST-STATUS", "LITERAL-",
               "SPECIAL-USE", "APPENDLIMIT=35651584")
_M365_CAPS = ("IMAP4", "IMAP4rev1", "SASL-IR", "UIDPLUS", "MOVE", "ID",
              "UNSELECT", "CHILDREN", "IDLE", "NAMESPACE", "LITERAL+")

# name -> LIST attributes (besides \HasChildren/\HasNoChildren).
GMAIL_FOLDERS = {
    "INBOX": (),
    "[Gmail]": ("\\Noselect",),
    "[Gmail]/All Mail": ("\\All",),
    "[Gmail]/Drafts": ("\\Drafts",),
    "[Gmail]/Important": ("\\Important",),
    "[Gmail]/Sent Mail": ("\\Sent",),
    "[Gmail]/Spam": ("\\Junk",),
    "[Gmail]/Starred": ("\\Flagged",),
    "[Gmail]/Trash": ("\\Trash",),
}
M365_FOLDERS = {
    "INBOX": (),
    "Archive": ("\\Archive",),
    "Deleted Items": ("\\Trash",),
    "Drafts": ("\\Drafts",),
    "Junk Email": ("\\Junk",),
    "Sent Items": ("\\Sent",),
}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
           "Oct", "Nov", "Dec"]


@dataclasses.dataclass
class Msg:
    """One message: on Gmail one X-GM-MSGID, whatever its labels."""
    msgid: int
    data: bytes
    date: str                       # INTERNALDATE text
    flags: set = dataclasses.field(default_factory=set)
    modseq: int = 1


class Folder:
    def __init__(self, name, attrs, uidvalidity):
        self.name = name
        self.attrs = tuple(attrs)
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.uids: dict[int, Msg] = {}   # in UID order
        # Set by rename_folder(oldname=True): LIST replies name it in an
        # OLDNAME extended data item (RFC 5258 section 9, RFC 5465 5.4).
        self.old_name: str | None = None

    @property
    def selectable(self):
        return "\\Noselect" not in self.attrs

    def special(self, attr):
        return attr in self.attrs


class ProviderServer(fakeserver.FakeImapServer):
    """A scripted Gmail ("gmail") or Microsoft 365 ("m365")."""

    def __init__(self, profile: str, labels: dict | None = None,
                 oauth2_token: str | None = None,
                 qresync_forgets: bool = False, **kw):
        """`labels` maps a folder name to a list of (key, bytes) messages;
        on Gmail the same key in several folders is the same message (one
        X-GM-MSGID) carrying several labels; every Gmail message is also in
        All Mail.  Extra folder names are plain label folders (Gmail) or
        folders (m365).  `qresync_forgets` (Gmail only) announces and
        enables QRESYNC but answers a UID FETCH (CHANGEDSINCE m VANISHED)
        with no VANISHED and every message's flags: a server that no
        longer remembers which expunges came after m."""
        super().__init__([], **kw)
        self.qresync_forgets = qresync_forgets
        # Folder names LIST leaves out although they exist (STATUS and
        # EXAMINE still answer): a list answered from a stale view.
        self.list_hides: set[str] = set()
        if profile not in ("gmail", "m365"):
            raise ValueError(profile)
        self.profile = profile
        self.gmail = profile == "gmail"
        self.oauth2_token = oauth2_token
        self.lock = threading.RLock()     # protects everything below
        self.fetch_hooks = []  # during_fetch(): (text regex, fn)
        self.folders: dict[str, Folder] = {}
        self.msgs: dict[int, Msg] = {}    # msgid -> Msg (Gmail)
        self.modseq = 1
        self._next_msgid = 0x17a0000000000001
        self._next_uidvalidity = 600
        self.throttles: list[dict] = []
        # Commands answered BAD: (connection number, tag).
        self.bad_tags: set[tuple[int, str]] = set()
        for name, attrs in (GMAIL_FOLDERS if self.gmail
                            else M365_FOLDERS).items():
            self.add_folder(name, attrs)
        keyed: dict = {}
        for name, items in (labels or {}).items():
            if name not in self.folders:
                self.add_folder(name, ())
            for n, (key, data) in enumerate(items):
                msg = keyed.get(key) if self.gmail else None
                if msg is None:
                    msg = self.new_msg(data, day=1 + (len(keyed) % 28))
                    keyed[key] = msg
                self.add_to(self.folders[name], msg)
        if self.gmail:
            for msg in keyed.values():
                if not set(self.folders_of(msg)) & {"[Gmail]/Trash",
                                                     "[Gmail]/Spam"}:
                    self.add_to(self.folders["[Gmail]/All Mail"], msg)

    # -- the store (call with self.lock held) --------------------------------
    def add_folder(self, name, attrs):
        self._next_uidvalidity += 1
        self.folders[name] = Folder(name, attrs, self._next_uidvalidity)
        return self.folders[name]

    def new_msg(self, data: bytes, day=1, flags=(), date=None) -> Msg:
        self._next_msgid += 1
        msg = Msg(self._next_msgid, data,
                  date or f"{day:02d}-Mar-2024 10:00:00 +0000", set(flags))
        self.msgs[msg.msgid] = msg
        return msg

    def bump(self, msg: Msg):
        self.modseq += 1
        msg.modseq = self.modseq

    def add_to(self, folder: Folder, msg: Msg) -> int:
        """Puts msg in folder (Gmail: once per folder); returns its UID."""
        for uid, m in folder.uids.items():
            if m is msg:
                return uid
        uid = folder.uidnext
        folder.uidnext += 1
        folder.uids[uid] = msg if self.gmail else dataclasses.replace(
            msg, flags=set(msg.flags))
        self.bump(folder.uids[uid])
        return uid

    def folders_of(self, msg: Msg) -> list[str]:
        return [f.name for f in self.folders.values()
                if any(m is msg for m in f.uids.values())]

    def rename_folder(self, name: str, to: str, oldname: bool = False):
        """RENAME `name` (and what is below it) to `to`; with `oldname`
        LIST replies then carry ("OLDNAME" ("<old name>"))."""
        for old in [n for n in self.folders
                    if n == name or n.startswith(name + "/")]:
            box = self.folders.pop(old)
            box.name = to + old[len(name):]
            box.old_name = old if oldname else None
            self.folders[box.name] = box

    def special(self, attr) -> Folder:
        return next(f for f in self.folders.values() if f.special(attr))

    def remove_everywhere(self, msg: Msg):
        for f in self.folders.values():
            for uid in [u for u, m in f.uids.items() if m is msg]:
                del f.uids[uid]

    def trash(self, msg: Msg):
        """Gmail: COPY/MOVE to Trash removes every label."""
        self.remove_everywhere(msg)
        self.add_to(self.special("\\Trash"), msg)

    def expunge_from(self, folder: Folder, uid: int):
        """What removing uid from folder does to the message."""
        msg = folder.uids.get(uid)
        if msg is None:
            return
        if not self.gmail:
            del folder.uids[uid]
            return
        if folder.special("\\All"):
            # Gmail's default (archive when expunged from the last visible
            # folder): the message stays where it is.
            msg.flags.discard("\\Deleted")
            return
        if folder.special("\\Trash") or folder.special("\\Junk"):
            self.remove_everywhere(msg)
            self.msgs.pop(msg.msgid, None)
            return
        del folder.uids[uid]
        if folder.special("\\Flagged"):
            msg.flags.discard("\\Flagged")

    def throttle(self, name_re: str, mode: str = "no", count: int = 1,
                 backoff_ms: int = 300, text_re: str = ""):
        """The next `count` commands whose upper-case name (e.g. "UID
        FETCH", "EXAMINE", "APPEND") matches `name_re` and whose text
        contains `text_re` (a regex) are throttled."""
        assert mode in ("no", "text", "bye", "ok")
        with self.lock:
            self.throttles.append({"re": re.compile(name_re), "mode": mode,
                                   "text": re.compile(text_re),
                                   "count": count, "backoff": backoff_ms})

    def during_fetch(self, text_re: str, fn):
        """fn(selected folder name) runs while the reply to a
        sequence-number FETCH whose text contains `text_re` (a regex) is
        written: after its FETCH lines, before its tagged OK; it stays
        armed until fn returns True.  A message fn delivers is announced by
        an EXISTS inside that reply, its UID not among the ones fetched (as
        on a real server when mail arrives mid-FETCH)."""
        with self.lock:
            self.fetch_hooks.append((re.compile(text_re), fn))

    def run_fetch_hook(self, cmd, selected) -> bool:
        with self.lock:
            for i, (text_re, fn) in enumerate(self.fetch_hooks):
                if text_re.search(cmd.text) and fn(selected):
                    del self.fetch_hooks[i]
                    return True
        return False

    def take_throttle(self, cmd):
        with self.lock:
            for t in self.throttles:
                if t["count"] > 0 and t["re"].fullmatch(cmd.name) and \
                        t["text"].search(cmd.text):
                    t["count"] -= 1
                    return t
        return None

    # -- what tests read -----------------------------------------------------
    def uids(self, folder: str) -> dict[int, Msg]:
        with self.lock:
            return dict(self.folders[folder].uids)

    def bodies(self, folder: str) -> dict[int, bytes]:
        with self.lock:
            return {u: m.data for u, m in self.folders[folder].uids.items()}

    def count(self, pattern: str) -> int:
        with self.lock:
            return sum(1 for c in self.commands if re.search(pattern, c.text))

    def caps_after_login(self) -> tuple:
        if self.gmail and self.qresync_forgets:
            return _GMAIL_CAPS + ("QRESYNC",)
        return _GMAIL_CAPS if self.gmail else _M365_CAPS


def _wildcard(pattern: str) -> re.Pattern:
    out = ""
    for ch in pattern:
        out += ".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch)
    return re.compile(out + r"\Z")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _ProviderSession(fakeserver._Session):
    def __init__(self, server: ProviderServer, sock, n):
        super().__init__(server, sock, n)
        self.p = server
        self.readonly = True
        self.view: list[int] = []      # the UIDs this session was told of
        self.condstore = False
        self.ok_code = ""              # a code for this command's OK

    def caps(self) -> str:
        p = self.p
        if self.authed:
            caps = list(p.caps_after_login())
        elif p.gmail:
            caps = ["IMAP4rev1", "UNSELECT", "IDLE", "NAMESPACE", "QUOTA",
                    "ID", "XLIST", "CHILDREN", "X-GM-EXT-1", "XYZZY",
                    "SASL-IR"]
        else:
            caps = list(_M365_CAPS)
        if not self.authed:
            if p.oauth2_token is not None:
                caps += ["AUTH=XOAUTH2", "AUTH=OAUTHBEARER"] if p.gmail \
                    else ["AUTH=XOAUTH2"]
                caps.append("LOGINDISABLED")
            else:
                caps.append("AUTH=PLAIN")
        return " ".join(caps)

    def run(self, greet=True):
        greeting = "Gimap ready" if self.p.gmail else \
            "The Microsoft Exchange IMAP4 service is ready."
        self.send(f"* OK [CAPABILITY {self.caps()}] {greeting}\r\n".encode())
        while True:
            cmd = self.read_command()
            cmd.mailbox = self.selected
            if cmd.name == "IDLE" and self.authed:
                self.idle(cmd.tag.encode("latin-1"))
                continue
            with self.p.lock:
                if not self.dispatch_provider(cmd):
                    return

    # IDLE (RFC 2177), which both providers announce and serve: the news
    # of the selected folder (EXISTS, EXPUNGE) is pushed as it happens,
    # until DONE.  Outside the store's lock, so others may change it.
    def idle(self, tag: bytes):
        self.send(b"+ idling\r\n" if self.p.gmail else
                  b"+ IDLE accepted, awaiting DONE command.\r\n")
        while True:
            pending = getattr(self.sock, "pending", lambda: 0)()
            if b"\r\n" in self.reader.buf or pending > 0:
                break
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if ready:
                break
            if self.p._stop.is_set():
                raise fakeserver._Closed()
            with self.p.lock:
                news = self.news()
            if news:
                self.send(news)
        line = self.reader.line()
        if line.upper() != b"DONE":
            self.bad(tag, "Expected DONE")
            return
        with self.p.lock:
            self.ok(tag, "IDLE completed.")

    # Untagged news about the selected folder, at a command boundary.
    def news(self) -> bytes:
        if self.selected is None or self.selected not in self.p.folders:
            return b""
        now = list(self.p.folders[self.selected].uids)
        out = b""
        for i in range(len(self.view) - 1, -1, -1):
            if self.view[i] not in self.p.folders[self.selected].uids:
                out += f"* {i + 1} EXPUNGE\r\n".encode()
                del self.view[i]
        if len(now) > len(self.view) or now != self.view:
            self.view = now
            out += f"* {len(now)} EXISTS\r\n".encode()
        return out

    def seqno(self, uid: int) -> int:
        return self.view.index(uid) + 1

    def ok(self, tag: bytes, text: str = "Success", code: str = ""):
        code = code or self.ok_code
        code = f"[{code}] " if code else ""
        self.send(self.news() + tag + f" OK {code}{text}\r\n".encode())

    def no(self, tag: bytes, text: str):
        self.send(self.news() + tag + f" NO {text}\r\n".encode())

    def folder(self, name: str) -> Folder | None:
        if name.upper() == "INBOX":
            name = "INBOX"
        return self.p.folders.get(name)

    def dispatch_provider(self, cmd) -> bool:
        tag = cmd.tag.encode("latin-1")
        name = cmd.name
        rest = cmd.text.split(" ", 2)[2] if cmd.text.count(" ") >= 2 else ""
        t = self.p.take_throttle(cmd) if self.authed else None
        self.ok_code = ""
        if t is not None and t["mode"] == "ok":
            # Gmail's "OK Success [THROTTLED]": done, but slow down.
            self.ok_code = "THROTTLED"
            t = None
        if t is not None:
            if t["mode"] == "bye":
                self.send(b"* BYE [THROTTLED] Request is throttled. "
                          b"Suggested Backoff Time: " +
                          str(t["backoff"]).encode() + b" milliseconds\r\n")
                return False
            if t["mode"] == "no":
                self.no(tag, "[THROTTLED] Too many commands, slow down. "
                        "(Failure)")
            else:
                self.no(tag, "Request is throttled. Suggested Backoff "
                        f"Time: {t['backoff']} milliseconds")
            return True
        if name in ("CAPABILITY", "NOOP", "LOGOUT", "ID"):
            if name == "LOGOUT":
                self.send(b"* BYE LOGOUT Requested\r\n" + tag +
                          b" OK bye\r\n")
                return False
            if name == "CAPABILITY":
                self.send(f"* CAPABILITY {self.caps()}\r\n".encode())
            if name == "ID":
                self.send(b'* ID ("name" "fake")\r\n')
            self.ok(tag)
            return True
        if name == "LOGIN":
            if self.p.oauth2_token is not None:
                self.no(tag, "LOGIN failed.")
                return True
            return self.dispatch(cmd)
        if name == "AUTHENTICATE":
            return self.authenticate_provider(tag, rest)
        if not self.authed:
            self.bad(tag, "not authenticated")
            return True
        handler = getattr(self, "cmd_" + name.replace(" ", "_"), None)
        if handler is None:
            self.bad(tag, "Unknown command")
            return True
        args = _tokens(rest, cmd.literals)
        try:
            handler(tag, rest, args, cmd)
        except (IndexError, ValueError, KeyError, AttributeError) as e:
            self.bad(tag, f"Could not parse command ({e!r})")
        return True

    def bad(self, tag: bytes, text: str):
        self.p.bad_tags.add((self.n, tag.decode("latin-1")))
        self.send(tag + f" BAD {text}\r\n".encode())

    # -- authentication ------------------------------------------------------
    def authenticate_provider(self, tag, rest) -> bool:
        words = rest.split(" ")
        mech = words[0].upper()
        if self.p.oauth2_token is None or mech == "PLAIN":
            if self.p.oauth2_token is not None:
                self.no(tag, "[AUTHENTICATIONFAILED] AUTHENTICATE failed.")
                return True
            return self.authenticate(tag, rest)
        if mech != "XOAUTH2":
            self.send(tag + b" NO unsupported mechanism\r\n")
            return True
        try:
            raw = self.sasl_response(words).decode()
        except ValueError:
            self.bad(tag, "Invalid SASL argument")
            return True
        want = f"user={self.p.user}\x01auth=Bearer {self.p.oauth2_token}" \
            "\x01\x01"
        if raw == want:
            self.authed = True
            self.send(tag + f" OK [CAPABILITY {self.caps()}] {self.p.user} "
                      "authenticated (Success)\r\n".encode())
            return True
        challenge = base64.b64encode(
            b'{"status":"400","schemes":"Bearer","scope":'
            b'"https://mail.google.com/"}')
        self.send(b"+ " + challenge + b"\r\n")
        self.reader.line()
        self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials "
                  b"(Failure)\r\n")
        return True

    # -- mailboxes -----------------------------------------------------------
    def cmd_ENABLE(self, tag, rest, args, cmd):
        if self.p.gmail and "CONDSTORE" in (a.upper() for a in args):
            self.condstore = True
            self.send(b"* ENABLED CONDSTORE QRESYNC\r\n"
                      if self.p.qresync_forgets and "QRESYNC" in
                      (a.upper() for a in args)
                      else b"* ENABLED CONDSTORE\r\n")
        self.ok(tag)

    def cmd_NAMESPACE(self, tag, rest, args, cmd):
        self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        self.ok(tag)

    def list_attrs(self, f: Folder, with_special: bool) -> str:
        attrs = [a for a in f.attrs if a == "\\Noselect" or with_special]
        kids = any(o.startswith(f.name + "/") for o in self.p.folders)
        attrs.append("\\HasChildren" if kids else "\\HasNoChildren")
        return " ".join(attrs)

    def cmd_LIST(self, tag, rest, args, cmd):
        ret = re.search(r"RETURN \((.*)\)\s*$", rest, re.I)
        ret = ret.group(1).upper() if ret else ""
        pattern = _wildcard(args[1])
        # Gmail without RETURN (SPECIAL-USE) still marks the special
        # folders, and so does Microsoft 365.
        out = b""
        for f in self.p.folders.values():
            if not pattern.match(f.name) and not (
                    args[1].upper() == "INBOX" and f.name == "INBOX"):
                continue
            if f.name in self.p.list_hides:
                continue
            ext = f' ("OLDNAME" ({_quote(f.old_name)}))' \
                if f.old_name is not None else ""
            out += f'* LIST ({self.list_attrs(f, True)}) "/" ' \
                   f'{_quote(f.name)}{ext}\r\n'.encode()
            items = re.search(r"STATUS \(([^)]*)\)", ret)
            if items and f.selectable:
                out += f"* STATUS {_quote(f.name)} " \
                       f"({self.status_items(f, items.group(1))})\r\n" \
                       .encode()
        self.send(out)
        self.ok(tag)

    def cmd_LSUB(self, tag, rest, args, cmd):
        self.cmd_LIST(tag, rest, args, cmd)

    def status_items(self, f: Folder, items: str) -> str:
        vals = {"MESSAGES": len(f.uids), "UIDNEXT": f.uidnext,
                "UIDVALIDITY": f.uidvalidity, "UNSEEN": sum(
                    1 for m in f.uids.values() if "\\Seen" not in m.flags),
                "RECENT": 0}
        if self.p.gmail:
            vals["HIGHESTMODSEQ"] = self.p.modseq
        words = re.findall(r"[A-Z]+", items.upper())
        unknown = [w for w in words if w not in vals]
        if unknown:
            # Exchange: "BAD Command Argument Error. 11" (HIGHESTMODSEQ
            # without CONDSTORE is not a status item it knows).
            raise ValueError(f"unknown status items {unknown}")
        return " ".join(f"{w} {vals[w]}" for w in words)

    def cmd_STATUS(self, tag, rest, args, cmd):
        f = self.folder(args[0])
        if f is None or not f.selectable:
            self.no(tag, "[NONEXISTENT] Unknown Mailbox: " + args[0])
            return
        items = rest[rest.index("("):]
        self.send(f"* STATUS {_quote(f.name)} "
                  f"({self.status_items(f, items)})\r\n".encode())
        self.ok(tag)

    def select(self, tag, args, readonly):
        f = self.folder(args[0])
        self.selected = None
        self.view = []
        if f is None or not f.selectable:
            self.no(tag, "[NONEXISTENT] Unknown Mailbox: " + args[0]
                    if f is None else "[NONEXISTENT] Mailbox is not "
                    "selectable (Failure)")
            return
        self.selected = f.name
        self.readonly = readonly
        self.view = list(f.uids)
        out = (f"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen "
               f"$NotPhishing $Phishing)\r\n"
               f"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft "
               f"\\Deleted \\Seen $NotPhishing $Phishing \\*)] Flags "
               f"permitted.\r\n"
               f"* OK [UIDVALIDITY {f.uidvalidity}] UIDs valid.\r\n"
               f"* {len(f.uids)} EXISTS\r\n* 0 RECENT\r\n"
               f"* OK [UIDNEXT {f.uidnext}] Predicted next UID.\r\n")
        if self.p.gmail:
            out += f"* OK [HIGHESTMODSEQ {self.p.modseq}]\r\n"
        self.send(out.encode())
        self.send(tag + (b" OK [READ-ONLY] " if readonly else
                         b" OK [READ-WRITE] ") + args[0].encode() +
                  b" selected. (Success)\r\n")

    def cmd_SELECT(self, tag, rest, args, cmd):
        self.select(tag, args, False)

    def cmd_EXAMINE(self, tag, rest, args, cmd):
        self.select(tag, args, True)

    def cmd_UNSELECT(self, tag, rest, args, cmd):
        self.selected = None
        self.view = []
        self.send(tag + b" OK Returned to authenticated state. "
                  b"(Success)\r\n")

    def cmd_CREATE(self, tag, rest, args, cmd):
        name = args[0].rstrip("/")
        if self.folder(name) is not None:
            self.no(tag, "[ALREADYEXISTS] Duplicate folder name " + name)
            return
        if self.p.gmail and name.startswith("[Gmail]/"):
            self.no(tag, "[CANNOT] Folder name conflicts with existing "
                    "folder name. (Failure)")
            return
        self.p.add_folder(name, ())
        self.ok(tag)

    def cmd_DELETE(self, tag, rest, args, cmd):
        f = self.folder(args[0])
        if f is None:
            self.no(tag, "[NONEXISTENT] Unknown Mailbox")
        elif f.attrs or f.name == "INBOX":
            self.no(tag, "[CANNOT] Cannot delete a system folder")
        else:
            for uid in list(f.uids):
                # Gmail: deleting a label leaves its messages in All Mail.
                del f.uids[uid]
            del self.p.folders[f.name]
            self.ok(tag)

    def cmd_RENAME(self, tag, rest, args, cmd):
        f = self.folder(args[0])
        if f is None or f.attrs or f.name == "INBOX":
            self.no(tag, "[CANNOT] Cannot rename this folder")
            return
        self.p.rename_folder(f.name, args[1])
        self.ok(tag)

    def cmd_GETQUOTAROOT(self, tag, rest, args, cmd):
        used = sum(len(m.data) for m in self.p.msgs.values()) // 1024
        self.send(f'* QUOTAROOT {_quote(args[0])} ""\r\n'
                  f'* QUOTA "" (STORAGE {used} 15728640)\r\n'.encode())
        self.ok(tag)

    # -- messages ------------------------------------------------------------
    def need_selected(self, tag, write=False) -> Folder | None:
        if self.selected is None:
            self.bad(tag, "No mailbox selected")
            return None
        if write and self.readonly:
            self.no(tag, "[READ-ONLY] Mailbox is read-only")
            return None
        return self.p.folders.get(self.selected)

    def uidset(self, f: Folder, text: str) -> list[int]:
        top = max(f.uids) if f.uids else 0
        return sorted(u for u in _parse_set(text, max(top, 1))
                      if u in f.uids)

    def cmd_UID_FETCH(self, tag, rest, args, cmd):
        f = self.need_selected(tag)
        if f is None:
            return
        m = re.match(r"FETCH (\S+) \((.*)\)$", rest, re.I)
        self.fetch(tag, f, self.uidset(f, m.group(1)), m.group(2).upper())

    # FETCH by message sequence number (the live view's listener learns
    # the UIDs of what it was told EXISTS with "FETCH n:* (UID)").
    def cmd_FETCH(self, tag, rest, args, cmd):
        f = self.need_selected(tag)
        if f is None:
            return
        m = re.match(r"(\S+) \((.*)\)$", rest)
        news = self.news()  # the numbers are those after it
        n = len(self.view)
        uids = [self.view[i - 1] for i in
                sorted(set(_parse_set(m.group(1), n))) if 1 <= i <= n]
        self.fetch(tag, f, uids, m.group(2).upper(), news, cmd)

    def fetch(self, tag, f: Folder, uids, items: str, news=None, cmd=None):
        body = re.search(r"BODY(\.PEEK)?\[\](?:<(\d+)\.(\d+)>)?", items)
        out = bytearray(self.news() if news is None else news)
        for uid in uids:
            msg = f.uids[uid]
            if uid not in self.view:
                continue
            parts = [f"UID {uid}".encode()]
            if "RFC822.SIZE" in items:
                parts.append(f"RFC822.SIZE {len(msg.data)}".encode())
            if "INTERNALDATE" in items:
                parts.append(f'INTERNALDATE "{msg.date}"'.encode())
            if "FLAGS" in items:
                parts.append(f"FLAGS ({' '.join(sorted(msg.flags))})"
                             .encode())
            if "MODSEQ" in items and self.p.gmail:
                parts.append(f"MODSEQ ({msg.modseq})".encode())
            if "X-GM-MSGID" in items and self.p.gmail:
                parts.append(f"X-GM-MSGID {msg.msgid}".encode())
            if "X-GM-THRID" in items and self.p.gmail:
                parts.append(f"X-GM-THRID {msg.msgid}".encode())
            if "X-GM-LABELS" in items and self.p.gmail:
                labels = [n for n in self.p.folders_of(msg)
                          if not n.startswith("[Gmail]/All")]
                parts.append(("X-GM-LABELS (" + " ".join(
                    "\\\\Inbox" if n == "INBOX" else _quote(n)
                    for n in labels) + ")").encode())
            if body is not None:
                if body.group(2) is None:
                    key, chunk = b"BODY[]", msg.data
                else:
                    off, length = int(body.group(2)), int(body.group(3))
                    key = f"BODY[]<{off}>".encode()
                    chunk = msg.data[off:off + length]
                parts.append(key + f" {{{len(chunk)}}}\r\n".encode() +
                             chunk)
            out += f"* {self.seqno(uid)} FETCH (".encode() + \
                b" ".join(parts) + b")\r\n"
        if cmd is not None and self.p.run_fetch_hook(cmd, self.selected):
            out += self.news()
        self.send(bytes(out))
        self.ok(tag)

    def cmd_UID_STORE(self, tag, rest, args, cmd):
        f = self.need_selected(tag, write=True)
        if f is None:
            return
        m = re.match(r"STORE (\S+) (?:\(UNCHANGEDSINCE (\d+)\) )?"
                     r"([+-]?)FLAGS(\.SILENT)? \((.*)\)$", rest, re.I)
        since = int(m.group(2)) if m.group(2) else None
        new = set(m.group(5).split())
        out, modified = b"", []
        for uid in self.uidset(f, m.group(1)):
            msg = f.uids[uid]
            if since is not None and msg.modseq > since:
                modified.append(str(uid))
                continue
            if m.group(3) == "+":
                msg.flags |= new
            elif m.group(3) == "-":
                msg.flags -= new
            else:
                msg.flags = set(new)
            self.p.bump(msg)
            if not m.group(4):
                out += f"* {self.seqno(uid)} FETCH (UID {uid} FLAGS " \
                       f"({' '.join(sorted(msg.flags))}))\r\n".encode()
            if self.p.gmail and "\\Deleted" in msg.flags:
                # Gmail's auto-expunge: gone from this folder at once.
                self.p.expunge_from(f, uid)
        self.send(out)
        if modified:
            self.ok(tag, "Conditional STORE failed",
                    "MODIFIED " + ",".join(modified))
        else:
            self.ok(tag)

    def cmd_UID_EXPUNGE(self, tag, rest, args, cmd):
        f = self.need_selected(tag, write=True)
        if f is None:
            return
        for uid in self.uidset(f, args[1]):
            if "\\Deleted" in f.uids[uid].flags:
                self.p.expunge_from(f, uid)
        self.ok(tag)

    def copy(self, tag, args, move):
        f = self.need_selected(tag, write=move)
        if f is None:
            return
        dest = self.folder(args[2])
        if dest is None or not dest.selectable:
            self.no(tag, "[TRYCREATE] No folder " + args[2] + " (Failure)")
            return
        src, dst = [], []
        for uid in self.uidset(f, args[1]):
            msg = f.uids[uid]
            if self.p.gmail and dest.special("\\Trash"):
                self.p.trash(msg)
                new = next(u for u, m in dest.uids.items() if m is msg)
            else:
                new = self.p.add_to(dest, msg)
                if move and not (self.p.gmail and f.special("\\All")):
                    del f.uids[uid]
            src.append(str(uid))
            dst.append(str(new))
        if not src:
            self.ok(tag, "No messages")
            return
        code = f"COPYUID {dest.uidvalidity} {','.join(src)} {','.join(dst)}"
        if move:
            self.send(f"* OK [{code}] (Success)\r\n".encode())
            self.ok(tag)
        else:
            self.ok(tag, "(Success)", code)

    def cmd_UID_COPY(self, tag, rest, args, cmd):
        self.copy(tag, args, False)

    def cmd_UID_MOVE(self, tag, rest, args, cmd):
        self.copy(tag, args, True)

    def cmd_UID_SEARCH(self, tag, rest, args, cmd):
        f = self.need_selected(tag)
        if f is None:
            return
        words = args[1:]
        uids = list(f.uids)
        i = 0
        while i < len(words):
            w = words[i].upper()
            if w == "UID":
                keep = set(self.uidset(f, words[i + 1]))
                uids = [u for u in uids if u in keep]
                i += 2
            elif w in ("LARGER", "SMALLER"):
                n = int(words[i + 1])
                uids = [u for u in uids if (len(f.uids[u].data) > n)
                        == (w == "LARGER")]
                i += 2
            elif w == "HEADER":
                want = words[i + 2].lower()
                uids = [u for u in uids
                        if want in f.uids[u].data.split(b"\r\n\r\n")[0]
                        .decode("latin-1").lower()]
                i += 3
            else:
                i += 1
        self.send(f"* SEARCH {' '.join(map(str, uids))}\r\n".encode())
        self.ok(tag)

    def cmd_APPEND(self, tag, rest, args, cmd):
        dest = self.folder(args[0])
        if dest is None or not dest.selectable:
            self.no(tag, "[TRYCREATE] Folder doesn't exist. (Failure)")
            return
        flags, date = set(), None
        m = re.search(r" \(([^)]*)\)", rest)
        if m:
            flags = set(m.group(1).split())
        m = re.search(r'"( ?\d{1,2}-[A-Z][a-z]{2}-\d{4} [\d:]+ [+-]\d{4})"',
                      rest)
        if m:
            date = m.group(1)
        msg = self.p.new_msg(cmd.literals[-1], flags=flags, date=date)
        uid = self.p.add_to(dest, msg)
        if self.p.gmail and not (dest.special("\\Trash") or
                                 dest.special("\\Junk")):
            self.p.add_to(self.p.special("\\All"), msg)
        self.ok(tag, "(Success)", f"APPENDUID {dest.uidvalidity} {uid}")


ProviderServer.session_class = _ProviderSession
