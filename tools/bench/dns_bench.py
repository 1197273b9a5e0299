#!/usr/bin/env python3
"""The DNS section of tools/bench.sh: cnetd's embedded resolver vs aardvark-dns vs dnsmasq.

Run by tools/bench.sh inside a throwaway net+mount+PID sandbox in which `wan_sandbox` made the
namespace "wan" (198.51.100.2) behind this one (198.51.100.1); never run it elsewhere (it
bind-mounts over /etc/resolv.conf and starts DNS servers on port 53).

  upstream   dnsmasq in "wan" at 198.51.100.2:53, answering *.example.test with 203.0.113.7
             (the "forwarded" name: fwd.example.test), no cache needed (it is authoritative)
  cnetd      network "app" (10.90.0.0/16); the client is a container of it and asks 127.0.0.11
             (cnetd's real path: DNAT in the container namespace, the daemon's DNS thread)
  aardvark   started as netavark starts it: `aardvark-dns --config DIR -p 53 run`, one config
             file "app": line 1 the gateway (10.89.0.1) and the network's upstream, then
             `ID IPV4 IPV6 NAMES` per container; the client (10.89.0.2, in namespace "dnsclient"
             behind bridge "brdns") asks 10.89.0.1
  dnsmasq    --no-daemon --no-resolv --addn-hosts (the same names) --server 198.51.100.2,
             --cache-size=0 (cnetd and aardvark do not cache forwarded answers either), on
             10.89.0.1
  cnetd-nodns  the RSS control: cnetd with the same endpoints on an enable_dns=false network

Per server and size (10, then 1,000 names; the local name asked is "db", the last one added):
one client (cnetd-bench-dns-pingpong: qps, p50/p99) and 50 in flight (dnsperf -q 50: qps,
average and stddev; dnsperf 2.10 prints no percentiles) for the local and the forwarded name,
the server's CPU (utime+stime from /proc/PID/stat) per 1,000 queries over the dnsperf runs, and
its RSS.

  dns_bench.py run --work DIR --cnetd BIN --pingpong BIN [--quick] [--servers a,b] --out F.json
  dns_bench.py table F.json [--out bench-results.md]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnetd_bench import Api  # noqa: E402

UPSTREAM = "198.51.100.2"
GATEWAY, CLIENT_IP = "10.89.0.1", "10.89.0.2"
LOCAL, FORWARDED = "db", "fwd.example.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Debian installs it for netavark outside PATH.
AARDVARK = shutil.which("aardvark-dns") or "/usr/lib/podman/aardvark-dns"


def log(msg):
    print(f"dns bench: {msg}", file=sys.stderr, flush=True)


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_for(pred, secs=10.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


class Load:
    """The two load generators, run in the client's network namespace (a file path)."""

    def __init__(self, args, netns, server):
        self.args, self.netns, self.server = args, netns, server
        self.secs = 1.5 if args.quick else 5

    def answers(self, name):
        r = subprocess.run(["nsenter", f"--net={self.netns}", self.args.pingpong, self.server,
                            "53", name, "0.2"], capture_output=True, text=True)
        return r.returncode == 0 and json.loads(r.stdout)["queries"] > 0

    def one_client(self, name):
        r = subprocess.run(["nsenter", f"--net={self.netns}", self.args.pingpong, self.server,
                            "53", name, str(self.secs)], capture_output=True, text=True,
                           check=True)
        return json.loads(r.stdout)

    def in_flight(self, name, pid):
        data = os.path.join(self.args.work, "dnsperf.txt")
        with open(data, "w") as f:
            f.write(f"{name} A\n")
        cpu0 = cpu_seconds(pid)
        r = subprocess.run(["nsenter", f"--net={self.netns}", "dnsperf", "-s", self.server,
                            "-p", "53", "-d", data, "-q", "50", "-l", str(self.secs), "-t", "2"],
                           capture_output=True, text=True)
        cpu = cpu_seconds(pid) - cpu0

        def num(label):
            m = re.search(label + r":\s+([0-9.]+)", r.stdout)
            return float(m.group(1)) if m else 0.0

        done = num("Queries completed")
        return {"qps": num("Queries per second"), "avg_us": num(r"Average Latency \(s\)") * 1e6,
                "sd_us": num(r"Latency StdDev \(s\)") * 1e6, "queries": done,
                "lost": num("Queries lost"), "cpu_s": cpu}


def measure(load, pid, server, names):
    rows = []
    for kind, name in (("local", LOCAL), ("forwarded", FORWARDED)):
        if not load.answers(name):
            log(f"{server}: no answer for {name} with {names} names: skipped")
            rows.append({"server": server, "names": names, "query": kind, "error": "no answer"})
            continue
        one = load.one_client(name)
        many = load.in_flight(name, pid)
        cpu_ms = 1e6 * many["cpu_s"] / many["queries"] if many["queries"] else 0.0
        rows.append({"server": server, "names": names, "query": kind, "one": one, "many": many,
                     "cpu_ms_per_1k": cpu_ms})
        log(f"{server} {names} {kind}: {one['qps']:.0f} qps 1 client, "
            f"{many['qps']:.0f} qps 50 in flight, {cpu_ms:.1f} ms CPU/1k")
    return rows


# --- the servers ---------------------------------------------------------------------------------

def client_network(work):
    """bridge brdns (10.89.0.1/16) and namespace dnsclient (10.89.0.2) for aardvark and dnsmasq."""
    sh("ip", "link", "add", "brdns", "type", "bridge")
    sh("ip", "addr", "add", f"{GATEWAY}/16", "dev", "brdns")
    sh("ip", "link", "set", "brdns", "up")
    sh("ip", "netns", "add", "dnsclient")
    sh("ip", "link", "add", "vdns0", "master", "brdns", "type", "veth", "peer", "name", "eth0",
       "netns", "dnsclient")
    sh("ip", "link", "set", "vdns0", "up")
    sh("ip", "-n", "dnsclient", "addr", "add", f"{CLIENT_IP}/16", "dev", "eth0")
    sh("ip", "-n", "dnsclient", "link", "set", "eth0", "up")
    sh("ip", "-n", "dnsclient", "link", "set", "lo", "up")
    return "/run/netns/dnsclient"


def fake_names(count):
    """(name, ipv4) of `count` containers; the last is "db"."""
    out = [(f"c{i}", f"10.89.{1 + i // 250}.{1 + i % 250}") for i in range(count - 1)]
    return out + [(LOCAL, "10.89.100.1")]


def run_aardvark(args, sizes):
    ns = client_network(args.work)
    cfg = os.path.join(args.work, "aardvark")
    os.makedirs(cfg, exist_ok=True)
    rows, proc, pid = [], None, 0
    for n in sizes:
        with open(os.path.join(cfg, "app.tmp"), "w") as f:
            f.write(f"{GATEWAY} {UPSTREAM}\n")
            f.write(f"{'0' * 63}1 {CLIENT_IP}  client\n")
            for i, (name, ip) in enumerate(fake_names(n)):
                f.write(f"{i + 2:064x} {ip}  {name}\n")
        os.rename(os.path.join(cfg, "app.tmp"), os.path.join(cfg, "app"))
        if proc is None:  # netavark: `aardvark-dns --config DIR -p 53 run`, SIGHUP on changes
            proc = subprocess.Popen([AARDVARK, "--config", cfg, "-p", "53", "run"])
            pid_file = os.path.join(cfg, "aardvark.pid")
            wait_for(lambda: os.path.exists(pid_file) and open(pid_file).read().strip())
            pid = int(open(pid_file).read().strip()) if os.path.exists(pid_file) else proc.pid
        else:
            os.kill(pid, 1)
            time.sleep(0.5)
        load = Load(args, ns, GATEWAY)
        wait_for(lambda: load.answers(LOCAL))
        rows += measure(load, pid, "aardvark-dns", n)
        rows.append({"server": "aardvark-dns", "names": n, "rss_kb": rss_kb(pid)})
    os.kill(pid, 15)
    proc.wait()
    return rows


def run_dnsmasq(args, sizes):
    ns = "/run/netns/dnsclient"
    if not os.path.exists(ns):
        client_network(args.work)
    rows = []
    for n in sizes:
        hosts = os.path.join(args.work, "dnsmasq.hosts")
        with open(hosts, "w") as f:
            for name, ip in fake_names(n):
                f.write(f"{ip} {name}\n")
        proc = subprocess.Popen(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                                 "--no-hosts", f"--addn-hosts={hosts}", f"--server={UPSTREAM}",
                                 "--cache-size=0", f"--listen-address={GATEWAY}",
                                 "--bind-interfaces", "--port=53", "--user=root", "--pid-file="],
                                stderr=subprocess.DEVNULL)
        load = Load(args, ns, GATEWAY)
        wait_for(lambda: load.answers(LOCAL))
        rows += measure(load, proc.pid, "dnsmasq", n)
        rows.append({"server": "dnsmasq", "names": n, "rss_kb": rss_kb(proc.pid)})
        proc.terminate()
        proc.wait()
    return rows


def run_cnetd_nodns(args, sizes):
    """The RSS control: the same endpoints on an enable_dns=false network (no resolver), so that
    cnetd's growth with 1,000 names can be told from the engine's own per-endpoint state."""
    return run_cnetd(args, sizes, dns=False)


def run_cnetd(args, sizes, dns=True):
    server = "cnetd" if dns else "cnetd, enable_dns=false (RSS control)"
    w = os.path.join(args.work, "cnetd" if dns else "cnetd-nodns")
    os.makedirs(w, exist_ok=True)
    with open(os.path.join(w, "cnetd.yaml"), "w") as f:
        f.write("firewall: nftables\n")
    sock = os.path.join(w, "s.sock")
    proc = subprocess.Popen([args.cnetd, "--config", f"{w}/cnetd.yaml", "--socket", sock,
                             "--state-dir", f"{w}/state", "--netns-dir", f"{w}/netns",
                             "--log-level", "warning"])
    rows = []
    try:
        if not wait_for(lambda: os.path.exists(sock)):
            raise RuntimeError("cnetd did not start")
        api = Api(sock)
        net = {"Name": "app", "Subnet": "10.90.0.0/16"}
        if not dns:
            net["Options"] = {"com.docker.network.enable_dns": "false"}
        api.req("POST", "/v1/networks", net)

        def attach(name, create=True):
            if create:
                api.req("POST", "/v1/netns", {"Name": name})
            api.req("POST", "/v1/networks/app/connect", {"Target": name})

        attach("client")
        others = 0  # c0, c1, ...: the client + others + db = the size
        for n in sizes:
            t0 = time.time()
            if others:
                api.req("POST", "/v1/networks/app/disconnect", {"Target": LOCAL})
            grow = n - 2 - others
            for i in range(others, n - 2):
                attach(f"c{i}")
            attach(LOCAL, create=not others)
            others = n - 2
            attach_s = time.time() - t0
            log(f"cnetd: {grow + 1} endpoints attached in {attach_s:.1f} s")
            if dns:
                load = Load(args, f"{w}/netns/client", "127.0.0.11")
                wait_for(lambda: load.answers(LOCAL), 3)
                rows += measure(load, proc.pid, server, n)
            time.sleep(0.5)  # at rest: the worker gives freed heap back after 200 ms idle
            rows.append({"server": server, "names": n, "rss_kb": rss_kb(proc.pid),
                         "attach_ms": 1000 * attach_s / (grow + 1)})
    finally:
        proc.terminate()
        proc.wait()
        for f in os.listdir(f"{w}/netns") if os.path.isdir(f"{w}/netns") else []:
            subprocess.run(["umount", "-l", f"{w}/netns/{f}"], stderr=subprocess.DEVNULL)
    return rows


def upstream(work):
    """The local upstream in "wan", and /etc/resolv.conf (this sandbox's) pointing at it."""
    conf = os.path.join(work, "resolv.conf")
    with open(conf, "w") as f:
        f.write(f"nameserver {UPSTREAM}\n")
    sh("mount", "--bind", conf, "/etc/resolv.conf")
    proc = subprocess.Popen(["ip", "netns", "exec", "wan", "dnsmasq", "--no-daemon",
                             "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                             "--address=/example.test/203.0.113.7", f"--listen-address={UPSTREAM}",
                             "--bind-interfaces", "--port=53", "--user=root", "--pid-file="],
                            stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc


def cmd_run(args):
    sizes = [10, 1000]
    os.makedirs(args.work, exist_ok=True)
    up = upstream(args.work)
    rows = []
    runners = {"cnetd": run_cnetd, "cnetd-nodns": run_cnetd_nodns, "aardvark": run_aardvark,
               "dnsmasq": run_dnsmasq}
    try:
        for s in args.servers.split(","):
            log(f"{s} ({'quick' if args.quick else 'full'})")
            try:
                rows += runners[s](args, sizes)
            except Exception as e:  # one server failing must not hide the others' numbers
                log(f"{s} failed: {e}")
                rows.append({"server": s, "error": str(e)})
    finally:
        up.terminate()
        up.wait()
    with open(args.out, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "cores": os.cpu_count(), "kernel": os.uname().release,
                   "quick": args.quick, "rows": rows}, f, indent=1)


def cmd_table(args):
    doc = json.load(open(args.results))
    out = ["", f"## Embedded DNS: cnetd vs aardvark-dns vs dnsmasq ({doc['date']}, "
           f"{doc['cores']} cores, kernel {doc['kernel']}{', quick' if doc['quick'] else ''})", "",
           "Local name `db`; forwarded `fwd.example.test` (upstream: dnsmasq in the wan namespace). "
           "1 client: cnetd-bench-dns-pingpong; 50 in flight: dnsperf -q 50 (average ± stddev; it "
           "prints no percentiles). CPU: the server's utime+stime per 1,000 queries of the dnsperf run. "
           "dnsmasq runs with --cache-size=0 but joins identical queries in flight into one "
           "upstream query (one name is asked), which lifts its forwarded 50-in-flight numbers.",
           "",
           "| server | names | query | 1 client qps | p50 / p99 µs | 50 in flight qps | "
           "avg ± sd µs | lost | CPU ms / 1k queries |",
           "|---|---|---|---|---|---|---|---|---|"]
    rss = {}
    for r in doc["rows"]:
        if "rss_kb" in r:
            rss.setdefault(r["server"], {})[r["names"]] = r
            continue
        if "error" in r:
            out.append(f"| {r['server']} | {r.get('names', '')} | {r.get('query', '')} | "
                       f"{r['error']} | | | | | |")
            continue
        o, m = r["one"], r["many"]
        out.append(f"| {r['server']} | {r['names']:,} | {r['query']} | {o['qps']:,.0f} | "
                   f"{o['p50_us']:.0f} / {o['p99_us']:.0f} | {m['qps']:,.0f} | "
                   f"{m['avg_us']:.0f} ± {m['sd_us']:.0f} | {m['lost']:.0f} | "
                   f"{r['cpu_ms_per_1k']:.1f} |")
    out += ["", "| server | RSS with 10 names | RSS with 1,000 names | growth | "
            "cnetd: mean attach from 10 to 1,000 endpoints |", "|---|---|---|---|---|"]
    for s, v in rss.items():
        a, b = v.get(10, {}).get("rss_kb", 0), v.get(1000, {}).get("rss_kb", 0)
        att = v.get(1000, {}).get("attach_ms")
        out.append(f"| {s} | {a / 1024:.1f} MiB | {b / 1024:.1f} MiB | {(b - a) / 1024:+.2f} MiB | "
                   f"{f'{att:.1f} ms' if att is not None else ''} |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--cnetd", required=True)
    r.add_argument("--pingpong", required=True)
    r.add_argument("--servers", default="cnetd,cnetd-nodns,aardvark,dnsmasq")
    r.add_argument("--quick", action="store_true")
    r.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("--out", default="")
    args = p.parse_args()
    cmd_run(args) if args.cmd == "run" else cmd_table(args)


if __name__ == "__main__":
    main()
