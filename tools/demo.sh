#!/usr/bin/env bash
# The cnetd demo: installs what is missing, builds, and shows cnetd's main job inside a throwaway
# network + mount + PID namespace (nothing on this machine's real network is touched):
#   cnetd starts -> docker0 172.17.0.1/16 -> two containers (namespaces) connected -> they talk
#   over TCP -> a published port (-p 8080:80) is reached from an "outside" namespace
#   (198.51.100.0/24, TEST-NET-2) -> precise errors -> cleanup.
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
mkdir -p /run/cnetd /run/docker/netns
ln -sfn /run/docker/netns /run/netns          # so `ip netns` sees the namespaces
state=$(mktemp -d)
ip link set lo up
export PATH=$bin/tools/netctl:$PATH
step() { printf "\n\033[1m== %s\033[0m\n" "$*"; }
show() { printf "\033[2m\$ %s\033[0m\n" "$*"; "$@"; }
# A tiny TCP server/client (python3), standing in for container workloads.
serve() { ip netns exec "$1" python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"0.0.0.0\", $2)); s.listen()
while True:
    c, peer = s.accept(); c.sendall(b\"hello from $1, you are %s\n\" % peer[0].encode()); c.close()
" & }
cat > /run/ask <<PY
#!/usr/bin/env python3
import socket, sys
print(socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).recv(100).decode(), end="")
PY
chmod +x /run/ask; export PATH=/run:$PATH   # `ask HOST PORT`: connect and print the greeting

step "start cnetd (defaults: docker0 172.17.0.1/16, netns dir /var/run/docker/netns)"
touch "$state/cnetd.yaml"   # an empty config: all defaults
$bin/daemon/cnetd --config "$state/cnetd.yaml" --state-dir "$state/state" 2>/run/cnetd.log & cnetd=$!
for i in $(seq 200); do netctl info >/dev/null 2>&1 && break; sleep 0.05; done
show ip -br addr show docker0

step "two containers on the default bridge; b publishes its port 80 as host port 8080"
show netctl netns create a
show netctl netns create b
show netctl network connect bridge a
show netctl network connect bridge b -p 8080:80
show ip netns exec a ip -br addr show eth0
show ip netns exec a ip route
show ip -br link show master docker0
show netctl network ls
show netctl port ls

step "a talks to b over TCP; the host reaches b"
serve b 80; server=$!
sleep 0.5
show ip netns exec a ask 172.17.0.3 80
show ask 172.17.0.3 80

step "the outside world (namespace wan, 198.51.100.2) reaches b through the published port"
netctl netns create wan >/dev/null
ip link add uplink type veth peer name eth0 netns wan
ip addr add 198.51.100.1/24 dev uplink && ip link set uplink up
ip -n wan addr add 198.51.100.2/24 dev eth0 && ip -n wan link set eth0 up
show ip netns exec wan ask 198.51.100.1 8080
echo "   (b saw the real client address; no proxy process was involved: all DNAT, in-kernel)"

step "inspect (Docker shape)"
show netctl network inspect bridge

step "a user-defined network"
show netctl network create web --subnet 10.10.0.0/24
show netctl network connect web a
show ip netns exec a ip -br addr

step "errors are precise and change nothing"
show netctl network create web2 --subnet 10.10.0.0/16 || true
show netctl network connect bridge wan -p 8080:80 || true
show netctl network connect bridge b || true

step "firewall: one private nftables table, no rule per container or port"
show netctl firewall show

step "disconnect and cleanup"
kill $server
show netctl network disconnect web a
show netctl network rm web
show netctl network disconnect bridge b
show netctl netns rm a
show netctl netns rm b
show netctl netns rm wan
show ip -br link
kill -TERM $cnetd; wait $cnetd || true
echo; echo "cnetd log:"; sed "s/^/  /" /run/cnetd.log
echo; echo "demo done: the namespace it ran in is gone with it."
'
