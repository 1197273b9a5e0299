// Ports published on [::1] (IPv6 loopback), served by the daemon's userland relay
// (daemon/relay.hpp): the real cnetd and netctl, real TCP and UDP traffic from the host to [::1].
//
// Each test gets a fresh network namespace (the "host", where cnetd runs, dual stack) with a wan
// namespace routed behind it:
//
//   wan netns: eth0 198.51.100.2/24 2001:db8:1::2/64 --- wan0 198.51.100.1/24 2001:db8:1::1/64
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

sockaddr_in6 loopback6(int port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(port));
    sa.sin6_addr = in6addr_loopback;
    return sa;
}

// connect() to [::1]:port from the test's namespace: 0 on success, else errno.
int connect_errno(int port) {
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 sa = loopback6(port);
    int rc = connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 ? 0 : errno;
    close(s);
    return rc;
}

// A server in a container that reads until EOF and then answers with the byte count it read
// ("1048576\n"): proves bulk transfer and that a half-close is passed on by the relay.
class CountServer {
public:
    CountServer(const std::string& netns, int port) {
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) != 0) return;
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            int nsfd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
            if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) _exit(90);
            int s = socket(AF_INET6, SOCK_STREAM, 0);
            int one = 1;
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_in6 sa{};
            sa.sin6_family = AF_INET6;
            sa.sin6_port = htons(static_cast<uint16_t>(port));
            if (bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(s, 64) != 0)
                _exit(91);
            char ok = 1;
            if (write(ready[1], &ok, 1) != 1) _exit(92);
            for (;;) {
                int c = accept(s, nullptr, nullptr);
                if (c < 0) continue;
                static char buf[1 << 16];
                unsigned long total = 0;
                ssize_t n;
                while ((n = read(c, buf, sizeof buf)) > 0) total += static_cast<unsigned long>(n);
                std::string line = std::to_string(total) + "\n";
                (void)!send(c, line.data(), line.size(), MSG_NOSIGNAL);
                close(c);
            }
        }
        close(ready[1]);
        char b = 0;
        pollfd p{ready[0], POLLIN, 0};
        ready_ = poll(&p, 1, 5000) == 1 && read(ready[0], &b, 1) == 1;
        close(ready[0]);
    }
    ~CountServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    bool ready() const { return ready_; }

private:
    pid_t pid_ = -1;
    bool ready_ = false;
};

// Sends `bytes` to [::1]:port, half-closes, and returns what the CountServer answered ("" on
// failure); `seconds` receives the time from connect to the answer.
std::string send_count(int port, size_t bytes, double* seconds = nullptr) {
    auto t0 = std::chrono::steady_clock::now();
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in6 sa = loopback6(port);
    if (connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        close(s);
        return "";
    }
    std::vector<char> chunk(1 << 16, 'x');
    size_t sent = 0;
    while (sent < bytes) {
        ssize_t n = send(s, chunk.data(), std::min(chunk.size(), bytes - sent), MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
    }
    shutdown(s, SHUT_WR);
    std::string out;
    char buf[64];
    ssize_t n;
    while ((n = read(s, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(s);
    if (seconds)
        *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// In-process: connect to [::1]:port, read the whole answer, close (for the conn/s number).
std::string read_all(int port) {
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{2, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in6 sa = loopback6(port);
    std::string out;
    if (connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        char buf[256];
        ssize_t n;
        while ((n = read(s, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
    close(s);
    return out;
}

long rss_kb(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

class Relay : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        add_wan(/*ipv6=*/true);
        start("ipv6: true\n");
    }
    void TearDown() override {
        servers_.clear();
        DaemonTest::TearDown();
    }

    // netns create + connect to the default network with `extra` (-p ...).
    void container(const std::string& name, std::vector<std::string> extra = {}) {
        DaemonTest::container(name, "bridge", std::move(extra));
    }
    template <class S, class... A>
    void serve(A&&... a) {
        auto s = std::make_unique<S>(std::forward<A>(a)...);
        ASSERT_TRUE(s->ready());
        servers_.push_back(
            std::shared_ptr<void>(s.release(), [](void* p) { delete static_cast<S*>(p); }));
    }
    // The bridge's IPv6 address (what the container sees as the relay's address).
    std::string gateway6() {
        json j = ip_json({"-6", "addr", "show", "dev", "docker0", "scope", "global"});
        if (!j.is_array() || j.empty()) return "";
        for (const auto& a : j[0]["addr_info"]) return a["local"];
        return "";
    }
    // The number of elements of the nft published map (the kernel path).
    size_t published_elems() {
        CmdResult r = run({"nft", "-j", "list", "map", "inet", "cnetd", "published"});
        if (r.status != 0) return 0;
        json m = json::parse(r.out, nullptr, false);
        for (const auto& o : m["nftables"])
            if (o.contains("map")) return o["map"].value("elem", json::array()).size();
        return 0;
    }
    // Waits (up to 2 s) until try_bind on [::1]:port returns `want`.
    static int bind_result(bool tcp, int port, int want) {
        int got = -1;
        for (int i = 0; i < 200; ++i) {
            got = try_bind(tcp, "::1", port);
            if (got == want) break;
            std::this_thread::sleep_for(10ms);
        }
        return got;
    }
    // Waits (up to 3 s) for the relay after a (re)start: it syncs once the daemon serves.
    static std::string whoami_eventually(int port) {
        std::string got;
        for (int i = 0; i < 30 && got.empty(); ++i) {
            got = tcp_whoami("", "::1", port, 100ms);
            if (got.empty()) std::this_thread::sleep_for(100ms);
        }
        return got;
    }

    std::vector<std::shared_ptr<void>> servers_;
};

TEST_F(Relay, TcpAndUdpReachTheContainerThroughIpv6Loopback) {
    container("a", {"-p", "[::1]:8080:80", "-p", "[::1]:8081:81/udp", "-p", "[::1]:8082:82", "-p",
                    "[::1]:8083:83"});
    serve<EchoServer>(ns("a"), "::", 80);
    serve<TagServer>(ns("a"), TagServer::Proto::Udp, "::", 81, "a");
    serve<WhoAmIServer>(ns("a"), "::", 82);
    serve<CountServer>(ns("a"), 83);

    EXPECT_TRUE(tcp_echo("", "::1", 8080)) << d.log();
    EXPECT_EQ(udp_ask("", "::1", 8081), "a") << d.log();
    // The container sees the relay, i.e. the bridge's IPv6 gateway address, as its peer.
    const std::string gw = gateway6();
    ASSERT_FALSE(gw.empty());
    EXPECT_EQ(tcp_whoami("", "::1", 8082), gw);
    // 4 MiB in, half-close, the answer comes back over the still-open other direction.
    EXPECT_EQ(send_count(8083, 4u << 20), std::to_string(4u << 20));
    // A UDP client keeps its flow: several datagrams from one socket all get answers.
    {
        int u = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in6 to = loopback6(8081);
        for (int i = 0; i < 3; ++i) {
            ASSERT_EQ(sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
            pollfd p{u, POLLIN, 0};
            char buf[16] = {};
            ASSERT_EQ(poll(&p, 1, 1000), 1) << i;
            EXPECT_EQ(std::string(buf, static_cast<size_t>(recv(u, buf, sizeof buf, 0))), "a");
        }
        close(u);
    }

    // No nft map element for [::1]: nothing in the kernel path.
    EXPECT_EQ(published_elems(), 0u);
    // Held: no other process can bind the ports.
    EXPECT_EQ(try_bind(true, "::1", 8080), EADDRINUSE);
    EXPECT_EQ(try_bind(false, "::1", 8081), EADDRINUSE);
    // Shown like any other binding.
    json eps = d.netctl_json({"port", "ls"});
    EXPECT_NE(eps.dump().find("::1"), std::string::npos) << eps.dump();
    // Local only: the wan reaches nothing on the host's own IPv6 address at that port (a [::1]
    // binding covers no other address), while the container itself is there.
    EXPECT_EQ(tcp_whoami(wan_path(), "2001:db8:1::1", 8082, 700ms), "");

    // Disconnect: the listener is gone by the time the answer comes (connect refused), the port
    // is released.
    ok({"network", "disconnect", "bridge", "a"});
    EXPECT_EQ(connect_errno(8080), ECONNREFUSED);
    EXPECT_EQ(udp_ask("", "::1", 8081, 300ms), "");
    EXPECT_EQ(bind_result(true, 8080, 0), 0);
    EXPECT_EQ(bind_result(false, 8081, 0), 0);
    // Published again at once on the same port: served again.
    ok({"network", "connect", "bridge", "a", "-p", "[::1]:8080:80"});
    EXPECT_TRUE(tcp_echo("", "::1", 8080)) << d.log();
}

TEST_F(Relay, ConflictsUseDockersWords) {
    container("a", {"-p", "[::1]:8080:80"});
    ok({"netns", "create", "b"});
    std::string err = fails({"network", "connect", "bridge", "b", "-p", "[::1]:8080:80"});
    EXPECT_NE(err.find("Bind for [::1]:8080 failed: port is already allocated"), std::string::npos)
        << err;
    err = fails({"network", "connect", "bridge", "b", "-p", "[::]:8080:80"});
    EXPECT_NE(err.find("port is already allocated"), std::string::npos) << err;
    // Another process holding [::1]:9999: the kernel's answer, nothing published.
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 sa = loopback6(9999);
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    err = fails({"network", "connect", "bridge", "b", "-p", "[::1]:9999:80"});
    EXPECT_NE(err.find("Bind for [::1]:9999 failed"), std::string::npos) << err;
    close(s);
}

TEST_F(Relay, RangeMapsOneToOne) {
    container("r", {"-p", "[::1]:8000-8002:80-82"});
    for (int i = 0; i < 3; ++i)
        serve<TagServer>(ns("r"), TagServer::Proto::Tcp, "::", 80 + i, "r" + std::to_string(i));
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(tcp_whoami("", "::1", 8000 + i), "r" + std::to_string(i)) << 8000 + i;
    EXPECT_EQ(connect_errno(8003), ECONNREFUSED);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(try_bind(true, "::1", 8000 + i), EADDRINUSE);
}

TEST_F(Relay, SctpOnIpv6LoopbackIsAPreciseErrorAndChangesNothing) {
    container("a", {"-p", "[::1]:8080:80"});
    ok({"netns", "create", "s"});
    const std::string before = kernel_snapshot(d);
    const std::string ports_before = d.netctl({"port", "ls"}).out;
    std::string err = fails({"network", "connect", "bridge", "s", "-p", "[::1]:7070:70/sctp"});
    EXPECT_NE(err.find("[::1]:7070->70/sctp: proto sctp cannot be published on [::1]"),
              std::string::npos)
        << err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(d.netctl({"port", "ls"}).out, ports_before);
    EXPECT_EQ(try_bind(true, "::1", 7070), 0);
}

TEST_F(Relay, ListenersComeBackAfterARestart) {
    container("a", {"-p", "[::1]:8080:80", "-p", "[::1]:8081:81/udp"});
    serve<TagServer>(ns("a"), TagServer::Proto::Tcp, "::", 80, "a");
    serve<TagServer>(ns("a"), TagServer::Proto::Udp, "::", 81, "a");
    ASSERT_EQ(tcp_whoami("", "::1", 8080), "a") << d.log();

    // SIGTERM and start again: served again, held again.
    d.kill(SIGTERM);
    EXPECT_EQ(connect_errno(8080), ECONNREFUSED) << "the relay is part of the daemon";
    std::string log;
    ASSERT_TRUE(d.start(&log)) << log;
    EXPECT_EQ(whoami_eventually(8080), "a") << d.log();
    EXPECT_EQ(udp_ask("", "::1", 8081), "a");
    EXPECT_EQ(try_bind(true, "::1", 8080), EADDRINUSE) << d.log();
    EXPECT_EQ(try_bind(false, "::1", 8081), EADDRINUSE);

    // A crash (SIGKILL) too.
    d.kill(SIGKILL);
    ASSERT_TRUE(d.start(&log)) << log;
    EXPECT_EQ(whoami_eventually(8080), "a") << d.log();
    EXPECT_EQ(udp_ask("", "::1", 8081), "a");
}

// Numbers for the report (printed, with loose sanity bounds only): connections per second and
// one stream's throughput through the relay, RSS of the daemon for 100 [::1] listeners.
TEST_F(Relay, Measure) {
    const long rss0 = rss_kb(d.pid());
    container("m", {"-p", "[::1]:8080:80", "-p", "[::1]:8083:83", "-p", "[::1]:9000-9099:90-189"});
    serve<TagServer>(ns("m"), TagServer::Proto::Tcp, "::", 80, "m");
    serve<CountServer>(ns("m"), 83);
    ASSERT_EQ(tcp_whoami("", "::1", 9099, 1000ms), "") << "nothing listens on 189 in m";
    ASSERT_EQ(whoami_eventually(8080), "m");
    const long rss1 = rss_kb(d.pid());

    const int n = 1000;
    auto t0 = std::chrono::steady_clock::now();
    int good = 0;
    for (int i = 0; i < n; ++i) good += read_all(8080) == "m\n";
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(good, n);

    const size_t bytes = 256u << 20;
    double stream_secs = 0;
    EXPECT_EQ(send_count(8083, bytes, &stream_secs), std::to_string(bytes));
    const long rss2 = rss_kb(d.pid());
    std::printf("relay: %d tcp connections (connect, 1 line, close) in %.2f s: %.0f conn/s\n", n,
                secs, n / secs);
    std::printf("relay: one stream %zu MiB in %.2f s: %.0f MiB/s\n", bytes >> 20, stream_secs,
                (bytes >> 20) / stream_secs);
    std::printf(
        "relay: daemon RSS %ld kB before, %ld kB with 102 [::1] listeners (+%ld kB), %ld "
        "kB after the traffic\n",
        rss0, rss1, rss1 - rss0, rss2);
    EXPECT_GT(n / secs, 20.0);  // loose: only catches a broken relay
}

}  // namespace
