#!/usr/bin/env python3
"""cnetd published-ports benchmark (run by `tools/bench.sh --ports`).

With N published host ports already present (N single-port `Publish` entries spread over
ceil(N/100) endpoints, 100 per endpoint; --per-endpoint changes that), measures:

1. the API round trip of connecting one more endpoint with ONE `-p` next to the same connect
   without `-p` (alternating, so drift hits both alike); their difference is what publishing a port
   costs (a socket held by cnetd plus one element in the nftables map `published`);
2. new TCP connections per second through one published port: an accept-and-close server in the
   endpoint's namespace, a client in a "wan" namespace (198.51.100.2) connecting to the host's
   198.51.100.1:<port> in a tight loop. Only a connection's first packet goes through the nat
   chains (the DNAT map lookup), so this is the rate the map lookup has to keep up with; it must not
   drop as N grows.

The client closes with RST (SO_LINGER 0), so neither side keeps TIME_WAIT sockets and the
client's ephemeral ports are not exhausted during the loop; a connect counts as completed when the
handshake finished. The server counts what it accepted: a connect that reached cnetd's own
port-holding socket instead of the container (i.e. no DNAT) would not be counted there.

Never run the driver against a production daemon: it creates and deletes up to 140 namespaces and
10,000 published ports. bench.sh runs it inside a throwaway net+mount+PID namespace.

Subcommands:
  run --socket S --sizes 1,100,10000 --wan /run/netns/wan --host-addr 198.51.100.1 [--pid P]
  serve PORT          (accept-and-close server; prints "ready", on SIGTERM prints the count)
  client HOST PORT S  (connect loop for S seconds; prints a JSON summary)
"""
import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnetd_bench import Api, pct, timed  # noqa: E402  (the shared HTTP-over-unix-socket client)

PRESENT_BASE = 20000       # host ports of the present mappings: 20000 .. 20000+N-1 (N <= 10,000)
MEASURED_BASE = 31000      # host ports of the measured "one more mapping" connects
CONTROL_PORT = 9999        # a host listener on an unpublished port (the no-DNAT control)
CONTAINER_PORT = 80        # every mapping leads to port 80 of its endpoint
SELF = os.path.abspath(__file__)


# --- helpers run inside other namespaces (via nsenter) -----------------------------------------

def serve(port):
    """Accept and close, counting, until SIGTERM; then print the count."""
    count = 0

    def stop(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(4096)  # capped by net.core.somaxconn (4096); a full queue would drop SYNs (1 s retry)
    print("ready", flush=True)
    try:
        while True:
            c, _ = ls.accept()
            c.close()
            count += 1
    except KeyboardInterrupt:
        pass
    print(count, flush=True)


def client(host, port, seconds):
    """Connect-and-reset in a loop for `seconds`; print completed connects, errors, slow ones."""
    addr = (host, port)
    linger = struct.pack("ii", 1, 0)
    ok = err = slow = 0
    worst = 0.0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        try:
            s.connect(addr)
            ok += 1
        except OSError:
            err += 1
        s.close()
        t = time.perf_counter()
        worst = max(worst, t - now)
        if t - now > 0.5:  # a SYN retransmission (dropped SYN): would show as a rate drop
            slow += 1
        now = t
    print(json.dumps({"connects": ok, "errors": err, "slow": slow, "seconds": now - start,
                      "worst_ms": worst * 1000.0}), flush=True)


# --- the driver ---------------------------------------------------------------------------------

def connect(api, ns, publish=None):
    body = {"Target": ns}
    if publish:
        body["Publish"] = publish
    return api.req("POST", "/v1/networks/bridge/connect", body)


def proc_status(pid):
    if not pid:
        return "-"
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        return f"{fds} fds, {rss / 1024:.0f} MB"
    except OSError:
        return "-"


def throughput(sandbox, server_port, host_port, wan, host_addr, seconds):
    """Client in `wan` -> host_addr:host_port; the server listens on server_port in the netns file
    `sandbox`, or in this (the host's) namespace when sandbox is None."""
    enter = ["nsenter", f"--net={sandbox}"] if sandbox else []
    srv = subprocess.Popen(enter + [sys.executable, SELF, "serve", str(server_port)],
                           stdout=subprocess.PIPE, text=True)
    try:
        if srv.stdout.readline().strip() != "ready":
            raise RuntimeError("server in {} did not start".format(sandbox or "host"))
        out = subprocess.run(["nsenter", f"--net={wan}", sys.executable, SELF, "client", host_addr,
                              str(host_port), str(seconds)],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        res = json.loads(out)
    finally:
        srv.send_signal(signal.SIGTERM)
        accepted, _ = srv.communicate(timeout=10)
    res["accepted"] = int(accepted.strip() or 0)
    return res


def bench(api, n, samples, args):
    prefix = f"p{n}x"
    per = args.per_endpoint
    endpoints = (n + per - 1) // per
    names = [f"{prefix}{i}" for i in range(endpoints)]
    plain = [f"{prefix}n{j}" for j in range(samples)]
    pub = [f"{prefix}p{j}" for j in range(samples)]
    for ns in names + plain + pub:
        api.req("POST", "/v1/netns", {"Name": ns})

    # The N present mappings: endpoint i publishes host ports PRESENT_BASE + i*per .. + per-1.
    t0 = time.perf_counter()
    sandbox0 = None
    for i, ns in enumerate(names):
        ports = range(i * per, min(n, (i + 1) * per))
        ep = connect(api, ns, [f"{PRESENT_BASE + k}:{CONTAINER_PORT}" for k in ports])
        sandbox0 = sandbox0 or ep["SandboxKey"]
    setup = time.perf_counter() - t0
    present = len(api.req("GET", "/v1/ports"))
    if present != n:
        raise RuntimeError(f"expected {n} published ports, GET /v1/ports lists {present}")
    status = proc_status(args.pid)

    # 1. one more endpoint, without and with one published port, alternating. Two untimed rounds
    # first: the first connects after start-up or a teardown are several times slower (cold caches).
    for j in range(2):
        connect(api, plain[j])
        connect(api, pub[j], [f"{MEASURED_BASE + j}:{CONTAINER_PORT}"])
        api.req("POST", "/v1/networks/bridge/disconnect", {"Target": plain[j]})
        api.req("POST", "/v1/networks/bridge/disconnect", {"Target": pub[j]})
    c_plain, c_pub, d_plain, d_pub = [], [], [], []
    for j in range(samples):
        c_plain.append(timed(lambda: connect(api, plain[j])))
        c_pub.append(timed(lambda: connect(api, pub[j], [f"{MEASURED_BASE + j}:{CONTAINER_PORT}"])))
    for j in range(samples):
        d_plain.append(timed(lambda: api.req("POST", "/v1/networks/bridge/disconnect",
                                             {"Target": plain[j]})))
        d_pub.append(timed(lambda: api.req("POST", "/v1/networks/bridge/disconnect",
                                           {"Target": pub[j]})))

    # 2. connections per second through the first present mapping (host port PRESENT_BASE).
    tp = throughput(sandbox0, CONTAINER_PORT, PRESENT_BASE, args.wan, args.host_addr, args.seconds)
    # Control: the same client to a listener of the host itself on an unpublished port. Its SYNs
    # take the same nat_prerouting rule and map lookup (a miss), but no DNAT, bridge or forward:
    # if this rate drops with N like the one above, the map lookup is what costs.
    ctl = throughput(None, CONTROL_PORT, CONTROL_PORT, args.wan, args.host_addr, args.seconds)

    t0 = time.perf_counter()
    for ns in names + plain + pub:
        api.req("DELETE", f"/v1/netns/{ns}")
    teardown = time.perf_counter() - t0
    if api.req("GET", "/v1/ports"):
        raise RuntimeError("published ports left after deleting every namespace")
    print(f"  N={n}: setup {setup:.2f} s, teardown {teardown:.2f} s, cnetd {status}; client {tp}, control {ctl}",
          file=sys.stderr)

    med = statistics.median
    return ("| {:,} | {:.2f} | {:.2f} / {:.2f} | {:.2f} / {:.2f} | {:+.2f} | {:.2f} / {:.2f} "
            "| {:,.0f} | {:,.0f} | {} | {} |").format(
        n, setup, med(c_plain), pct(c_plain, 0.95), med(c_pub), pct(c_pub, 0.95),
        med(c_pub) - med(c_plain), med(d_plain), med(d_pub), tp["connects"] / tp["seconds"],
        ctl["connects"] / ctl["seconds"],
        f"{tp['errors']} err, {tp['slow']} slow, {tp['accepted']:,} accepted", status)


HEADER = """\
| mappings present | setup s | connect p50 / p95 ms (no -p) | connect p50 / p95 ms (one -p) \
| -p cost p50 ms | disconnect p50 ms (no -p / one -p) | TCP connects/s via one port \
| control: connects/s to a host port (no DNAT) | client / server check | cnetd at N |
|---|---|---|---|---|---|---|---|---|---|"""


def run(args):
    api = Api(args.socket)
    print(HEADER, flush=True)
    for n in [int(x) for x in args.sizes.split(",")]:
        if not 1 <= n <= MEASURED_BASE - PRESENT_BASE:
            raise SystemExit(f"size {n}: 1 .. {MEASURED_BASE - PRESENT_BASE}")
        print(bench(api, n, args.samples, args), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--socket", required=True)
    r.add_argument("--sizes", default="1,100,10000")
    r.add_argument("--samples", type=int, default=20)
    r.add_argument("--seconds", type=float, default=3.0)
    r.add_argument("--per-endpoint", type=int, default=100,
                   help="published ports per endpoint for the N present mappings")
    r.add_argument("--wan", required=True, help="netns file of the client (198.51.100.2)")
    r.add_argument("--host-addr", default="198.51.100.1")
    r.add_argument("--pid", type=int, default=0, help="cnetd's pid, for its fd count and RSS")
    s = sub.add_parser("serve")
    s.add_argument("port", type=int)
    c = sub.add_parser("client")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("seconds", type=float)
    a = p.parse_args()
    if a.cmd == "run":
        run(a)
    elif a.cmd == "serve":
        serve(a.port)
    else:
        client(a.host, a.port, a.seconds)


if __name__ == "__main__":
    main()
