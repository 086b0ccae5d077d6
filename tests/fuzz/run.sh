#!/bin/sh
# Runs every built fuzzer for SECONDS in all (default 60), each with its
# dictionary (NAME.dict) on a growing corpus: new finds go to
# build/fuzz/corpus/NAME/ (kept between runs), and the seeds in corpus/NAME/
# are read, never written. http1 (the HTTP/1.1 parser and the Conn) gets half
# the time; header, body, archive and domain share the rest, at least 1 s each.
# Builds nothing: first
#   cmake --preset fuzz && cmake --build build/fuzz
# Findings go to build/fuzz/artifacts/NAME-crash-* (and -timeout-, -oom-);
# once fixed, a crash joins tests/fuzz/regressions/NAME/ (see its README).
# Extra arguments go to libFuzzer (e.g. -jobs=2). The exit status is 1 if any
# fuzzer failed, else 0.
#   run.sh --keep    merges the finds, minimised (-merge=1), into the seeds
#                    in corpus/NAME/, to commit: the corpus grows over time
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${ATOLL_FUZZ_BUILD:-$here/../../build/fuzz}
targets="http1 header body archive domain"
if [ "${1:-}" = "--keep" ]; then
  for name in $targets; do
    [ -d "$build/corpus/$name" ] || continue
    before=$(ls "$here/corpus/$name" | wc -l)
    "$build/tests/fuzz/${name}_fuzz" -merge=1 -max_len=65536 "$here/corpus/$name" "$build/corpus/$name" \
      >/dev/null 2>&1 || { echo "run.sh: merging $name failed" >&2; exit 1; }
    echo "$name: $before seeds, now $(ls "$here/corpus/$name" | wc -l)"
  done
  exit 0
fi
seconds=${1:-60}
[ $# -gt 0 ] && shift
for name in $targets; do
  if [ ! -x "$build/tests/fuzz/${name}_fuzz" ]; then
    echo "run.sh: $build/tests/fuzz/${name}_fuzz is not built (cmake --preset fuzz && cmake --build build/fuzz)" >&2
    exit 2
  fi
done
http1_seconds=$(((seconds + 1) / 2))
other_seconds=$(((seconds - http1_seconds) / 4))
[ "$other_seconds" -ge 1 ] || other_seconds=1
mkdir -p "$build/artifacts"
failed=""
for name in $targets; do
  mkdir -p "$build/corpus/$name"
  # -max_len: inputs must fit a Unix socket's buffer (see http1_fuzz.cpp);
  # header values fit the request head; a body holds several multipart parts
  # over body_fuzz's 2 KiB file limit; an archive a few 512-byte tar headers.
  # -timeout: an input that takes seconds hangs (an http1 input always ends in EOF).
  case $name in
    http1) time=$http1_seconds max_len=65536 ;;
    header) time=$other_seconds max_len=8192 ;;
    body) time=$other_seconds max_len=16384 ;;
    archive) time=$other_seconds max_len=32768 ;;
    domain) time=$other_seconds max_len=512 ;;
  esac
  echo "== $name: $time s"
  if ! "$build/tests/fuzz/${name}_fuzz" -max_total_time="$time" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=2048 -dict="$here/$name.dict" -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" \
    "$@" "$build/corpus/$name" "$here/corpus/$name"; then
    failed="$failed $name"
  fi
done
if [ -n "$failed" ]; then
  echo "run.sh: fuzzing failed:$failed" >&2
  exit 1
fi
