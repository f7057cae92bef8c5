#!/bin/bash
# Build imapfs (build/plain, if needed) and run the benchmark.
#   tests/bench/run.sh [--quick] [--messages N] [--runs N] [-o cache_size=MB]
# All arguments go to bench.py; see tests/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -f build/plain/build.ninja ]; then
	meson setup build/plain
fi
ninja -C build/plain
exec /usr/bin/python3 tests/bench/bench.py --binary build/plain/fs/imapfs "$@"
