"""-o password_keyring: the password from the desktop keyring (libsecret),
stored as `secret-tool store ... service imapfs user USER host HOST`.

Runs a private session bus (dbus-run-session) with gnome-keyring-daemon
(its secrets component, a login keyring unlocked from stdin) in a
temporary HOME, stores the password with secret-tool and mounts with it.
Skipped when one of those tools is missing or imapfs was built without
libsecret (meson -Dkeyring)."""

import os
import shutil
import subprocess

import pytest

import testenv
from test_cli import url

SCRIPT = r"""
set -eu
printf 'keyring-pw' | gnome-keyring-daemon --unlock --components=secrets \
    >/dev/null
printf '%s' "$PW" | secret-tool store --label="imapfs $USERNAME@$HOST" \
    service imapfs user "$USERNAME" host "$HOST"
unset PW
# Not found: another user name.
if "$BIN" -o ro -o password_keyring -o cafile="$CA" "$OTHER_URL" "$MNT" \
    2>"$OUT.missing"; then
  echo "mounted without a keyring entry" >&2
  exit 1
fi
"$BIN" -o ro -o password_keyring -o cafile="$CA" "$URL" "$MNT"
cat "$MNT/INBOX/$MSG" >"$OUT"
fusermount3 -u "$MNT"
"""


def test_password_keyring(env, tmp_path):
    for tool in ("dbus-run-session", "gnome-keyring-daemon", "secret-tool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install "
                        f"dbus gnome-keyring libsecret-tools)")
    home = tmp_path / "home"
    home.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = str(tmp_path / "out")
    uid = min(env.truth.messages("INBOX"))
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
         "XDG_RUNTIME_DIR": str(home), "LANG": "C.UTF-8",
         "BIN": env.bin, "CA": env.server.cafile, "MNT": str(mnt),
         "URL": url(env.server), "OTHER_URL": url(env.server, user="nobody"),
         "USERNAME": env.server.user, "HOST": env.server.host,
         "PW": env.server.password, "OUT": out, "MSG": f"{uid}.eml"}
    try:
        r = subprocess.run(["dbus-run-session", "--", "sh", "-c", SCRIPT],
                           env=e, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120)
    finally:
        if os.path.ismount(mnt):
            testenv.force_unmount(str(mnt))
    missing = ""
    if os.path.exists(out + ".missing"):
        with open(out + ".missing") as f:
            missing = f.read()
    if "built without libsecret" in missing:
        pytest.skip("imapfs was built without libsecret (-Dkeyring)")
    assert r.returncode == 0, f"{r.stdout}\n{missing}"
    with open(out, "rb") as f:
        assert f.read() == env.truth.body("INBOX", uid)
    assert "no password in the keyring" in missing, missing
    assert "secret-tool store" in missing and "user nobody" in missing
    assert env.server.password not in missing + r.stdout
    testenv.wait_for(lambda: testenv.daemon_pid(str(mnt)) is None, 10,
                     what="imapfs exit after unmount")
