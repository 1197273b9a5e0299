#!/usr/bin/python3
"""Plots of the side-by-side benchmark (compare.py's per-engine JSON results) as SVG files.

    /usr/bin/python3 tools/bench/plots.py <build>/bench/cnetd.json ... --prefix bench-results

writes, next to the markdown table (tools/bench.sh passes the table's path without ".md"):
  <prefix>-attach.svg         attach latency vs endpoints present, one line per engine (p50, with
                              a p95 band), log latency axis;
  <prefix>-port-mappings.svg  per-mapping cost vs mappings present: set-up time per mapping and
                              the latency of an attach with one more mapping, log-log;
  <prefix>-rules.svg          firewall rules in the sandbox vs endpoints present (and vs mappings).
Every number comes from the JSON compare.py wrote; nothing is measured here. Uses Debian's
python3-matplotlib (tools/bench.sh installs it when missing; run with /usr/bin/python3, the
interpreter Debian's package belongs to). Prints the files it wrote.
"""
import argparse
import json
import os
import time

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

# The engines in the table's order, with one colour and marker each (the same in every plot).
STYLE = {
    "cnetd": dict(label="cnetd", color="#1f77b4", marker="o"),
    "cni": dict(label="CNI plugins (libcni)", color="#d62728", marker="s"),
    "netavark": dict(label="netavark", color="#ff7f0e", marker="^"),
    "floor": dict(label="kernel floor", color="#7f7f7f", marker="D"),
}

plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.grid": True,
                     "grid.alpha": 0.3, "figure.dpi": 100})


def load(paths):
    res = {}
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        res[r["engine"]] = r
    return {e: res[e] for e in STYLE if e in res}


def subtitle(res):
    """One line: mode, start, machine and the load range the engines ran at."""
    r = next(iter(res.values()))
    loads = [v for x in res.values() for v in (x.get("load_before"), x.get("load_after"))
             if v is not None]
    return (f"{r['mode']} run of {r.get('started', time.strftime('%FT%TZ', time.gmtime()))}, "
            f"{os.cpu_count()} cores, kernel {os.uname().release}, load average "
            f"{min(loads, default=0):.1f}-{max(loads, default=0):.1f}")


def series(cells, key=None):
    """(x, cell) sorted by x, from a {"<n>": cell} map; cells without `key` left out."""
    pts = sorted((int(n), c) for n, c in (cells or {}).items())
    return [(n, c) for n, c in pts if key is None or (isinstance(c, dict) and key in c)]


NICE = [0] + [m * 10.0**e for e in range(-3, 7) for m in (1, 2, 5)]  # 0, 0.001 ... 1, 2, 5, 10


def plain_axis(axis, values=None):
    """Ticks at the measured `values` (or at 0, 1, 2, 5, 10, ... on log and symlog axes), labelled
    as plain numbers instead of 10^k."""
    if values:
        ticks = sorted(set(values))
    elif axis.get_scale() == "log":
        ticks = NICE[1:]
    else:  # symlog: 1 and 2 crowd 0 in its linear part
        ticks = [v for v in NICE if v == 0 or v >= 5]
    axis.set_major_locator(ticker.FixedLocator(ticks))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.10g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})  # no date: reruns diff cleanly
    plt.close(fig)
    print(path)


def plot_attach(res, path):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for eng, r in res.items():
        pts = series(r.get("attach"), "p50")
        if not pts:
            continue
        xs = [n for n, _ in pts]
        ax.plot(xs, [c["p50"] for _, c in pts], marker=STYLE[eng]["marker"],
                color=STYLE[eng]["color"],
                label=f"{STYLE[eng]['label']} ({pts[0][1]['n']} samples/cell)")
        ax.fill_between(xs, [c["p50"] for _, c in pts], [c["p95"] for _, c in pts],
                        color=STYLE[eng]["color"], alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=10)  # N starts at 0
    plain_axis(ax.yaxis)
    plain_axis(ax.xaxis, [int(n) for r in res.values() for n in r.get("attach", {})])
    ax.set_xlabel("endpoints already on the bridge (N)")
    ax.set_ylabel("attach latency, ms (line p50, band to p95)")
    ax.set_title("Attach latency vs endpoints present\n" + subtitle(res), fontsize=9)
    ax.legend(fontsize=8)
    save(fig, path)


def plot_ports(res, path):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for eng, r in res.items():
        pts = series(r.get("ports"), "attach_port")
        if not pts:
            continue
        xs = [n for n, _ in pts]
        st = dict(marker=STYLE[eng]["marker"], color=STYLE[eng]["color"], label=STYLE[eng]["label"])
        left.plot(xs, [c["setup_s"] * 1000 / n for n, c in pts], **st)
        right.plot(xs, [c["attach_port"]["p50"] for _, c in pts], **st)
        right.fill_between(xs, [c["attach_port"]["p50"] for _, c in pts],
                           [c["attach_port"]["p95"] for _, c in pts], color=STYLE[eng]["color"],
                           alpha=0.15, linewidth=0)
    sizes = [int(n) for r in res.values() for n in r.get("ports", {})]
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_axis(ax.yaxis)
        plain_axis(ax.xaxis, sizes)
        ax.set_xlabel("mappings present (100 per endpoint)")
        ax.legend(fontsize=8)
    left.set_ylabel("set-up time per mapping, ms")
    left.set_title("Setting up N mappings: cost per mapping", fontsize=9)
    right.set_ylabel("attach with one more mapping, ms (p50, band to p95)")
    right.set_title("The (N+1)-th mapping", fontsize=9)
    fig.suptitle("Per-mapping cost vs mappings present\n" + subtitle(res), fontsize=9)
    save(fig, path)


def plot_rules(res, path):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for eng, r in res.items():
        st = dict(marker=STYLE[eng]["marker"], color=STYLE[eng]["color"], label=STYLE[eng]["label"])
        # rules[N] is counted while N + the timed samples are attached (compare.py phase_attach).
        pts = [(n + r["attach"][str(n)]["n"], v) for n, v in series(r.get("rules"))
               if v is not None and str(n) in r.get("attach", {})]
        if pts:
            left.plot([x for x, _ in pts], [v for _, v in pts], **st)
        mp = [(n, c["rules"]) for n, c in series(r.get("ports"), "rules") if c["rules"] is not None]
        if mp:
            right.plot([x for x, _ in mp], [v for _, v in mp], **st)
    left.set_xscale("symlog", linthresh=10)
    plain_axis(left.xaxis)
    left.set_xlabel("endpoints attached (N + the timed samples)")
    left.set_title("Rules vs endpoints", fontsize=9)
    right.set_xscale("log")
    plain_axis(right.xaxis, [x for line in right.get_lines() for x in line.get_xdata()])
    right.set_xlabel("mappings present")
    right.set_title("Rules vs published port mappings", fontsize=9)
    left.set_yscale("symlog", linthresh=10)  # the floor has 0 rules
    right.set_yscale("log")
    top = max([y for line in right.get_lines() for y in line.get_ydata()], default=10)
    right.set_ylim(1, top * 3)  # room above the highest line for the legend
    for ax in (left, right):
        plain_axis(ax.yaxis)
        ax.set_ylabel("rules in the sandbox's nft ruleset")
        ax.legend(fontsize=8)
    fig.suptitle("Firewall rules (the anchors' iptables-nft rules counted)\n" + subtitle(res),
                 fontsize=9)
    save(fig, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="compare.py run --out files")
    p.add_argument("--prefix", required=True, help="output path prefix, e.g. bench-results")
    a = p.parse_args()
    res = load(a.results)
    if not res:
        raise SystemExit("plots.py: no engine results in " + " ".join(a.results))
    plot_attach(res, a.prefix + "-attach.svg")
    plot_ports(res, a.prefix + "-port-mappings.svg")
    plot_rules(res, a.prefix + "-rules.svg")


if __name__ == "__main__":
    main()
