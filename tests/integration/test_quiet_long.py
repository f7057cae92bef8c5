"""Ten minutes of a quiet IDLE (issue 6): run apart from the integration
suite, because it mostly waits.

conftest.py leaves this file out unless IMAPFS_LONG_TESTS=1; contrib/
check.sh sets it and runs the file as a pytest process of its own in the
background of phase plain (started after the build, collected at the end of
the phase, counted in its pass/fail; a skip counts as a failure there).
By hand:

    IMAPFS_LONG_TESTS=1 IMAPFS_BIN=... IMAPFS_SOURCE_ROOT=$PWD \\
        pytest-3 -v -p no:cacheprovider tests/integration/test_quiet_long.py

The server says nothing at all during IDLE (Dovecot's
imap_idle_notify_interval, "* OK Still here" every 2 minutes by default,
is set to an hour); listener 1 IDLEs on a folder nobody touches, so only
its watchdog (150 s here, longer than Dovecot's default interval) ends its
IDLE: four probes in ten minutes, each answered on the same connection.
The short version runs in the suite: test_idle_liveness.py.
"""

import os
import sys
import time

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_idle_liveness import (  # noqa: E402,F401 - fixtures
    QUIET, change_shows_up, mounted, quiet_dovecot, read_trace, use_two,
    wait_connected, watch_stats)

SILENCE_S = 600
WATCHDOG_S = 150


def test_quiet_idle_ten_minutes(quiet_dovecot, mounted):
    srv = quiet_dovecot
    mnt, trace = mounted(srv, ["-o", f"watchdog={WATCHDOG_S}",
                               "-o", "watch=2"])
    wait_connected(mnt, 2)
    use_two(mnt)
    time.sleep(SILENCE_S)
    st = watch_stats(mnt)
    t = read_trace(trace)
    assert "* OK Still here" not in t, "the server was not silent"
    assert st["connects"] == 2, st["text"]
    assert st["connected"] == 2, st["text"]
    assert st["probes"] >= SILENCE_S // WATCHDOG_S - 1, st["text"]
    assert "connection lost" not in t
    assert "cannot connect" not in t
    change_shows_up(srv, mnt, "after-ten-minutes", box=QUIET)
    change_shows_up(srv, mnt, "after-ten-minutes-inbox")
    assert watch_stats(mnt)["connects"] == 2
