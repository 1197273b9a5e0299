#!/usr/bin/env python3
"""cnetd metrics benchmark (run by `tools/bench.sh --metrics`): what Prometheus costs.

With N endpoints present on the default network (each with one published port, so the port
gauges have work to do), measures:
1. GET /metrics on the control socket: p50/p99 of the round trip (a new connection per scrape, as
   Prometheus' scrape of a unix-socket proxy would) and the size of the exposition;
2. attach (connect) p50 with no scraper, with a scraper process scraping 10 times a second (150
   times Prometheus' default 15 s interval) and with one scraping in a tight loop (a stress
   figure: on a 2-core machine the loop and the io thread serving it take a core and a half);
   blocks alternate (none, 10/s, loop, twice) so drift hits all alike.

Never run it against a production daemon: it creates and deletes N+ namespaces. bench.sh runs it
inside a throwaway net+mount+PID namespace.

  metrics_bench.py SOCKET N [--quick]   (prints a markdown table)
"""
import multiprocessing
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnetd_bench import Api, pct, timed  # noqa: E402


def scrape(path):
    """One GET /metrics (its own connection); the body."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: cnetd\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"GET /metrics: {head[:80]!r}")
    return body


def scraper_loop(path, stop, interval):
    while not stop.is_set():
        scrape(path)
        if interval:
            stop.wait(interval)


def attach_block(api, names):
    """Connect then disconnect each of `names`; the connect latencies (ms)."""
    out = []
    for n in names:
        out.append(timed(lambda: api.req("POST", "/v1/networks/bridge/connect", {"Target": n})))
        api.req("POST", "/v1/networks/bridge/disconnect", {"Target": n})
    return out


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    quick = "--quick" in sys.argv
    api = Api(path)
    for i in range(n):
        api.req("POST", "/v1/netns", {"Name": f"p{i}"})
        api.req("POST", "/v1/networks/bridge/connect",
                {"Target": f"p{i}", "Publish": [f"{20000 + i}:80"]})
    scrapes = 50 if quick else 300
    t = [timed(lambda: scrape(path)) for _ in range(scrapes)]
    size = len(scrape(path))
    block = 10 if quick else 40
    names = [f"a{i}" for i in range(block)]
    for nm in names:
        api.req("POST", "/v1/netns", {"Name": nm})
    res = {0.1: [], 0: [], None: []}  # scrape interval (s) -> attach latencies; None: no scraper
    for _ in range(2):
        for interval in (None, 0.1, 0):
            if interval is None:
                res[None] += attach_block(api, names)
                continue
            stop = multiprocessing.Event()
            p = multiprocessing.Process(target=scraper_loop, args=(path, stop, interval))
            p.start()
            time.sleep(0.2)
            res[interval] += attach_block(api, names)
            stop.set()
            p.join()
    print(f"| {n} | {pct(t, 0.5):.2f} | {pct(t, 0.99):.2f} | {size} | "
          f"{pct(res[None], 0.5):.2f} | {pct(res[0.1], 0.5):.2f} | {pct(res[0], 0.5):.2f} |")

if __name__ == "__main__":
    main()
