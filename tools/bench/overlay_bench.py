#!/usr/bin/env python3
"""Overlay networks (issue 18, docs/overlay.md) on a simulated cluster: tools/bench.sh --overlay.

Run by tools/bench.sh inside a throwaway `unshare --net --mount --pid` sandbox (never elsewhere: it
creates namespaces, bridges and etcd members). The cluster is the test suite's
(tests/integration/cluster.hpp) rebuilt in Python: hosts are net+mount namespaces held by a
sleeping process, on an underlay bridge ul0 (192.0.2.1/24; host i = 192.0.2.(10+i)), each with an
etcd 3.4 member (data on the host's own tmpfs /run) and one cnetd.

Measures:
- TCP throughput (iperf3, one stream): over the overlay (host 1 -> host 2), between two containers
  on one bridge network of host 1, and host 1 -> host 2 on the underlay directly;
- attach latency p50/p95 through the API: overlay vs bridge network on host 1, with the resolver
  and without (enable_dns=false), the four networks taken in turn;
- time from an attach on host 1 until a container on host 2 connects to the new container (TCP):
  p50/p99;
- etcd requests and puts per attach (sum over the members of grpc_server_handled_total and
  etcd_debugging_mvcc_put_total from /metrics, minus an idle interval of the same length), on a
  network with names (DNS) and one without (enable_dns=false);
- convergence: 19 hosts up on one etcd member, the 20th host started: time until every host has
  19 peers (routes through the network's VXLAN device).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnetd_bench import Api, pct  # noqa: E402  (the shared HTTP-over-unix-socket client)

SUBNET = "10.200.0.0/16"


def sh(*argv, check=True, **kw):
    r = subprocess.run(list(argv), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def addr(i):
    return f"192.0.2.{10 + i}"


class Host:
    """A simulated host: a holder process with its own net + mount namespace (tmpfs /run, sysfs),
    a veth to ul0, optionally an etcd member, one cnetd."""

    def __init__(self, i, work):
        self.i, self.name, self.addr = i, f"h{i}", addr(i)
        self.dir = os.path.join(work, self.name)
        os.makedirs(self.dir)
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
             "mount -t tmpfs tmpfs /run && umount -l /sys && mount -t sysfs sysfs /sys && "
             "ip link set lo up && echo ready && exec sleep infinity"],
            stdout=subprocess.PIPE, text=True)
        if self.holder.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{self.name}: the holder did not start")
        pid = str(self.holder.pid)
        sh("ip", "link", "add", f"ulh{i}", "type", "veth", "peer", "name", "eth0", "netns", pid)
        sh("ip", "link", "set", f"ulh{i}", "master", "ul0", "up")
        sh("nsenter", "-t", pid, "--net", "sh", "-c",
           f"ip addr add {self.addr}/24 dev eth0 && ip link set eth0 up && "
           "ip route add default via 192.0.2.1")
        self.etcd = self.cnetd = None
        self.api = Api(self.sock)

    @property
    def sock(self):
        return os.path.join(self.dir, "cnetd.sock")

    def enter(self):
        return ["nsenter", "-t", str(self.holder.pid), "--net", "--mount", "--"]

    def netns(self, name):
        """A container's netns file as seen from the sandbox (inside the host's mount ns)."""
        return f"/proc/{self.holder.pid}/root{self.dir}/netns/{name}"

    def in_ns(self, name, argv, **kw):
        return subprocess.Popen(["nsenter", f"--net={self.netns(name)}", "--"] + argv, **kw)

    def start_etcd(self, initial_cluster):
        a = self.addr
        log = open(os.path.join(self.dir, "etcd.log"), "a")
        self.etcd = subprocess.Popen(self.enter() + [
            "etcd", f"--name={self.name}", f"--data-dir=/run/etcd-{self.name}",
            f"--listen-client-urls=http://{a}:2379", f"--advertise-client-urls=http://{a}:2379",
            f"--listen-peer-urls=http://{a}:2380", f"--initial-advertise-peer-urls=http://{a}:2380",
            f"--initial-cluster={initial_cluster}", "--initial-cluster-state=new",
            "--initial-cluster-token=cnetd-bench", "--logger=zap", "--log-level=warn"],
            stdout=log, stderr=log)

    def start_cnetd(self, cnetd, endpoints):
        cfg = os.path.join(self.dir, "cnetd.yaml")
        with open(cfg, "w") as f:
            f.write("firewall: nftables\ncluster:\n"
                    f"  etcd: [{', '.join(endpoints)}]\n  node-name: {self.name}\n"
                    f"  advertise-address: {self.addr}\n")
        log = open(os.path.join(self.dir, "cnetd.log"), "a")
        self.cnetd = subprocess.Popen(self.enter() + [
            cnetd, "--config", cfg, "--socket", self.sock, "--state-dir", f"{self.dir}/state",
            "--netns-dir", f"{self.dir}/netns", "--log-level", "warning"], stdout=log, stderr=log)
        for _ in range(200):
            if self.cnetd.poll() is not None:
                raise RuntimeError(f"{self.name}: cnetd exited: {self.log()}")
            if os.path.exists(self.sock):
                try:
                    self.api.req("GET", "/v1/info")
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: cnetd did not answer within 10 s")

    def log(self):
        with open(os.path.join(self.dir, "cnetd.log")) as f:
            return f.read()[-2000:]

    def vx_routes(self, device):
        out = sh("nsenter", "-t", str(self.holder.pid), "--net", "ip", "-j", "route", "show",
                 "dev", device, check=False)
        return sum(1 for r in json.loads(out or "[]") if "gateway" in r)

    def stop(self):
        for p in (self.cnetd, self.etcd, self.holder):
            if p and p.poll() is None:
                p.kill()
                p.wait()


class Cluster:
    def __init__(self, n, members, args):
        self.args, self.work = args, tempfile.mkdtemp(prefix="cnetd-ovbench-")
        self.hosts = []
        sh("ip", "link", "add", "ul0", "type", "bridge")
        sh("ip", "addr", "add", "192.0.2.1/24", "dev", "ul0")
        sh("ip", "link", "set", "ul0", "up")
        for i in range(1, n + 1):
            self.hosts.append(Host(i, self.work))
        ic = ",".join(f"h{i}=http://{addr(i)}:2380" for i in range(1, members + 1))
        self.endpoints = [f"http://{addr(i)}:2379" for i in range(1, members + 1)]
        for h in self.hosts[:members]:
            h.start_etcd(ic)
        for e in self.endpoints:
            for _ in range(100):
                r = subprocess.run(["curl", "-s", "-m", "1", e + "/health"], capture_output=True,
                                   text=True)
                if '"health":"true"' in r.stdout:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"etcd {e} not healthy")

    def host(self, i):
        return self.hosts[i - 1]

    def netctl(self, i, *args):
        return sh(self.args.netctl, "--socket", self.host(i).sock, *args)

    def etcd_counters(self):
        """(gRPC requests handled, summed over the members: a client talks to any of them;
        mvcc puts of the first member: every member applies every put)."""
        reqs = puts = 0
        for k, e in enumerate(self.endpoints):
            m = sh("curl", "-s", "-m", "2", e + "/metrics")
            for line in m.splitlines():
                if line.startswith("grpc_server_handled_total{"):
                    reqs += float(line.rsplit(" ", 1)[1])
                elif k == 0 and line.startswith("etcd_debugging_mvcc_put_total"):
                    puts += float(line.rsplit(" ", 1)[1])
        return reqs, puts

    def close(self):
        for h in reversed(self.hosts):
            h.stop()
        sh("ip", "link", "del", "ul0", check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def device_of(c, i, network):
    n = json.loads(c.netctl(i, "network", "inspect", network, "--json"))
    return n[0]["Overlay"]["Device"]


def wait_peers(c, hosts, network, n, timeout):
    devs = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = True
        for h in hosts:
            if h.i not in devs:
                try:
                    devs[h.i] = device_of(c, h.i, network)
                except (RuntimeError, KeyError, IndexError, ValueError):
                    done = False
                    continue
            if h.vx_routes(devs[h.i]) != n:
                done = False
        if done:
            return True
        time.sleep(0.1)
    return False


def create_overlay(c, name, subnet=SUBNET, extra=()):
    c.netctl(1, "network", "create", "--driver", "overlay", "--subnet", subnet, *extra, name)
    if not wait_peers(c, c.hosts, name, len(c.hosts) - 1, 30):
        raise RuntimeError(f"overlay {name}: the hosts did not converge within 30 s")


def container(h, name, network):
    h.api.req("POST", "/v1/netns", {"Name": name})
    return h.api.req("POST", f"/v1/networks/{network}/connect", {"Target": name})


def address_of(h, network, name):
    n = h.api.req("GET", f"/v1/networks/{network}")
    for ep in n["Containers"].values():
        if ep["Name"] == name:
            return ep["IPv4Address"].split("/")[0]
    raise RuntimeError(f"{name} not on {network}")


def iperf(server_cmd, client_cmd, seconds):
    """Mbit/s received, one TCP stream."""
    srv = server_cmd(["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        out = client_cmd(["iperf3", "-J", "-t", str(seconds), "-p", "5201"])
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        srv.kill()
        srv.wait()


def bench_throughput(c, seconds):
    h1, h2 = c.host(1), c.host(2)
    res = {}
    b_ip = address_of(h2, "mesh", "tb")
    res["overlay"] = iperf(lambda a, **kw: h2.in_ns("tb", a, **kw),
                           lambda a: sh("nsenter", f"--net={h1.netns('ta')}", *a, "-c", b_ip),
                           seconds)
    y_ip = address_of(h1, "lan", "ly")
    res["bridge"] = iperf(lambda a, **kw: h1.in_ns("ly", a, **kw),
                          lambda a: sh("nsenter", f"--net={h1.netns('lx')}", *a, "-c", y_ip),
                          seconds)
    res["underlay"] = iperf(
        lambda a, **kw: subprocess.Popen(["nsenter", "-t", str(h2.holder.pid), "--net"] + a, **kw),
        lambda a: sh("nsenter", "-t", str(h1.holder.pid), "--net", *a, "-c", h2.addr), seconds)
    return res


def bench_attach(c, network, samples, prefix):
    return bench_attach_each(c, {network: prefix}, samples)[network]


def bench_attach_each(c, prefixes, samples):
    """Attach latency (ms) on host 1 per network, the networks taken in turn at every sample (so
    no network gets the quieter or the busier part of the run)."""
    h = c.host(1)
    times = {network: [] for network in prefixes}
    for k in range(samples):
        for network, prefix in prefixes.items():
            name = f"{prefix}{k}"
            h.api.req("POST", "/v1/netns", {"Name": name})
            t = time.perf_counter()
            h.api.req("POST", f"/v1/networks/{network}/connect", {"Target": name})
            times[network].append((time.perf_counter() - t) * 1000)
    return times


PROBER = r"""
import socket, sys, time
for line in sys.stdin:
    ip = line.strip()
    while True:
        s = socket.socket()
        s.settimeout(0.05)
        try:
            s.connect((ip, 7000))
            break
        except OSError:
            time.sleep(0.002)
        finally:
            s.close()
    print(time.monotonic(), flush=True)
"""


def bench_reach(c, samples, network="mesh", prober_host=2):
    """Attach on host 1 -> a container on `prober_host` completes a TCP connect to it (ms)."""
    h1, h2 = c.host(1), c.host(prober_host)
    container(h2, "probe", network)
    prober = h2.in_ns("probe", [sys.executable, "-c", PROBER], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True)
    times = []
    try:
        for k in range(samples):
            name = f"r{k}"
            h1.api.req("POST", "/v1/netns", {"Name": name})
            listener = h1.in_ns(name, [sys.executable, "-c",
                                       "import socket,time;s=socket.socket();"
                                       "s.bind(('0.0.0.0',7000));s.listen();print(1,flush=True);"
                                       "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
            listener.stdout.readline()
            t0 = time.monotonic()
            h1.api.req("POST", f"/v1/networks/{network}/connect", {"Target": name})
            prober.stdin.write(address_of(h1, network, name) + "\n")
            prober.stdin.flush()
            times.append((float(prober.stdout.readline()) - t0) * 1000)
            listener.kill()
            listener.wait()
    finally:
        prober.kill()
        prober.wait()
    return times


def bench_etcd(c, network, samples, prefix):
    """etcd requests and puts per attach on `network` (host 1), minus the idle rate."""
    r0, p0 = c.etcd_counters()
    t = time.monotonic()
    bench_attach(c, network, samples, prefix)
    time.sleep(2)  # the asynchronous publications
    span = time.monotonic() - t
    r1, p1 = c.etcd_counters()
    time.sleep(span)
    r2, p2 = c.etcd_counters()
    return ((r1 - r0) - (r2 - r1)) / samples, ((p1 - p0) - (p2 - p1)) / samples


def bench_convergence(args, n):
    c = Cluster(n, 1, args)
    try:
        for h in c.hosts[:-1]:
            h.start_cnetd(args.cnetd, c.endpoints)
        c.netctl(1, "network", "create", "--driver", "overlay", "--subnet", SUBNET, "mesh")
        if not wait_peers(c, c.hosts[:-1], "mesh", n - 2, 60):
            raise RuntimeError(f"{n - 1} hosts did not converge")
        t = time.monotonic()
        c.hosts[-1].start_cnetd(args.cnetd, c.endpoints)
        ok = wait_peers(c, c.hosts, "mesh", n - 1, 60)
        return time.monotonic() - t if ok else None
    finally:
        c.close()


def run(args):
    samples = 10 if args.quick else 30
    seconds = 2 if args.quick else 5
    res = {"mode": "quick" if args.quick else "full"}
    c = Cluster(3, 3, args)
    try:
        for h in c.hosts:
            h.start_cnetd(args.cnetd, c.endpoints)
        c.netctl(1, "network", "create", "--subnet", "10.90.0.0/24", "lan")
        c.netctl(1, "network", "create", "--subnet", "10.91.0.0/24", "-o",
                 "com.docker.network.enable_dns=false", "lanq")
        create_overlay(c, "mesh")
        create_overlay(c, "quiet", "10.201.0.0/16", ["-o", "com.docker.network.enable_dns=false"])
        container(c.host(1), "lx", "lan")
        container(c.host(1), "ly", "lan")
        container(c.host(1), "ta", "mesh")
        container(c.host(2), "tb", "mesh")
        res["throughput_mbit"] = bench_throughput(c, seconds)
        each = bench_attach_each(c, {"lan": "ab", "mesh": "ao", "lanq": "abq", "quiet": "aq"},
                                 samples)
        res["attach_ms"] = {"bridge": each["lan"], "overlay": each["mesh"],
                            "bridge_ip": each["lanq"], "overlay_ip": each["quiet"]}
        res["reach_ms"] = bench_reach(c, samples)
        res["etcd_per_attach"] = {"names": bench_etcd(c, "mesh", samples, "en"),
                                  "ip_only": bench_etcd(c, "quiet", samples, "eq")}
    finally:
        c.close()
    res["convergence_hosts"] = 10 if args.quick else 20
    res["convergence_s"] = bench_convergence(args, res["convergence_hosts"])
    return res


def table(res):
    a, r, t = res["attach_ms"], res["reach_ms"], res["throughput_mbit"]
    ob, bb = statistics.median(a["overlay"]), statistics.median(a["bridge"])
    qob, qbb = statistics.median(a["overlay_ip"]), statistics.median(a["bridge_ip"])
    reqs, puts = res["etcd_per_attach"]["names"]
    qreqs, qputs = res["etcd_per_attach"]["ip_only"]
    conv = res["convergence_s"]
    lines = [
        "",
        f"## Overlay networks ({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
        f"{os.cpu_count()} cores, kernel {os.uname().release}, {res['mode']}; "
        "simulated hosts on one machine: veth underlay)",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| TCP throughput, overlay h1->h2 (iperf3, 1 stream) | {t['overlay']:.0f} Mbit/s | |",
        f"| TCP throughput, two containers on one bridge | {t['bridge']:.0f} Mbit/s | |",
        f"| TCP throughput, underlay h1->h2 directly | {t['underlay']:.0f} Mbit/s | |",
        f"| attach p50 / p95, bridge | {bb:.2f} / {pct(a['bridge'], 0.95):.2f} ms | |",
        f"| attach p50 / p95, overlay | {ob:.2f} / {pct(a['overlay'], 0.95):.2f} ms | "
        f"overlay/bridge p50 {ob / bb:.2f}x (target <= 1.2x) |",
        f"| attach p50 / p95, bridge, enable_dns=false | {qbb:.2f} / "
        f"{pct(a['bridge_ip'], 0.95):.2f} ms | |",
        f"| attach p50 / p95, overlay, enable_dns=false | {qob:.2f} / "
        f"{pct(a['overlay_ip'], 0.95):.2f} ms | overlay/bridge p50 {qob / qbb:.2f}x |",
        f"| attach on h1 -> reached from h2, p50 / p99 | {statistics.median(r):.1f} / "
        f"{pct(r, 0.99):.1f} ms | p99 <= 1000 ms |",
        f"| etcd requests / puts per attach, names on | {reqs:.2f} / {puts:.2f} | "
        "0 on the attach path, <= 1 async |",
        f"| etcd requests / puts per attach, enable_dns=false | {qreqs:.2f} / {qputs:.2f} | "
        "0 on the attach path |",
        f"| convergence, {res['convergence_hosts']} hosts on one etcd member | "
        + (f"{conv:.2f} s" if conv is not None else "did not converge in 60 s") + " | |",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnetd", required=True)
    ap.add_argument("--netctl", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="raw results (JSON)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    res = run(args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    print(table(res), end="")


if __name__ == "__main__":
    main()
