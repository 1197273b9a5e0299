#!/usr/bin/env bash
# cnetd benchmark. Runs entirely inside throwaway `unshare --net --mount --pid` namespaces.
#
# Attach section (default): attach/detach latency (p50/p95) with N endpoints already on docker0,
# and network create latency, with the nftables firewall and with `firewall: none` side by side —
# the difference is what the firewall costs per attach (cnetd adds no rule and no element per
# endpoint).
#
# Ports section (--ports): with N published host ports present, the latency of connecting one more
# endpoint with one `-p` next to the same connect without it, and new TCP connections per second
# from a "wan" namespace (198.51.100.2) through one published port of the host (198.51.100.1) —
# the DNAT map lookup must not slow down as N grows (tools/bench/ports_bench.py).
#
#   sudo tools/bench.sh                    # attach: N = 1, 100, 1000 endpoints
#   sudo tools/bench.sh --quick            # attach: N = 1, 100
#   sudo tools/bench.sh --ports            # ports:  N = 1, 100, 10000 mappings
#   sudo tools/bench.sh --ports --quick    # ports:  N = 1, 100
#   sudo tools/bench.sh --all [--quick]    # both sections, one after the other
#
# Results are printed as markdown tables and written to bench-results.md (BENCH_OUT): the attach
# section starts the file, the ports section appends to it (so --all leaves both).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 attach=1 ports=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --ports) attach=0 ports=1 ;;
    --all) attach=1 ports=1 ;;
    *) echo "usage: $0 [--quick] [--ports|--all]" >&2; exit 2 ;;
  esac
done
tools/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build >/dev/null; fi
ninja -C build daemon/cnetd >/dev/null
out=${BENCH_OUT:-bench-results.md}

if ((attach)); then
sizes="1,100,1000"
((quick)) && sizes="1,100"
unshare --net --mount --pid --fork --propagation private --mount-proc -- bash -euo pipefail -c '
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
' bash "$sizes" "$out"
fi

if ((ports)); then
sizes="1,100,10000"
((quick)) && sizes="1,100"
unshare --net --mount --pid --fork --propagation private --mount-proc -- bash -euo pipefail -c '
sizes=$1; out=$2
mount -t tmpfs tmpfs /run
ip link set lo up
# cnetd holds one socket per published host port: 10,000 mappings need 10,000+ descriptors. cnetd
# raises its soft limit to the hard limit; make sure the hard limit is high enough (as root).
if (( $(ulimit -Hn) < 16384 )); then ulimit -Hn 16384 || echo "warning: RLIMIT_NOFILE hard limit stays $(ulimit -Hn)" >&2; fi
ulimit -Sn "$(ulimit -Hn)"
# The outside world: namespace "wan" (198.51.100.2) behind this "host" (198.51.100.1).
ip netns add wan
ip link add wan0 type veth peer name wan1 netns wan
ip addr add 198.51.100.1/24 dev wan0
ip link set wan0 up
ip -n wan link set lo up
ip -n wan addr add 198.51.100.2/24 dev wan1
ip -n wan link set wan1 up
ip -n wan route add default via 198.51.100.1
{
echo
echo "## Published ports ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), firewall nftables)"
echo
} | tee -a "$out"
d=$(mktemp -d)
echo "firewall: nftables" > $d/cnetd.yaml
build/daemon/cnetd --config $d/cnetd.yaml --socket $d/s.sock --state-dir $d/state \
    --netns-dir $d/netns --log-level warning & pid=$!
for i in $(seq 200); do [[ -S $d/s.sock ]] && break; sleep 0.05; done
rc=0
python3 tools/bench/ports_bench.py run --socket $d/s.sock --sizes "$sizes" --wan /run/netns/wan \
    --host-addr 198.51.100.1 --pid $pid | tee -a "$out" || rc=$?
kill -TERM $pid; wait $pid || true
for f in $d/netns/*; do [[ -e $f ]] && umount -l $f; done
rm -rf $d
exit $rc
' bash "$sizes" "$out"
fi
echo "results: $out"
