#!/usr/bin/python3
"""imapfs live-view benchmark (j): the cost of an idle mount watching N
folders (default 50) for a while (default 10 minutes).

Starts a private Dovecot (tests/support/testenv.py, its defaults: IDLE
keepalive "* OK Still here" every 2 minutes), creates the folders with a few
messages each, mounts imapfs through a fault proxy
(tests/support/faultproxy.py, which counts the traffic: plaintext IMAP bytes
and reads, i.e. TLS records, both directions, over every connection of the
mount: listener and pool), lists every folder once (a loaded folder is a
watched one) and then leaves the mount alone for the measured period.
Measured over that period: the traffic, the daemon's CPU time
(utime + stime of /proc/<pid>/stat, all threads), and the commands the
mount sent (from the proxy's record): IDLE (= cycles of leaving and
re-entering IDLE), STATUS, LIST, others.

Baselines, each a raw IMAP client (RawClient below) over its own proxy to the same server,
asking STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ) of folders, the
ones due at one moment pipelined in one write:

  push    every folder every PUSH_S (0.6 s): the freshness of a change
          pushed by NOTIFY or IDLE (bench (i): p95 0.5-0.6 s from the
          tagged OK to visible; a poll every P s shows a change within
          0.95 P at p95 plus a round trip).  Steady, so it runs for
          --push-minutes after the mount's period (default 1) and is
          reported per minute.
  schedule  the mount's own schedule without NOTIFY: the --watch folders
          in use every PUSH_S (what IDLE gives them), every other folder
          at a tenth of the time since it was used, 2 s to 300 s
          (fs/watch.c, watch_interval()): the same freshness as the
          mount without NOTIFY, by construction.  Runs alongside the
          mount's period (it changes nothing on the server).

The baselines' CPU is the Python client thread's own (time.thread_time():
Python and its ssl module, so only a rough reference).  A measurement, not
a test: it asserts nothing about the numbers.

    tests/bench/idlecost.py --binary BUILD/fs/imapfs [--minutes M]
        [--folders N] [--no-notify] [--watch N] [--push-minutes M]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402

PUSH_S = 0.6
POLL_MIN_S, POLL_MAX_S = 2.0, 300.0   # fs/watch.c WATCH_POLL_MIN/MAX_US
SETTLE_S = 5.0   # after the folders were loaded, before measuring
STATUS_ITEMS = "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"


def message(box: str, i: int) -> bytes:
    return (f"From: a@example.org\r\nSubject: {box} {i}\r\n"
            f"Message-ID: <idle-{box}-{i}@example.org>\r\n\r\n"
            f"body {i}\r\n").encode()


def cpu_s(pid: int) -> float:
    """utime + stime of a process, all its threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command_counts(proxy, since: float, until: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in proxy.commands_snapshot():
        if since <= c.sent_at <= until:
            out[c.name] = out.get(c.name, 0) + 1
    return out


def sub(a: dict, b: dict) -> dict:
    return {k: a[k] - b[k] for k in a}


class RawClient:
    """A minimal IMAP client over TLS that pipelines: the cheapest way to
    ask many STATUS at once (imaplib waits for each reply, and could not
    keep up with 50 folders every PUSH_S through the proxy on this VM)."""

    def __init__(self, proxy):
        ctx = ssl.create_default_context(cafile=proxy.cafile)
        raw = socket.create_connection((proxy.host, proxy.imaps_port),
                                       timeout=30)
        self.s = ctx.wrap_socket(raw, server_hostname=proxy.host)
        self.buf = b""
        self.n = 0
        self._line()   # greeting
        self.run([f"LOGIN {testenv.imap_quote(proxy.user)} "
                  f"{testenv.imap_quote(proxy.password)}"])

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def run(self, commands: list[str]) -> None:
        """Sends the commands in one write; reads to the last reply."""
        tags = []
        out = []
        for c in commands:
            self.n += 1
            tags.append(f"s{self.n}".encode())
            out.append(f"s{self.n} {c}\r\n")
        self.s.sendall("".join(out).encode())
        left = set(tags)
        while left:
            line = self._line()
            tag, _, rest = line.partition(b" ")
            if tag in left:
                if not rest.startswith(b"OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                left.discard(tag)

    def close(self) -> None:
        try:
            self.run(["LOGOUT"])
        except (OSError, RuntimeError):
            pass
        self.s.close()


class Poller(threading.Thread):
    """A raw client asking STATUS of each folder when due (pipelined: all
    the folders due at one moment in one write): interval(i, elapsed) ->
    folder i's interval in seconds."""

    def __init__(self, proxy, boxes, interval, seconds):
        super().__init__(daemon=True)
        self.proxy, self.boxes = proxy, boxes
        self.interval, self.seconds = interval, seconds
        self.cpu = 0.0
        self.polls = 0
        self.rounds = 0
        self.error: BaseException | None = None
        self.window = (0.0, 0.0)
        self.traffic: dict = {}

    def run(self):
        try:
            self._run()
        except BaseException as e:  # noqa: B902 - reported by main()
            self.error = e

    def _run(self):
        c = RawClient(self.proxy)
        try:
            t0 = time.monotonic()
            tr0 = self.proxy.traffic()
            cpu0 = time.thread_time()
            last = [t0 - 1e9] * len(self.boxes)
            while True:
                now = time.monotonic()
                if now - t0 >= self.seconds:
                    break
                nxt = now + 1.0
                due = []
                for i, box in enumerate(self.boxes):
                    every = self.interval(i, now - t0)
                    if now - last[i] >= every:
                        last[i] = now
                        due.append(f"STATUS {box} {STATUS_ITEMS}")
                    nxt = min(nxt, last[i] + every)
                if due:
                    c.run(due)
                    self.polls += len(due)
                    self.rounds += 1
                time.sleep(max(0.0, nxt - time.monotonic()))
            self.cpu = time.thread_time() - cpu0
            self.window = (t0, time.monotonic())
            self.traffic = sub(self.proxy.traffic(), tr0)
        finally:
            c.close()


def fmt_row(label, minutes, tr, cpu, extra=""):
    per = 1 / minutes
    return (f"| {label} | {tr['up_bytes'] * per:,.0f} | "
            f"{tr['down_bytes'] * per:,.0f} | "
            f"{(tr['up_reads'] + tr['down_reads']) * per:,.1f} | "
            f"{cpu * 1000 * per:,.1f} | {extra} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="the measured quiet period (default 10)")
    ap.add_argument("--folders", type=int, default=50)
    ap.add_argument("--no-notify", action="store_true",
                    help="Dovecot without NOTIFY (IDLE + STATUS path)")
    ap.add_argument("--watch", type=int, default=1,
                    help="-o watch=N: folders IDLEd on without NOTIFY")
    ap.add_argument("--push-minutes", type=float, default=1.0,
                    help="how long the push baseline runs (steady)")
    ap.add_argument("-o", dest="options", action="append", default=[],
                    help="extra imapfs -o option (repeatable)")
    args = ap.parse_args()

    seconds = args.minutes * 60
    work = tempfile.mkdtemp(prefix="imapfs-idlecost-")
    caps = ("NOTIFY",) if args.no_notify else ()
    srv = testenv.DovecotServer(os.path.join(work, "dovecot"),
                                without_caps=caps)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    boxes = [f"F{i:02d}" for i in range(args.folders)]
    life = seconds + args.push_minutes * 60 + 600
    proxy = bproxy = None
    rundir = testenv.short_runtime_dir()
    os.environ["XDG_RUNTIME_DIR"] = rundir
    try:
        srv.start()
        for b in boxes:
            srv.create_mailbox(b)
            srv.append_many(b, [(message(b, i), "", None)
                                for i in range(5)])
        # After start(): the server's certificate is made there.
        proxy = faultproxy.FaultProxy(srv, lifetime=life)
        bproxy = faultproxy.FaultProxy(srv, lifetime=life)
        proxy.start()
        bproxy.start()
        opts = ["-o", f"watch={args.watch}"]
        for o in args.options:
            opts += ["-o", o]
        r = testenv.mount_imapfs(args.binary, proxy, mnt, options=opts)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        pid = testenv.daemon_pid(mnt)
        # Used in this order: the last ones listed are the most recent,
        # the ones IDLEd on without NOTIFY.
        for b in boxes:
            os.listdir(os.path.join(mnt, b))
        time.sleep(SETTLE_S)
        used_at = time.monotonic()

        def schedule(i, elapsed):
            if i >= len(boxes) - args.watch:
                return PUSH_S
            age = time.monotonic() - used_at
            return min(max(age / 10, POLL_MIN_S), POLL_MAX_S)

        sched = Poller(bproxy, boxes, schedule, seconds)
        t0 = time.monotonic()
        tr0 = proxy.traffic()
        cpu0 = cpu_s(pid)
        sched.start()
        time.sleep(seconds)
        t1 = time.monotonic()
        tr = sub(proxy.traffic(), tr0)
        cpu = cpu_s(pid) - cpu0
        cmds = command_counts(proxy, t0, t1)
        sched.join(60)
        push = Poller(bproxy, boxes, lambda i, e: PUSH_S,
                      args.push_minutes * 60)
        push.start()
        push.join(args.push_minutes * 60 + 120)
        status = subprocess_status(args.binary, mnt)
    finally:
        testenv.unmount(mnt)
        for p in (proxy, bproxy):
            if p is not None:
                p.stop()
        srv.stop()
        shutil.rmtree(rundir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    for p in (sched, push):
        if p.error is not None:
            print(f"baseline failed: {p.error!r}", file=sys.stderr)
            return 1
    minutes = (t1 - t0) / 60
    mode = "IDLE + STATUS" if args.no_notify else "NOTIFY"
    caps_txt = "Dovecot without NOTIFY" if args.no_notify else \
        "Dovecot as is (NOTIFY)"
    print(f"idle cost (j), {caps_txt}, {args.folders} folders loaded, "
          f"-o watch={args.watch}, {minutes:.2f} min quiet; "
          f"per minute")
    print()
    print("| client | bytes up/min | bytes down/min | TLS records/min "
          "| CPU ms/min | commands/min |")
    print("|---|---:|---:|---:|---:|---|")
    per = {k: v / minutes for k, v in sorted(cmds.items())}
    print(fmt_row(f"imapfs ({mode})", minutes, tr, cpu,
                  ", ".join(f"{k} {v:.1f}" for k, v in per.items())))
    for label, p in ((f"STATUS every folder every {PUSH_S} s", push),
                     ("STATUS on the mount's no-NOTIFY schedule", sched)):
        m = (p.window[1] - p.window[0]) / 60
        print(fmt_row(label, m, p.traffic, p.cpu,
                      f"STATUS {p.polls / m:.1f} in {p.rounds / m:.1f} "
                      f"writes"))
    print()
    print(f"IDLE cycles (IDLE commands sent): {cmds.get('IDLE', 0)} in "
          f"{minutes:.2f} min = {cmds.get('IDLE', 0) / minutes:.1f}/min")
    print(f"daemon CPU: {cpu:.2f} s in {minutes:.2f} min")
    for line in status.splitlines():
        if line.startswith("watch:"):
            print(line)
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return 0


def subprocess_status(binary: str, mnt: str) -> str:
    r = subprocess.run([binary, "status", mnt], capture_output=True,
                       text=True, timeout=20)
    return r.stdout + r.stderr


if __name__ == "__main__":
    sys.exit(main())
