"""Bulk moves through the mount, as a shell glob hands them to mv(1),
checked against the server (each module has its own write environment,
conftest.py's wenv)."""

import os
import subprocess


from conftest import SENTINEL

COUNT = 25


def bodies(n, tag):
    return [(f"From: bulk@example.org\r\nSubject: {tag} {i}\r\n"
             f"Message-ID: <{tag}-{i}@imapfs.test>\r\n\r\n"
             f"Body {i} of {tag}.\r\n").encode() for i in range(n)]


def test_mv_glob_into_other_folder_keeps_every_message(wenv, tmp_path):
    """cp of COUNT files into Work, then `mv Work/<their names> Archive/`
    in glob (lexical) order: Archive then holds every one exactly once and
    Work none (the UIDs the moved messages get in Archive are the names
    of messages still to be moved)."""
    src = []
    for i, b in enumerate(bodies(COUNT, "bulk-mv")):
        p = tmp_path / f"m{i:03d}.eml"
        p.write_bytes(b)
        src.append(str(p))
    subprocess.run(["cp", "--"] + src + [wenv.path("Work")], check=True)
    mine = sorted(b for b in wenv.bodies("Work")
                  if b.startswith(b"From: bulk@"))
    assert mine == sorted(bodies(COUNT, "bulk-mv"))
    names = sorted(f"{u}.eml" for u, m in wenv.messages("Work").items()
                   if m["body"] != SENTINEL)
    r = subprocess.run(["mv", "--"] + [wenv.path("Work", n) for n in names]
                       + [wenv.path("Archive")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert wenv.bodies("Work") == []
    got = wenv.bodies("Archive")
    assert len(got) == COUNT, f"Archive holds {len(got)} of the {COUNT} " \
        f"moved messages"
    assert got == sorted(bodies(COUNT, "bulk-mv"))
    wenv.check_sentinels()
