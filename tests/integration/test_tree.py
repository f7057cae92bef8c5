"""The directory tree mirrors LIST; files mirror the UIDs of each mailbox."""

import os
import re
import stat

from conftest import CORPUS, INBOX_COUNT


def mount_dirs(mnt):
    out = set()
    for dirpath, dirnames, _ in os.walk(mnt):
        for d in dirnames:
            out.add(os.path.relpath(os.path.join(dirpath, d), mnt))
    return out


def test_directories_equal_list(env):
    boxes = env.truth.mailboxes()
    expected = {rel for _, rel, _ in boxes}
    assert mount_dirs(env.mnt) == expected


def test_corpus_names_mapped(env):
    """The special names appear decoded and escaped as the contract says."""
    dirs = mount_dirs(env.mnt)
    for rel in ("INBOX", "Archive", "Archive/2024", "Archive/2024/Q1",
                "Entwürfe", "Entwürfe/Alt", "R&D", 'Say "hi"', "My Folder",
                "100%25", "a%2Fb", "Ghost", "Ghost/Child", "Empty", "Big"):
        assert rel in dirs, rel
    assert "100%" not in dirs
    assert "Entw&APw-rfe" not in dirs


def test_file_names_are_server_uids(env):
    boxes = env.truth.mailboxes()
    checked = 0
    for name, rel, attrs in boxes:
        entries = os.listdir(env.path(rel))
        files = {e for e in entries
                 if stat.S_ISREG(os.lstat(os.path.join(env.path(rel),
                                                       e)).st_mode)}
        if "\\Noselect" in attrs or "\\NonExistent" in attrs:
            assert files == set(), rel
            continue
        msgs = env.truth.messages(name)
        assert len(files) == len(msgs), rel
        assert files == {f"{uid}.eml" for uid in msgs}, rel
        for f in files:
            assert re.fullmatch(r"[1-9][0-9]*\.eml", f), f
        checked += 1
    assert checked >= len(CORPUS)


def test_counts(env):
    assert len(os.listdir(env.path("INBOX"))) == INBOX_COUNT
    assert os.listdir(env.path("Empty")) == []
    assert len([e for e in os.listdir(env.path("Big"))
                if e.endswith(".eml")]) == 1
    # A mailbox with both messages and children.
    archive = os.listdir(env.path("Archive"))
    assert "2024" in archive and "2023" in archive
    assert len([e for e in archive if e.endswith(".eml")]) == 3
    # The \Noselect parent has only its child.
    assert os.listdir(env.path("Ghost")) == ["Child"]


def test_readdir_consistent_with_lookup(env):
    """Every listed name can be stat()ed, and d_type agrees with stat."""
    for dirpath, dirnames, filenames in os.walk(env.mnt):
        with os.scandir(dirpath) as it:
            for e in it:
                st = os.stat(e.path)
                if e.is_dir(follow_symlinks=False):
                    assert stat.S_ISDIR(st.st_mode), e.path
                else:
                    assert stat.S_ISREG(st.st_mode), e.path
