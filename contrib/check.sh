#!/bin/bash
# The imapfs test command (CI runs it through .ci/run).
#
# Phases, each in a fresh build directory under build/:
#   plain  gcc, unit + integration suites, and beside them (in the
#          background) tests/integration/test_quiet_long.py, ten minutes of
#          a quiet IDLE, counted with the phase
#   deb    the Debian package: dpkg-buildpackage -us -uc -b in a temporary
#          copy of the tree (never in it: the build writes to debian/ and to
#          the parent directory), lintian on it, `apt-get install -y
#          ./imapfs_*.deb` into this machine, tests/package (the installed
#          /usr/bin/imapfs mounts Dovecot, reads, unmounts; man -w imapfs),
#          then `apt-get remove -y imapfs`; refuses to run when an imapfs
#          package or a /usr/bin/imapfs is there already
#   asan   gcc with -fsanitize=address,undefined and -Werror, same suites; the
#          sanitizers write their reports to build/asan-reports/ (the
#          daemonized imapfs has no stderr), and any report fails the phase
#   fuzz   clang + libFuzzer, fuzz_parser for $FUZZ_SECONDS (default 60) on a
#          copy of tests/fuzz/corpus
# Before plain/asan, the Cyrus and Courier chroots that
# tests/integration/test_servers.py runs are built or checked
# (tests/support/chrootserver.py prepare; cached in
# /var/cache/imapfs-test/chroots, so only the first run on a machine pays).
# test_servers.py runs against $CHECK_SERVERS in plain (default all four:
# "dovecot cyrus cyrus-unixsep courier") and $CHECK_ASAN_SERVERS under the
# sanitizers (default "cyrus courier": Dovecot is the rest of that suite).
# Logs go to build/logs/.  Afterwards it checks that no FUSE mount, imapfs
# daemon or dovecot process was left behind (and cleans up any that were).  Exit status is non-zero if anything failed; the last line
# is "N passed, M failed" summed over all phases.
#
# Environment: FUZZ_SECONDS (default 60), CHECK_PHASES (default
# "format plain deb asan fuzz"; e.g. CHECK_PHASES=plain for a quick local run),
# SKIP_SETUP_DEPS=1 to not call contrib/setup-deps.sh.
#
#   contrib/check.sh          run the phases
#   contrib/check.sh --help   print this text and exit
set -euo pipefail

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"
	exit 0
	;;
"") ;;
*)
	echo "check.sh: unexpected argument '$1' (see contrib/check.sh --help)" >&2
	exit 2
	;;
esac

cd "$(dirname "$0")/.."
ROOT=$PWD

# Leaks are found exactly, without guessing from process names (other
# checkouts or tests may run on the same machine): the script re-executes
# itself under a small Python parent that is a child subreaper
# (PR_SET_CHILD_SUBREAPER), so every daemon the tests start (dovecot,
# daemonized imapfs) stays a descendant of it; and TMPDIR points to a private
# directory, so the tests' mount points are below it.
if [ -z "${IMAPFS_CHECK_REAPER_PID:-}" ]; then
	if [ "${SKIP_SETUP_DEPS:-0}" != 1 ]; then
		printf '\n=== setup-deps\n'
		bash "$ROOT/contrib/setup-deps.sh"
	fi
	# shellcheck disable=SC2016 # Python code, not shell expansions
	exec /usr/bin/python3 -c '
import ctypes, os, signal, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1,
                                           0, 0, 0) != 0:
    sys.exit("check.sh: prctl(PR_SET_CHILD_SUBREAPER) failed")
os.environ["IMAPFS_CHECK_REAPER_PID"] = str(os.getpid())
# Ctrl-C reaches the whole foreground group anyway; TERM is passed on.
signal.signal(signal.SIGINT, signal.SIG_IGN)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvp("bash", ["bash"] + sys.argv[1:])
signal.signal(signal.SIGTERM, lambda n, f: os.kill(child, n))
# Reap everything (orphans re-parented to us too) until the script ends.
while True:
    pid, status = os.waitpid(-1, 0)
    if pid == child:
        sys.exit(os.waitstatus_to_exitcode(status) % 256)
' "$0" "$@"
fi

BUILD=$ROOT/build
LOGS=$BUILD/logs
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
CHECK_SERVERS=${CHECK_SERVERS:-dovecot cyrus cyrus-unixsep courier}
CHECK_ASAN_SERVERS=${CHECK_ASAN_SERVERS:-cyrus courier}
CHECK_PHASES=${CHECK_PHASES:-format plain deb asan fuzz}
REAPER=$IMAPFS_CHECK_REAPER_PID
CHECK_TMP=$(mktemp -d /tmp/imapfs-check.XXXXXX)
export TMPDIR=$CHECK_TMP
# Set while phase deb has the package installed: an exit in between (error,
# signal) still removes it, so the machine is left as it was.
DEB_INSTALLED=0
on_exit() {
	if [ "$DEB_INSTALLED" = 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get remove -y imapfs \
			>/dev/null 2>&1 || true
	fi
	rm -rf --one-file-system "$CHECK_TMP"
}
trap on_exit EXIT

TOTAL_PASS=0
TOTAL_FAIL=0
FAILED_STEPS=()
START=$SECONDS

say() { printf '\n=== %s\n' "$*"; }

# Record a failure that has no meson summary (build error, fuzz crash...).
fail_step() {
	TOTAL_FAIL=$((TOTAL_FAIL + 1))
	FAILED_STEPS+=("$1")
	printf '*** FAILED: %s\n' "$1"
}

# ---- leak bookkeeping ------------------------------------------------------

# FUSE mount points below our TMPDIR or the source tree, one per line,
# unescaped (/proc/mounts writes blanks as \040).
our_mounts() {
	local m
	awk '$3 ~ /^fuse/ {
		m = $2
		gsub(/\\040/, " ", m); gsub(/\\011/, "\t", m)
		gsub(/\\012/, "\n", m); gsub(/\\134/, "\\", m)
		print m
	}' /proc/mounts | while IFS= read -r m; do
		case "$m" in
		"$CHECK_TMP"/* | "$ROOT"/*) printf '%s\n' "$m" ;;
		esac
	done
}

# Processes below the reaper that are not this script or its children: what
# the tests left running.  Their children (dovecot's) are included.
leaked_pids() {
	ps -e -o pid=,ppid= | awk -v reaper="$REAPER" -v self="$$" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p; mine = 0; ours = 0
				while (q in parent && q > 1) {
					if (q == self) { mine = 1; break }
					if (q == reaper && p != reaper) { ours = 1; break }
					q = parent[q]
				}
				if (ours && !mine)
					print p
			}
		}' | sort -n
}

check_leaks() {
	local mounts pids p _
	say "leak check"
	mounts=$(our_mounts)
	if [ -n "$mounts" ]; then
		while IFS= read -r p; do
			printf 'leaked FUSE mount: %s (unmounting)\n' "$p"
			fusermount3 -u "$p" 2>/dev/null ||
				fusermount3 -uz "$p" 2>/dev/null ||
				umount -l "$p" 2>/dev/null || true
		done <<<"$mounts"
		fail_step "leaked FUSE mount(s)"
	fi
	pids=$(leaked_pids)
	if [ -n "$pids" ]; then
		for p in $pids; do
			printf 'leaked process: %s\n' \
				"$(ps -o pid=,args= -p "$p" 2>/dev/null || echo "$p")"
		done
		# shellcheck disable=SC2086 # one pid per word
		kill $pids 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			[ -z "$(leaked_pids)" ] && break
			sleep 0.5
		done
		p=$(leaked_pids)
		if [ -n "$p" ]; then
			# shellcheck disable=SC2086
			kill -KILL $p 2>/dev/null || true
		fi
		fail_step "leaked process(es) (dovecot/imapfs)"
	fi
	if [ -z "$mounts" ] && [ -z "$pids" ]; then
		echo "leak check: no FUSE mount or daemon process left behind"
	fi
	# Only after the unmounts: never recurse into a live mount.
	rm -rf --one-file-system "$CHECK_TMP"
}

# ---- meson helpers -------------------------------------------------------

# setup_build NAME [meson options...]: fresh build directory build/NAME.
setup_build() {
	local name=$1
	shift
	rm -rf "${BUILD:?}/$name"
	meson setup "$BUILD/$name" "$@"
}

# run_suite PHASE SUITE [extra meson test args]: runs one suite, counts it.
run_suite() {
	local phase=$1 suite=$2 log rc=0 ok xfail fail xpass timeout skip detail
	shift 2
	log=$LOGS/$phase-$suite.txt
	say "$phase: meson test --suite $suite"
	meson test -C "$BUILD/$phase" --print-errorlogs --suite "$suite" \
		"$@" 2>&1 | tee "$log" || rc=$?
	# meson's closing summary: "Ok:   N" etc., one per line
	count() {
		awk -v k="$1" '
			index($0, k ":") == 1 { v = $NF }
			END { print (v == "" ? 0 : v) }' "$log"
	}
	ok=$(count Ok)
	xfail=$(count "Expected Fail")
	fail=$(count Fail)
	xpass=$(count "Unexpected Pass")
	timeout=$(count Timeout)
	skip=$(count Skipped)
	local passed=$((ok + xfail)) failed=$((fail + xpass + timeout))
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1 # meson failed without a summary (e.g. build error)
	fi
	if [ $((passed + failed)) -eq 0 ]; then
		echo "no test ran in suite '$suite'"
		failed=1
	fi
	TOTAL_PASS=$((TOTAL_PASS + passed))
	TOTAL_FAIL=$((TOTAL_FAIL + failed))
	if [ "$failed" -gt 0 ]; then
		FAILED_STEPS+=("$phase/$suite")
	fi
	printf -- '--- %s/%s: %d passed, %d failed, %d skipped (log %s)\n' \
		"$phase" "$suite" "$passed" "$failed" "$skip" "${log#"$ROOT"/}"
	# For information: pytest's own count (meson counts pytest as 1 test).
	detail=$(grep -E '^=+ .*[0-9]+ (passed|failed|error).* in [0-9.]+s' \
		"$BUILD/$phase/meson-logs/testlog.txt" 2>/dev/null | tail -n 1 |
		sed -E 's/^=+ //; s/ =+$//' || true)
	if [ -n "$detail" ]; then
		printf -- '    (pytest: %s)\n' "$detail"
	fi
}

# ---- the long test, in the background of phase plain ----------------------
#
# tests/integration/test_quiet_long.py waits ten minutes (a quiet IDLE), so
# it runs as a pytest process of its own, started after the build and
# collected at the end of the phase: its count goes into the phase's, a
# failure prints its log, and a skip or no test run is a failure (CI
# expects it to run).  The integration suite leaves the file out (conftest.py
# collects it only with IMAPFS_LONG_TESTS=1).
LONG_PID=
LONG_LOG=

long_start() {
	local phase=$1
	LONG_LOG=$LOGS/$phase-long.txt
	say "$phase: tests/integration/test_quiet_long.py in the background (log ${LONG_LOG#"$ROOT"/})"
	IMAPFS_LONG_TESTS=1 IMAPFS_BIN=$BUILD/$phase/fs/imapfs \
		IMAPFS_SOURCE_ROOT=$ROOT IMAPFS_BUILD_ROOT=$BUILD/$phase \
		IMAPFS_MUTATE_PROBE=$BUILD/$phase/tests/integration/mutate_probe \
		pytest-3 -v -rs -p no:cacheprovider \
		"$ROOT/tests/integration/test_quiet_long.py" >"$LONG_LOG" 2>&1 &
	LONG_PID=$!
}

long_collect() {
	local phase=$1 rc=0 passed failed skipped
	[ -n "$LONG_PID" ] || return 0
	say "$phase: waiting for test_quiet_long.py"
	wait "$LONG_PID" || rc=$?
	LONG_PID=
	passed=$(pytest_count passed "$LONG_LOG")
	failed=$(($(pytest_count failed "$LONG_LOG") + $(pytest_count error "$LONG_LOG")))
	skipped=$(pytest_count skipped "$LONG_LOG")
	if [ "$skipped" -gt 0 ]; then
		echo "test_quiet_long.py was skipped: CI expects it to run"
		failed=$((failed + skipped))
	fi
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1 # pytest failed without a summary
	elif [ "$rc" -eq 0 ] && [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
		echo "no test ran in test_quiet_long.py"
		failed=1
	fi
	TOTAL_PASS=$((TOTAL_PASS + passed))
	TOTAL_FAIL=$((TOTAL_FAIL + failed))
	if [ "$failed" -gt 0 ]; then
		tail -n 200 "$LONG_LOG"
		FAILED_STEPS+=("$phase/long (log ${LONG_LOG#"$ROOT"/})")
	fi
	printf -- '--- %s/long: %d passed, %d failed (log %s)\n' "$phase" \
		"$passed" "$failed" "${LONG_LOG#"$ROOT"/}"
}

# build_phase NAME [meson setup options...]: setup + ninja + both suites
# (phase plain: and the long test beside them).
build_phase() {
	local name=$1 pass0=$TOTAL_PASS fail0=$TOTAL_FAIL t0=$SECONDS
	shift
	say "$name: configure and build"
	if ! setup_build "$name" "$@" || ! ninja -C "$BUILD/$name"; then
		fail_step "$name: build"
	else
		if [ "$name" = plain ]; then
			long_start "$name"
		fi
		run_suite "$name" unit
		run_suite "$name" integration
		long_collect "$name"
	fi
	printf '=== phase %s: %d passed, %d failed (%ds)\n' "$name" \
		$((TOTAL_PASS - pass0)) $((TOTAL_FAIL - fail0)) $((SECONDS - t0))
}

# ---- phases --------------------------------------------------------------

# Every C file must be as .clang-format (at the root) formats it.
phase_format() {
	local t0=$SECONDS files bad
	say "format: clang-format --dry-run"
	mapfile -t files < <(find include imap fs tests -name '*.[ch]' | sort)
	if bad=$(clang-format --dry-run -Werror "${files[@]}" 2>&1); then
		TOTAL_PASS=$((TOTAL_PASS + 1))
	else
		printf '%s\n' "$bad" | head -n 20
		fail_step "format: run clang-format -i on the files above"
	fi
	printf '=== phase format: %d files (%ds)\n' "${#files[@]}" \
		$((SECONDS - t0))
}

# The chroots for the Cyrus and Courier test servers (built once per
# machine, then only checked).  A failure here is counted; the tests that
# need a chroot then fail on their own.
prepare_servers() {
	local t0=$SECONDS
	say "servers: Cyrus and Courier chroots"
	if /usr/bin/python3 "$ROOT/tests/support/chrootserver.py" prepare \
		2>&1 | tee "$LOGS/servers.txt"; then
		TOTAL_PASS=$((TOTAL_PASS + 1))
	else
		fail_step "servers: chroots (log build/logs/servers.txt)"
	fi
	printf '=== servers: chroots ready (%ds)\n' $((SECONDS - t0))
}

phase_plain() {
	IMAPFS_TEST_SERVERS=$CHECK_SERVERS build_phase plain
}

phase_asan() {
	local logdir=$BUILD/asan-reports f nreports
	rm -rf "$logdir"
	mkdir -p "$logdir"
	# log_path: the daemonized imapfs has its stderr on /dev/null, so reports
	# would vanish; every instrumented process writes <prefix>.<pid> instead.
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$logdir/asan"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logdir/ubsan"
	# Tells tests the binaries are sanitized (e.g. to scale memory limits:
	# ASan's shadow memory and quarantine add a few hundred MB of RSS).
	export IMAPFS_SANITIZED=address,undefined
	IMAPFS_TEST_SERVERS=$CHECK_ASAN_SERVERS build_phase asan \
		-Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true
	unset ASAN_OPTIONS UBSAN_OPTIONS IMAPFS_SANITIZED
	# Sanitizer reports are failures even when the test that triggered them
	# passed (e.g. a leak found when the daemon exits after unmount).
	nreports=0
	for f in "$logdir"/*; do
		[ -s "$f" ] || continue
		printf '\n--- sanitizer report %s\n' "${f#"$ROOT"/}"
		cat "$f"
		nreports=$((nreports + 1))
	done
	if [ "$nreports" -gt 0 ]; then
		fail_step "asan: $nreports sanitizer report(s) in ${logdir#"$ROOT"/}"
	else
		echo "asan: no sanitizer reports"
	fi
}

# ---- the Debian package ----------------------------------------------------

# The tree as a fresh clone would have it, plus uncommitted changes and new
# files not ignored by .gitignore (so a local run tests the working tree),
# copied to directory $1.  Without git: everything but build/ and .git.
copy_tree() {
	local dest=$1
	mkdir -p "$dest"
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				# tracked files deleted in the working tree are not copied
				if [ -e "$f" ] || [ -L "$f" ]; then
					printf '%s\0' "$f"
				fi
			done | tar -C "$ROOT" --null -T - -cf - | tar -C "$dest" -xf -
	else
		tar -C "$ROOT" --exclude=./build --exclude=./.git -cf - . |
			tar -C "$dest" -xf -
	fi
}

# pytest's closing line ("3 passed, 1 failed in 2.1s") -> count of KEY.
pytest_count() {
	awk -v k="$1" '
		/^=+ .* in [0-9.]+s/ { last = $0 }
		END {
			n = 0
			if (match(last, "[0-9]+ " k))
				n = substr(last, RSTART, RLENGTH) + 0
			print n
		}' "$2"
}

# True when dpkg has a package imapfs unpacked or installed (not when it is
# unknown, removed, or only its configuration files are left).
imapfs_pkg_present() {
	case "$(dpkg-query -W -f='${db:Status-Abbrev}' imapfs 2>/dev/null)" in
	"" | ?n* | ?c*) return 1 ;;
	*) return 0 ;;
	esac
}

phase_deb() {
	local t0=$SECONDS pass0=$TOTAL_PASS fail0=$TOTAL_FAIL tmp rc=0 log
	local passed failed
	local -a debs
	log=$LOGS/deb-test.txt
	say "deb: dpkg-buildpackage -us -uc -b in a temporary copy of the tree"
	tmp=$(mktemp -d)
	if ! command -v dpkg-buildpackage >/dev/null; then
		# tests/package then exits 77 (skip); that is all there is to do
		echo "deb: dpkg-buildpackage is not installed: package not built"
	else
		if imapfs_pkg_present; then
			fail_step "deb: a package imapfs is installed and would be replaced; apt-get remove imapfs first"
			rm -rf "$tmp"
			return
		fi
		if [ -e /usr/bin/imapfs ]; then
			fail_step "deb: /usr/bin/imapfs exists (installed by hand?) and would be overwritten and then removed"
			rm -rf "$tmp"
			return
		fi
		copy_tree "$tmp/imapfs"
		if ! (cd "$tmp/imapfs" &&
			DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc -b) \
			>"$LOGS/deb-build.txt" 2>&1; then
			tail -n 40 "$LOGS/deb-build.txt"
			fail_step "deb: dpkg-buildpackage (log build/logs/deb-build.txt)"
			rm -rf "$tmp"
			printf '=== phase deb: %d passed, %d failed (%ds)\n' \
				$((TOTAL_PASS - pass0)) $((TOTAL_FAIL - fail0)) \
				$((SECONDS - t0))
			return
		fi
		debs=("$tmp"/imapfs_*.deb)
		printf 'built: %s\n' "${debs[@]##*/}"
		TOTAL_PASS=$((TOTAL_PASS + 1))
		if command -v lintian >/dev/null; then
			say "deb: lintian (errors fail, warnings are shown)"
			if lintian --fail-on error "$tmp"/imapfs_*.changes 2>&1 |
				tee "$LOGS/deb-lintian.txt"; then
				TOTAL_PASS=$((TOTAL_PASS + 1))
			else
				fail_step "deb: lintian errors (log build/logs/deb-lintian.txt)"
			fi
		else
			echo "deb: lintian is not installed: not checked"
		fi
		say "deb: apt-get install -y ./imapfs_*.deb"
		DEB_INSTALLED=1
		if ! (cd "$tmp" && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y ./imapfs_*.deb) \
			>"$LOGS/deb-install.txt" 2>&1; then
			tail -n 20 "$LOGS/deb-install.txt"
			fail_step "deb: apt-get install (log build/logs/deb-install.txt)"
		fi
	fi
	say "deb: tests/package against the installed package"
	IMAPFS_SOURCE_ROOT=$ROOT pytest-3 -v -rs -p no:cacheprovider \
		"$ROOT/tests/package" 2>&1 | tee "$log" || rc=$?
	passed=$(pytest_count passed "$log")
	failed=$(($(pytest_count failed "$log") + $(pytest_count error "$log")))
	if [ "$rc" -eq 77 ]; then
		echo "deb: skipped (dpkg-buildpackage is not installed)"
	elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1 # pytest failed without a summary
	elif [ "$rc" -eq 0 ] && [ "$passed" -eq 0 ]; then
		echo "deb: no test ran in tests/package"
		failed=1
	fi
	TOTAL_PASS=$((TOTAL_PASS + passed))
	TOTAL_FAIL=$((TOTAL_FAIL + failed))
	if [ "$failed" -gt 0 ]; then
		FAILED_STEPS+=("deb/package-tests (log ${log#"$ROOT"/})")
	fi
	# Leave the machine as it was, whatever the tests said.
	if imapfs_pkg_present; then
		say "deb: apt-get remove -y imapfs"
		if ! DEBIAN_FRONTEND=noninteractive apt-get remove -y imapfs \
			>"$LOGS/deb-remove.txt" 2>&1; then
			tail -n 20 "$LOGS/deb-remove.txt"
			fail_step "deb: apt-get remove imapfs (log build/logs/deb-remove.txt)"
		fi
	fi
	DEB_INSTALLED=0
	rm -rf "$tmp"
	printf '=== phase deb: %d passed, %d failed (%ds)\n' \
		$((TOTAL_PASS - pass0)) $((TOTAL_FAIL - fail0)) $((SECONDS - t0))
}

phase_fuzz() {
	local t0=$SECONDS fail0=$TOTAL_FAIL pass0=$TOTAL_PASS tmp rc=0 f
	say "fuzz: configure and build (clang, libFuzzer)"
	if ! command -v clang >/dev/null; then
		fail_step "fuzz: clang not found"
		return
	fi
	# The fuzz target brings -fsanitize=fuzzer,address,undefined for itself;
	# CFLAGS instrument the libraries it links (the parser under test) for
	# coverage feedback and ASan too.
	if ! CC=clang \
		CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
		LDFLAGS="-fsanitize=address,undefined" \
		setup_build fuzz -Dfuzz=true -Db_sanitize=none -Db_lundef=false ||
		! ninja -C "$BUILD/fuzz" tests/fuzz/fuzz_parser; then
		fail_step "fuzz: build"
	elif [ ! -d "$ROOT/tests/fuzz/corpus" ]; then
		fail_step "fuzz: tests/fuzz/corpus missing"
	else
		tmp=$(mktemp -d)
		cp -r "$ROOT/tests/fuzz/corpus" "$tmp/corpus"
		mkdir "$tmp/artifacts"
		say "fuzz: fuzz_parser for ${FUZZ_SECONDS}s"
		ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
			UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
			"$BUILD/fuzz/tests/fuzz/fuzz_parser" \
			-max_total_time="$FUZZ_SECONDS" -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="$tmp/artifacts/" "$tmp/corpus" \
			>"$LOGS/fuzz.txt" 2>&1 || rc=$?
		tail -n 25 "$LOGS/fuzz.txt"
		if [ "$rc" -ne 0 ]; then
			mkdir -p "$BUILD/fuzz-artifacts"
			for f in "$tmp"/artifacts/*; do
				[ -e "$f" ] || continue
				cp "$f" "$BUILD/fuzz-artifacts/"
				printf 'crash input %s:\n' "build/fuzz-artifacts/${f##*/}"
				od -c "$f" | head -n 20
			done
			fail_step "fuzz: fuzz_parser exit $rc (log build/logs/fuzz.txt)"
		else
			TOTAL_PASS=$((TOTAL_PASS + 1))
		fi
		rm -rf "$tmp"
	fi
	printf '=== phase fuzz: %d passed, %d failed (%ds)\n' \
		$((TOTAL_PASS - pass0)) $((TOTAL_FAIL - fail0)) $((SECONDS - t0))
}

# ---- main ------------------------------------------------------------------

mkdir -p "$LOGS"

case " $CHECK_PHASES " in
*" plain "* | *" asan "*) prepare_servers ;;
esac

for phase in $CHECK_PHASES; do
	case "$phase" in
	format | plain | deb | asan | fuzz) "phase_$phase" ;;
	*)
		echo "check.sh: unknown phase '$phase'" >&2
		exit 2
		;;
	esac
done

check_leaks

say "summary ($((SECONDS - START))s)"
if [ "${#FAILED_STEPS[@]}" -gt 0 ]; then
	printf 'failed: %s\n' "${FAILED_STEPS[@]}"
fi
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" -eq 0 ]
