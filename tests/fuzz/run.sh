#!/bin/sh
# Runs every built fuzzer for SECONDS in all (default 60), each on a copy of
# its seed corpus (corpus/NAME/) with its dictionary (NAME.dict), so the
# repository is never modified.
# http1 (the HTTP/1.1 parser and the Conn) gets half the time; header, body
# and archive share the rest, at least 1 s each. Builds nothing: first
#   cmake --preset fuzz && cmake --build build/fuzz
# Extra arguments go to libFuzzer (e.g. -jobs=2). Findings are written to the
# current directory as NAME-crash-*, NAME-timeout-*; the exit status is 1 if
# any fuzzer failed, else 0.
set -eu
seconds=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
build=${ATOLL_FUZZ_BUILD:-$here/../../build/fuzz}
targets="http1 header body archive"
for name in $targets; do
  if [ ! -x "$build/tests/fuzz/${name}_fuzz" ]; then
    echo "run.sh: $build/tests/fuzz/${name}_fuzz is not built (cmake --preset fuzz && cmake --build build/fuzz)" >&2
    exit 2
  fi
done
http1_seconds=$(((seconds + 1) / 2))
other_seconds=$(((seconds - http1_seconds) / 3))
[ "$other_seconds" -ge 1 ] || other_seconds=1
work=$(mktemp -d "${TMPDIR:-/tmp}/atoll-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=""
for name in $targets; do
  mkdir "$work/$name"
  cp "$here/corpus/$name"/* "$work/$name"/
  # -max_len: inputs must fit a Unix socket's buffer (see http1_fuzz.cpp);
  # header values fit the request head; a body holds several multipart parts
  # over body_fuzz's 2 KiB file limit; an archive a few 512-byte tar headers.
  # -timeout: an input that takes seconds hangs (an http1 input always ends in EOF).
  case $name in
    http1) time=$http1_seconds max_len=65536 ;;
    header) time=$other_seconds max_len=8192 ;;
    body) time=$other_seconds max_len=16384 ;;
    archive) time=$other_seconds max_len=32768 ;;
  esac
  echo "== $name: $time s"
  if ! "$build/tests/fuzz/${name}_fuzz" -max_total_time="$time" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -dict="$here/$name.dict" -print_final_stats=1 -artifact_prefix="$name-" \
    "$@" "$work/$name"; then
    failed="$failed $name"
  fi
done
if [ -n "$failed" ]; then
  echo "run.sh: fuzzing failed:$failed" >&2
  exit 1
fi
