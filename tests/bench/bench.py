#!/usr/bin/python3
"""imapfs benchmark: imapfs against a raw IMAP baseline, measured in one run.

Starts a private Dovecot (tests/support/testenv.py), loads N sample messages
into "Bench" and one 20 MB message into "Big", then times each workload
through imapfs and its baseline (imaplib over one TLS connection, or local
disk for the warm grep), taking the median of several runs.  See
tests/bench/README.md for what each figure means.

This is a measurement, not a test: it never asserts on the numbers, but
exits non-zero when something fails to run.  Run it through
tests/bench/run.sh, which builds imapfs first.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import testenv  # noqa: E402

BIG_SIZE = 20 * 1024 * 1024
GREP_WORD = "quokka"       # in ~20% of the sample bodies (testenv)
FETCH_CHUNK = 500           # UIDs per UID FETCH for the body baseline
# C locale: grep's speed must not depend on the caller's locale, and both
# sides of a comparison use the same grep.
GREP_ENV = dict(os.environ, LC_ALL="C")

# metric key -> (description, target ratio)
METRICS = {
    "a": ("(a) ls -l, cold, vs UID FETCH 1:* (metadata)", 1.5),
    "b": ("(b) cat 20 MB message, cold, vs UID FETCH BODY.PEEK[]", 1.5),
    "c": ("(c) grep -r -c, cold, vs UID FETCH 1:* BODY.PEEK[]", 2.0),
    "d": ("(d) grep -r -c, warm, vs the same grep on local disk", 2.0),
    "e": ("(e) cp of N messages into a folder vs APPEND one by one", 1.5),
    "f": ("(f) rm of those vs UID STORE +FLAGS (\\Deleted) + UID EXPUNGE "
          "each", 2.0),
    "g": ("(g) mv of those to another folder vs UID MOVE each", 2.0),
    "h": ("(h) cp of a 25 MB message in vs one APPEND", 1.3),
}
WRITE_KEYS = ("e", "f", "g", "h")
# The big-folder figures (a folder of --big messages of its own).
BIG_FOLDER = "Huge"
BIG_METRICS = {
    "l": ("(l) ls -l of the big folder, cold, vs UID FETCH 1:* (metadata)",
          1.5),
    "m": ("(m) peak RSS of the daemon per message (B), after (l)", 300),
    "n": ("(n) walk (listdir + lstat of each) across listing_ttl expiries: "
          "full reloads", 0),
}
BIG_WALK_TTL = 2      # listing_ttl for (n): expires during the walk
WRITE_BIG_SIZE = 25 * 1024 * 1024
WRITE_SIZES = (2300, 21000)        # bytes per message for (e)-(g)
# Folders for the write figures: the baseline's and the mount's own.
BASE_A, BASE_B = "WBase", "WBase2"
FS_A, FS_B = "WFs", "WFs2"
READ_ONLY = "not available: read-only mount"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_cmd(argv: list[str], *, ok_codes=(0,), stdout=subprocess.DEVNULL,
            env=None) -> None:
    r = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE,
                       env=env, stdin=subprocess.DEVNULL)
    if r.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: "
                           f"{r.stderr.decode(errors='replace').strip()}")


def grep_tree(path: str) -> None:
    # Output to a pipe, not /dev/null: GNU grep stops at the first match
    # when it detects /dev/null output, which would read almost nothing.
    # Exit 1 (no match anywhere) is fine; 2 is an error.
    run_cmd(["grep", "-r", "-c", GREP_WORD, path], ok_codes=(0, 1),
            stdout=subprocess.PIPE, env=GREP_ENV)


# --------------------------------------------------------------------------
# raw IMAP baseline (imaplib, one TLS connection for the whole run)
# --------------------------------------------------------------------------

class Baseline:
    def __init__(self, server: testenv.DovecotServer):
        self.conn = server.client()
        self.uids: list[int] = []
        self.big_uid: str | None = None

    def close(self) -> None:
        try:
            self.conn.logout()
        except Exception:
            pass

    def _examine(self, mailbox: str) -> None:
        typ, data = self.conn.select(testenv.imap_quote(mailbox),
                                     readonly=True)
        if typ != "OK":
            raise RuntimeError(f"EXAMINE {mailbox}: {data!r}")

    def _uid_fetch(self, uidset: str, items: str) -> list:
        typ, data = self.conn.uid("FETCH", uidset, items)
        if typ != "OK":
            raise RuntimeError(f"UID FETCH {uidset} {items}: {data!r}")
        return data

    def metadata(self) -> float:
        """(a): EXAMINE, UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS).

        The EXAMINE is timed too (here and below): a cold mount has to
        select the mailbox as well, so both sides do the same protocol work.
        """
        data = []

        def work():
            self._examine("Bench")
            data.append(self._uid_fetch(
                "1:*", "(UID RFC822.SIZE INTERNALDATE FLAGS)"))
        t = timed(work)
        uids = []
        for item in data[0]:
            line = item[0] if isinstance(item, tuple) else item
            m = re.search(rb"UID (\d+)", line or b"")
            if m:
                uids.append(int(m.group(1)))
        self.uids = sorted(uids)
        return t

    def metadata_of(self, mailbox: str) -> tuple[float, int]:
        """(l): EXAMINE, UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)
        of @mailbox; returns seconds and the number of FETCH responses."""
        data = []

        def work():
            self._examine(mailbox)
            data.append(self._uid_fetch(
                "1:*", "(UID RFC822.SIZE INTERNALDATE FLAGS)"))
        t = timed(work)
        n = sum(1 for x in data[0] if x is not None)
        data.clear()
        return t, n

    def _chunks(self) -> list[str]:
        u = self.uids
        return [f"{u[i]}:{u[min(i + FETCH_CHUNK, len(u)) - 1]}"
                for i in range(0, len(u), FETCH_CHUNK)]

    def fetch_bodies(self, sink=None) -> float:
        """(c): BODY.PEEK[] of every message in "Bench", in UID chunks.

        With `sink`, each (uid, bytes) is handed to it (outside the timer's
        purpose: only used for the untimed local copy).
        """
        if not self.uids:
            self.metadata()
        total = 0

        def work():
            nonlocal total
            self._examine("Bench")
            for uidset in self._chunks():
                for item in self._uid_fetch(uidset, "(UID BODY.PEEK[])"):
                    if not isinstance(item, tuple):
                        continue
                    total += len(item[1])
                    if sink is not None:
                        m = re.search(rb"UID (\d+)", item[0])
                        sink(int(m.group(1)), item[1])
        t = timed(work)
        if total == 0:
            raise RuntimeError("the body baseline fetched nothing")
        return t

    def big(self) -> float:
        """(b): EXAMINE, UID FETCH <uid> BODY.PEEK[] of the one message in
        "Big"."""
        if self.big_uid is None:
            self._examine("Big")
            data = self._uid_fetch("1:*", "(UID)")
            m = re.search(rb"UID (\d+)", data[0] or b"")
            if not m:
                raise RuntimeError(f"no message in Big: {data!r}")
            self.big_uid = m.group(1).decode()
        size = []

        def work():
            self._examine("Big")
            size.append(sum(
                len(x[1]) for x in self._uid_fetch(self.big_uid,
                                                   "BODY.PEEK[]")
                if isinstance(x, tuple)))
        t = timed(work)
        if size[0] < BIG_SIZE // 2:
            raise RuntimeError(f"big message fetch returned {size[0]} bytes")
        return t


    # -- write baselines (e)-(h): one command per message, like a mount ---
    def _select(self, mailbox: str) -> int:
        typ, data = self.conn.select(testenv.imap_quote(mailbox))
        if typ != "OK":
            raise RuntimeError(f"SELECT {mailbox}: {data!r}")
        return int(data[0])

    def _ok(self, what: str, typ, data) -> list:
        if typ != "OK":
            raise RuntimeError(f"{what}: {typ} {data!r}")
        return data

    def append_each(self, mailbox: str, files: list[str]) -> float:
        """(e): APPEND of each file, one by one (the bytes read from disk
        inside the timer, as cp must read them too). Returns seconds."""
        def work():
            for path in files:
                with open(path, "rb") as f:
                    data = f.read()
                self._ok("APPEND", *self.conn.append(
                    testenv.imap_quote(mailbox), None, None, data))
        t = timed(work)
        self.expect(mailbox, len(files))
        return t

    def _uids(self, mailbox: str) -> list[str]:
        self._select(mailbox)
        data = self._ok("UID SEARCH", *self.conn.uid("SEARCH", None, "ALL"))
        return (data[0] or b"").decode().split()

    def delete_each(self, mailbox: str) -> float:
        """(f): per message UID STORE +FLAGS.SILENT (\\Deleted) and
        UID EXPUNGE (the SELECT is timed, a mount must select too)."""
        def work():
            for uid in self._uids(mailbox):
                self._ok("UID STORE", *self.conn.uid(
                    "STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"))
                self._ok("UID EXPUNGE", *self.conn.uid("EXPUNGE", uid))
        t = timed(work)
        self.expect(mailbox, 0)
        return t

    def move_each(self, src: str, dst: str) -> float:
        """(g): per message UID MOVE to dst."""
        n = []

        def work():
            uids = self._uids(src)
            n.append(len(uids))
            for uid in uids:
                self._ok("UID MOVE", *self.conn.uid(
                    "MOVE", uid, testenv.imap_quote(dst)))
        t = timed(work)
        self.expect(src, 0)
        self.expect(dst, n[0])
        return t

    def expect(self, mailbox: str, count: int) -> None:
        """Raises unless mailbox holds exactly count messages."""
        data = self._ok("STATUS", *self.conn.status(
            testenv.imap_quote(mailbox), "(MESSAGES)"))
        got = int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        if got != count:
            raise RuntimeError(f"{mailbox} holds {got} messages, expected "
                               f"{count}")

    def write_figures(self, files: list[str], big: str) -> dict:
        """(e), (g), (f) on the same messages, then (h); leaves both
        folders empty."""
        out = {"e": self.append_each(BASE_A, files)}
        out["g"] = self.move_each(BASE_A, BASE_B)
        out["f"] = self.delete_each(BASE_B)
        out["h"] = self.append_each(BASE_A, [big])
        self.delete_each(BASE_A)
        return out


# --------------------------------------------------------------------------
# imapfs side
# --------------------------------------------------------------------------

class ReadOnlyMount(Exception):
    """The mount refused a write with EROFS (no write path yet)."""


class WriteCheckFailed(Exception):
    """After a write figure's command the server did not hold what it
    should (args: the figure's key, what was wrong)."""


def fs_write_cmd(argv: list[str]) -> None:
    """Runs a command that writes to the mount; ReadOnlyMount on EROFS."""
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0 and "Read-only file system" in err:
        raise ReadOnlyMount(err.strip().splitlines()[0])
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} ... exited "
                           f"{r.returncode}: {err.strip()[:500]}")


def mount_messages(folder: str) -> list[str]:
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".eml"))


def fs_write_figures(mounter, baseline: Baseline, files: list[str],
                     big: str, out: dict) -> None:
    """The mount side of (e)-(h) on one fresh mount: cp of the files into
    FS_A, mv of them to FS_B, rm of them, cp of the big file into FS_A;
    each checked against the server.  Puts the seconds of each figure
    into `out` as it is measured and checked, and "rss_kb": the daemon's
    peak RSS.  Raises ReadOnlyMount when the mount refuses writes,
    WriteCheckFailed when the server does not hold what it should."""
    a = os.path.join(mounter.mnt, FS_A)
    b = os.path.join(mounter.mnt, FS_B)

    def figure(key, argv, checks):
        t = timed(lambda: fs_write_cmd(argv))
        for mailbox, count in checks:
            try:
                baseline.expect(mailbox, count)
            except RuntimeError as e:
                raise WriteCheckFailed(key, str(e)) from e
        out[key] = t

    with mounter:
        figure("e", ["cp", "--"] + files + [a], [(FS_A, len(files))])
        figure("g", ["mv", "--"] + mount_messages(a) + [b],
               [(FS_A, 0), (FS_B, len(files))])
        figure("f", ["rm", "--"] + mount_messages(b), [(FS_B, 0)])
        figure("h", ["cp", "--", big, a], [(FS_A, 1)])
        fs_write_cmd(["rm", "--"] + mount_messages(a))
        out["rss_kb"] = mounter.rss_kb()


def write_sample_files(directory: str, count: int) -> tuple[list[str], str]:
    """count real-looking messages of 2-20 KB and one 25 MB message as
    files (the sources for cp and for the APPEND baseline)."""
    os.makedirs(directory, exist_ok=True)
    files = []
    for i, msg in enumerate(testenv.sample_messages(count, seed=11,
                                                    sizes=WRITE_SIZES)):
        path = os.path.join(directory, f"w{i:05d}.eml")
        with open(path, "wb") as f:
            f.write(msg)
        files.append(path)
    big = os.path.join(directory, "big.eml")
    with open(big, "wb") as f:
        f.write(testenv.big_message(WRITE_BIG_SIZE, seed=11))
    return files, big

class Mounter:
    def __init__(self, binary: str, server, mountpoint: str,
                 options: list[str]):
        self.binary = binary
        self.server = server
        self.mnt = mountpoint
        self.options = options
        self.peak_rss_kb = 0

    def __enter__(self):
        r = testenv.mount_imapfs(self.binary, self.server, self.mnt,
                                 options=self.options)
        if r.returncode != 0:
            raise RuntimeError(f"imapfs mount failed ({r.returncode}): "
                               f"{r.stderr.strip()}")
        return self

    def rss_kb(self) -> int:
        pid = testenv.daemon_pid(self.mnt)
        if pid is None:
            raise RuntimeError("no imapfs daemon found for the mount")
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc/<pid>/status")

    def status(self) -> dict:
        """`imapfs status` of the mount as {field: value}."""
        r = subprocess.run([self.binary, "status", self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"imapfs status failed: {r.stderr.strip()}")
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
        return out

    def full_loads(self) -> int | None:
        """Full folder listings so far; None from a build whose status
        does not count them."""
        m = re.match(r"(\d+) full", self.status().get("listings", ""))
        return int(m.group(1)) if m else None

    def __exit__(self, *exc):
        try:
            self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
        except Exception as e:
            log(f"could not read the daemon's peak RSS: {e}")
        testenv.unmount(self.mnt)
        return False


def list_dir(path: str, expect: int) -> None:
    r = subprocess.run(["ls", "-l", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"ls -l {path} exited {r.returncode}: "
                           f"{r.stderr.decode(errors='replace').strip()}")
    n = r.stdout.count(b".eml\n")
    if n != expect:
        raise RuntimeError(f"ls -l {path} listed {n} messages, "
                           f"expected {expect}")


# --------------------------------------------------------------------------
# the big folder: (l), (m), (n)
# --------------------------------------------------------------------------

def tiny_messages(count: int, start: int = 0) -> list[bytes]:
    """count small distinct messages (~120 bytes): a big folder's cost is
    per message, not per byte."""
    return [(f"From: bench@example.org\r\nSubject: message {i}\r\n"
             f"Message-ID: <{i}@big.bench>\r\n\r\nbody of {i}\r\n"
             ).encode() for i in range(start, start + count)]


def load_big_folder(server, n: int) -> float:
    """Writes the n files (in chunks, to bound the memory), then has
    Dovecot index them all at once (indexing after each chunk made the
    load quadratic); returns the seconds the indexing took."""
    step = 200_000
    for lo in range(0, n, step):
        server.bulk_load(BIG_FOLDER, tiny_messages(min(step, n - lo), lo),
                         index=False)
    return timed(lambda: server.index_mailbox(BIG_FOLDER))


def big_folder_figures(args, server, baseline, binary, fs_options, mnt,
                       n: int, runs: int) -> dict:
    """Times (l) and measures (m), (n) on fresh mounts; returns
    {"l": [s], "l_base": [s], "m": bytes/msg, "m_kb": (idle, peak),
    "n": reloads, "n_time": s, "n_refreshes": k}."""
    out = {"l": [], "l_base": [], "n": None, "n_time": None}
    for r in range(runs):
        t, got = baseline.metadata_of(BIG_FOLDER)
        if got < n:
            raise RuntimeError(f"{BIG_FOLDER}: the baseline saw {got} "
                               f"messages, expected {n}")
        out["l_base"].append(t)
        if args.baseline_only:
            continue
        mounter = Mounter(binary, server, mnt, fs_options)
        with mounter:
            idle_kb = mounter.rss_kb()
            out["l"].append(timed(lambda: list_dir(
                os.path.join(mnt, BIG_FOLDER), n)))
            peak_kb = mounter.rss_kb()
        per_msg = (peak_kb - idle_kb) * 1024 / n
        if "m" not in out or per_msg > out["m"]:
            out["m"], out["m_kb"] = per_msg, (idle_kb, peak_kb)
        log(f"big folder run {r + 1}/{runs}: ls -l {out['l'][-1]:.2f} s, "
            f"baseline {t:.2f} s, peak {per_msg:.0f} B/message")
    if args.baseline_only:
        return out
    # (n): a walk that outlives listing_ttl (attr_timeout=0 so that every
    # lstat reaches the daemon, as it does when a walk is slower than the
    # attribute cache).
    opts = fs_options + ["-o", f"listing_ttl={BIG_WALK_TTL}",
                         "-o", "attr_timeout=0"]
    mounter = Mounter(binary, server, mnt, opts)
    folder = os.path.join(mnt, BIG_FOLDER)
    with mounter:
        t0 = time.perf_counter()
        names = os.listdir(folder)
        pause = 0.0
        for i, name in enumerate(names):
            if i == len(names) // 2:
                # Halfway, the listing is made to expire (however fast
                # the walk is); not counted in the walk's time.
                time.sleep(BIG_WALK_TTL + 0.5)
                pause = BIG_WALK_TTL + 0.5
            os.lstat(os.path.join(folder, name))
        walk = time.perf_counter() - t0 - pause
        loads = mounter.full_loads()
        st = mounter.status().get("listings", "")
    # The first listing is not a reload.
    out["n"] = loads - 1 if loads is not None else None
    out["n_time"] = walk
    out["n_names"] = len(names)
    out["n_status"] = st
    return out


def print_big(out: dict, n: int, runs: int) -> None:
    med = statistics.median
    print()
    print(f"### Big folder: {n} messages of ~120 bytes in {BIG_FOLDER}, "
          f"median of {runs} run(s)")
    print()
    print("| metric | imapfs | baseline | ratio / value | target | result |")
    print("|---|---:|---:|---:|---:|---|")
    desc, target = BIG_METRICS["l"]
    if out["l"]:
        ratio = med(out["l"]) / med(out["l_base"])
        print(f"| {desc} | {med(out['l']):.3f} s | "
              f"{med(out['l_base']):.3f} s | {ratio:.2f}x | "
              f"<= {target:g}x | {'pass' if ratio <= target else 'FAIL'} |")
    else:
        print(f"| {desc} | – | {med(out['l_base']):.3f} s | – | "
              f"<= {target:g}x | not run |")
    if "m" in out:
        desc, target = BIG_METRICS["m"]
        idle, peak = out["m_kb"]
        print(f"| {desc} | {peak / 1024:.1f} MB peak, {idle / 1024:.1f} MB "
              f"before | – | {out['m']:.0f} B | <= {target} B | "
              f"{'pass' if out['m'] <= target else 'FAIL'} |")
    if out.get("n_time") is not None and out["n"] is None:
        desc, target = BIG_METRICS["n"]
        print(f"| {desc} | not counted by this build ({out['n_time']:.1f} s, "
              f"{out['n_time'] / max(out['n_names'], 1) * 1e6:.0f} us per "
              f"name) | – | – | {target} | – |")
    if out["n"] is not None:
        desc, target = BIG_METRICS["n"]
        print(f"| {desc} | {out['n']} ({out['n_time']:.1f} s, "
              f"{out['n_time'] / max(out['n_names'], 1) * 1e6:.0f} us per "
              f"name; listings: {out['n_status']}) | – | {out['n']} | "
              f"{target} | {'pass' if out['n'] <= target else 'FAIL'} |")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def fmt_row(key, fs_times, base_times,
            why_not: str = "not run") -> tuple[str, bool | None]:
    desc, target = METRICS[key]
    if not fs_times:
        base = statistics.median(base_times)
        return (f"| {desc} | – | {base:.3f} | – | <= {target:g}x | "
                f"{why_not} |", None)
    fs = statistics.median(fs_times)
    base = statistics.median(base_times)
    ratio = fs / base if base > 0 else float("inf")
    ok = ratio <= target
    return (f"| {desc} | {fs:.3f} | {base:.3f} | {ratio:.2f}x | "
            f"<= {target:g}x | {'pass' if ok else 'FAIL'} |", ok)


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Measure imapfs against a raw IMAP baseline.")
    ap.add_argument("--messages", type=int, default=None,
                    help="messages in the Bench folder (default 5000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 500 messages, 1 run per figure")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per figure, median reported (default 3)")
    ap.add_argument("--binary",
                    default=os.path.join(ROOT, "build", "plain", "fs",
                                         "imapfs"),
                    help="imapfs binary (default build/plain/fs/imapfs)")
    ap.add_argument("--write-messages", type=int, default=None,
                    help="messages for the write figures (e)-(g) "
                    "(default 1000; 100 with --quick)")
    ap.add_argument("--big", type=int, default=None, metavar="N",
                    help="messages in the big folder for (l)-(n) (default "
                    "20000; 2000 with --quick; 0 skips them)")
    ap.add_argument("--big-only", action="store_true",
                    help="only the big-folder figures (l)-(n)")
    ap.add_argument("--baseline-only", action="store_true",
                    help="only measure the baselines (no imapfs needed)")
    ap.add_argument("-o", dest="fs_options", action="append", default=[],
                    metavar="OPT", help="extra imapfs -o option "
                    "(e.g. -o cache_size=256); repeatable")
    args = ap.parse_args()
    n = args.messages if args.messages is not None else \
        (500 if args.quick else 5000)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    nw = args.write_messages if args.write_messages is not None else \
        (100 if args.quick else 1000)
    nbig = args.big if args.big is not None else \
        (2000 if args.quick else 20000)
    if args.big_only and nbig < 1:
        ap.error("--big-only needs --big N with N > 0")
    if n < 1 or runs < 1 or nw < 1 or nbig < 0:
        ap.error("--messages, --write-messages and --runs must be "
                 "positive")
    if not args.baseline_only and not os.access(args.binary, os.X_OK):
        log(f"{args.binary} is not an executable (build it, or use "
            f"tests/bench/run.sh)")
        return 1
    fs_options = [x for o in args.fs_options for x in ("-o", o)]

    tmp = tempfile.mkdtemp(prefix="imapfs-bench-")
    mnt = os.path.join(tmp, "mnt")
    local = os.path.join(tmp, "local", "Bench")
    os.makedirs(mnt)
    os.makedirs(local)
    server = testenv.DovecotServer(os.path.join(tmp, "server"))
    baseline = None
    runtime = None
    mounted = False
    try:
        log("starting Dovecot")
        server.start()
        # `imapfs status` of the mounts for (n): a runtime directory of
        # our own for their control sockets.
        runtime = testenv.short_runtime_dir()
        os.environ["XDG_RUNTIME_DIR"] = runtime

        def run_big() -> None:
            log(f"loading {nbig} small messages into {BIG_FOLDER}")
            t0 = time.perf_counter()
            t_index = load_big_folder(server, nbig)
            log(f"loaded in {time.perf_counter() - t0:.0f} s (Dovecot "
                f"indexing {t_index:.0f} s of it); warming Dovecot's "
                f"cache (untimed)")
            baseline.metadata_of(BIG_FOLDER)
            out = big_folder_figures(args, server, baseline, args.binary,
                                     fs_options, mnt, nbig, runs)
            print_big(out, nbig, runs)

        if args.big_only:
            baseline = Baseline(server)
            run_big()
            return 0
        log(f"generating and loading {n} messages + one "
            f"{BIG_SIZE >> 20} MB message")
        msgs = testenv.sample_messages(n, seed=7)
        total_bytes = sum(len(m) for m in msgs)
        server.bulk_load("Bench", msgs)
        del msgs
        server.bulk_load("Big", [testenv.big_message(BIG_SIZE, seed=7)])
        for folder in (BASE_A, BASE_B, FS_A, FS_B):
            server.create_mailbox(folder)
        log(f"writing {nw} messages of 2-20 KB and one "
            f"{WRITE_BIG_SIZE >> 20} MB message to local disk for (e)-(h)")
        wfiles, wbig = write_sample_files(os.path.join(tmp, "write"), nw)

        baseline = Baseline(server)
        baseline.metadata()
        if len(baseline.uids) != n:
            raise RuntimeError(f"Bench holds {len(baseline.uids)} messages, "
                               f"expected {n}")

        # Untimed: the local copy for (d), written from the raw baseline
        # data; it also warms Dovecot's caches for both sides alike.
        log("copying the messages to local disk for (d)")

        def to_disk(uid: int, data: bytes) -> None:
            with open(os.path.join(local, f"{uid}.eml"), "wb") as f:
                f.write(data)
        baseline.fetch_bodies(sink=to_disk)
        baseline.big()
        grep_tree(local)    # warm the local page cache

        fs_t = {k: [] for k in METRICS}
        ref_t = {"ls_local": [], "listdir": []}
        base_t = {k: [] for k in METRICS}
        mounter = Mounter(args.binary, server, mnt, fs_options)
        write_unavailable = None
        write_rss_kb = 0
        failed = False
        for r in range(runs):
            log(f"run {r + 1}/{runs}: baseline")
            base_t["a"].append(baseline.metadata())
            base_t["b"].append(baseline.big())
            base_t["c"].append(baseline.fetch_bodies())
            base_t["d"].append(timed(lambda: grep_tree(local)))
            # Reference for (a): what ls -l itself costs on local disk.
            ref_t["ls_local"].append(timed(lambda: list_dir(local, n)))
            for k, t in baseline.write_figures(wfiles, wbig).items():
                base_t[k].append(t)
            if args.baseline_only:
                continue
            if write_unavailable is None:
                log(f"run {r + 1}/{runs}: imapfs writes")
                w = {}
                try:
                    fs_write_figures(mounter, baseline, wfiles, wbig, w)
                except ReadOnlyMount as e:
                    log(f"write figures: {READ_ONLY} ({e})")
                    write_unavailable = READ_ONLY
                except WriteCheckFailed as e:
                    key, what = e.args
                    log(f"write figure ({key}) FAILED: {what}")
                    write_unavailable = f"FAILED in ({key}): {what}"
                    failed = True
                write_rss_kb = max(write_rss_kb, w.pop("rss_kb", 0))
                for k, t in w.items():
                    fs_t[k].append(t)
            log(f"run {r + 1}/{runs}: imapfs")
            bench_dir = os.path.join(mnt, "Bench")
            # Each cold figure gets a fresh mount: the cache is in memory
            # (the daemon's and the kernel's for this mount).
            with mounter:
                mounted = True
                fs_t["a"].append(timed(lambda: list_dir(bench_dir, n)))
            # Reference for (a): the mount's share alone (names and
            # attributes arrive with the listing; no ls formatting).
            with mounter:
                ref_t["listdir"].append(timed(lambda: os.listdir(bench_dir)))
            with mounter:
                big = [os.path.join(mnt, "Big", f)
                       for f in os.listdir(os.path.join(mnt, "Big"))]
                if len(big) != 1:
                    raise RuntimeError(f"Big lists {len(big)} files")
                fs_t["b"].append(timed(lambda: run_cmd(["cat", big[0]])))
            with mounter:
                fs_t["c"].append(timed(lambda: grep_tree(bench_dir)))
                fs_t["d"].append(timed(lambda: grep_tree(bench_dir)))
            mounted = False

        today = datetime.datetime.now().astimezone()
        print()
        print(f"## imapfs benchmark, {today:%Y-%m-%d %H:%M %Z}")
        print()
        print(f"{n} messages ({total_bytes / 1e6:.1f} MB) in Bench, one "
              f"{BIG_SIZE >> 20} MB message in Big; {nw} messages of "
              f"2-20 KB and one {WRITE_BIG_SIZE >> 20} MB message for the "
              f"write figures; median of {runs} "
              f"run(s); baseline: imaplib over one TLS connection to a "
              f"local Dovecot; grep word \"{GREP_WORD}\"; imapfs options: "
              f"{' '.join(fs_options) or '(defaults)'}")
        print()
        print("| metric | imapfs s | baseline s | ratio | target | result |")
        print("|---|---:|---:|---:|---:|---|")
        results = []
        for k in METRICS:
            why = write_unavailable if k in WRITE_KEYS and \
                write_unavailable else "not run"
            row, ok = fmt_row(k, fs_t[k], base_t[k], why)
            results.append(ok)
            print(row)
        print()
        med = statistics.median
        if ref_t["ls_local"]:
            print(f"reference for (a): `ls -l` of the same {n} files on "
                  f"local disk takes {med(ref_t['ls_local']):.3f} s by "
                  f"itself (its own work, which the raw baseline does not "
                  f"include)")
        if ref_t["listdir"]:
            print(f"reference for (a): listing the folder on a cold mount "
                  f"without ls (os.listdir) takes "
                  f"{med(ref_t['listdir']):.3f} s = "
                  f"{med(ref_t['listdir']) / med(base_t['a']):.2f}x the "
                  f"raw metadata fetch")
        print()
        if args.baseline_only:
            print("imapfs daemon peak RSS (VmHWM): not measured "
                  "(--baseline-only)")
        else:
            print(f"imapfs daemon peak RSS (VmHWM): "
                  f"{mounter.peak_rss_kb / 1024:.1f} MB")
            print("imapfs daemon peak RSS during the write figures "
                  "(e)-(h): " + (f"{write_rss_kb / 1024:.1f} MB"
                                 if write_rss_kb else
                                 write_unavailable or "not run"))
            print(f"targets met: {sum(1 for x in results if x)} of "
                  f"{sum(1 for x in results if x is not None)} measured")
        if nbig > 0:
            run_big()
        if failed:
            log(f"error: write figures {write_unavailable}")
        return 1 if failed else 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as e:
        log(f"error: {e}")
        return 1
    finally:
        if mounted:
            testenv.unmount(mnt)
        if baseline is not None:
            baseline.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if runtime is not None:
            shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
