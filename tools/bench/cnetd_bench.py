#!/usr/bin/env python3
"""cnetd benchmark driver: talks HTTP/1.1 to cnetd's unix socket and times requests.

Run by tools/bench.sh inside a throwaway network+mount+PID namespace; never run it against a
production daemon (it creates and deletes hundreds of namespaces and networks).
"""
import json
import socket
import statistics
import sys
import time


class Api:
    def __init__(self, path):
        self.path = path

    def req(self, method, target, body=None):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        data = json.dumps(body).encode() if body is not None else b""
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: cnetd\r\nContent-Length: {len(data)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        head, _, payload = out.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status >= 300:
            raise RuntimeError(f"{method} {target}: {status} {payload.decode(errors='replace')}")
        return json.loads(payload) if payload else None


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p * len(v))) - 1))]


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def bench_attach(api, ns_prefix, present, samples):
    """Attach/detach latency with `present` endpoints already on docker0."""
    for i in range(present + samples):
        api.req("POST", "/v1/netns", {"Name": f"{ns_prefix}{i}"})
    for i in range(present):
        api.req("POST", "/v1/networks/bridge/connect", {"Target": f"{ns_prefix}{i}"})
    att, det = [], []
    for i in range(present, present + samples):
        att.append(timed(lambda: api.req("POST", "/v1/networks/bridge/connect",
                                         {"Target": f"{ns_prefix}{i}"})))
    for i in range(present, present + samples):
        det.append(timed(lambda: api.req("POST", "/v1/networks/bridge/disconnect",
                                         {"Target": f"{ns_prefix}{i}"})))
    t0 = time.perf_counter()
    for i in range(present + samples):
        api.req("DELETE", f"/v1/netns/{ns_prefix}{i}")
    teardown = time.perf_counter() - t0
    return att, det, teardown


def bench_networks(api, present, samples):
    """Network create latency (bridge + firewall elements) with `present` networks existing."""
    for i in range(present):
        api.req("POST", "/v1/networks", {"Name": f"p{i}", "Subnet": f"10.{100 + i // 256}.{i % 256}.0/24"})
    times = []
    for j in range(samples):
        times.append(timed(lambda: api.req("POST", "/v1/networks",
                                           {"Name": f"s{j}", "Subnet": f"10.90.{j}.0/24"})))
    for j in range(samples):
        api.req("DELETE", f"/v1/networks/s{j}")
    for i in range(present):
        api.req("DELETE", f"/v1/networks/p{i}")
    return times


def main():
    sock, firewall, sizes = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
    samples = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    api = Api(sock)
    rows = []
    for n in sizes:
        att, det, _ = bench_attach(api, f"b{n}x", n, samples)
        nets = bench_networks(api, min(n, 200), 10)
        rows.append((firewall, n, statistics.median(att), pct(att, 0.95), statistics.median(det),
                     pct(det, 0.95), statistics.median(nets), min(n, 200)))
    for r in rows:
        print("| {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} (with {} networks) |".format(*r))


if __name__ == "__main__":
    main()
