#!/usr/bin/env bash
# Installs the Debian 12 packages cnetd needs to build and test, if any are missing.
# Sourced or run by tools/demo.sh and tests/run.sh. Needs root (apt-get).
set -euo pipefail

CNETD_PACKAGES=(
  g++ meson ninja-build pkg-config        # toolchain
  libnl-3-dev libnl-route-3-dev           # links, addresses, routes (netlink)
  libmnl-dev libnftnl-dev                 # nftables batches (firewall)
  libboost-dev                            # Asio + Beast: the control socket (header-only)
  libyaml-cpp-dev                         # the config file
  nlohmann-json3-dev                      # API bodies, state file
  libcli11-dev                            # command lines of cnetd and netctl
  libfmt-dev                              # formatting (no <format> in g++ 12)
  libsystemd-dev                          # sd_notify
  libgtest-dev libgmock-dev               # tests
  iproute2 nftables util-linux curl python3  # tests and demo: ip -j, nft -j, unshare, nsenter
  iputils-ping                            # CNI tests: ping the gateway from a netns
  systemd                                 # tests: systemd-analyze verify of the units, tmpfiles
  bash-completion                         # netctl completion: its install dir (pkg-config completionsdir)
  valgrind                                # tests: netctl/cnetd-cni start-up instruction counts (tests/cli startup)
  zsh                                     # tests/cli: netctl's zsh completion
  golang-go golang-github-appc-cni-dev golang-github-containerd-go-cni-dev  # CNI tests: libcni + go-cni clients
  containernetworking-plugins                # CNI tests: loopback and tuning in chains
  clang-14 libclang-rt-14-dev             # tests/fuzz: libFuzzer targets (tests/run.sh runs them)
  podman crun conmon busybox-static       # tests only (tests/cni/podman_test.cpp): real Podman over cnetd-cni
  bind9-dnsutils                          # tests/integration/dns_test.cpp: dig, a real DNS client in containers
  libldns-dev                             # tests: cross-check of the DNS codec (lib/dns) against NLnet Labs' ldns
  libssl-dev                              # etcd over TLS (cluster tls: ca/cert/key): Asio's OpenSSL stream
  etcd-server etcd-client                 # tests: real etcd 3.4 clusters for overlay networks (started in private namespaces)
  graphviz                                # tests: `netctl topology | dot -Tsvg` and --format svg must render (netctl runs dot only for svg)
  prometheus-cpp-dev                      # lib/obs: Prometheus metrics (core registry + text serializer; GET /metrics)
  python3-prometheus-client               # tests/integration/metrics_test.cpp: scrapes parsed by the reference parser
  debhelper dpkg-dev                      # tools/package-test.sh: dpkg-buildpackage + dh (debian/; no fakeroot: Rules-Requires-Root: no)
  lintian                                 # tools/package-test.sh: the packages must be lintian-clean (no E:/W:)
)
# Benchmark-only packages are not listed here: tools/bench.sh installs its own (bench_pkgs there:
# the comparison's engines, and for its DNS section aardvark-dns, dnsperf and dnsmasq-base).

missing=()
for p in "${CNETD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No package may start a service on this machine (podman ships podman.service and
  # podman.socket; the tests start what they need in private namespaces): a policy-rc.d that
  # denies every start, for this install only, unless the machine has one already.
  policy=/usr/sbin/policy-rc.d added_policy=0 rc=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# tools/install-deps.sh: no service starts during this install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
  if ((added_policy)); then rm -f "$policy"; fi
  if ((rc)); then
    echo "install-deps: apt-get failed (exit $rc)" >&2
    exit "$rc"
  fi
fi
