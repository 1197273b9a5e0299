#!/usr/bin/env bash
# cnetd benchmark. Runs entirely inside throwaway `unshare --net --mount --pid` namespaces.
#
# Side by side (default): cnetd, Debian's containernetworking-plugins (bridge + host-local +
# portmap in one conflist, driven through libcni like containerd/CRI-O do), Debian's netavark (the
# CLI with the network JSON on stdin, like podman) and the kernel floor (the same attach with raw
# netlink: tools/bench/floor.cpp), each in its own fresh sandbox on the same kernel, one after the
# other: attach/detach latency p50/p95 with N endpoints present, attach with one published port,
# bring-up and tear-down of N endpoints, nftables rules, concurrent attach with 50 clients, port
# mappings (setup, attach with one more mapping, TCP connections/s through one port with 1, 100 and
# 10,000 mappings) and cnetd's RSS. Driver: tools/bench/compare.py.
#
#   sudo tools/bench.sh --quick              # ~2 min: N = 0, 10, 50; fewer samples
#   sudo tools/bench.sh                      # 8-13 min on 2 cores (idle .. loaded): N = 0, 10,
#       100, 500 for every engine (the anchors' N=500 phase, sequential bring-up and tear-down of
#       500, takes 1.5-5 min each); 1, 100, 10,000 mappings (the anchors stop at 100: 0.1-0.4 s
#       per mapping and growing, 10,000 take 40 min to hours each; see MODES in compare.py)
#   sudo tools/bench.sh --engines cnetd,floor [--quick]   # a subset (cnetd, cni, netavark, floor)
#
# Older cnetd-only sections, appended to the same file:
#   sudo tools/bench.sh --firewall [--quick] # attach with the nftables firewall vs `firewall: none`
#   sudo tools/bench.sh --ports [--quick]    # published ports: ports_bench.py (with a no-DNAT control)
#   sudo tools/bench.sh --dns [--quick]      # embedded DNS: cnetd vs aardvark-dns vs dnsmasq
#       (tools/bench/dns_bench.py: local name with 10 and 1,000 names, forwarded name; 1 client
#       and 50 in flight (dnsperf); CPU per 1,000 queries; RSS). ~1 min with --quick, ~3 min
#       without; --dns-servers cnetd,cnetd-nodns,aardvark,dnsmasq picks a subset (cnetd-nodns:
#       the RSS control, the same endpoints on an enable_dns=false network).
#   sudo tools/bench.sh --overlay [--quick]  # overlay networks (issue 18, docs/overlay.md) on a
#       simulated 3-host cluster with real etcd (tools/bench/overlay_bench.py): iperf3 throughput
#       overlay vs bridge vs underlay, overlay vs bridge attach p50, attach-to-reachable-from-
#       another-host p50/p99, etcd requests per attach, convergence of 20 hosts (10 with --quick).
#       ~1 min with --quick, ~2 min without. Installs iperf3 (bench-only) if missing.
#   sudo tools/bench.sh --startup            # start-up of netctl and cnetd-cni next to a trivial C++
#       program the bench compiles (tools/bench/startup.py: hyperfine wall times and callgrind
#       instruction counts; issue 20's target: within 1.5x). ~1 min. No namespaces needed: nothing
#       here talks to a daemon or the kernel's network.
#   sudo tools/bench.sh --metrics [--quick]  # Prometheus metrics (tools/bench/metrics_bench.py):
#       GET /metrics p50/p99 and size with 1,000 endpoints present (200 with --quick), and attach
#       p50 without a scraper, with 10 scrapes/s and with a scraper in a tight loop. ~2 min.
#   sudo tools/bench.sh --all [--quick]      # side by side, then every section above
#
# Results are printed as markdown tables and written to bench-results.md (BENCH_OUT); per-engine
# raw results (JSON) go to <build>/bench/. The side by side also writes SVG plots next to the table
# (tools/bench/plots.py): bench-results-attach.svg (attach latency vs endpoints present, per
# engine), bench-results-port-mappings.svg (per-mapping cost vs mappings), bench-results-rules.svg
# (rules vs endpoints and vs mappings). BENCH_BUILD picks the meson build dir (default: build).
# BENCH_NO_BUILD=1 skips the ninja step (measures what is already built).
# BENCH_PERF=1 also records a perf profile of cnetd over its run: <build>/bench/cnetd.perf.data
# (`perf report -i <build>/bench/cnetd.perf.data --no-children`).
# Installs what it needs if missing: the project's packages (tools/install-deps.sh) and the
# comparison's: golang-go golang-github-appc-cni-dev containernetworking-plugins netavark iptables,
# python3-matplotlib (the plots);
# for --dns: aardvark-dns dnsperf dnsmasq-base (the compared servers and the load generator); for
# --overlay: iperf3.
# netavark and the CNI plugins write iptables(-nft) rules: only ever inside the sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 compare=1 firewall=0 ports=0 dns=0 overlay=0 startup=0 metrics=0 engines=cnetd,cni,netavark,floor
dns_servers=cnetd,cnetd-nodns,aardvark,dnsmasq
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --ports) compare=0 ports=1 ;;
    --firewall) compare=0 firewall=1 ;;
    --dns) compare=0 dns=1 ;;
    --overlay) compare=0 overlay=1 ;;
    --metrics) compare=0 metrics=1 ;;
    --dns-servers) dns_servers=${2:?--dns-servers needs a list}; shift ;;
    --startup) compare=0 startup=1 ;;
    --all) compare=1 firewall=1 ports=1 dns=1 overlay=1 startup=1 metrics=1 ;;
    --engines) engines=${2:?--engines needs a list}; shift ;;
    *) echo "usage: $0 [--quick] [--engines cnetd,cni,netavark,floor] [--firewall|--ports|--dns|--overlay|--startup|--metrics|--all]" \
         "[--dns-servers cnetd,cnetd-nodns,aardvark,dnsmasq]" >&2
       exit 2 ;;
  esac
  shift
done
tools/install-deps.sh
build=${BENCH_BUILD:-build}
if [[ ! -f $build/build.ninja ]]; then meson setup "$build" >/dev/null; fi
targets=()
if ((firewall || ports || dns || overlay || metrics)) || { ((compare)) && [[ ,$engines, == *,cnetd,* ]]; }; then targets+=(daemon/cnetd); fi
if ((dns)); then targets+=(tools/bench/cnetd-bench-dns-pingpong); fi
if ((overlay || startup)); then targets+=(tools/netctl/netctl); fi
if ((startup)); then targets+=(tools/cnetd-cni/cnetd-cni); fi
if ((compare)) && [[ ,$engines, == *,floor,* ]]; then targets+=(tools/bench/cnetd-bench-floor); fi
# BENCH_NO_BUILD=1: measure the binaries already in the build dir (e.g. while the tree is mid-edit).
if ((${#targets[@]})) && [[ -z ${BENCH_NO_BUILD:-} ]]; then ninja -C "$build" "${targets[@]}" >/dev/null; fi
out=${BENCH_OUT:-bench-results.md}
mode=full
((quick)) && mode=quick
((compare)) || : > "$out"  # the cnetd-only sections append
# The function wan_sandbox, defined in every sandbox for the scripts that need it: descriptors
# for cnetd's held host ports (one socket per port: 10,000 mappings need 10,000+; cnetd raises its
# soft limit to the hard one), and the outside world: namespace "wan" (198.51.100.2) behind this
# "host" (198.51.100.1).
wan_sandbox='
wan_sandbox() {
  if (( $(ulimit -Hn) < 16384 )); then
    ulimit -Hn 16384 || echo "warning: RLIMIT_NOFILE hard limit stays $(ulimit -Hn)" >&2
  fi
  ulimit -Sn "$(ulimit -Hn)"
  ip netns add wan
  ip link add wan0 type veth peer name wan1 netns wan
  ip addr add 198.51.100.1/24 dev wan0
  ip link set wan0 up
  ip -n wan link set lo up
  ip -n wan addr add 198.51.100.2/24 dev wan1
  ip -n wan link set wan1 up
  ip -n wan route add default via 198.51.100.1
}
# start_cnetd BINARY: a cnetd (nftables) on a fresh dir $d (socket $d/s.sock), its pid in $pid;
# stop_cnetd: SIGTERM, then its netns files and dir go.
start_cnetd() {
  d=$(mktemp -d)
  echo "firewall: nftables" > $d/cnetd.yaml
  "$1" --config $d/cnetd.yaml --socket $d/s.sock --state-dir $d/state \
      --netns-dir $d/netns --log-level warning & pid=$!
  for i in $(seq 200); do [[ -S $d/s.sock ]] && break; sleep 0.05; done
}
stop_cnetd() {
  kill -TERM $pid; wait $pid || true
  for f in $d/netns/*; do [[ -e $f ]] && umount -l $f; done
  rm -rf $d
}'
# Every sandbox: its own net+mount+PID namespace, tmpfs /run, lo up, wan_sandbox, start_cnetd and
# stop_cnetd defined.
sandbox() {
  WAN_SANDBOX=$wan_sandbox \
  unshare --net --mount --pid --fork --propagation private --mount-proc -- bash -euo pipefail -c \
    'mount -t tmpfs tmpfs /run; ip link set lo up; eval "$WAN_SANDBOX"; script=$1; shift
     eval "$script"' bash "$@"
}

# The comparison's own packages, installed when missing.
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

if ((compare)); then
  install_missing golang-go golang-github-appc-cni-dev containernetworking-plugins netavark iptables
  bdir=$(realpath "$build")/bench
  mkdir -p "$bdir"
  cni_client=$bdir/cnetd-bench-cni
  # The libcni client: GOPATH mode against Debian's source package, no module proxy, no network.
  if [[ ! -x $cni_client || tools/bench/cniclient/main.go -nt $cni_client ]]; then
    GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOCACHE=$bdir/gocache \
      go build -o "$cni_client" ./tools/bench/cniclient
  fi
  results=()
  for engine in ${engines//,/ }; do
    rm -f "$bdir/$engine.json"
    results+=("$bdir/$engine.json")
    echo "bench: $engine ($mode)" >&2
    sandbox '
      engine=$1 mode=$2 bdir=$3 cni_client=$4 floor=$5 cnetd=$6
      wan_sandbox
      w=/run/bench; mkdir -p $w
      extra=()
      if [[ $engine == cnetd ]]; then
        echo "firewall: nftables" > $w/cnetd.yaml
        # BENCH_WRAP: a debugging wrapper for the daemon, e.g. "gdb -q -batch -ex run -ex bt --args"
        # (the RSS figures then measure the wrapper).
        ${BENCH_WRAP:-} $cnetd --config $w/cnetd.yaml --socket $w/s.sock --state-dir $w/state \
          --netns-dir $w/netns --log-level warning & pid=$!
        for i in $(seq 200); do [[ -S $w/s.sock ]] && break; sleep 0.05; done
        extra=(--socket $w/s.sock --pid $pid)
        if [[ -n ${BENCH_PERF:-} ]]; then  # a call-graph profile of cnetd over the whole run
          perf record -q -F 499 -g -p $pid -o $bdir/cnetd.perf.data 2>/dev/null & perf=$!
        fi
      fi
      rc=0
      python3 tools/bench/compare.py run --engine $engine --mode $mode --out $bdir/$engine.json \
        --work $w --cni-client $cni_client --floor $floor "${extra[@]}" || rc=$?
      if [[ -n ${perf:-} ]]; then kill -INT $perf; wait $perf || true; fi
      if [[ $engine == cnetd ]]; then kill -TERM $pid; wait $pid || true; fi
      exit $rc
    ' "$engine" "$mode" "$bdir" "$cni_client" "$(realpath "$build")/tools/bench/cnetd-bench-floor" \
      "$(realpath "$build")/daemon/cnetd" || echo "bench: $engine failed (see above)" >&2
    # Give the kernel a moment to finish destroying the last sandbox's namespaces (cleanup_net
    # runs asynchronously and would otherwise slow down the next engine).
    sleep 3
  done
  # One table of the engines of this run (`compare.py table <build>/bench/*.json` merges others).
  present=()
  for f in "${results[@]}"; do [[ -f $f ]] && present+=("$f"); done
  if ((${#present[@]})); then
    python3 tools/bench/compare.py table "${present[@]}" --out "$out"
    # The plots next to the table: Debian's python3-matplotlib (bench-only), hence Debian's
    # interpreter (python3 in PATH may be another one without it).
    install_missing python3-matplotlib
    /usr/bin/python3 tools/bench/plots.py "${present[@]}" --prefix "${out%.md}"
  fi
fi

if ((firewall)); then
sizes="1,100,1000"
((quick)) && sizes="1,100"
sandbox '
sizes=$1; out=$2; cnetd=$3
{
echo
echo "## cnetd: nftables firewall vs none ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r))"
echo
echo "| firewall | endpoints present | attach p50 ms | attach p95 ms | detach p50 ms | detach p95 ms | network create p50 ms |"
echo "|---|---|---|---|---|---|---|"
} | tee -a "$out"
for fw in nftables none; do
  d=$(mktemp -d)
  echo "firewall: $fw" > $d/cnetd.yaml
  $cnetd --config $d/cnetd.yaml --socket $d/s.sock --state-dir $d/state \
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
' "$sizes" "$out" "$(realpath "$build")/daemon/cnetd"
fi

if ((ports)); then
sizes="1,100,10000"
((quick)) && sizes="1,100"
sandbox '
sizes=$1; out=$2; cnetd=$3
wan_sandbox
{
echo
echo "## Published ports ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), firewall nftables)"
echo
} | tee -a "$out"
start_cnetd "$cnetd"
rc=0
python3 tools/bench/ports_bench.py run --socket $d/s.sock --sizes "$sizes" --wan /run/netns/wan \
    --host-addr 198.51.100.1 --pid $pid | tee -a "$out" || rc=$?
stop_cnetd
exit $rc
' "$sizes" "$out" "$(realpath "$build")/daemon/cnetd"
fi
if ((dns)); then
  # The compared servers and the load generator: installed for this section only (not CI's).
  install_missing aardvark-dns dnsperf dnsmasq-base
  bdir=$(realpath "$build")/bench
  mkdir -p "$bdir"
  rm -f "$bdir/dns.json"
  sandbox '
    quick=$1 bdir=$2 cnetd=$3 pingpong=$4 servers=$5
    wan_sandbox
    q=(); ((quick)) && q=(--quick)
    python3 tools/bench/dns_bench.py run --work /run/bench-dns --cnetd $cnetd --pingpong $pingpong \
      --servers $servers --out $bdir/dns.json "${q[@]}"
  ' "$quick" "$bdir" "$(realpath "$build")/daemon/cnetd" \
    "$(realpath "$build")/tools/bench/cnetd-bench-dns-pingpong" "$dns_servers" ||
    echo "bench: dns failed (see above)" >&2
  [[ -f $bdir/dns.json ]] && python3 tools/bench/dns_bench.py table "$bdir/dns.json" --out "$out"
fi
if ((overlay)); then
  install_missing iperf3  # bench-only: the throughput of the overlay vs bridge vs underlay
  bdir=$(realpath "$build")/bench
  mkdir -p "$bdir"
  sandbox '
    quick=$1 bdir=$2 cnetd=$3 netctl=$4 out=$5
    q=(); ((quick)) && q=(--quick)
    python3 tools/bench/overlay_bench.py --cnetd $cnetd --netctl $netctl \
      --out $bdir/overlay.json "${q[@]}" | tee -a "$out"
  ' "$quick" "$bdir" "$(realpath "$build")/daemon/cnetd" "$(realpath "$build")/tools/netctl/netctl" \
    "$out" || echo "bench: overlay failed (see above)" >&2
fi
if ((startup)); then
  install_missing hyperfine valgrind  # bench-only: wall times and instruction counts
  {
    echo
    echo "## Start-up: netctl and cnetd-cni vs a trivial C++ program ($(date -u +%FT%TZ), $(nproc) cores, load $(cut -d" " -f1 /proc/loadavg))"
    echo
    python3 tools/bench/startup.py --netctl "$build/tools/netctl/netctl" \
      --cni "$build/tools/cnetd-cni/cnetd-cni" --work "$(realpath "$build")/bench"
  } | tee -a "$out"
fi
if ((metrics)); then
n=1000
((quick)) && n=200
sandbox '
n=$1; out=$2; cnetd=$3; quick=$4
{
echo
echo "## Prometheus metrics ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), firewall nftables)"
echo
echo "GET /metrics on the control socket (a new connection per scrape) with N endpoints present, each"
echo "with one published port; attach p50 without a scraper, with one scraping 10 times a second, and with"
echo "one scraping in a tight loop (stress: on 2 cores the loop and the io thread serving it compete with"
echo "the worker for CPU)."
echo
echo "| endpoints | scrape p50 ms | scrape p99 ms | exposition bytes | attach p50 ms, no scraper | attach p50 ms, 10 scrapes/s | attach p50 ms, scraper looping |"
echo "|---|---|---|---|---|---|---|"
} | tee -a "$out"
start_cnetd "$cnetd"
q=(); ((quick)) && q=(--quick)
rc=0
python3 tools/bench/metrics_bench.py $d/s.sock $n "${q[@]}" | tee -a "$out" || rc=$?
stop_cnetd
exit $rc
' "$n" "$out" "$(realpath "$build")/daemon/cnetd" "$quick" || echo "bench: metrics failed (see above)" >&2
fi
echo "results: $out"
