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
}


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


# --------------------------------------------------------------------------
# imapfs side
# --------------------------------------------------------------------------

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
# main
# --------------------------------------------------------------------------

def fmt_row(key, fs_times, base_times) -> tuple[str, bool | None]:
    desc, target = METRICS[key]
    if not fs_times:
        base = statistics.median(base_times)
        return (f"| {desc} | – | {base:.3f} | – | <= {target:g}x | "
                f"not run |", None)
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
    ap.add_argument("--baseline-only", action="store_true",
                    help="only measure the baselines (no imapfs needed)")
    ap.add_argument("-o", dest="fs_options", action="append", default=[],
                    metavar="OPT", help="extra imapfs -o option "
                    "(e.g. -o cache_size=256); repeatable")
    args = ap.parse_args()
    n = args.messages if args.messages is not None else \
        (500 if args.quick else 5000)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if n < 1 or runs < 1:
        ap.error("--messages and --runs must be positive")
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
    mounted = False
    try:
        log("starting Dovecot")
        server.start()
        log(f"generating and loading {n} messages + one "
            f"{BIG_SIZE >> 20} MB message")
        msgs = testenv.sample_messages(n, seed=7)
        total_bytes = sum(len(m) for m in msgs)
        server.bulk_load("Bench", msgs)
        del msgs
        server.bulk_load("Big", [testenv.big_message(BIG_SIZE, seed=7)])

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
        for r in range(runs):
            log(f"run {r + 1}/{runs}: baseline")
            base_t["a"].append(baseline.metadata())
            base_t["b"].append(baseline.big())
            base_t["c"].append(baseline.fetch_bodies())
            base_t["d"].append(timed(lambda: grep_tree(local)))
            # Reference for (a): what ls -l itself costs on local disk.
            ref_t["ls_local"].append(timed(lambda: list_dir(local, n)))
            if args.baseline_only:
                continue
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
              f"{BIG_SIZE >> 20} MB message in Big; median of {runs} "
              f"run(s); baseline: imaplib over one TLS connection to a "
              f"local Dovecot; grep word \"{GREP_WORD}\"; imapfs options: "
              f"{' '.join(fs_options) or '(defaults)'}")
        print()
        print("| metric | imapfs s | baseline s | ratio | target | result |")
        print("|---|---:|---:|---:|---:|---|")
        results = []
        for k in METRICS:
            row, ok = fmt_row(k, fs_t[k], base_t[k])
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
            print(f"targets met: {sum(1 for x in results if x)} of "
                  f"{len(results)}")
        return 0
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


if __name__ == "__main__":
    sys.exit(main())
