#!/usr/bin/env bash
# cnetd benchmark: attach/detach latency (p50/p95) with N endpoints already on docker0, and network
# create latency, with the nftables firewall and with `firewall: none` side by side — the difference
# is what the firewall costs per attach (cnetd adds no rule and no element per endpoint).
# Runs entirely inside a throwaway `unshare --net --mount --pid` namespace.
#
#   sudo tools/bench.sh            # N = 1, 100, 1000
#   sudo tools/bench.sh --quick    # N = 1, 100
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build >/dev/null; fi
ninja -C build daemon/cnetd >/dev/null
sizes="1,100,1000"
[[ "${1:-}" == "--quick" ]] && sizes="1,100"
out=${BENCH_OUT:-bench-results.md}

exec unshare --net --mount --pid --fork --propagation private --mount-proc -- bash -euo pipefail -c '
sizes=$1; out=$2
mount -t tmpfs tmpfs /run
ip link set lo up
{
echo "# cnetd benchmark ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r))"
echo
echo "| firewall | endpoints present | attach p50 ms | attach p95 ms | detach p50 ms | detach p95 ms | network create p50 ms |"
echo "|---|---|---|---|---|---|---|"
} | tee "$out"
for fw in nftables none; do
  d=$(mktemp -d)
  echo "firewall: $fw" > $d/cnetd.yaml
  build/daemon/cnetd --config $d/cnetd.yaml --socket $d/s.sock --state-dir $d/state \
      --netns-dir $d/netns --log-level warning & pid=$!
  for i in $(seq 200); do [[ -S $d/s.sock ]] && break; sleep 0.05; done
  python3 tools/bench/cnetd_bench.py $d/s.sock $fw $sizes | tee -a "$out"
  echo "  (cnetd RSS after the $fw run: $(awk "/VmRSS/{print \$2\" kB\"}" /proc/$pid/status))" >&2
  kill -TERM $pid; wait $pid || true
  for f in $d/netns/*; do [[ -e $f ]] && umount -l $f; done
  rm -rf $d
  nft delete table inet cnetd 2>/dev/null || true
  ip -o link show | awk -F": " "{print \$2}" | cut -d@ -f1 | grep -E "^(veth|br-|docker0)" | xargs -r -n1 ip link del 2>/dev/null || true
done
echo "results: $out"
' bash "$sizes" "$out"
