#!/usr/bin/python3
"""imapfs live-view benchmark (i): change-to-visible latency.

Starts a private Dovecot (tests/support/testenv.py), mounts imapfs with its
defaults (listing_ttl 30 s, attr_timeout 60 s: only the live view can make a
change visible sooner), lists a folder, then for each trial makes one change
with a second client (imaplib) and measures the time from the server's
tagged OK to the change being visible through the mount:
  new mail   APPEND            -> the new <UID>.eml in os.listdir()
  flags      UID STORE +FLAGS  -> the flag in getxattr user.imap.flags
  expunge    UID STORE \\Deleted + EXPUNGE -> the name gone from os.listdir()
Visibility is polled every 5 ms.  Prints p50/p95/max per kind; the target
is p95 <= 2 s.  A measurement, not a test: it asserts nothing about the
numbers.

    tests/bench/live.py --binary BUILD/fs/imapfs [--trials N] [--no-notify]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import testenv  # noqa: E402

BOX = "Live"
TIMEOUT_S = 30.0   # a trial that is not visible by then counts as this


def message(i: int) -> bytes:
    return (f"From: a@example.org\r\nSubject: live {i}\r\n"
            f"Message-ID: <live-{i}-{time.time()}@example.org>\r\n\r\n"
            f"body {i}\r\n").encode()


def until(pred) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > TIMEOUT_S:
            break
        time.sleep(0.005)
    return time.monotonic() - t0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--no-notify", action="store_true",
                    help="Dovecot without NOTIFY (IDLE + STATUS path)")
    ap.add_argument("--other-folder", action="store_true",
                    help="measure a loaded folder that is not the one "
                    "used last (STATUS-polled without NOTIFY)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="imapfs-live-bench-")
    caps = ("NOTIFY",) if args.no_notify else ()
    srv = testenv.DovecotServer(os.path.join(work, "dovecot"),
                                without_caps=caps)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    results: dict[str, list[float]] = {"new mail": [], "flags": [],
                                       "expunge": []}
    try:
        srv.start()
        srv.create_mailbox(BOX)
        srv.create_mailbox("Other")
        srv.append(BOX, message(0))
        r = testenv.mount_imapfs(args.binary, srv, mnt)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        folder = os.path.join(mnt, BOX)
        os.listdir(folder)
        if args.other_folder:
            os.listdir(os.path.join(mnt, "Other"))
        time.sleep(2)  # the listener logs in after the mount
        c = srv.client()
        c.select(BOX)
        for i in range(args.trials):
            # new mail
            uid = srv._append(c, BOX, message(i + 1), "", None)
            name = f"{uid}.eml"
            results["new mail"].append(
                until(lambda: name in os.listdir(folder)))
            path = os.path.join(folder, name)
            # flags
            c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Flagged)")
            results["flags"].append(until(
                lambda: b"\\Flagged" in os.getxattr(path, "user.imap.flags")))
            # expunge
            c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
            c.expunge()
            results["expunge"].append(
                until(lambda: name not in os.listdir(folder)))
        c.logout()
    finally:
        testenv.unmount(mnt)
        srv.stop()
    mode = "IDLE + STATUS" if args.no_notify else "NOTIFY"
    where = "another loaded folder" if args.other_folder else \
        "the folder in use"
    print(f"live view, {mode}, {where}, {args.trials} trials "
          f"(seconds from the tagged OK to visible)")
    print(f"{'change':<10} {'p50':>7} {'p95':>7} {'max':>7}  target p95<=2")
    for kind, v in results.items():
        print(f"{kind:<10} {statistics.median(v):7.3f} {pct(v, 95):7.3f} "
              f"{max(v):7.3f}  {'ok' if pct(v, 95) <= 2 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
