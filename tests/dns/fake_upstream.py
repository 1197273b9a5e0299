#!/usr/bin/env python3
"""A fake upstream DNS server for cnetd's tests and benchmark (stdlib only: socket, threading).

Serves UDP and TCP on every --listen address (port 53 unless given as ADDR:PORT or [V6]:PORT)
and answers by the first label of the asked name, so one server covers every forwarding case:

  tc.*        over UDP: an empty answer with TC set (the client must retry over TCP);
              over TCP: the normal answer
  servfail.*  SERVFAIL          refused.*  REFUSED          nxdomain.*  NXDOMAIN
  drop.*      no answer at all (a dead server for that name)
  slow.*      the normal answer after --slow-ms milliseconds (default 2000)
  MODE<N>.*   (e.g. servfail2.*, drop2.*) that mode on the server with --tag N only; the others
              answer normally (failover to the next server)
  anything else: the normal answer: A 203.0.113.<tag>, AAAA 2001:db8:113::<tag>, other types
              an empty NOERROR; TTL 60. --tag tells which server answered.

--mode MODE applies one of servfail, refused, nxdomain, drop, slow, tc to every name (a failing
or dead server as a whole). Each query is logged as one line "<udp|tcp> <name> <type> <peer>"
to --log (default stdout), flushed at once, so a test can see what reached the server and from
where. --ready FILE is created once every socket is bound.

  python3 tests/dns/fake_upstream.py --listen 198.51.100.2 --tag 2 --log /tmp/up.log
"""
import argparse
import socket
import struct
import sys
import threading
import time

RCODES = {"servfail": 2, "nxdomain": 3, "refused": 5}
QTYPE_A, QTYPE_AAAA = 1, 28
MODES = ("answer", "tc", "servfail", "refused", "nxdomain", "drop", "slow")


def parse_question(msg):
    """(id, flags, qname text, qtype, end offset of the question) or None when malformed."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd < 1:
        return None
    labels, off = [], 12
    while True:
        if off >= len(msg):
            return None
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n > 63 or off + n > len(msg):
            return None
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    if off + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    return qid, flags, ".".join(labels), qtype, off + 4


def mode_of(name, forced, tag):
    if forced != "answer":
        return forced
    first = name.split(".", 1)[0].lower()
    mode = first.rstrip("0123456789")
    if mode not in MODES:
        return "answer"
    only = first[len(mode):]
    return mode if not only or int(only) == tag else "answer"


def build_reply(msg, q, mode, tag, over_tcp):
    """The reply bytes for query `msg` (question `q`), or None to stay silent."""
    qid, flags, name, qtype, qend = q
    question = msg[12:qend]
    rd = flags & 0x0100
    rcode, tc, answers = 0, 0, []
    if mode in RCODES:
        rcode = RCODES[mode]
    elif mode == "tc" and not over_tcp:
        tc = 0x0200
    elif qtype == QTYPE_A:
        answers.append(struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, 60, 4) + bytes([203, 0, 113, tag]))
    elif qtype == QTYPE_AAAA:
        addr = socket.inet_pton(socket.AF_INET6, f"2001:db8:113::{tag:x}")
        answers.append(struct.pack("!HHHIH", 0xC00C, QTYPE_AAAA, 1, 60, 16) + addr)
    head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0080 | rd | tc | rcode, 1, len(answers), 0, 0)
    return head + question + b"".join(answers)


class Server:
    def __init__(self, args):
        self.args = args
        self.log_lock = threading.Lock()
        self.out = open(args.log, "a", buffering=1) if args.log else sys.stdout

    def log(self, proto, q, peer):
        name, qtype = (q[2], q[3]) if q else ("<malformed>", 0)
        with self.log_lock:
            self.out.write(f"{proto} {name} {qtype} {peer[0]}\n")
            self.out.flush()

    def reply(self, msg, over_tcp, peer):
        q = parse_question(msg)
        self.log("tcp" if over_tcp else "udp", q, peer)
        if q is None:
            return None
        mode = mode_of(q[2], self.args.mode, self.args.tag)
        if mode == "drop":
            return None
        if mode == "slow":
            time.sleep(self.args.slow_ms / 1000.0)
        return build_reply(msg, q, mode, self.args.tag, over_tcp)

    def serve_udp(self, sock):
        while True:
            msg, peer = sock.recvfrom(65535)
            q = parse_question(msg)
            if q is not None and mode_of(q[2], self.args.mode, self.args.tag) == "slow":
                # A slow answer must not hold up the others: its own thread.
                threading.Thread(target=self._udp_one, args=(sock, msg, peer), daemon=True).start()
            else:
                self._udp_one(sock, msg, peer)

    def _udp_one(self, sock, msg, peer):
        out = self.reply(msg, False, peer)
        if out is not None:
            sock.sendto(out, peer)

    def serve_tcp(self, sock):
        while True:
            conn, peer = sock.accept()
            threading.Thread(target=self._tcp_conn, args=(conn, peer), daemon=True).start()

    def _tcp_conn(self, conn, peer):
        with conn:
            conn.settimeout(5)
            try:
                while True:
                    head = self._read(conn, 2)
                    if head is None:
                        return
                    msg = self._read(conn, struct.unpack("!H", head)[0])
                    if msg is None:
                        return
                    out = self.reply(msg, True, peer)
                    if out is not None:
                        conn.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                return

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


def split_addr(text):
    """"ADDR", "ADDR:PORT", "[V6]:PORT" or bare "V6" -> (family, addr, port)."""
    if text.startswith("["):
        addr, _, port = text[1:].partition("]:")
        return socket.AF_INET6, addr, int(port or 53)
    if text.count(":") > 1:
        return socket.AF_INET6, text, 53
    addr, _, port = text.partition(":")
    return socket.AF_INET, addr, int(port or 53)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--listen", action="append", required=True, help="ADDR[:PORT], repeatable")
    p.add_argument("--tag", type=int, default=1, help="last byte of the answered A (1-254)")
    p.add_argument("--mode", choices=MODES, default="answer", help="one mode for every name")
    p.add_argument("--slow-ms", type=int, default=2000)
    p.add_argument("--log", default="", help="query log file (default: stdout)")
    p.add_argument("--ready", default="", help="file created once listening")
    args = p.parse_args()
    srv = Server(args)
    threads = []
    for text in args.listen:
        fam, addr, port = split_addr(text)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, port))
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, port))
        t.listen(64)
        threads.append(threading.Thread(target=srv.serve_udp, args=(u,), daemon=True))
        threads.append(threading.Thread(target=srv.serve_tcp, args=(t,), daemon=True))
    for t in threads:
        t.start()
    if args.ready:
        open(args.ready, "w").close()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
