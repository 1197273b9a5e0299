#!/usr/bin/env bash
# The cnetd demo: installs what is missing, builds, and shows cnetd's main job inside a throwaway
# network + mount + PID namespace (nothing on this machine's real network is touched):
#   cnetd starts -> docker0 172.17.0.1/16 -> two namespaces connected -> they talk over TCP ->
#   the host reaches both -> a user network -> disconnect and cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build >/dev/null; fi
ninja -C build daemon/cnetd tools/netctl/netctl >/dev/null
echo "built: build/daemon/cnetd, build/tools/netctl/netctl"

if [[ $(id -u) -ne 0 ]]; then echo "demo: run as root (it creates namespaces)" >&2; exit 1; fi

exec unshare --net --mount --pid --fork --propagation private --mount-proc -- bash -euo pipefail -c '
bin=$PWD/build
mount -t tmpfs tmpfs /run                     # private /run: the socket and netns dir live here
mkdir -p /run/cnetd /var/run/docker/netns
ln -s /var/run/docker/netns /run/netns        # so `ip netns` sees the namespaces
state=$(mktemp -d)
ip link set lo up
step() { printf "\n\033[1m== %s\033[0m\n" "$*"; }
show() { printf "\033[2m\$ %s\033[0m\n" "$*"; "$@"; }

step "start cnetd (defaults: docker0, 172.17.0.1/16, netns dir /var/run/docker/netns)"
touch "$state/cnetd.yaml"   # an empty config: all defaults
$bin/daemon/cnetd --state-dir "$state/state" --config "$state/cnetd.yaml" 2>/run/cnetd.log & cnetd=$!
for i in $(seq 100); do $bin/tools/netctl/netctl info >/dev/null 2>&1 && break; sleep 0.05; done
show ip -br addr show docker0
export PATH=$bin/tools/netctl:$PATH

step "two containers (network namespaces) on the default bridge"
show netctl netns create a
show netctl netns create b
show netctl network connect bridge a
show netctl network connect bridge b
show ip netns exec a ip -br addr show eth0
show ip netns exec a ip route
show ip -br link show master docker0
show netctl network ls

step "a and b talk over TCP; the host reaches both"
ip netns exec b python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"0.0.0.0\", 8080)); s.listen()
while True:
    c, peer = s.accept(); c.sendall(b\"hello from b to %s\n\" % peer[0].encode()); c.close()
" & server=$!
sleep 0.5
show ip netns exec a python3 -c "import socket; print(socket.create_connection((\"172.17.0.3\", 8080), 2).recv(100).decode(), end=\"\")"
show python3 -c "import socket; print(socket.create_connection((\"172.17.0.3\", 8080), 2).recv(100).decode(), end=\"\")"
kill $server

step "inspect (Docker shape)"
show netctl network inspect bridge

step "a user-defined network"
show netctl network create web --subnet 10.10.0.0/24
show netctl network connect web a
show ip netns exec a ip -br addr

step "errors are precise and change nothing"
show netctl network create web2 --subnet 10.10.0.0/16 || true
show netctl network connect bridge b || true

step "disconnect and cleanup"
show netctl network disconnect web a
show netctl network rm web
show netctl netns rm a
show netctl netns rm b
show ip -br link
kill -TERM $cnetd; wait $cnetd || true
echo "cnetd log:"; sed "s/^/  /" /run/cnetd.log
echo; echo "demo done: the namespace it ran in is gone with it."
'
