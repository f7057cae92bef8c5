"""Named accounts in $XDG_CONFIG_HOME/imapfs/config, against the test
Dovecot: `imapfs work MOUNTPOINT` mounts account "work"; the command line
overrides the file; a file with a secret or writable by others is
refused in one line."""

import os
import subprocess

import pytest

from test_cli import mnt  # noqa: F401 - the fixture
from test_cli import (assert_failed, clean_env, read_one, secret_file,
                      unmount_and_check, url)

TIMEOUT = 60


@pytest.fixture
def xdg(tmp_path):
    d = tmp_path / "xdg"
    (d / "imapfs").mkdir(parents=True)
    return d


def write_config(xdg, text, mode=0o600):
    p = xdg / "imapfs" / "config"
    p.write_text(text)
    os.chmod(p, mode)
    return str(p)


def imapfs(env, xdg, args):
    return subprocess.run([env.bin] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT,
                          env=clean_env(XDG_CONFIG_HOME=str(xdg)))


def account(env, pw, group="account work", extra=""):
    return (f"# a comment\n[{group}]\nurl={url(env.server)}\n"
            f"password_file={pw}\ncafile={env.server.cafile}\n{extra}")


@pytest.mark.parametrize("group", ["account work", "work"])
def test_account_mounts(env, mnt, tmp_path, xdg, group):
    pw = secret_file(tmp_path, env.server.password)
    write_config(xdg, "[account other]\nurl=imaps://x@example.invalid\n" +
                 account(env, pw, group, "options=connections=2,timeout=20"))
    r = imapfs(env, xdg, ["work", mnt])
    assert r.returncode == 0, r.stderr
    read_one(env, mnt)
    unmount_and_check(mnt)


def test_file_options_are_applied(env, mnt, tmp_path, xdg):
    pw = secret_file(tmp_path, env.server.password)
    write_config(xdg, account(env, pw, extra="options=listing_ttl=soon\n"))
    assert_failed(imapfs(env, xdg, ["work", mnt]), mnt, "listing_ttl",
                  "soon")


def test_command_line_overrides_file(env, mnt, tmp_path, xdg):
    write_config(xdg, f"[work]\nurl={url(env.server)}\n"
                 f"password_command=echo wrong-password\n"
                 f"cafile=/nonexistent/ca.pem\n"
                 f"options=timeout=5,cache_size=nonsense\n")
    # as written, the file's values are used (and fail)
    assert_failed(imapfs(env, xdg, ["work", mnt]), mnt, "cache_size")
    # a password source on the command line replaces the file's, even one
    # that ranks lower (a file below a command), and so do options
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, xdg, ["-o", f"password_file={pw}",
                          "-o", f"cafile={env.server.cafile},cache_size=8",
                          "work", mnt])
    assert r.returncode == 0, r.stderr
    read_one(env, mnt)
    unmount_and_check(mnt)


def test_values_with_commas(env, mnt, tmp_path, xdg):
    """A value may hold commas and backslashes (fuse_opt separators)."""
    pw = secret_file(tmp_path, env.server.password + ",junk")
    write_config(xdg, f"[work]\nurl={url(env.server)}\n"
                 f"password_command=cut -d, -f1 {pw}\n"
                 f"cafile={env.server.cafile}\n")
    r = imapfs(env, xdg, ["work", mnt])
    assert r.returncode == 0, r.stderr
    read_one(env, mnt)
    unmount_and_check(mnt)


@pytest.mark.parametrize("mode,readable", [(0o600, False), (0o644, True)])
def test_secret_in_file_refused(env, mnt, tmp_path, xdg, mode, readable):
    pw = secret_file(tmp_path, env.server.password)
    write_config(xdg, account(env, pw, extra=f"password={env.server.password}"
                              "\n"), mode)
    line = assert_failed(imapfs(env, xdg, ["work", mnt]), mnt, "holds a secret")
    assert env.server.password not in line
    assert ("readable by others" in line) == readable, line


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_file_writable_by_others_refused(env, mnt, tmp_path, xdg, mode):
    pw = secret_file(tmp_path, env.server.password)
    write_config(xdg, account(env, pw), mode)
    assert_failed(imapfs(env, xdg, ["work", mnt]), mnt, "chmod go-w")


@pytest.mark.parametrize("text,phrase", [
    (None, "no account file"),
    ("[account other]\nurl=imaps://a@b\n", "nor an account"),
    ("[work]\nurl=imaps://a@b\npasword_file=/x\n", "unknown key"),
    ("[work]\npassword_file=/x\n", "needs url="),
    ("[work\nurl=imaps://a@b\n", "config"),
])
def test_bad_or_missing_account(env, mnt, xdg, text, phrase):
    if text is not None:
        write_config(xdg, text)
    assert_failed(imapfs(env, xdg, ["work", mnt]), mnt, phrase)


@pytest.mark.parametrize("name", ["work", "home"])
def test_example_config_is_accepted(env, tmp_path, xdg, name):
    """contrib/config.example parses: its accounts get as far as the
    mount point check (which fails here on purpose, before any password
    command runs or the network is used)."""
    root = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.join(
        os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "contrib", "config.example")) as f:
        write_config(xdg, f.read())
    missing = str(tmp_path / "no-such-dir")
    r = imapfs(env, xdg, [name, missing])
    assert r.returncode != 0
    assert r.stderr.strip() == f"imapfs: mountpoint {missing}: No such " \
        f"file or directory", r.stderr
