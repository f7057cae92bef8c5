#!/usr/bin/python3
"""imapfs benchmark (k): resync after a reconnect of a big folder in which a
few messages changed, in bytes, against a full relisting.

For each variant of the server's capabilities (Dovecot as is: QRESYNC and
CONDSTORE; with QRESYNC dropped from its CAPABILITY; with QRESYNC and
CONDSTORE dropped; testenv's without_caps), in a Dovecot of its own:

  1. loads N messages (default 5,000, ~300 bytes each: the cost of a resync
     is per message, not per byte) into "Big";
  2. mounts imapfs through a fault proxy (tests/support/faultproxy.py,
     which counts plaintext IMAP bytes and TLS records both ways) with
     -o watch=0 (no live view: only the access below resyncs; --watch N
     keeps it) and -o listing_ttl=1 (so the access after the reconnect asks
     the server what changed);
  3. cold load: os.listdir("Big") on the fresh mount (counted);
  4. reconnect, nothing changed: reset_all() (RST on every connection),
     wait past listing_ttl, os.listdir (counted): the reconnect itself
     (TLS, LOGIN, CAPABILITY, ENABLE) and a resync that finds nothing;
  5. reconnect with changes: reset_all(), then another client, directly on
     the server, changes CHANGES (10) messages: 4 flag changes, 3 expunged,
     3 new; wait past listing_ttl, os.listdir (counted from the reset to the
     end of the checks), and the changes are checked to be visible (names
     in the listing, \\Flagged in user.imap.flags);
  6. baseline, raw imaplib through the proxy, logged in before counting:
     EXAMINE Big + UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS), the
     metadata fetch the mount's listing sends.

Prints a table per variant: bytes up and down and TLS records of (3)-(6)
and (5) as a fraction of the full relisting (both (3) and (6)), and the
commands the mount sent in (5).  The variant labels are the capabilities
the server announced, not what imapfs did with them.  A measurement, not
a test: it asserts nothing about the numbers (it exits 1 if the changes do
not show).

    tests/bench/resync.py --binary BUILD/fs/imapfs [--messages N]
        [--variants all|qresync|condstore|none] [--watch N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402

BOX = "Big"
TTL_S = 1
CHANGES = {"flags": 4, "expunge": 3, "new": 3}
VARIANTS = {
    "qresync": (),
    "condstore": ("QRESYNC",),
    "none": ("QRESYNC", "CONDSTORE"),
}


def message(i: int) -> bytes:
    return (f"From: sender{i % 97}@example.org\r\n"
            f"To: someone@example.org\r\n"
            f"Subject: resync bench message {i}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"Message-ID: <resync-{i}@example.org>\r\n\r\n"
            f"body of message {i}\r\n").encode()


def sub(a: dict, b: dict) -> dict:
    return {k: a[k] - b[k] for k in a}


def label(caps: list[str]) -> str:
    have = [c for c in ("QRESYNC", "CONDSTORE") if c in caps]
    return "server announces " + (" + ".join(have) if have else
                                  "neither QRESYNC nor CONDSTORE")


class Counted:
    """Traffic and commands of the proxy between enter and exit."""

    def __init__(self, proxy):
        self.proxy = proxy

    def __enter__(self):
        self.t0 = time.monotonic()
        self.n0 = len(self.proxy.commands_snapshot())
        self.tr0 = self.proxy.traffic()
        return self

    def __exit__(self, *exc):
        # Let the last replies be counted: they reach the proxy before
        # the mount answers the system call, but give its thread a beat.
        time.sleep(0.2)
        self.traffic = sub(self.proxy.traffic(), self.tr0)
        self.commands = [c.text[:70]
                         for c in self.proxy.commands_snapshot()[self.n0:]
                         if c.name not in ("LOGIN", "AUTHENTICATE")]
        return False


def shows_changes(mnt, gone, new, flagged) -> bool:
    names = set(os.listdir(os.path.join(mnt, BOX)))
    if any(f"{u}.eml" in names for u in gone):
        return False
    if any(f"{u}.eml" not in names for u in new):
        return False
    for u in flagged:
        v = os.getxattr(os.path.join(mnt, BOX, f"{u}.eml"),
                        "user.imap.flags")
        if b"\\Flagged" not in v:
            return False
    return True


def change(srv, uids: list[int]) -> tuple[list, list, list]:
    """CHANGES on the server, directly (not through the proxy): returns
    (expunged, new, flagged) UIDs."""
    c = srv.client()
    try:
        c.select(BOX)
        step = len(uids) // 8
        flagged = [uids[step * (k + 1)] for k in range(CHANGES["flags"])]
        gone = [uids[step * (k + 5)] for k in range(CHANGES["expunge"])]
        for u in flagged:
            c.uid("STORE", str(u), "+FLAGS.SILENT", "(\\Flagged)")
        for u in gone:
            c.uid("STORE", str(u), "+FLAGS.SILENT", "(\\Deleted)")
        c.expunge()
        new = [srv._append(c, BOX, message(len(uids) + k + 1), "", None)
               for k in range(CHANGES["new"])]
        return gone, new, flagged
    finally:
        c.logout()


def raw_listing(proxy) -> Counted:
    c = proxy.client()
    try:
        with Counted(proxy) as n:
            typ, _ = c.select(BOX, readonly=True)
            typ, data = c.uid("FETCH", "1:*",
                              "(UID RFC822.SIZE INTERNALDATE FLAGS)")
            if typ != "OK":
                raise RuntimeError(f"UID FETCH: {data[-1:]}")
        n.count = len(data)
    finally:
        c.logout()
    return n


def run_variant(args, name: str, work: str) -> dict:
    srv = testenv.DovecotServer(os.path.join(work, name, "dovecot"),
                                without_caps=VARIANTS[name])
    mnt = os.path.join(work, name, "mnt")
    os.makedirs(mnt)
    proxy = None
    out = {}
    try:
        srv.start()
        out["label"] = label(srv.capabilities())
        srv.bulk_load(BOX, [message(i) for i in range(args.messages)])
        proxy = faultproxy.FaultProxy(srv, lifetime=1800)
        proxy.start()
        opts = ["-o", f"watch={args.watch}", "-o", f"listing_ttl={TTL_S}"]
        r = testenv.mount_imapfs(args.binary, proxy, mnt, options=opts)
        if r.returncode != 0:
            raise RuntimeError(f"mount failed: {r.stderr}")
        folder = os.path.join(mnt, BOX)
        time.sleep(1)   # the pool's first connections log in
        with Counted(proxy) as cold:
            names = os.listdir(folder)
        out["cold"] = cold
        uids = sorted(int(n.split(".")[0]) for n in names
                      if n.endswith(".eml"))
        if len(uids) != args.messages:
            raise RuntimeError(f"{len(uids)} messages listed, not "
                               f"{args.messages}")
        time.sleep(TTL_S + 0.5)
        with Counted(proxy) as idle:
            proxy.reset_all()
            time.sleep(TTL_S + 0.5)
            os.listdir(folder)
        out["nochange"] = idle
        time.sleep(TTL_S + 0.5)
        with Counted(proxy) as resync:
            proxy.reset_all()
            gone, new, flagged = change(srv, uids)
            time.sleep(TTL_S + 0.5)
            os.listdir(folder)
            tries = 1
            while not shows_changes(mnt, gone, new, flagged):
                if tries >= 5:
                    raise RuntimeError("the changes did not show after "
                                       f"{tries} accesses")
                time.sleep(TTL_S + 0.5)
                os.listdir(folder)
                tries += 1
        out["resync"] = resync
        out["tries"] = tries
        out["raw"] = raw_listing(proxy)
    finally:
        testenv.unmount(mnt)
        if proxy is not None:
            proxy.stop()
        srv.stop()
    return out


def total(tr: dict) -> int:
    return tr["up_bytes"] + tr["down_bytes"]


def report(args, name: str, v: dict) -> None:
    print(f"### ({name}) {v['label']}; {args.messages} messages, "
          f"{sum(CHANGES.values())} changed "
          f"({', '.join(f'{n} {k}' for k, n in CHANGES.items())})")
    print()
    print("| what | bytes up | bytes down | TLS records | vs mount's cold "
          "load | vs raw UID FETCH 1:* |")
    print("|---|---:|---:|---:|---:|---:|")
    full = total(v["cold"].traffic)
    raw = total(v["raw"].traffic)
    rows = (("mount: cold load (os.listdir)", v["cold"]),
            ("raw: EXAMINE + UID FETCH 1:* (UID RFC822.SIZE "
             "INTERNALDATE FLAGS)", v["raw"]),
            ("mount: reconnect, nothing changed", v["nochange"]),
            ("mount: reconnect + resync of the changes", v["resync"]))
    for what, c in rows:
        t = c.traffic
        print(f"| {what} | {t['up_bytes']:,} | {t['down_bytes']:,} | "
              f"{t['up_reads'] + t['down_reads']:,} | "
              f"{total(t) / full:.1%} | {total(t) / raw:.1%} |")
    print()
    print("commands sent by the mount in the cold load: " +
          "; ".join(v["cold"].commands))
    print()
    print(f"commands sent by the mount in the resync "
          f"({v['tries']} access(es)): " + "; ".join(v["resync"].commands))
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--variants", default="all",
                    help="all, or a comma list of qresync,condstore,none")
    ap.add_argument("--watch", type=int, default=0,
                    help="-o watch=N (default 0: only the access resyncs)")
    args = ap.parse_args()
    names = list(VARIANTS) if args.variants == "all" else \
        args.variants.split(",")
    work = tempfile.mkdtemp(prefix="imapfs-resync-")
    rundir = testenv.short_runtime_dir()
    os.environ["XDG_RUNTIME_DIR"] = rundir
    results = {}
    try:
        for n in names:
            results[n] = run_variant(args, n, work)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"resync after a reconnect (k), -o watch={args.watch},"
          f"listing_ttl={TTL_S}; bytes are plaintext IMAP through the proxy, "
          f"both directions")
    print()
    for n in names:
        report(args, n, results[n])
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
