#!/bin/sh
# Runs the built HTTP/1.1 fuzzer for SECONDS (default 60) on a copy of the
# seed corpus, so the repository is never modified. Builds nothing: first
#   cmake --preset fuzz && cmake --build build/fuzz
# Extra arguments go to libFuzzer (e.g. -jobs=2). Findings (crash-*, timeout-*)
# are written to the current directory; the exit status is libFuzzer's.
set -eu
seconds=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
build=${ATOLL_FUZZ_BUILD:-$here/../../build/fuzz}
fuzzer=$build/tests/fuzz/http1_fuzz
if [ ! -x "$fuzzer" ]; then
  echo "run.sh: $fuzzer is not built (cmake --preset fuzz && cmake --build build/fuzz)" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/http1-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here"/corpus/http1/* "$work"/
# -max_len: inputs must fit a Unix socket's buffer (see http1_fuzz.cpp).
# -timeout: every input ends in EOF, so a connection that takes seconds hangs.
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -dict="$here/http1.dict" -print_final_stats=1 "$@" "$work"
