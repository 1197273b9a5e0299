// The one-client DNS load of tools/bench.sh (not installed): one UDP socket, one query in flight,
// the next sent when the previous answer arrived; prints queries/s and latency percentiles as one
// JSON line. dnsperf covers many queries in flight, but with one (-q 1) it stalls, and it prints
// no percentiles; this client measures both of what the issue asks for one client.
//
//   cnetd-bench-dns-pingpong SERVER PORT NAME SECONDS
//   {"queries":41234,"lost":0,"qps":20617,"p50_us":44,"p99_us":81}
//
// A query unanswered within 1 s counts as lost (and is not in the latencies).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// A query for `name`, type A, id `id`, RD set.
std::string query(uint16_t id, const std::string& name) {
    std::string q = {char(id >> 8), char(id & 0xff), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string::npos) dot = name.size();
        if (dot > start) {
            q += char(dot - start);
            q += name.substr(start, dot - start);
        }
        start = dot + 1;
    }
    q += std::string{0, 0, 1, 0, 1};
    return q;
}

// Sends `q` and waits for the reply with its id; false after 1 s.
bool roundtrip(int s, std::string& q) {
    if (send(s, q.data(), q.size(), 0) != static_cast<ssize_t>(q.size())) return false;
    char buf[1500];
    for (;;) {
        pollfd p{s, POLLIN, 0};
        if (poll(&p, 1, 1000) != 1) return false;
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n >= 2 && buf[0] == q[0] && buf[1] == q[1]) return true;  // else a late reply
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVER PORT NAME SECONDS\n", argv[0]);
        return 2;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(atoi(argv[2])));
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        perror("socket");
        return 1;
    }
    using clock = std::chrono::steady_clock;
    const auto end = clock::now() + std::chrono::duration<double>(atof(argv[4]));
    std::vector<double> us;
    us.reserve(1 << 20);
    long lost = 0;
    const auto start = clock::now();
    for (uint16_t id = 1; clock::now() < end; ++id) {
        std::string q = query(id, argv[3]);
        auto t0 = clock::now();
        if (roundtrip(s, q)) {
            us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
        } else {
            ++lost;
        }
    }
    const double secs = std::chrono::duration<double>(clock::now() - start).count();
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) {
        return us.empty() ? 0.0 : us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
    };
    printf("{\"queries\":%zu,\"lost\":%ld,\"qps\":%.0f,\"p50_us\":%.0f,\"p99_us\":%.0f}\n",
           us.size(), lost, static_cast<double>(us.size()) / secs, pct(0.50), pct(0.99));
    return 0;
}
