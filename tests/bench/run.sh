#!/bin/bash
# Build imapfs (build/plain, if needed) and run the benchmark.
#   tests/bench/run.sh [--quick] [--messages N] [--runs N] [-o cache_size=MB]
#   tests/bench/run.sh live [--trials N] [--no-notify]   (live view latency)
#   tests/bench/run.sh idlecost [--minutes M] [--no-notify]  (j: idle cost)
#   tests/bench/run.sh resync [--messages N] [--variants ...] (k: resync bytes)
# The other arguments go to bench.py (or the named script); see
# tests/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -f build/plain/build.ninja ]; then
	meson setup build/plain
fi
ninja -C build/plain
case "${1:-}" in
live | idlecost | resync)
	script=$1
	shift
	exec /usr/bin/python3 "tests/bench/$script.py" \
		--binary build/plain/fs/imapfs "$@"
	;;
esac
exec /usr/bin/python3 tests/bench/bench.py --binary build/plain/fs/imapfs "$@"
