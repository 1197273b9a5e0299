#!/usr/bin/env python3
"""Side-by-side benchmark: cnetd, the CNI reference plugins, netavark and the kernel floor.

`tools/bench.sh` runs `compare.py run --engine E ...` once per engine, each inside its own
throwaway `unshare --net --mount --pid` sandbox (so every engine starts from an empty network
namespace and nftables ruleset), then `compare.py table` merges the per-engine JSON results into
one markdown table. Never run `run` outside such a sandbox: it creates bridges, veths, namespaces
and firewall rules in the current network namespace.

Engines and how each is driven (the way its real users drive it):
  cnetd     the daemon's HTTP API over its unix socket (POST /v1/networks/bridge/connect with an
            absolute netns path as Target, .../disconnect), one connection per request;
  cni       Debian's containernetworking-plugins (bridge + host-local + portmap in one conflist)
            through libcni's AddNetworkList/DelNetworkList in one long-lived Go process
            (cniclient/main.go), as containerd and CRI-O do: every call execs the plugins;
  netavark  Debian's netavark CLI, `netavark --config D setup|teardown <netns>` with the network
            JSON on stdin, as podman does (podman allocates the address: the JSON carries it);
  floor     cnetd-bench-floor (floor.cpp): veth with the peer born in the netns, address, up,
            default route, with lib/netlink and nothing else. The kernel's own cost.

Every latency is a wall-clock round trip measured here (the helper processes answer over a pipe,
which adds ~0.05 ms).
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnetd_bench import Api, pct  # noqa: E402
from ports_bench import throughput  # noqa: E402

PRESENT_BASE = 20000  # host ports of the present mappings (as ports_bench.py)
MEASURED_BASE = 31000  # host ports of the measured "one more mapping" attaches
CONTAINER_PORT = 80
PORTS_PER_ENDPOINT = 100
NETAVARK = "/usr/lib/podman/netavark"
CNI_PLUGINS = "/usr/lib/cni"

MODES = {
    # sizes: endpoints present; samples: timed attaches (and detaches) per size. The anchors (CNI,
    # netavark) take 0.1-0.6 s per call (they fork several processes and iptables execs each), so
    # they get fewer samples per cell (6: p95 is then about the slowest of 6) and 50 concurrent
    # attaches instead of 200, but every endpoint size: their N=500 phase (sequential bring-up of
    # 500, timed cells, sequential tear-down) takes 1.5-5 min each on 2 cores. Only their port
    # mappings stop at 100 present (anchor_port_sizes): each mapping costs them 3-4 iptables rules
    # and as many iptables-nft execs, ~0.1-0.4 s per mapping and growing with the rules present, so
    # 10,000 take 40 min (CNI) to hours (netavark) (ANCHOR_PORTS_MEASURED; the table's note).
    # Measured full run, all four engines (2026-11-28, 2 cores): 8 min 12 s at load average 2-10
    # (cnetd 43 s, CNI 252 s, netavark 156 s, floor 19 s); the anchors alone took 11 min 48 s at
    # load 4-14. Quick: see bench.sh.
    "quick": dict(sizes=[0, 10, 50], anchor_sizes=[0, 10, 50], samples=10, anchor_samples=3,
                  port_samples=3, anchor_port_samples=2,
                  port_sizes=[1, 100], anchor_port_sizes=[1], conc=50, conc_anchor=10,
                  tp_seconds=1.0, rss_endpoints=200, rss_ports=1000),
    "full": dict(sizes=[0, 10, 100, 500], anchor_sizes=[0, 10, 100, 500], samples=30,
                 anchor_samples=6, port_samples=10, anchor_port_samples=3,
                 port_sizes=[1, 100, 10000], anchor_port_sizes=[1, 100],
                 conc=200, conc_anchor=50, tp_seconds=3.0, rss_endpoints=1000, rss_ports=10000),
}

# The anchors' 10,000-mapping cells, measured once outside the time box (same sandbox, same
# engine drivers, present mappings 1,000 per endpoint as single-port entries: the per-mapping cost
# is the same at 100 per endpoint) — what the "capped" note quotes.
ANCHOR_PORTS_MEASURED = {  # 2026-11-28, this 2-core machine at load average 4-6
    "cni": ("setting up 10,000 took 2,383 s (ten ADDs of 1,000 mappings, 102-316 s each, slower as "
            "the rules grow; 30,726 rules), then an attach with one more mapping 2.6 s p50 and "
            "13,560 new connections/s"),
    "netavark": ("stopped at 2,000 (one setup of 1,000 mappings: 361 s with none present, 714 s "
                 "with 1,000 present; ~4 rules per mapping, each iptables call slower as the chain "
                 "grows): 10,000 extrapolate to hours"),
}


def ms(seconds):
    return seconds * 1000.0


def stats(values):
    return {"p50": statistics.median(values), "p95": pct(values, 0.95), "n": len(values)}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- engines ------------------------------------------------------------------------------------

class Helper:
    """A line-protocol helper process ("ok <us>" / "err <message>" per command)."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline().strip()
        if not reply.startswith("ok"):
            raise RuntimeError(f"{line.split()[0]}: {reply or 'helper exited'}")
        return int(reply.split()[1]) / 1e6

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


class Cnetd:
    name = "cnetd"

    def __init__(self, args):
        self.api = Api(args.socket)
        self.pid = args.pid

    def attach(self, i, ns, ports=()):
        body = {"Target": ns}
        if ports:
            body["Publish"] = [f"{h}:{c}" for h, c in ports]
        self.api.req("POST", "/v1/networks/bridge/connect", body)

    def detach(self, i, ns):
        self.api.req("POST", "/v1/networks/bridge/disconnect", {"Target": ns})

    def par_attach(self, items, clients):
        with concurrent.futures.ThreadPoolExecutor(clients) as ex:
            list(ex.map(lambda it: self.attach(*it), items))

    def rss_kb(self):
        # At rest: cnetd gives freed heap pages back once its worker has been idle for 200 ms
        # (daemon/worker.cpp); RSS is read after that, as an operator would see it.
        time.sleep(0.5)
        with open(f"/proc/{self.pid}/status") as f:
            return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)
                    if k in ("VmRSS", "VmHWM")}

    def close(self):
        pass


class Cni:
    name = "cni"

    def __init__(self, args):
        d = args.work
        conf = {
            "cniVersion": "1.0.0", "name": "benchnet",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": f"{d}/ipam",
                          "ranges": [[{"subnet": "10.88.0.0/16"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        with open(f"{d}/bench.conflist", "w") as f:
            json.dump(conf, f)
        self.h = Helper([args.cni_client, f"{d}/bench.conflist", CNI_PLUGINS, f"{d}/cache"])
        self.ports = {}

    def _ports(self, ports):
        return ",".join(f"{h}:{c}" for h, c in ports)

    def attach(self, i, ns, ports=()):
        self.ports[i] = self._ports(ports)
        self.h.cmd(f"add c{i} {ns} {self.ports[i]}".rstrip())

    def detach(self, i, ns):
        self.h.cmd(f"del c{i} {ns} {self.ports.pop(i, '')}".rstrip())

    def par_attach(self, items, clients):
        self.h.cmd(f"par {clients} " + " ".join(f"add c{i} {ns}" for i, ns in items))

    def par_detach(self, items, clients):
        self.h.cmd(f"par {clients} " + " ".join(f"del c{i} {ns}" for i, ns in items))

    def close(self):
        self.h.close()


def ip_of(net, i):
    """Address i of a /16 (netavark and the floor get theirs from the caller, like podman)."""
    return f"{net}.{i // 250}.{i % 250 + 2}"


class Netavark:
    name = "netavark"

    def __init__(self, args):
        self.cfg = f"{args.work}/netavark"
        os.makedirs(self.cfg, exist_ok=True)
        self.docs = {}
        self.lock = threading.Lock()

    def _doc(self, i, ports):
        return json.dumps({
            "container_id": f"{i:064x}", "container_name": f"c{i}",
            "port_mappings": [{"host_ip": "", "container_port": c, "host_port": h, "range": 1,
                               "protocol": "tcp"} for h, c in ports],
            "networks": {"bench": {"static_ips": [ip_of("10.89", i)], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": "b" * 64, "driver": "bridge", "network_interface": "nv0",
                "subnets": [{"subnet": "10.89.0.0/16", "gateway": "10.89.0.1"}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": False,
                "ipam_options": {"driver": "host-local"}}},
        })

    def _run(self, verb, ns, doc):
        r = subprocess.run([NETAVARK, "--config", self.cfg, verb, ns], input=doc, text=True,
                           capture_output=True)
        if r.returncode != 0:  # netavark reports errors as JSON on stdout
            raise RuntimeError(f"netavark {verb} {ns}: exit {r.returncode}: "
                               f"{(r.stdout + r.stderr).strip()}")

    def attach(self, i, ns, ports=()):
        self.docs[i] = self._doc(i, ports)
        self._run("setup", ns, self.docs[i])

    def detach(self, i, ns):
        self._run("teardown", ns, self.docs.pop(i))

    # Concurrent netavark calls race each other's iptables chain creation ("Chain already
    # exists"); podman therefore runs netavark under its network lock file. The clients here do
    # the same: 50 threads, one netavark at a time.
    def _locked(self, fn, *a):
        with self.lock:
            fn(*a)

    def par_attach(self, items, clients):
        with concurrent.futures.ThreadPoolExecutor(clients) as ex:
            list(ex.map(lambda it: self._locked(self.attach, *it), items))

    def par_detach(self, items, clients):
        with concurrent.futures.ThreadPoolExecutor(clients) as ex:
            list(ex.map(lambda it: self._locked(self.detach, *it), items))

    def close(self):
        pass


class Floor:
    name = "floor"

    def __init__(self, args):
        self.h = Helper([args.floor])
        self.h.cmd("bridge flr0 10.90.0.1/16")

    def _attach_args(self, i, ns):
        return f"attach {ns} fl{i} {ip_of('10.90', i)}/16 10.90.0.1"

    def attach(self, i, ns, ports=()):
        if ports:
            raise RuntimeError("the floor publishes no ports")
        self.h.cmd(self._attach_args(i, ns))

    def detach(self, i, ns):
        self.h.cmd(f"detach fl{i}")

    def par_attach(self, items, clients):
        self.h.cmd(f"par {clients} " + " ".join(self._attach_args(i, ns) for i, ns in items))

    def close(self):
        self.h.close()


ENGINES = {"cnetd": Cnetd, "cni": Cni, "netavark": Netavark, "floor": Floor}


# --- the phases ---------------------------------------------------------------------------------

def make_namespaces(count):
    """Namespaces /run/netns/b0 .. b<count-1>, made by one `ip -batch` (not timed)."""
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns add b{i}\n" for i in range(count)),
                   text=True, check=True)
    return [f"/run/netns/b{i}" for i in range(count)]


def nft_rules():
    """Rules in this namespace's nftables ruleset (iptables-nft rules included)."""
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True).stdout
    try:
        return sum(1 for o in json.loads(out).get("nftables", []) if "rule" in o)
    except json.JSONDecodeError:
        return None


def ipt_rules():
    """The anchors' rules as iptables sees them (`iptables-save`: one "-A" line per rule): a
    cross-check of nft_rules(), which counts the same iptables-nft rules in the nft ruleset."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.startswith("-A "))


ANCHORS = ("cni", "netavark")

SAVE = None  # writes the results so far (a run cut short still leaves what it measured)


def save():
    if SAVE:
        SAVE()


def timed(fn, *a):
    t = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t


def phase_attach(eng, ns, sizes, samples, res):
    """Attach/detach latency with N present, growing N; bring-up and tear-down of the largest N;
    attach with one published port at N=0."""
    top = max(sizes)
    pool = list(range(top, top + samples))  # the measured endpoints, reused at every N
    present = 0
    bring_up = 0.0
    res["attach"], res["detach"], res["rules"] = {}, {}, {}
    if eng.name in ANCHORS:
        res["ipt_rules"] = {}
    for n in sizes:
        while present < n:
            bring_up += timed(eng.attach, present, ns[present])
            present += 1
        # one untimed round: the first attach after a phase change is slower (cold caches)
        eng.attach(pool[0], ns[pool[0]])
        eng.detach(pool[0], ns[pool[0]])
        att = [timed(eng.attach, i, ns[i]) for i in pool]
        res["rules"][str(n)] = nft_rules()
        if eng.name in ANCHORS:
            res["ipt_rules"][str(n)] = ipt_rules()
        det = [timed(eng.detach, i, ns[i]) for i in pool]
        res["attach"][str(n)] = stats([ms(x) for x in att])
        res["detach"][str(n)] = stats([ms(x) for x in det])
        save()
        log(f"{eng.name}: N={n}: attach p50 {res['attach'][str(n)]['p50']:.2f} ms, "
            f"detach p50 {res['detach'][str(n)]['p50']:.2f} ms, rules {res['rules'][str(n)]}")
    res["bring_up"] = {"n": top, "s": bring_up}
    t = time.perf_counter()
    for i in range(top):
        eng.detach(i, ns[i])
    res["tear_down"] = {"n": top, "s": time.perf_counter() - t}
    log(f"{eng.name}: bring up {top}: {bring_up:.2f} s, tear down: {res['tear_down']['s']:.2f} s")
    if eng.name != "floor":
        att, det = [], []
        for j, i in enumerate(pool):
            att.append(timed(eng.attach, i, ns[i], [(MEASURED_BASE + j, CONTAINER_PORT)]))
            det.append(timed(eng.detach, i, ns[i]))
        res["attach_port"] = stats([ms(x) for x in att])
        res["detach_port"] = stats([ms(x) for x in det])


def phase_concurrent(eng, ns, total, clients, res):
    items = [(i, ns[i]) for i in range(total)]
    t = timed(eng.par_attach, items, clients)
    res["concurrent"] = {"clients": clients, "attaches": total, "s": t, "per_s": total / t}
    log(f"{eng.name}: {total} attaches by {clients} clients: {t:.2f} s, {total / t:.0f}/s")
    if hasattr(eng, "par_detach"):  # not measured: just quicker for the slow anchors
        eng.par_detach(items, clients)
    else:
        for i in range(total):
            eng.detach(i, ns[i])


def phase_ports(eng, ns, sizes, samples, seconds, args, res):
    """With N mappings present (PORTS_PER_ENDPOINT per endpoint): setup time, the latency of an
    attach with one more mapping, and new TCP connections/s from `wan` through one of them."""
    res["ports"] = {}
    for n in sizes:
        eps = (n + PORTS_PER_ENDPOINT - 1) // PORTS_PER_ENDPOINT
        t = time.perf_counter()
        for e in range(eps):
            ports = [(PRESENT_BASE + k, CONTAINER_PORT)
                     for k in range(e * PORTS_PER_ENDPOINT, min(n, (e + 1) * PORTS_PER_ENDPOINT))]
            eng.attach(e, ns[e], ports)
        setup = time.perf_counter() - t
        pool = list(range(eps, eps + samples))
        att = []
        for j, i in enumerate(pool):
            att.append(timed(eng.attach, i, ns[i], [(MEASURED_BASE + j, CONTAINER_PORT)]))
        for i in pool:
            eng.detach(i, ns[i])
        row = {"setup_s": setup, "attach_port": stats([ms(x) for x in att]), "rules": nft_rules()}
        if eng.name in ANCHORS:
            row["ipt_rules"] = ipt_rules()
        if hasattr(eng, "rss_kb"):
            row["rss_kb"] = eng.rss_kb()
        tp = throughput(ns[0], CONTAINER_PORT, PRESENT_BASE, args.wan, args.host_addr, seconds)
        row["connects_per_s"] = tp["connects"] / tp["seconds"]
        row["tp_check"] = {k: tp[k] for k in ("errors", "slow", "accepted", "connects")}
        t = time.perf_counter()
        for e in range(eps):
            eng.detach(e, ns[e])
        row["teardown_s"] = time.perf_counter() - t
        res["ports"][str(n)] = row
        save()
        log(f"{eng.name}: {n} mappings: setup {setup:.2f} s, attach with one -p p50 "
            f"{row['attach_port']['p50']:.2f} ms, {row['connects_per_s']:.0f} connects/s "
            f"({tp['errors']} errors, {tp['accepted']} accepted), rules {row['rules']}")


def phase_rss(eng, ns, endpoints, ports, res):
    """cnetd's RSS with `endpoints` endpoints, then with `ports` mappings on top of them."""
    for i in range(endpoints):
        eng.attach(i, ns[i])
    res["rss_endpoints"] = {"endpoints": endpoints, **eng.rss_kb()}
    # The ports go on the first endpoints (re-attached with PORTS_PER_ENDPOINT each): a Linux
    # bridge takes at most 1,023 ports, so they cannot be 100 endpoints more.
    eps = ports // PORTS_PER_ENDPOINT
    for e in range(eps):
        eng.detach(e, ns[e])
        eng.attach(e, ns[e], [(PRESENT_BASE + e * PORTS_PER_ENDPOINT + k, CONTAINER_PORT)
                              for k in range(PORTS_PER_ENDPOINT)])
    res["rss_endpoints_ports"] = {"endpoints": endpoints, "ports": ports, **eng.rss_kb()}
    t = time.perf_counter()
    for i in range(endpoints):
        eng.detach(i, ns[i])
    res["rss_teardown_s"] = time.perf_counter() - t
    res["rss_after"] = eng.rss_kb()
    log(f"{eng.name}: RSS {res['rss_endpoints']} / {res['rss_endpoints_ports']} / after "
        f"{res['rss_after']}")


def run(args):
    cfg = MODES[args.mode]
    anchor = args.engine in ANCHORS
    samples = cfg["anchor_samples"] if anchor else cfg["samples"]
    sizes = cfg["anchor_sizes"] if anchor else cfg["sizes"]
    port_sizes = cfg["anchor_port_sizes"] if anchor else cfg["port_sizes"]
    conc = cfg["conc_anchor"] if anchor else cfg["conc"]
    port_samples = cfg["anchor_port_samples"] if anchor else cfg["port_samples"]
    need = max(max(sizes) + samples, conc,
               0 if anchor else cfg["rss_endpoints"],
               max(port_sizes) // PORTS_PER_ENDPOINT + 1 + port_samples)
    ns = make_namespaces(need)
    eng = ENGINES[args.engine](args)
    res = {"engine": args.engine, "mode": args.mode, "started": time.strftime("%FT%TZ", time.gmtime()),
           "load_before": os.getloadavg()[0]}
    capped = []
    if max(sizes) < max(cfg["sizes"]):
        capped.append(f"endpoints only up to N={max(sizes)} (bring up / tear down totals for "
                      f"{max(sizes)})")
    if max(port_sizes) < max(cfg["port_sizes"]):
        if max(cfg["port_sizes"]) >= 10000:
            capped.append(f"port mappings only up to {max(port_sizes):,} present; "
                          f"{max(cfg['port_sizes']):,} do not fit the time box — measured once "
                          f"outside it: {ANCHOR_PORTS_MEASURED.get(args.engine, 'not measured')}")
        else:  # quick mode: the larger cells are the full run's
            capped.append(f"port mappings only up to {max(port_sizes):,} present (the full run "
                          f"has {', '.join(f'{n:,}' for n in MODES['full']['anchor_port_sizes'])})")
    if anchor and capped:
        res["note"] = (f"{TITLES[args.engine]} ({samples} samples per cell, {conc} concurrent "
                       f"attaches): capped to keep the run in its time box: " + "; ".join(capped)
                       + "; cells beyond show \"not run\"")
        log(res["note"])
    t0 = time.perf_counter()

    def dump():
        res["seconds"] = time.perf_counter() - t0
        res["load_after"] = os.getloadavg()[0]
        with open(args.out + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    global SAVE
    SAVE = dump
    try:
        if hasattr(eng, "rss_kb"):
            res["rss_idle"] = eng.rss_kb()
        phase_attach(eng, ns, sizes, samples, res)
        save()
        phase_concurrent(eng, ns, conc, 50, res)
        save()
        if args.engine != "floor":
            phase_ports(eng, ns, port_sizes, port_samples, cfg["tp_seconds"], args, res)
        if hasattr(eng, "rss_kb"):
            phase_rss(eng, ns, cfg["rss_endpoints"], cfg["rss_ports"], res)
    finally:
        eng.close()
        dump()
    log(f"{args.engine}: done in {res['seconds']:.0f} s")


# --- the table ----------------------------------------------------------------------------------

COLUMNS = ["cnetd", "cni", "netavark", "floor"]
TITLES = {"cnetd": "cnetd", "cni": "CNI plugins (libcni)", "netavark": "netavark",
          "floor": "kernel floor"}


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt_lat(s):
    return "—" if s is None else f"{s['p50']:.2f} / {s['p95']:.2f}"


def table(args):
    res = {}
    for path in args.results:
        with open(path) as f:
            r = json.load(f)
        res[r["engine"]] = r
    cols = [c for c in COLUMNS if c in res]
    mode = next(iter(res.values()))["mode"]
    lines = []
    out = lines.append
    uname = os.uname()
    out(f"# cnetd side by side ({mode} mode, {time.strftime('%FT%TZ', time.gmtime())}, "
        f"{os.cpu_count()} cores, kernel {uname.release})")
    out("")
    out("Latencies are p50 / p95 in ms (samples per cell: " + ", ".join(
        f"{TITLES[c]} {get(res[c], 'attach', '0', 'n')}" for c in cols) + "). "
        "N = endpoints already on the bridge. Each engine ran in its own fresh sandbox namespace.")
    out("")
    out("| measure | " + " | ".join(TITLES[c] for c in cols) + " |")
    out("|---|" + "---|" * len(cols))

    def row(label, fn):
        out(f"| {label} | " + " | ".join(fn(res[c]) for c in cols) + " |")

    sizes = sorted({int(k) for c in cols for k in (get(res[c], "attach") or {})})
    for n in sizes:
        row(f"attach, N={n}", lambda r, n=n: fmt_lat(get(r, "attach", str(n))))
    for n in sizes:
        row(f"detach, N={n}", lambda r, n=n: fmt_lat(get(r, "detach", str(n))))
    row("attach with one published port, N=0", lambda r: fmt_lat(get(r, "attach_port")))
    row("detach with one published port, N=0", lambda r: fmt_lat(get(r, "detach_port")))
    row("bring up N endpoints one by one, s",
        lambda r: f"{r['bring_up']['s']:.2f} (N={r['bring_up']['n']})" if "bring_up" in r else "—")
    row("tear down N endpoints one by one, s",
        lambda r: f"{r['tear_down']['s']:.2f} (N={r['tear_down']['n']})" if "tear_down" in r else "—")

    def rules(r, *path):
        nft, ipt = get(r, "rules", *path), get(r, "ipt_rules", *path)
        if nft is None:
            return "—"
        return str(nft) + (f" (iptables-save: {ipt})" if ipt is not None and ipt != nft else "")

    for n in sizes:
        row(f"firewall rules in the netns (nft; anchors: iptables-nft), N={n}+samples",
            lambda r, n=n: rules(r, str(n)))
    row("concurrent attach, 50 clients: attaches/s",
        lambda r: f"{r['concurrent']['per_s']:.0f} ({r['concurrent']['attaches']} in "
                  f"{r['concurrent']['s']:.2f} s)" if "concurrent" in r else "—")
    psizes = sorted({int(k) for c in cols for k in (get(res[c], "ports") or {})})
    for n in psizes:
        row(f"ports: set up {n:,} mappings ({PORTS_PER_ENDPOINT}/endpoint), s",
            lambda r, n=n: f"{get(r, 'ports', str(n), 'setup_s'):.2f}"
            if get(r, "ports", str(n)) else "not run")
    for n in psizes:
        row(f"ports: attach with one more mapping, {n:,} present",
            lambda r, n=n: fmt_lat(get(r, "ports", str(n), "attach_port"))
            if get(r, "ports", str(n)) else "not run")
    for n in psizes:
        row(f"ports: new TCP connections/s through one port, {n:,} present",
            lambda r, n=n: (f"{get(r, 'ports', str(n), 'connects_per_s'):,.0f}"
                            + (f" ({get(r, 'ports', str(n), 'tp_check', 'errors')} err)"
                               if get(r, 'ports', str(n), 'tp_check', 'errors') else ""))
            if get(r, "ports", str(n)) else "not run")
    for n in psizes:
        row(f"ports: firewall rules with {n:,} mappings",
            lambda r, n=n: (str(get(r, "ports", str(n), "rules"))
                            + (f" (iptables-save: {get(r, 'ports', str(n), 'ipt_rules')})"
                               if get(r, "ports", str(n), "ipt_rules") not in
                               (None, get(r, "ports", str(n), "rules")) else ""))
            if get(r, "ports", str(n)) else "not run")

    def rss(r, key):
        v = get(r, key)
        return f"{v['VmRSS'] / 1024:.1f} MB" if v else "no daemon"

    row("daemon RSS idle", lambda r: rss(r, "rss_idle"))
    e = get(res.get("cnetd", {}), "rss_endpoints", "endpoints") or "N"
    p = get(res.get("cnetd", {}), "rss_endpoints_ports", "ports") or "M"
    row(f"daemon RSS at {e} endpoints", lambda r: rss(r, "rss_endpoints"))
    row(f"daemon RSS at {e} endpoints + {p} ports", lambda r: rss(r, "rss_endpoints_ports"))
    row("daemon RSS after tearing all down", lambda r: rss(r, "rss_after"))
    row("wall time of this engine's run, s", lambda r: f"{r.get('seconds', 0):.0f}")
    row("machine load average (1 min) before / after", lambda r: f"{r.get('load_before', 0):.1f} / "
        f"{r.get('load_after', 0):.1f}")

    notes = [res[c]["note"] for c in cols if res[c].get("note")]
    if notes:
        out("")
        for n in notes:
            out(f"Note: {n}.")
    c, f = res.get("cnetd"), res.get("floor")
    if c:
        out("")
        out("Targets (issue 9):")
        out("")
        a0 = get(c, "attach", "0", "p50")
        if a0 is not None:
            out(f"- cnetd attach p50 at N=0 ≤ 3 ms: {a0:.2f} ms — {'met' if a0 <= 3 else 'MISSED'}")
        top = str(max(sizes))
        if f and get(f, "attach", top):
            ratio = get(c, "attach", top, "p50") / get(f, "attach", top, "p50")
            out(f"- cnetd attach p50 at N={top} ≤ 1.5× the floor: {get(c, 'attach', top, 'p50'):.2f} ms"
                f" = {ratio:.2f}× floor ({get(f, 'attach', top, 'p50'):.2f} ms) — "
                f"{'met' if ratio <= 1.5 else 'MISSED'}")
        td = get(c, "tear_down")
        if td:
            proj = td["s"] * 500 / td["n"] if td["n"] else 0
            out(f"- 500 detaches ≤ 3 s: {td['s']:.2f} s for {td['n']}"
                + (f" (×{500 / td['n']:.0f} ≈ {proj:.2f} s for 500)" if td["n"] != 500 else "")
                + f" — {'met' if proj <= 3 else 'MISSED'}")
        rp = get(c, "rss_endpoints_ports")
        if rp:
            mb = rp["VmRSS"] / 1024
            full = rp["ports"] >= 10000 and get(c, "rss_endpoints", "endpoints") >= 1000
            out(f"- RSS ≤ 15 MB at 1,000 endpoints + 10,000 ports: {mb:.1f} MB at "
                f"{get(c, 'rss_endpoints', 'endpoints')} endpoints + {rp['ports']} ports"
                + (f" — {'met' if mb <= 15 else 'MISSED'}" if full else " (quick mode: smaller load)"))
        r0, rn = get(c, "rules", "0"), get(c, "rules", top)
        if r0 is not None and rn is not None:
            out(f"- 0 rules per endpoint: {r0} rules at N=0, {rn} at N={top} — "
                f"{'met' if r0 == rn else 'MISSED'}")
        pr = get(c, "ports") or {}
        if pr:
            ks = sorted(pr, key=int)
            out("- flat per-mapping cost: attach with one more mapping p50 " + ", ".join(
                f"{pr[k]['attach_port']['p50']:.2f} ms at {int(k):,}" for k in ks)
                + "; rules " + ", ".join(f"{pr[k]['rules']}" for k in ks))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "a" if args.append else "w") as fh:
            fh.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--engine", choices=list(ENGINES), required=True)
    r.add_argument("--mode", choices=list(MODES), default="quick")
    r.add_argument("--out", required=True, help="JSON results file")
    r.add_argument("--work", required=True, help="scratch directory (on the sandbox's /run)")
    r.add_argument("--socket", help="cnetd's control socket")
    r.add_argument("--pid", type=int, help="cnetd's pid (RSS)")
    r.add_argument("--cni-client", help="the cnetd-bench-cni binary")
    r.add_argument("--floor", help="the cnetd-bench-floor binary")
    r.add_argument("--wan", default="/run/netns/wan")
    r.add_argument("--host-addr", default="198.51.100.1")
    t = sub.add_parser("table")
    t.add_argument("results", nargs="+")
    t.add_argument("--out")
    t.add_argument("--append", action="store_true")
    a = p.parse_args()
    if a.cmd == "run":
        run(a)
    else:
        table(a)


if __name__ == "__main__":
    main()
