#!/usr/bin/python3
"""Throwaway Dovecot for contrib/demo.sh.

Starts a private Dovecot (tests/support/testenv.py) filled with the sample
mail tree, writes what a client needs to a JSON state file and then waits
until SIGTERM/SIGINT, when it stops the server and removes its files.

The state file is written atomically and only once the server is ready, so
its existence is the readiness signal for demo.sh.  The password is only in
a mode-0600 file (named in the state), never on a command line.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

import testenv  # noqa: E402


class _Stop(Exception):
    pass


def _on_signal(signum, frame):
    raise _Stop()


def _write_state(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", required=True,
                    help="JSON file to write once the server is ready")
    args = ap.parse_args()
    state_path = os.path.abspath(args.state)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    tmpdir = tempfile.mkdtemp(prefix="imapfs-demo-")
    server = testenv.DovecotServer(os.path.join(tmpdir, "server"))
    try:
        server.start()
        folders = testenv.populate_sample(server)
        pwfile = os.path.join(tmpdir, "password")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(server.password + "\n")
        _write_state(state_path, {
            "pid": os.getpid(),
            "host": server.host,
            "user": server.user,
            "imaps_port": server.imaps_port,
            "imap_port": server.imap_port,
            "cafile": server.cafile,
            "password_file": pwfile,
            "tmpdir": tmpdir,
            "server_root": server.root,
            "server_log": server.log_path,
            "folders": folders,
        })
        print(f"demo server ready: imaps://{server.user}@{server.host}:"
              f"{server.imaps_port}", flush=True)
        while True:
            signal.pause()
    except _Stop:
        return 0
    except Exception as e:  # report, clean up, fail
        print(f"demo_server: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        # No further signal may interrupt the cleanup.
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        server.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
