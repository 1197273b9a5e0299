#!/usr/bin/env bash
# Runs every libFuzzer target in tests/fuzz for a bounded time each, from the seeds in
# tests/fuzz/corpus/<target>/ (read only; new inputs go to <build>/fuzz-corpus/<target>/, which
# persists between runs, so long runs build on each other).
#
#   tests/fuzz/run.sh            # 25 s per target (tests/run.sh: 20 s each, 10 s in CI)
#   nice tests/fuzz/run.sh 300   # the long mode: 5 minutes per target, ~25 min in all
#   tests/fuzz/run.sh --long     # 1 hour per target
#   FUZZ_TARGETS="fuzz_net" tests/fuzz/run.sh 60
#   tests/fuzz/run.sh --build-only # the build alone (tests/run.sh makes it while the suites run)
#
# The targets run FUZZ_JOBS at a time (default: one per CPU); each is single-threaded.
#
# The seconds in tests/run.sh are a smoke test: they replay the seeds (every past finding is kept
# there as a regression input, see tests/fuzz/corpus/README.md) and rarely find anything new. Run
# the long mode off the critical path (nightly, before a release, after touching a parser).
#
# Builds with clang in build-fuzz (ASan + UBSan + libFuzzer; FUZZ_BUILD overrides the directory).
# Exit status 1 when any target finds a crash, a leak, UB or a timeout; the reproducer is named in
# the output (replay it with `<build>/tests/fuzz/<target> <file>`; keep it as a seed in
# tests/fuzz/corpus/<target>/ with its fix). FUZZ_RESULTS=<file>: one line per target appended,
# "passed fuzz <target>" or "failed fuzz <target>" (tests/run.sh counts them).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

secs=25 build_only=0
case "${1:-}" in
  --long) secs=3600 ;;
  --build-only) build_only=1 ;;
  "") ;;
  *) secs=$1 ;;
esac
build=${FUZZ_BUILD:-build-fuzz}
all_targets="fuzz_api fuzz_config fuzz_ports fuzz_net fuzz_cni fuzz_dns_query fuzz_dns_reply fuzz_resolv_conf fuzz_etcd"
targets=${FUZZ_TARGETS:-$all_targets}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
if [[ ! -f "$build/build.ninja" ]]; then
  # OSS-Fuzz's flags (-O1, line tables only: enough for the sanitizers' stack traces) and a unity
  # build. On a 2-core machine the build took 7.8 min at -O2 -g, file by file; now it takes 2.5 min,
  # because the targets also link only the libraries they test (tests/fuzz/meson.build).
  CXX=clang++ meson setup "$build" -Dfuzz=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Doptimization=1 -Ddebug=false -Dcpp_args=-gline-tables-only \
    -Dunity=on -Dunity_size=8 -Dwerror=true >/dev/null
fi
ninja_targets=()
for t in $targets; do ninja_targets+=("tests/fuzz/$t"); done
ninja -C "$build" "${ninja_targets[@]}" >/dev/null
((build_only)) && exit 0

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# One target for $secs seconds; prints its line and appends its result to FUZZ_RESULTS.
fuzz_one() {  # target
  local t=$1 work="$build/fuzz-corpus/$1" artifacts="$build/fuzz-artifacts/$1/"
  local log="$build/fuzz-artifacts/$1.log" runs cov
  mkdir -p "$work" "$artifacts"
  # -timeout: one input taking > 10 s is a hang; -rss_limit_mb: a blow-up is a finding too.
  if "$build/tests/fuzz/$t" "$work" "tests/fuzz/corpus/$t" -max_total_time="$secs" \
       -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$artifacts" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    echo "fuzz: $t: ok (${secs} s, ${runs:-?} runs, coverage ${cov:-?}, corpus $(ls "$work" | wc -l))"
    [[ -n "${FUZZ_RESULTS:-}" ]] && echo "passed fuzz $t" >>"$FUZZ_RESULTS"
    return 0
  fi
  { echo "fuzz: $t: FAILED — see $log"
    grep -E "ERROR|SUMMARY|Test unit written|runtime error" "$log" | head -20 || true; } >&2
  [[ -n "${FUZZ_RESULTS:-}" ]] && echo "failed fuzz $t" >>"$FUZZ_RESULTS"
  return 1
}

status=0
start=$(date +%s)
jobs_max=${FUZZ_JOBS:-$(nproc)}
running=0
for t in $targets; do
  if ((running >= jobs_max)); then wait -n || status=1; running=$((running - 1)); fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while ((running > 0)); do wait -n || status=1; running=$((running - 1)); done
echo "fuzz: $(echo $targets | wc -w) targets in $(( $(date +%s) - start )) s, status $status"
exit $status
