"""Ordinary command-line tools work on the mount."""

import filecmp
import os
import stat
import subprocess

from conftest import CORPUS
from testenv import mount_modes


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=200, **kw)


def test_ls_l(env):
    msgs = env.truth.messages("INBOX")
    r = run(["ls", "-l", "--time-style=+%s", env.path("INBOX")], text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("total ")
    rows = lines[1:]
    assert len(rows) == len(msgs)
    seen = {}
    for row in rows:
        f = row.split()
        assert f[0] == "-" + stat.filemode(mount_modes(True)[0])[1:], row
        seen[int(f[-1][:-4])] = (int(f[4]), int(f[5]))
    assert seen == {u: (m["size"], m["date"]) for u, m in msgs.items()}


def test_ls_root(env):
    r = run(["ls", "-la", env.mnt], text=True)
    assert r.returncode == 0, r.stderr
    for name in ("INBOX", "Archive", "Entwürfe", "R&D", "100%25"):
        assert any(row.endswith(" " + name) for row in
                   r.stdout.splitlines()), name
    assert "d" + stat.filemode(mount_modes(True)[1])[1:] in r.stdout


def test_find(env):
    r = run(["find", env.mnt, "-type", "f"], text=True)
    assert r.returncode == 0, r.stderr
    expected = set()
    for name, rel in env.selectable():
        for uid in env.truth.messages(name):
            expected.add(os.path.join(env.mnt, rel, f"{uid}.eml"))
    assert set(r.stdout.splitlines()) == expected
    r = run(["find", env.mnt, "-mindepth", "1", "-type", "d"], text=True)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.splitlines()) == {
        os.path.join(env.mnt, rel) for _, rel, _ in env.truth.mailboxes()}


def test_grep(env):
    word = b"quokka"
    expected = env.word_matches(word)
    assert 3 <= len(expected) < 60, "the corpus should contain the word"
    r = run(["grep", "-r", "-l", "-a", word.decode(), env.mnt], text=True)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.splitlines()) == expected


def test_cat(env):
    name = "Archive/2024/Q1"
    sname = env.server.server_name(name)
    for uid in env.truth.messages(sname):
        r = run(["cat", env.path(f"{name}/{uid}.eml")])
        assert r.returncode == 0
        assert r.stdout == env.truth.body(sname, uid)


def test_cp(env, tmp_path):
    dst = tmp_path / "copy"
    r = run(["cp", "-r", env.path("Archive"), str(dst)])
    assert r.returncode == 0, r.stderr
    cmp = filecmp.dircmp(env.path("Archive"), dst)
    assert not cmp.left_only and not cmp.right_only
    n = 0
    for dirpath, _, files in os.walk(dst):
        rel = os.path.relpath(dirpath, dst)
        sname = env.server.server_name(
            "Archive" if rel == "." else "Archive/" + rel)
        for fn in files:
            with open(os.path.join(dirpath, fn), "rb") as f:
                assert f.read() == env.truth.body(sname, int(fn[:-4]))
            n += 1
    assert n == sum(c for k, c in CORPUS.items()
                    if isinstance(k, str) and k.startswith("Archive"))
