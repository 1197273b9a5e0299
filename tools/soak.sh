#!/usr/bin/env bash
# Soak: cnetd under connect / disconnect / publish / unpublish churn at full rate for a long time,
# inside a throwaway sandbox (unshare --net --mount --pid; nothing outside it is touched). Prints
# cnetd's RSS at the start, every minute and at the end, the request counts, and the leak check of
# the sanitizer build at exit (LSan). Not part of CI.
#
#   sudo tools/soak.sh            # 600 s
#   sudo tools/soak.sh 60         # a short run
#   CNETD_BIN=build/daemon/cnetd sudo tools/soak.sh   # another binary (no LSan then)
#
# Default binary: build-fuzz/daemon/cnetd (clang, ASan + UBSan; tests/fuzz/run.sh sets it up),
# built here if missing. ASan's quarantine is capped at 16 MiB so that RSS stays meaningful.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}

if [[ -z "${CNETD_SOAK_INSIDE:-}" ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "soak: needs root (it runs inside private namespaces)" >&2; exit 1; }
  if [[ -z "${CNETD_BIN:-}" ]]; then
    if [[ ! -f "$root/build-fuzz/build.ninja" ]]; then
      (cd "$root" && CXX=clang++ meson setup build-fuzz -Dfuzz=enabled \
         -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null)
    fi
    ninja -C "$root/build-fuzz" daemon/cnetd >/dev/null
    export CNETD_BIN=$root/build-fuzz/daemon/cnetd
  fi
  exec unshare --net --mount --pid --fork --propagation private --mount-proc -- \
    env CNETD_SOAK_INSIDE=1 "$0" "$@"
fi

mount -t tmpfs tmpfs /run
ip link set lo up
dir=$(mktemp -d /tmp/cnetd-soak-XXXXXX)
cleanup() {
  for f in "$dir"/netns/*; do [[ -e "$f" ]] && umount -l "$f" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
: >"$dir/cnetd.yaml"
export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16:log_path=$dir/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$dir/ubsan"
"$CNETD_BIN" --config "$dir/cnetd.yaml" --socket "$dir/cnetd.sock" --state-dir "$dir/state" \
  --netns-dir "$dir/netns" --log-level warning 2>"$dir/cnetd.log" &
pid=$!
for _ in $(seq 600); do [[ -S "$dir/cnetd.sock" ]] && break; sleep 0.1; done  # 60 s: valgrind is slow

set +e
python3 - "$dir/cnetd.sock" "$pid" "$secs" <<'PY'
import http.client, json, socket, sys, threading, time

sock_path, pid, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

class Conn(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=60)
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)

def call(c, method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"} if body is not None else {})
    r = c.getresponse()
    data = r.read()
    return r.status, data

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

THREADS, PER_THREAD = 4, 8
c = Conn()
for n in range(2):
    st, body = call(c, "POST", "/v1/networks", {"Name": f"soak{n}", "Subnet": f"10.210.{n}.0/24"})
    assert st == 201, body
for t in range(THREADS):
    for k in range(PER_THREAD):
        st, body = call(c, "POST", "/v1/netns", {"Name": f"s{t}-{k}"})
        assert st == 201, body

counts = {"connect": 0, "disconnect": 0, "network": 0, "read": 0, "errors": 0}
lock = threading.Lock()
stop = time.monotonic() + secs
first_error = []

def worker(t):
    c = Conn()
    i = 0
    while time.monotonic() < stop:
        k = i % PER_THREAD
        net = f"soak{(i // PER_THREAD) % 2}"
        port = 20000 + t * 100 + k
        ops = []
        st, body = call(c, "POST", f"/v1/networks/{net}/connect",
                        {"Target": f"s{t}-{k}", "Name": f"e{t}-{k}",
                         "Publish": [f"{port}:80", f"127.0.0.1:{port}:53/udp", "8080-8089"]})
        ops.append(("connect", st == 201, body))
        st, body = call(c, "POST", f"/v1/networks/{net}/disconnect", {"Target": f"e{t}-{k}"})
        ops.append(("disconnect", st == 204, body))
        if i % 10 == 0:
            st, body = call(c, "GET", "/v1/ports")
            ops.append(("read", st == 200, body))
        if t == 0 and i % 50 == 0:
            st, body = call(c, "POST", "/v1/networks", {"Name": "tmpnet", "Subnet": "10.211.0.0/24"})
            ok = st == 201
            st, body2 = call(c, "DELETE", "/v1/networks/tmpnet")
            ops.append(("network", ok and st == 204, body + body2))
        with lock:
            for name, ok, body in ops:
                counts[name] += 1
                if not ok:
                    counts["errors"] += 1
                    if not first_error:
                        first_error.append(f"{name}: {body[:300]!r}")
        i += 1

start_rss = rss_kib()
t0 = time.monotonic()
print(f"soak: {secs:.0f} s, {THREADS} clients; cnetd pid {pid}; RSS at start {start_rss} KiB", flush=True)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
for th in threads:
    th.start()
samples = [start_rss]
while any(th.is_alive() for th in threads):
    time.sleep(min(60, max(1, stop - time.monotonic())))
    if time.monotonic() < stop + 1:
        r = rss_kib()
        samples.append(r)
        with lock:
            done = counts["connect"]
        print(f"soak: t={time.monotonic() - t0:5.0f} s  RSS {r} KiB  connects {done}", flush=True)
for th in threads:
    th.join()
end_rss = rss_kib()
el = time.monotonic() - t0
print(f"soak: done in {el:.0f} s: {counts['connect']} connects, {counts['disconnect']} disconnects "
      f"({counts['connect'] / el:.0f}/s), {counts['network']} network create+remove, "
      f"{counts['read']} reads, {counts['errors']} errors", flush=True)
if first_error:
    print("soak: first error: " + first_error[0], flush=True)
print(f"soak: RSS start {start_rss} KiB, end {end_rss} KiB, max {max(samples + [end_rss])} KiB, "
      f"growth {end_rss - start_rss:+d} KiB", flush=True)
st, body = call(Conn(), "GET", "/v1/info")  # `c` was idle longer than the idle timeout
info = json.loads(body)
print(f"soak: daemon after the run: {info['Networks']} networks, {info['Endpoints']} endpoints", flush=True)
sys.exit(1 if counts["errors"] else 0)
PY
client=$?

kill -TERM "$pid"
wait "$pid" || true
leaks=$(cat "$dir"/asan.* 2>/dev/null || true)
ub=$(cat "$dir"/ubsan.* 2>/dev/null || true)
if [[ -n "$leaks" ]]; then
  echo "soak: sanitizer report at exit:"; echo "$leaks" | head -60
  client=1
elif [[ -n "$ub" ]]; then
  echo "soak: UBSan report:"; echo "$ub" | head -40
  client=1
elif grep -q __asan_init "$CNETD_BIN" 2>/dev/null; then
  echo "soak: sanitizer check at exit: no leaks, no errors reported (binary: $CNETD_BIN)"
else
  echo "soak: $CNETD_BIN is not an ASan build: no leak check (use the default binary, or valgrind)"
fi
exit $client
