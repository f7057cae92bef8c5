#!/bin/bash
# Build imapfs (build/plain, if needed) and run the benchmark.
#   tests/bench/run.sh [--quick] [--messages N] [--runs N] [-o cache_size=MB]
#   tests/bench/run.sh live [--trials N] [--no-notify]   (live view latency)
# All arguments go to bench.py; see tests/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -f build/plain/build.ninja ]; then
	meson setup build/plain
fi
ninja -C build/plain
if [ "${1:-}" = live ]; then
	shift
	exec /usr/bin/python3 tests/bench/live.py --binary build/plain/fs/imapfs "$@"
fi
exec /usr/bin/python3 tests/bench/bench.py --binary build/plain/fs/imapfs "$@"
