// daemon/dns_server.hpp directly, as root inside the sandbox (tests/daemon/meson.build runs this
// binary under unshare): the test plays the engine. It makes two "container" namespaces (ip netns
// add), opens the resolver's sockets on 127.0.0.11 inside them the way Netns::open_dns_listener
// does, and calls DnsServer::sync() with a hand-made network list, as the worker's snapshot hook
// would. Clients are real: dig run inside the namespace (ip netns exec) and raw UDP/TCP sockets
// opened there. Upstream resolvers are small fake servers on loopback addresses of the test's own
// namespace (the daemon's "host" namespace: forwarding is done from there).
// Ports: the DNAT of 127.0.0.11:53 is the engine's (tests/kernel/dns_listener_test.cpp); here the
// clients ask the listener's own port.
#include "daemon/dns_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "dns/wire.hpp"
#include "dns/zone.hpp"

namespace cnetd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kRoot = "/run/dns-test";
const std::string kEtc = kRoot + "/etc/resolv.conf";
const std::string kSystemd = kRoot + "/systemd/resolv.conf";
const std::string kResolvDir = kRoot + "/resolv";

void shell(const std::string& cmd) {
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

std::string output_of(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[512];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
}

void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::trunc) << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs f on a thread inside the named namespace: sockets it opens stay there.
template <class F>
auto in_netns(const std::string& name, F f) {
    std::optional<decltype(f())> out;
    std::thread t([&] {
        UniqueFd ns(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns.valid() || ::setns(ns.get(), CLONE_NEWNET) != 0) std::abort();
        out.emplace(f());
    });
    t.join();
    return std::move(*out);
}

NetnsId netns_id(const std::string& name) {
    struct stat st {};
    EXPECT_EQ(::stat(("/run/netns/" + name).c_str(), &st), 0);
    return NetnsId{st.st_dev, st.st_ino};
}

sockaddr_in v4addr(const std::string& ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    return sa;
}

uint16_t port4_of(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

UniqueFd bound(int type, const std::string& ip, uint16_t port) {
    UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = v4addr(ip, port);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) s.reset();
    if (s.valid() && type == SOCK_STREAM) ::listen(s.get(), 128);
    return s;
}

// The resolver's sockets of one namespace, as Netns::open_dns_listener opens them.
struct Listener {
    UniqueFd udp, tcp;
    uint16_t udp_port = 0, tcp_port = 0;
};

Listener open_listener(const std::string& ns) {
    return in_netns(ns, [] {
        Listener l;
        l.udp = bound(SOCK_DGRAM, "127.0.0.11", 0);
        l.tcp = bound(SOCK_STREAM, "127.0.0.11", 0);
        l.udp_port = port4_of(l.udp.get());
        l.tcp_port = port4_of(l.tcp.get());
        return l;
    });
}

// --- DNS messages, by hand (the test must not trust the codec it tests) ---

std::vector<uint8_t> make_query(uint16_t id, const std::string& name, uint16_t qtype,
                                uint8_t opcode = 0) {
    std::vector<uint8_t> q{static_cast<uint8_t>(id >> 8),
                           static_cast<uint8_t>(id),
                           static_cast<uint8_t>(0x01 | opcode << 3),
                           0,
                           0,
                           1,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0};
    std::stringstream ss(name);
    for (std::string label; std::getline(ss, label, '.');) {
        q.push_back(static_cast<uint8_t>(label.size()));
        q.insert(q.end(), label.begin(), label.end());
    }
    q.insert(q.end(), {0, static_cast<uint8_t>(qtype >> 8), static_cast<uint8_t>(qtype), 0, 1});
    return q;
}

// Reads a (possibly compressed) name at `at`; `at` moves past it.
std::string read_name(const std::vector<uint8_t>& p, size_t& at) {
    std::string out;
    size_t pos = at;
    bool jumped = false;
    for (int guard = 0; pos < p.size() && guard < 128; ++guard) {
        const uint8_t len = p[pos];
        if (len == 0) {
            if (!jumped) at = pos + 1;
            return out;
        }
        if ((len & 0xC0) == 0xC0) {
            if (!jumped) at = pos + 2;
            jumped = true;
            pos = size_t(len & 0x3F) << 8 | p[pos + 1];
            continue;
        }
        if (!out.empty()) out += '.';
        out.append(reinterpret_cast<const char*>(&p[pos + 1]), len);
        pos += 1 + len;
    }
    return out;
}

struct Answer {
    uint16_t id = 0;
    int rcode = -1;
    bool tc = false, aa = false;
    int ancount = 0;
    std::vector<std::string> a, aaaa, ptr;
    uint32_t ttl = 0;
};

std::optional<Answer> parse_answer(const std::vector<uint8_t>& p) {
    if (p.size() < 12) return std::nullopt;
    Answer r;
    r.id = uint16_t(p[0] << 8 | p[1]);
    r.tc = p[2] & 0x02;
    r.aa = p[2] & 0x04;
    r.rcode = p[3] & 0x0F;
    r.ancount = p[6] << 8 | p[7];
    size_t at = 12;
    read_name(p, at);
    at += 4;
    for (int i = 0; i < r.ancount && at + 10 <= p.size(); ++i) {
        read_name(p, at);
        const uint16_t type = uint16_t(p[at] << 8 | p[at + 1]);
        r.ttl = uint32_t(p[at + 4]) << 24 | p[at + 5] << 16 | p[at + 6] << 8 | p[at + 7];
        const size_t len = size_t(p[at + 8]) << 8 | p[at + 9];
        at += 10;
        char buf[INET6_ADDRSTRLEN] = {};
        if (type == dns::kTypeA && len == 4)
            r.a.push_back(::inet_ntop(AF_INET, &p[at], buf, sizeof buf));
        if (type == dns::kTypeAaaa && len == 16)
            r.aaaa.push_back(::inet_ntop(AF_INET6, &p[at], buf, sizeof buf));
        if (type == dns::kTypePtr) {
            size_t n = at;
            r.ptr.push_back(read_name(p, n));
        }
        at += len;
    }
    return r;
}

// A client socket (SOCK_DGRAM or SOCK_STREAM) in the namespace, connected to 127.0.0.11:port;
// 3 s receive timeout.
UniqueFd client(const std::string& ns, int type, uint16_t port) {
    return in_netns(ns, [type, port] {
        UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
        timeval tv{3, 0};
        ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in sa = v4addr("127.0.0.11", port);
        if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) s.reset();
        return s;
    });
}
UniqueFd udp_client(const std::string& ns, uint16_t port) {
    return client(ns, SOCK_DGRAM, port);
}
UniqueFd tcp_client(const std::string& ns, uint16_t port) {
    return client(ns, SOCK_STREAM, port);
}

std::optional<std::vector<uint8_t>> recv_udp(int fd) {
    std::vector<uint8_t> buf(65536);
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    buf.resize(size_t(n));
    return buf;
}

std::optional<Answer> ask_udp(int fd, const std::vector<uint8_t>& q) {
    if (::send(fd, q.data(), q.size(), 0) != ssize_t(q.size())) return std::nullopt;
    auto r = recv_udp(fd);
    return r ? parse_answer(*r) : std::nullopt;
}

bool recv_all(int fd, uint8_t* p, size_t n) {
    while (n > 0) {
        const ssize_t got = ::recv(fd, p, n, 0);
        if (got <= 0) return false;
        p += got;
        n -= size_t(got);
    }
    return true;
}

void send_framed(int fd, const std::vector<uint8_t>& q) {
    std::vector<uint8_t> f{static_cast<uint8_t>(q.size() >> 8), static_cast<uint8_t>(q.size())};
    f.insert(f.end(), q.begin(), q.end());
    ASSERT_EQ(::send(fd, f.data(), f.size(), MSG_NOSIGNAL), ssize_t(f.size()));
}

std::optional<Answer> recv_framed(int fd) {
    uint8_t len[2];
    if (!recv_all(fd, len, 2)) return std::nullopt;
    std::vector<uint8_t> body(size_t(len[0]) << 8 | len[1]);
    if (!recv_all(fd, body.data(), body.size())) return std::nullopt;
    return parse_answer(body);
}

// --- a fake upstream resolver in the test's own ("host") namespace ---

class FakeUpstream {
public:
    enum class Mode { Answer, ServFail, Truncate, Silent };
    // Binds ip:53 (UDP and TCP). Answer: A queries get `answer`, names starting with "nx" get
    // NXDOMAIN, other types an empty NOERROR. Truncate: the same over TCP, only TC over UDP.
    FakeUpstream(const std::string& ip, Mode mode, std::string answer = "192.0.2.1")
        : mode_(mode), answer_(std::move(answer)) {
        udp_ = bound(SOCK_DGRAM, ip, 53);
        tcp_ = bound(SOCK_STREAM, ip, 53);
        EXPECT_TRUE(udp_.valid() && tcp_.valid()) << "bind " << ip << ":53";
        EXPECT_EQ(::pipe2(stop_, O_CLOEXEC), 0);
        thread_ = std::thread([this] { run(); });
    }
    ~FakeUpstream() {
        (void)!::write(stop_[1], "x", 1);
        thread_.join();
        ::close(stop_[0]);
        ::close(stop_[1]);
    }
    int udp_queries() const { return udp_n_; }
    int tcp_queries() const { return tcp_n_; }

private:
    std::vector<uint8_t> reply(const std::vector<uint8_t>& q, bool over_tcp) {
        auto pq = dns::parse_query(q);
        if (!pq) return {};
        std::vector<uint8_t> r(q.begin(), q.begin() + long(pq->question_end));
        r[2] = 0x81;  // QR, RD
        r[3] = 0x80;  // RA
        r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
        if (mode_ == Mode::ServFail) {
            r[3] |= 2;
        } else if (mode_ == Mode::Truncate && !over_tcp) {
            r[2] |= 0x02;
        } else if (pq->name.rfind("nx", 0) == 0) {
            r[3] |= 3;
        } else if (pq->qtype == dns::kTypeA) {
            r[7] = 1;
            r.insert(r.end(), {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4});
            in_addr a{};
            ::inet_pton(AF_INET, answer_.c_str(), &a);
            const auto* b = reinterpret_cast<const uint8_t*>(&a);
            r.insert(r.end(), b, b + 4);
        }
        return r;
    }
    void serve_tcp(int conn) {
        timeval tv{2, 0};
        ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        uint8_t len[2];
        while (recv_all(conn, len, 2)) {
            std::vector<uint8_t> q(size_t(len[0]) << 8 | len[1]);
            if (!recv_all(conn, q.data(), q.size())) break;
            ++tcp_n_;
            if (mode_ == Mode::Silent) continue;
            auto r = reply(q, true);
            std::vector<uint8_t> f{uint8_t(r.size() >> 8), uint8_t(r.size())};
            f.insert(f.end(), r.begin(), r.end());
            (void)!::send(conn, f.data(), f.size(), MSG_NOSIGNAL);
        }
    }
    void run() {
        for (;;) {
            pollfd p[3] = {{udp_.get(), POLLIN, 0}, {tcp_.get(), POLLIN, 0}, {stop_[0], POLLIN, 0}};
            if (::poll(p, 3, -1) < 0 || p[2].revents) return;
            if (p[0].revents) {
                std::vector<uint8_t> q(4096);
                sockaddr_in from{};
                socklen_t fl = sizeof from;
                const ssize_t n = ::recvfrom(udp_.get(), q.data(), q.size(), 0,
                                             reinterpret_cast<sockaddr*>(&from), &fl);
                if (n <= 0) continue;
                q.resize(size_t(n));
                ++udp_n_;
                if (mode_ == Mode::Silent) continue;
                auto r = reply(q, false);
                ::sendto(udp_.get(), r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
            }
            if (p[1].revents) {
                UniqueFd c(::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC));
                if (c.valid()) serve_tcp(c.get());
            }
        }
    }

    Mode mode_;
    std::string answer_;
    UniqueFd udp_, tcp_;
    int stop_[2] = {-1, -1};
    std::atomic<int> udp_n_{0}, tcp_n_{0};
    std::thread thread_;
};

// --- the world the tests sync ---

core::Endpoint endpoint(const std::string& name, char id, NetnsId ns, const std::string& ip,
                        std::optional<std::string> ip6 = {},
                        std::vector<std::string> aliases = {}) {
    core::Endpoint ep;
    ep.id = std::string(64, id);
    ep.name = name;
    ep.netns_id = ns;
    ep.address = *Ipv4Cidr::parse(ip + "/24");
    if (ip6) ep.address6 = *Ipv6Cidr::parse(*ip6 + "/64");
    ep.aliases = std::move(aliases);
    return ep;
}

core::Network network(const std::string& name, char id, const std::string& subnet) {
    core::Network n;
    n.id = std::string(64, id);
    n.name = name;
    n.subnet = *Ipv4Cidr::parse(subnet);
    return n;
}

class DnsServerTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (std::getenv("DNS_TEST_DEBUG")) log::set_level(log::Level::Debug);
        shell("ip link set lo up");
        shell("ip netns add dns-t && ip netns add dns-u");
        shell("ip -n dns-t link set lo up && ip -n dns-u link set lo up");
    }
    static void TearDownTestSuite() { shell("ip netns del dns-t; ip netns del dns-u; true"); }

    void SetUp() override {
        std::filesystem::remove_all(kRoot);
        write_file(kEtc, "search corp.example\nnameserver 127.0.0.61\noptions edns0\n");
        t_ = open_listener("dns-t");
        u_ = open_listener("dns-u");
        ASSERT_TRUE(t_.udp.valid() && t_.tcp.valid() && u_.udp.valid() && u_.tcp.valid());
    }

    // The server with short budgets (the tests time them).
    void start(daemon::DnsOptions o = {}) {
        o.resolv_dir = kResolvDir;
        o.host_resolv_conf = kEtc;
        o.systemd_resolv_conf = kSystemd;
        if (o.budget == daemon::DnsOptions{}.budget) o.budget = 1500ms;
        server_.emplace(o);
        sync();
    }

    // dns-t: on "app" (db, web1+web2 sharing the alias "web", the asker itself) and nothing
    // else; "other" has a name dns-t must not see; dns-u is only on the internal "vault";
    // "bridge" is the default network (no resolver).
    std::vector<core::Network> world() const {
        const NetnsId t = netns_id("dns-t"), u = netns_id("dns-u");
        core::Network app = network("app", 'a', "10.89.0.0/24");
        app.subnet6 = *Ipv6Cidr::parse("fd00:89::/64");
        app.endpoints.put(endpoint("db", '1', NetnsId{7, 1}, "10.89.0.2", "fd00:89::2"));
        app.endpoints.put(endpoint("web1", '2', NetnsId{7, 2}, "10.89.0.3", {}, {"web"}));
        app.endpoints.put(endpoint("web2", '3', NetnsId{7, 3}, "10.89.0.4", {}, {"Web"}));
        app.endpoints.put(endpoint("asker", '4', t, "10.89.0.10"));
        core::Network other = network("other", 'b', "10.90.0.0/24");
        other.endpoints.put(endpoint("secret", '5', NetnsId{7, 5}, "10.90.0.2"));
        core::Network vault = network("vault", 'c', "10.91.0.0/24");
        vault.internal = true;
        vault.endpoints.put(endpoint("locker", '6', u, "10.91.0.2"));
        core::Network bridge = network("bridge", 'd', "172.17.0.0/16");
        bridge.is_default = true;
        bridge.dns = false;
        bridge.endpoints.put(endpoint("legacy", '7', NetnsId{7, 7}, "172.17.0.2"));
        bridge.endpoints.put(endpoint("legacy-t", '8', t, "172.17.0.3"));
        return {app, bridge, other, vault};
    }
    std::vector<core::DnsSandbox> sandboxes() const {
        return {core::DnsSandbox{netns_id("dns-t"),
                                 "/run/netns/dns-t",
                                 t_.udp.get(),
                                 t_.tcp.get(),
                                 {std::string(64, 'a')}},
                core::DnsSandbox{netns_id("dns-u"),
                                 "/run/netns/dns-u",
                                 u_.udp.get(),
                                 u_.tcp.get(),
                                 {std::string(64, 'c')}}};
    }
    void sync() { server_->sync(world(), sandboxes()); }

    std::optional<Answer> ask(const std::string& name, uint16_t type,
                              const std::string& ns = "dns-t") {
        UniqueFd c = udp_client(ns, ns == "dns-t" ? t_.udp_port : u_.udp_port);
        return ask_udp(c.get(), make_query(uint16_t(::random()), name, type));
    }
    // dig inside dns-t (glibc-independent, a real client); "+short" lines.
    std::string dig(const std::string& args) {
        return output_of("ip netns exec dns-t dig @127.0.0.11 -p " + std::to_string(t_.udp_port) +
                         " +tries=1 +time=3 +short " + args + " 2>&1");
    }
    daemon::DnsCounters counters() const { return server_->status().counters; }

    Listener t_, u_;
    std::optional<daemon::DnsServer> server_;
};

TEST_F(DnsServerTest, DigGetsLocalNamesAAaaaPtrCaseInsensitiveAndNameDotNetwork) {
    start();
    EXPECT_EQ(dig("db A"), "10.89.0.2\n");
    EXPECT_EQ(dig("db AAAA"), "fd00:89::2\n");
    EXPECT_EQ(dig("DB.App A"), "10.89.0.2\n");
    EXPECT_EQ(dig("-x 10.89.0.2"), "db.app.\n");
    EXPECT_EQ(dig("-x fd00:89::2"), "db.app.\n");
    EXPECT_EQ(dig(std::string(12, '1') + " A"), "10.89.0.2\n");  // the short endpoint id
    auto a = ask("db", dns::kTypeA);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->rcode, 0);
    EXPECT_EQ(a->ttl, dns::kLocalTtl);
    // web1 has no IPv6 address: the name exists, so an empty NOERROR (not forwarded).
    auto none = ask("web1", dns::kTypeAaaa);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->rcode, 0);
    EXPECT_EQ(none->ancount, 0);
    auto mx = ask("db", dns::kTypeMx);
    ASSERT_TRUE(mx);
    EXPECT_EQ(mx->rcode, 0);
    EXPECT_EQ(mx->ancount, 0);
    EXPECT_EQ(counters().forwarded, 0u);
    EXPECT_GE(counters().answered_local, 4u);
}

TEST_F(DnsServerTest, AliasGetsEveryAddressInChangingOrder) {
    start();
    UniqueFd c = udp_client("dns-t", t_.udp_port);
    std::set<std::vector<std::string>> orders;
    for (int i = 0; i < 40; ++i) {
        auto a = ask_udp(c.get(), make_query(uint16_t(i), "WEB", dns::kTypeA));
        ASSERT_TRUE(a);
        ASSERT_EQ(a->id, i);
        std::set<std::string> got(a->a.begin(), a->a.end());
        EXPECT_EQ(got, (std::set<std::string>{"10.89.0.3", "10.89.0.4"}));
        orders.insert(a->a);
    }
    EXPECT_EQ(orders.size(), 2u);  // both orders seen (chance of not: 2^-39)
}

TEST_F(DnsServerTest, OtherNetworksNamesAreNotAnsweredButForwarded) {
    FakeUpstream up("127.0.0.61", FakeUpstream::Mode::Answer, "192.0.2.61");
    start();
    auto a = ask("secret", dns::kTypeA);  // on "other", where dns-t is not
    ASSERT_TRUE(a);
    EXPECT_EQ(a->a,
              std::vector<std::string>{"192.0.2.61"});  // the upstream's answer, not 10.90.0.2
    auto b = ask("secret.other", dns::kTypeA);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->a, std::vector<std::string>{"192.0.2.61"});
    EXPECT_EQ(up.udp_queries(), 2);
    auto p = ask("2.0.90.10.in-addr.arpa", dns::kTypePtr);  // its address: not ours to answer
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->ptr.empty());
}

TEST_F(DnsServerTest, ForwardsAndRelaysRcodesVerbatim) {
    FakeUpstream up("127.0.0.61", FakeUpstream::Mode::Answer, "192.0.2.61");
    start();
    EXPECT_EQ(dig("example.com A"), "192.0.2.61\n");
    UniqueFd c = udp_client("dns-t", t_.udp_port);
    auto nx = ask_udp(c.get(), make_query(0x4242, "nx.example.com", dns::kTypeA));
    ASSERT_TRUE(nx);
    EXPECT_EQ(nx->id, 0x4242);  // the client's id back (the upstream saw another)
    EXPECT_EQ(nx->rcode, 3);    // NXDOMAIN returned as it is, not tried elsewhere
    EXPECT_EQ(counters().forwarded, 2u);
    EXPECT_EQ(counters().upstream_failures, 0u);
}

TEST_F(DnsServerTest, TruncatedUpstreamReplyIsRetriedOverTcp) {
    FakeUpstream up("127.0.0.61", FakeUpstream::Mode::Truncate, "192.0.2.62");
    start();
    auto a = ask("big.example.com", dns::kTypeA);
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->tc);
    EXPECT_EQ(a->a, std::vector<std::string>{"192.0.2.62"});
    EXPECT_EQ(up.udp_queries(), 1);
    EXPECT_EQ(up.tcp_queries(), 1);
}

TEST_F(DnsServerTest, ServfailAndDeadServersFailOverToTheNext) {
    write_file(kEtc, "nameserver 127.0.0.61\nnameserver 127.0.0.62\nnameserver 127.0.0.63\n");
    FakeUpstream bad("127.0.0.61", FakeUpstream::Mode::ServFail);
    // 127.0.0.62: nothing listens (ICMP port unreachable: the next at once).
    FakeUpstream good("127.0.0.63", FakeUpstream::Mode::Answer, "192.0.2.63");
    start();
    const auto t0 = Clock::now();
    auto a = ask("example.org", dns::kTypeA);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->rcode, 0);
    EXPECT_EQ(a->a, std::vector<std::string>{"192.0.2.63"});
    EXPECT_LT(Clock::now() - t0, 500ms);
    EXPECT_EQ(bad.udp_queries(), 1);
    EXPECT_EQ(counters().upstream_failures, 2u);
}

TEST_F(DnsServerTest, SilentServerGetsItsShareThenTheNextAnswers) {
    write_file(kEtc, "nameserver 127.0.0.61\nnameserver 127.0.0.62\n");
    FakeUpstream silent("127.0.0.61", FakeUpstream::Mode::Silent);
    FakeUpstream good("127.0.0.62", FakeUpstream::Mode::Answer, "192.0.2.64");
    start();  // budget 1.5 s: the silent one gets 750 ms
    const auto t0 = Clock::now();
    auto a = ask("example.net", dns::kTypeA);
    const auto took = Clock::now() - t0;
    ASSERT_TRUE(a);
    EXPECT_EQ(a->a, std::vector<std::string>{"192.0.2.64"});
    EXPECT_GE(took, 700ms);
    EXPECT_LT(took, 1200ms);
}

TEST_F(DnsServerTest, AllServersFailedIsServfailWithinTheBudget) {
    write_file(kEtc, "nameserver 127.0.0.61\nnameserver 127.0.0.62\n");
    FakeUpstream silent("127.0.0.61", FakeUpstream::Mode::Silent);
    FakeUpstream bad("127.0.0.62", FakeUpstream::Mode::ServFail);
    start();
    const auto t0 = Clock::now();
    auto a = ask("example.net", dns::kTypeA);
    const auto took = Clock::now() - t0;
    ASSERT_TRUE(a);
    EXPECT_EQ(a->rcode, 2);
    EXPECT_LT(took, 1700ms);  // the budget (1.5 s), not a timeout per server
    EXPECT_EQ(counters().servfail, 1u);
}

TEST_F(DnsServerTest, SlowUpstreamNeverDelaysALocalName) {
    FakeUpstream silent("127.0.0.61", FakeUpstream::Mode::Silent);
    start();
    UniqueFd slow = udp_client("dns-t", t_.udp_port);
    for (int i = 0; i < 20; ++i) {
        auto q = make_query(uint16_t(i), "slow" + std::to_string(i) + ".example", dns::kTypeA);
        ASSERT_EQ(::send(slow.get(), q.data(), q.size(), 0), ssize_t(q.size()));
    }
    UniqueFd tcp = tcp_client("dns-t", t_.tcp_port);
    send_framed(tcp.get(), make_query(1, "slow.example", dns::kTypeA));  // one over TCP too
    const auto t0 = Clock::now();
    auto a = ask("db", dns::kTypeA);
    send_framed(tcp.get(), make_query(2, "db", dns::kTypeA));  // behind a forwarded one
    auto b = recv_framed(tcp.get());
    const auto took = Clock::now() - t0;
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->a, std::vector<std::string>{"10.89.0.2"});
    EXPECT_EQ(b->id, 2);
    EXPECT_EQ(b->a, std::vector<std::string>{"10.89.0.2"});
    EXPECT_LT(took, 100ms);
    EXPECT_EQ(server_->status().in_flight, 21u);
}

TEST_F(DnsServerTest, MalformedPacketIsDroppedAndCounted) {
    start();
    UniqueFd c = udp_client("dns-t", t_.udp_port);
    const std::vector<uint8_t> junk{0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 1, 2, 3};
    ASSERT_EQ(::send(c.get(), junk.data(), junk.size(), 0), ssize_t(junk.size()));
    auto a = ask_udp(c.get(), make_query(7, "db", dns::kTypeA));  // the next reply is db's
    ASSERT_TRUE(a);
    EXPECT_EQ(a->id, 7);
    EXPECT_EQ(counters().malformed, 1u);
}

TEST_F(DnsServerTest, OpcodeOtherThanQueryIsNotImp) {
    start();
    UniqueFd c = udp_client("dns-t", t_.udp_port);
    auto a = ask_udp(c.get(), make_query(9, "db", dns::kTypeA, 2));  // STATUS
    ASSERT_TRUE(a);
    EXPECT_EQ(a->rcode, 4);
}

TEST_F(DnsServerTest, OversizedTcpQueryClosesOnlyThatConnection) {
    start();
    UniqueFd keep = tcp_client("dns-t", t_.tcp_port);
    UniqueFd big = tcp_client("dns-t", t_.tcp_port);
    std::vector<uint8_t> huge(65535 + 2, 0);
    huge[0] = huge[1] = 0xff;
    (void)!::send(big.get(), huge.data(), huge.size(), MSG_NOSIGNAL);
    uint8_t b;
    EXPECT_LE(::recv(big.get(), &b, 1, 0), 0);  // closed, no answer
    EXPECT_EQ(counters().tcp_rejected, 1u);
    // Several queries on the other connection, still served.
    for (uint16_t id = 1; id <= 3; ++id) {
        send_framed(keep.get(), make_query(id, id == 2 ? "web1" : "db", dns::kTypeA));
        auto a = recv_framed(keep.get());
        ASSERT_TRUE(a);
        EXPECT_EQ(a->id, id);
        EXPECT_EQ(a->a.size(), 1u);
    }
    EXPECT_EQ(output_of("ip netns exec dns-t dig @127.0.0.11 -p " + std::to_string(t_.tcp_port) +
                        " +tcp +short db A"),
              "10.89.0.2\n");
}

TEST_F(DnsServerTest, IdleTcpConnectionIsClosed) {
    daemon::DnsOptions o;
    o.tcp_idle = 300ms;
    start(o);
    UniqueFd c = tcp_client("dns-t", t_.tcp_port);
    const auto t0 = Clock::now();
    uint8_t b;
    EXPECT_EQ(::recv(c.get(), &b, 1, 0), 0);
    EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(DnsServerTest, InFlightCapAnswersRefused) {
    FakeUpstream silent("127.0.0.61", FakeUpstream::Mode::Silent);
    daemon::DnsOptions o;
    o.max_in_flight = 2;
    start(o);
    UniqueFd c = udp_client("dns-t", t_.udp_port);
    for (uint16_t id = 1; id <= 2; ++id) {
        auto q = make_query(id, "hang.example", dns::kTypeA);
        ASSERT_EQ(::send(c.get(), q.data(), q.size(), 0), ssize_t(q.size()));
    }
    auto third = ask_udp(c.get(), make_query(3, "hang.example", dns::kTypeA));
    ASSERT_TRUE(third);
    EXPECT_EQ(third->id, 3);
    EXPECT_EQ(third->rcode, 5);
    EXPECT_EQ(counters().refused, 1u);
    auto local = ask_udp(c.get(), make_query(4, "db", dns::kTypeA));  // never capped
    ASSERT_TRUE(local);
    EXPECT_EQ(local->rcode, 0);
}

TEST_F(DnsServerTest, InternalOnlyAskerIsNotForwarded) {
    FakeUpstream up("127.0.0.61", FakeUpstream::Mode::Answer);
    start();
    auto own = ask("locker", dns::kTypeA, "dns-u");
    ASSERT_TRUE(own);
    EXPECT_EQ(own->a, std::vector<std::string>{"10.91.0.2"});
    auto out = ask("example.com", dns::kTypeA, "dns-u");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->rcode, 2);  // SERVFAIL, as moby
    EXPECT_EQ(up.udp_queries(), 0);
    auto db = ask("db", dns::kTypeA, "dns-u");  // app is not dns-u's
    ASSERT_TRUE(db);
    EXPECT_TRUE(db->a.empty());
}

TEST_F(DnsServerTest, ZoneUpstreamIsSkippedWithoutACrash) {
    write_file(kEtc,
               "nameserver fe80::1%nosuchif0\nnameserver fe80::2%lo\n"
               "nameserver 127.0.0.61\n");
    FakeUpstream up("127.0.0.61", FakeUpstream::Mode::Answer, "192.0.2.65");
    start();
    EXPECT_EQ(server_->status().upstreams.size(), 3u);  // as written
    auto a = ask("example.com", dns::kTypeA);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->a, std::vector<std::string>{"192.0.2.65"});
}

TEST_F(DnsServerTest, SystemdStubMeansTheSystemdFile) {
    write_file(kEtc, "nameserver 127.0.0.53\n");
    write_file(kSystemd, "nameserver 127.0.0.62\nsearch lan.example\n");
    FakeUpstream up("127.0.0.62", FakeUpstream::Mode::Answer, "192.0.2.66");
    start();
    EXPECT_EQ(server_->status().upstreams_file, kSystemd);
    auto a = ask("example.com", dns::kTypeA);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->a, std::vector<std::string>{"192.0.2.66"});
}

TEST_F(DnsServerTest, HostFileChangeReloadsUpstreamsAndRewritesEndpointFiles) {
    FakeUpstream first("127.0.0.61", FakeUpstream::Mode::Answer, "192.0.2.61");
    FakeUpstream second("127.0.0.62", FakeUpstream::Mode::Answer, "192.0.2.62");
    start();
    const std::string file = kResolvDir + "/" + std::string(64, '4') + "/resolv.conf";
    struct stat before {};
    ASSERT_EQ(::stat(file.c_str(), &before), 0);
    EXPECT_NE(read_file(file).find("host(127.0.0.61)"), std::string::npos);
    // Written in place, as an editor or resolvconf does (rename would work as well: IN_MOVED_TO).
    std::ofstream(kEtc, std::ios::trunc) << "search other.example\nnameserver 127.0.0.62\n";
    for (int i = 0; i < 50; ++i) {
        std::this_thread::sleep_for(20ms);
        auto a = ask("example.com", dns::kTypeA);
        if (a && a->a == std::vector<std::string>{"192.0.2.62"}) break;
    }
    EXPECT_EQ(server_->status().upstreams, std::vector<std::string>{"127.0.0.62"});
    const std::string text = read_file(file);
    EXPECT_NE(text.find("search other.example"), std::string::npos) << text;
    EXPECT_NE(text.find("host(127.0.0.62)"), std::string::npos) << text;
    struct stat after {};
    ASSERT_EQ(::stat(file.c_str(), &after), 0);
    EXPECT_EQ(before.st_ino, after.st_ino);  // in place: a bind mount keeps seeing it
}

TEST_F(DnsServerTest, ResolvConfFilesForEveryEndpointAndRemovedWithIt) {
    // A directory of an endpoint gone while the daemon was down, and something else.
    write_file(kResolvDir + "/" + std::string(64, 'f') + "/resolv.conf", "stale\n");
    write_file(kResolvDir + "/keep-me/file", "x\n");
    start();
    const auto path = [](char id) {
        return kResolvDir + "/" + std::string(64, id) + "/resolv.conf";
    };
    const std::string dns_file = read_file(path('1'));  // db on app
    EXPECT_NE(dns_file.find("nameserver 127.0.0.11\n"), std::string::npos) << dns_file;
    EXPECT_NE(dns_file.find("search corp.example\n"), std::string::npos) << dns_file;
    EXPECT_NE(dns_file.find("options edns0 ndots:0\n"), std::string::npos) << dns_file;
    const std::string plain = read_file(path('7'));  // legacy on the default bridge
    EXPECT_EQ(plain.find("127.0.0.11"), std::string::npos) << plain;
    EXPECT_NE(plain.find("nameserver 8.8.8.8\n"), std::string::npos) << plain;  // loopback dropped
    struct stat st {};
    ASSERT_EQ(::stat(path('7').c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    ASSERT_EQ(::stat((kResolvDir + "/" + std::string(64, '7')).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_FALSE(std::filesystem::exists(kResolvDir + "/" + std::string(64, 'f')));
    EXPECT_TRUE(std::filesystem::exists(kResolvDir + "/keep-me/file"));
    // The endpoint API facts match the file.
    auto w = world();
    auto ed = server_->endpoint_dns(w[0], w[0].endpoints.at(std::string(64, '1')));
    EXPECT_EQ(ed.resolv_conf, path('1'));
    EXPECT_EQ(ed.nameservers, std::vector<std::string>{"127.0.0.11"});
    EXPECT_EQ(ed.search, std::vector<std::string>{"corp.example"});

    // db disconnects: its file and directory go; the name is no longer answered locally.
    w[0].endpoints.erase(std::string(64, '1'));
    server_->sync(w, sandboxes());
    EXPECT_FALSE(std::filesystem::exists(kResolvDir + "/" + std::string(64, '1')));
    EXPECT_TRUE(std::filesystem::exists(path('2')));
}

TEST_F(DnsServerTest, NamesFollowSyncAndSandboxesGoWithTheirNamespace) {
    start();
    auto w = world();
    w[0].endpoints.put(endpoint("cache", '9', NetnsId{7, 9}, "10.89.0.9", {}, {"redis"}));
    server_->sync(w, sandboxes());
    auto a = ask("redis", dns::kTypeA);  // at once: sync() swapped the zone before returning
    ASSERT_TRUE(a);
    EXPECT_EQ(a->a, std::vector<std::string>{"10.89.0.9"});
    EXPECT_EQ(server_->status().sandboxes, 2u);
    auto only_t = sandboxes();
    only_t.pop_back();
    server_->sync(w, only_t);
    for (int i = 0; i < 100 && server_->status().sandboxes != 1; ++i)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(server_->status().sandboxes, 1u);
}

TEST_F(DnsServerTest, ListenerShutDownByTheEngineIsNotABusyLoop) {
    start();
    // What LinuxDnsListener's destructor does when the namespace's last dns endpoint goes, before
    // the next sync drops the sandbox: a shut-down UDP socket reads as empty datagrams forever.
    const auto cpu = [] {
        rusage ru{};
        ::getrusage(RUSAGE_SELF, &ru);
        return std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    };
    const auto cpu0 = cpu();
    ::shutdown(t_.tcp.get(), SHUT_RDWR);
    ::shutdown(t_.udp.get(), SHUT_RDWR);
    std::this_thread::sleep_for(200ms);
    EXPECT_LT(cpu() - cpu0, 50ms);  // the DNS thread is not spinning
    EXPECT_EQ(counters().queries_udp, 0u);
    EXPECT_EQ(counters().malformed, 0u);
    auto a = ask("locker", dns::kTypeA, "dns-u");  // the other sandbox is unaffected
    ASSERT_TRUE(a);
    EXPECT_EQ(a->a, std::vector<std::string>{"10.91.0.2"});
}

TEST_F(DnsServerTest, ClientOverTcpIsForwardedOverTcp) {
    FakeUpstream up("127.0.0.61", FakeUpstream::Mode::Answer, "192.0.2.67");
    start();
    UniqueFd c = tcp_client("dns-t", t_.tcp_port);
    send_framed(c.get(), make_query(0x77, "example.com", dns::kTypeA));
    auto a = recv_framed(c.get());
    ASSERT_TRUE(a);
    EXPECT_EQ(a->id, 0x77);
    EXPECT_EQ(a->a, std::vector<std::string>{"192.0.2.67"});
    EXPECT_EQ(up.tcp_queries(), 1);
    EXPECT_EQ(up.udp_queries(), 0);
}

}  // namespace
}  // namespace cnetd
