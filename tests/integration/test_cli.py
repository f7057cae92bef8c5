"""Command-line behaviour: failures, STARTTLS, secrets, password sources."""

import base64
import os
import subprocess
import urllib.parse

import pytest

import testenv

TIMEOUT = 60


def mounted(mnt):
    mp = os.path.realpath(mnt)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == mp for line in f)


@pytest.fixture
def mnt(tmp_path):
    d = tmp_path / "mnt"
    d.mkdir()
    yield str(d)
    # Never leave anything behind, whatever the test did.
    testenv.unmount(str(d))
    pid = testenv.daemon_pid(str(d))
    if pid:
        os.kill(pid, 9)


def url(server, starttls=False, port=None, user=None):
    scheme = "imap" if starttls else "imaps"
    port = port or (server.imap_port if starttls else server.imaps_port)
    user = urllib.parse.quote(user or server.user, safe="")
    return f"{scheme}://{user}@{server.host}:{port}"


def secret_file(tmp_path, text, mode=0o600, name="pw"):
    p = tmp_path / name
    p.write_text(text + "\n")
    os.chmod(p, mode)
    return str(p)


def clean_env(**extra):
    e = {k: v for k, v in os.environ.items() if k != "IMAPFS_PASSWORD"}
    e.update(extra)
    return e


def imapfs(env, args, envvars=None):
    return subprocess.run([env.bin] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT,
                          env=envvars if envvars is not None else clean_env())


def assert_failed(r, mnt, *phrases):
    assert r.returncode != 0, "imapfs should have failed"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want one stderr line, got: {r.stderr!r}"
    line = lines[0]
    assert line.startswith("imapfs: "), line
    if phrases:
        assert any(p.lower() in line.lower() for p in phrases), \
            f"{line!r} lacks any of {phrases}"
    assert not mounted(mnt), "left a mount behind"
    assert testenv.daemon_pid(mnt) is None, "left a daemon behind"
    return line


def read_one(env, mnt, sname="INBOX", rel="INBOX"):
    uid = min(env.truth.messages(sname))
    with open(os.path.join(mnt, rel, f"{uid}.eml"), "rb") as f:
        assert f.read() == env.truth.body(sname, uid)


def unmount_and_check(mnt):
    pid = testenv.daemon_pid(mnt)
    assert pid is not None, "no daemon serving the mount"
    testenv.unmount(mnt)
    assert not mounted(mnt)
    testenv.wait_for(lambda: testenv.daemon_pid(mnt) is None, 10,
                     what="daemon exit after unmount")


# -- failures -------------------------------------------------------------

def test_wrong_password(env, mnt, tmp_path):
    pw = secret_file(tmp_path, "not-the-password")
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={pw}", url(env.server), mnt])
    line = assert_failed(r, mnt, "Authentication failed", "authentication")
    assert "not-the-password" not in line


def test_wrong_user(env, mnt, tmp_path):
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={pw}",
                     url(env.server, user="mallory"), mnt])
    assert_failed(r, mnt, "Authentication failed", "authentication")


def test_untrusted_certificate(env, mnt, tmp_path):
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, ["-o", f"password_file={pw}", url(env.server), mnt])
    assert_failed(r, mnt, "certificate verify failed", "verif")


def test_untrusted_certificate_starttls(env, mnt, tmp_path):
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, ["-o", f"password_file={pw}",
                     url(env.server, starttls=True), mnt])
    assert_failed(r, mnt, "certificate verify failed", "verif")


def test_closed_port(env, mnt, tmp_path):
    pw = secret_file(tmp_path, env.server.password)
    port = testenv._free_port()
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={pw}",
                     url(env.server, port=port), mnt])
    assert_failed(r, mnt, "connect", "refused", "unreachable")


def test_implicit_tls_against_plain_port(env, mnt, tmp_path):
    """imaps:// to the plaintext port must fail cleanly (TLS handshake)."""
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={pw}",
                     url(env.server, port=env.server.imap_port), mnt])
    assert_failed(r, mnt)


@pytest.mark.parametrize("bad", [
    "http://alice@127.0.0.1:993",
    "imaps://",
    "imaps://alice@",
    "imaps://alice@127.0.0.1:99999",
    "imaps://alice@127.0.0.1:12ab",
    "imaps://alice@127.0.0.1/INBOX/extra path",
    "not a url",
])
def test_bad_url(env, mnt, tmp_path, bad):
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={pw}", bad, mnt])
    assert_failed(r, mnt, "url", "port", "scheme", "host")


def test_missing_password_file(env, mnt, tmp_path):
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={tmp_path}/nonexistent",
                     url(env.server), mnt])
    assert_failed(r, mnt, "password", "nonexistent")


def test_no_password_at_all(env, mnt, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     url(env.server), mnt], clean_env(HOME=str(home)))
    assert_failed(r, mnt, "password")


def test_version_and_help(env):
    r = imapfs(env, ["-V"])
    assert r.returncode == 0
    assert "imapfs" in (r.stdout + r.stderr).lower()
    r = imapfs(env, ["-h"])
    assert r.returncode == 0
    text = r.stdout + r.stderr
    for word in ("imaps://", "password_command", "cafile"):
        assert word in text, word


# -- STARTTLS -------------------------------------------------------------

def test_starttls_mount(env, mnt):
    r = testenv.mount_imapfs(env.bin, env.server, mnt, starttls=True)
    assert r.returncode == 0, r.stderr
    assert mounted(mnt)
    read_one(env, mnt)
    unmount_and_check(mnt)


def test_starttls_required(env, mnt, tmp_path):
    plain = testenv.DovecotServer(str(tmp_path / "plain"), ssl=False)
    try:
        plain.start()
        pw = secret_file(tmp_path, plain.password)
        # start() itself logged in; only look at what imapfs caused.
        skip = os.path.getsize(plain.log_path)
        r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                         "-o", f"password_file={pw}",
                         url(plain, starttls=True), mnt])
        assert_failed(r, mnt, "STARTTLS")

        def new_log():
            with open(plain.log_path) as f:
                f.seek(skip)
                text = f.read()
            return text if "imap-login" in text else None
        log = testenv.wait_for(new_log, 10, what="imapfs in the server log")
        assert "Login: user=<" not in log, "authenticated in plaintext"
        assert plain.password not in log
    finally:
        plain.stop()


# -- secrets --------------------------------------------------------------

def test_password_not_in_cmdline(env):
    pid = testenv.daemon_pid(env.mnt)
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    assert env.server.password.encode() not in cmdline


def _secret_forms(user, pw):
    forms = {pw}
    for raw in (f"\0{user}\0{pw}", f"{user}\0{user}\0{pw}", pw):
        b = base64.b64encode(raw.encode()).decode()
        forms.add(b)
        forms.add(b.rstrip("="))
    return forms


def test_debug_trace_redacts_password(env, mnt, tmp_path):
    pw = secret_file(tmp_path, env.server.password)
    errpath = tmp_path / "stderr.txt"
    with open(errpath, "wb") as err:
        p = subprocess.Popen([env.bin, "-f", "-d",
                              "-o", f"cafile={env.server.cafile}",
                              "-o", f"password_file={pw}",
                              url(env.server), mnt],
                             stdin=subprocess.DEVNULL, stdout=err,
                             stderr=err, env=clean_env())
    try:
        testenv.wait_for(lambda: mounted(mnt) or p.poll() is not None, 30,
                         what="foreground mount")
        assert p.poll() is None, errpath.read_text(errors="replace")
        read_one(env, mnt)
        testenv.unmount(mnt)
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            testenv.unmount(mnt)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    trace = errpath.read_text(errors="replace")
    assert "LOGIN" in trace or "AUTHENTICATE" in trace, trace[-2000:]
    for form in _secret_forms(env.server.user, env.server.password):
        assert form not in trace, "secret leaked in the debug trace"
    assert p.returncode == 0


# -- password sources -----------------------------------------------------

def test_password_command(env, mnt, tmp_path):
    pw = secret_file(tmp_path, env.server.password)
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_command=cat {pw}",
                     url(env.server), mnt])
    assert r.returncode == 0, r.stderr
    read_one(env, mnt)
    unmount_and_check(mnt)


def test_password_command_wins_over_file(env, mnt, tmp_path):
    good = secret_file(tmp_path, env.server.password, name="good")
    bad = secret_file(tmp_path, "wrong", name="bad")
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", f"password_file={bad}",
                     "-o", f"password_command=cat {good}",
                     url(env.server), mnt])
    assert r.returncode == 0, r.stderr
    unmount_and_check(mnt)


def test_password_command_failing(env, mnt):
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     "-o", "password_command=exit 3",
                     url(env.server), mnt])
    assert_failed(r, mnt, "password")


def test_password_env(env, mnt):
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     url(env.server), mnt],
               clean_env(IMAPFS_PASSWORD=env.server.password,
                         HOME="/nonexistent"))
    assert r.returncode == 0, r.stderr
    read_one(env, mnt)
    unmount_and_check(mnt)


@pytest.mark.parametrize("mode,ok", [(0o600, True), (0o400, True),
                                     (0o644, False), (0o640, False),
                                     (0o604, False)])
def test_netrc(env, mnt, tmp_path, mode, ok):
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine other.example.org login x password y\n"
                     f"machine {env.server.host}\n"
                     f"  login {env.server.user}\n"
                     f"  password {env.server.password}\n")
    os.chmod(netrc, mode)
    r = imapfs(env, ["-o", f"cafile={env.server.cafile}",
                     url(env.server), mnt], clean_env(HOME=str(home)))
    if ok:
        assert r.returncode == 0, r.stderr
        read_one(env, mnt)
        unmount_and_check(mnt)
    else:
        line = assert_failed(r, mnt, "netrc", "password", "permission")
        assert env.server.password not in line


# -- options --------------------------------------------------------------

def test_small_pool_and_cache(env, mnt):
    """connections=1 and a 1 MB cache still give exact bytes under load."""
    import concurrent.futures
    import random
    r = testenv.mount_imapfs(env.bin, env.server, mnt, options=[
        "-o", "ro", "-o", "connections=1", "-o", "cache_size=1"])
    assert r.returncode == 0, r.stderr
    (buid,) = env.truth.messages("Big")
    big = env.truth.body("Big", buid)
    jobs = [("Big", "Big", buid)] + [
        ("INBOX", "INBOX", u) for u in sorted(env.truth.messages("INBOX"))]

    def work(job):
        sname, rel, uid = job
        with open(os.path.join(mnt, rel, f"{uid}.eml"), "rb") as f:
            return job, f.read()

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        for (sname, rel, uid), data in ex.map(work, jobs):
            assert data == env.truth.body(sname, uid), (rel, uid)
    rng = random.Random(5)
    fd = os.open(os.path.join(mnt, "Big", f"{buid}.eml"), os.O_RDONLY)
    try:
        for _ in range(40):
            off = rng.randrange(len(big))
            assert os.pread(fd, 70000, off) == big[off:off + 70000]
    finally:
        os.close(fd)
    unmount_and_check(mnt)


def test_percent_encoded_user(env, mnt, tmp_path):
    other = testenv.DovecotServer(str(tmp_path / "other"),
                                  user="bob@example.org")
    try:
        other.start()
        other.append("INBOX", b"Subject: hi\r\n\r\nhello bob\r\n")
        r = testenv.mount_imapfs(env.bin, other, mnt)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(mnt, "INBOX", "1.eml"), "rb") as f:
            assert f.read() == b"Subject: hi\r\n\r\nhello bob\r\n"
        unmount_and_check(mnt)
    finally:
        testenv.unmount(mnt)
        other.stop()
