// The embedded DNS resolver (issue 17, docs/dns.md) end to end: the real cnetd and netctl, real
// clients (glibc's getent, bind9's dig, and a raw UDP/TCP client) inside container namespaces,
// and a fake upstream resolver (tests/dns/fake_upstream.py) for everything forwarded.
//
//   wan netns: eth0 198.51.100.2/24 (+ .3) --- wan0 198.51.100.1/24 in the test's netns, where
//   cnetd runs; the fake upstreams listen in the wan (or on 127.0.0.53 next to cnetd).
//
// The daemon reads the host's resolvers from /etc/resolv.conf: every test bind-mounts its own file
// over it in the test binary's private mount namespace (sandbox_main.cpp) before starting cnetd,
// and unmounts it in TearDown. A container's glibc gets the endpoint's ResolvConf file the way a
// runtime gives it: bind-mounted over /etc/resolv.conf in a mount namespace of its own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kResolver = "127.0.0.11";

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::string bare(const std::string& cidr) {
    return cidr.substr(0, cidr.find('/'));
}

// --- a raw DNS client ----------------------------------------------------------------------------

// A query for `name` (A = 1, AAAA = 28) with id `id` and RD set.
std::string build_query(uint16_t id, const std::string& name, uint16_t qtype = 1) {
    std::string q = {char(id >> 8), char(id & 0xff), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    std::istringstream labels(name);
    for (std::string l; std::getline(labels, l, '.');) {
        q += char(l.size());
        q += l;
    }
    q += std::string{0, char(qtype >> 8), char(qtype & 0xff), 0, 1};
    return q;
}

struct Reply {
    int id = -1;
    int rcode = -1;                  // -1: no (parseable) reply
    std::vector<std::string> addrs;  // A and AAAA answers as text
};

// Skips a (possibly compressed) name at `off`; false when it runs past the end.
bool skip_name(const std::string& m, size_t& off) {
    while (off < m.size()) {
        auto n = static_cast<uint8_t>(m[off]);
        if (n == 0) return ++off, true;
        if ((n & 0xc0) == 0xc0) return off += 2, off <= m.size();
        off += 1 + n;
    }
    return false;
}

Reply parse_reply(const std::string& m) {
    Reply r;
    if (m.size() < 12) return r;
    auto u16 = [&](size_t o) { return (uint8_t(m[o]) << 8) | uint8_t(m[o + 1]); };
    r.id = u16(0);
    int qd = u16(4), an = u16(6);
    size_t off = 12;
    for (int i = 0; i < qd; ++i)
        if (!skip_name(m, off) || (off += 4) > m.size()) return r;
    for (int i = 0; i < an; ++i) {
        if (!skip_name(m, off) || off + 10 > m.size()) return r;
        int type = u16(off), len = u16(off + 8);
        off += 10;
        if (off + len > m.size()) return r;
        char text[INET6_ADDRSTRLEN] = {};
        if (type == 1 && len == 4) inet_ntop(AF_INET, m.data() + off, text, sizeof text);
        if (type == 28 && len == 16) inet_ntop(AF_INET6, m.data() + off, text, sizeof text);
        if (text[0]) r.addrs.push_back(text);
        off += len;
    }
    r.rcode = u16(2) & 0xf;
    return r;
}

void enter_netns_or_die(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(90);
    close(fd);
}

// In a child inside a container namespace: a socket of `type` connected to 127.0.0.11:53 (the
// resolver's DNAT), or -1.
int connect_resolver(int type) {
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(53);
    inet_pton(AF_INET, kResolver, &to.sin_addr);
    if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return -1;
    return s;
}

// One UDP socket kept open in a container namespace by a forked child, connected to
// 127.0.0.11:53: every query shares one source port (one conntrack flow, like a long-lived
// resolver client). ask() sends a query for a name and waits for the reply with its id.
class DnsClient {
public:
    explicit DnsClient(const std::string& netns_path) {
        int cmd[2], res[2];
        if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(res, O_CLOEXEC) != 0) return;
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            enter_netns_or_die(netns_path);
            serve(cmd[0], res[1]);
        }
        close(cmd[0]);
        close(res[1]);
        cmd_ = cmd[1];
        res_ = res[0];
    }
    ~DnsClient() {
        close(cmd_);
        close(res_);
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    // The reply to an A query for `name`, waiting up to `timeout` (rcode -1: none came).
    Reply ask(const std::string& name, std::chrono::milliseconds timeout = 2s) {
        std::string line = std::to_string(timeout.count()) + " " + name + "\n";
        if (write(cmd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return {};
        uint32_t n = 0;
        pollfd p{res_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout.count()) + 5000) != 1 ||
            read(res_, &n, sizeof n) != sizeof n)
            return {};
        std::string out(n, '\0');
        for (size_t got = 0; got < n;) {
            ssize_t r = read(res_, out.data() + got, n - got);
            if (r <= 0) return {};
            got += static_cast<size_t>(r);
        }
        return parse_reply(out);
    }

private:
    [[noreturn]] static void serve(int cmd, int res) {
        int s = connect_resolver(SOCK_DGRAM);
        if (s < 0) _exit(91);
        FILE* in = fdopen(cmd, "r");
        char name[256];
        int timeout_ms = 0;
        for (uint16_t id = 1; fscanf(in, "%d %255s", &timeout_ms, name) == 2; ++id) {
            std::string q = build_query(id, name), got;
            (void)!send(s, q.data(), q.size(), 0);
            auto deadline =
                std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
            for (;;) {  // skip late replies to earlier queries
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                pollfd p{s, POLLIN, 0};
                if (left <= 0ms || poll(&p, 1, static_cast<int>(left.count())) != 1) break;
                char buf[1500];
                ssize_t n = recv(s, buf, sizeof buf, 0);
                if (n >= 2 && ((uint8_t(buf[0]) << 8) | uint8_t(buf[1])) == id) {
                    got.assign(buf, static_cast<size_t>(n));
                    break;
                }
            }
            uint32_t n = static_cast<uint32_t>(got.size());
            if (write(res, &n, sizeof n) != sizeof n) _exit(92);
            if (n && write(res, got.data(), n) != static_cast<ssize_t>(n)) _exit(93);
        }
        _exit(0);
    }

    pid_t pid_ = -1;
    int cmd_ = -1, res_ = -1;
};

// A fake upstream (tests/dns/fake_upstream.py) in `netns_path` ("" = the test's own namespace,
// where cnetd runs), answering A 203.0.113.<tag>; the destructor kills it.
class FakeUpstream {
public:
    FakeUpstream(const std::string& netns_path, const std::string& addr, int tag,
                 const std::string& dir, const std::string& mode = "answer")
        : log_(dir + "/upstream-" + std::to_string(tag) + ".log") {
        const std::string ready = dir + "/upstream-" + std::to_string(tag) + ".ready";
        std::string script = std::string(getenv("CNETD_SRC_DIR") ? getenv("CNETD_SRC_DIR") : ".") +
                             "/tests/dns/fake_upstream.py";
        std::vector<std::string> argv;
        if (!netns_path.empty()) argv = {"nsenter", "--net=" + netns_path};
        argv.insert(argv.end(), {"python3", script, "--listen", addr, "--tag", std::to_string(tag),
                                 "--mode", mode, "--log", log_, "--ready", ready});
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            execvp(args[0], args.data());
            _exit(127);
        }
        for (int i = 0; i < 200 && !ready_; ++i) {  // python starts in ~0.1-1.5 s on a busy box
            ready_ = fs::exists(ready);
            if (!ready_) std::this_thread::sleep_for(25ms);
        }
    }
    ~FakeUpstream() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    bool ready() const { return ready_; }
    // The queries it got: "<udp|tcp> <name> <type> <peer>" per line.
    std::vector<std::string> log() const { return lines(slurp(log_)); }
    bool got(const std::string& proto, const std::string& name) const {
        auto l = log();
        return std::any_of(l.begin(), l.end(), [&](const std::string& s) {
            return s.rfind(proto + " " + name + " ", 0) == 0;
        });
    }

private:
    std::string log_;
    pid_t pid_ = -1;
    bool ready_ = false;
};

class Dns : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        add_wan();
        wan({"ip", "addr", "add", "198.51.100.3/24", "dev", "eth0"});
    }
    void TearDown() override {
        ups_.clear();
        if (mounted_) umount2("/etc/resolv.conf", MNT_DETACH);
        mounted_ = false;
        DaemonTest::TearDown();
    }

    // The host's resolv.conf as cnetd will read it, then cnetd started.
    void start_with_resolv(const std::string& text) {
        const std::string file = d.dir() + "/host-resolv.conf";
        std::ofstream(file) << text;
        ASSERT_EQ(mount(file.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr), 0)
            << strerror(errno);
        mounted_ = true;
        start();
    }
    FakeUpstream& upstream(const std::string& netns_path, const std::string& addr, int tag,
                           const std::string& mode = "answer") {
        ups_.push_back(std::make_unique<FakeUpstream>(netns_path, addr, tag, d.dir(), mode));
        EXPECT_TRUE(ups_.back()->ready()) << "fake upstream on " << addr << " did not start";
        return *ups_.back();
    }
    // The common start: a fake upstream at 198.51.100.2 (tag 2) as the host's only resolver.
    void start_with_wan_upstream() {
        upstream(wan_path(), "198.51.100.2", 2);
        start_with_resolv("nameserver 198.51.100.2\n");
    }

    json endpoint(const std::string& network, const std::string& name) {
        return inspect_endpoint(d, network, name);
    }
    // The address of endpoint `name` on `network` without its prefix length ("" when none).
    std::string ip4(const std::string& network, const std::string& name) {
        json ep = endpoint(network, name);
        return ep.is_object() ? bare(ep.value("IPv4Address", "")) : "";
    }
    // dig @127.0.0.11 inside container `c`: the +short lines, sorted.
    std::vector<std::string> dig(const std::string& c, std::vector<std::string> args) {
        CmdResult r = run_dig(c, std::move(args), true);
        std::vector<std::string> out;
        for (auto& l : lines(r.out))
            if (l.rfind(";;", 0) != 0) out.push_back(l);  // dig's own errors ("no servers ...")
        return sorted(out);
    }
    // The status word of a dig answer ("NOERROR", "NXDOMAIN", ...), or "" without an answer.
    std::string dig_status(const std::string& c, std::vector<std::string> args) {
        CmdResult r = run_dig(c, std::move(args), false);
        auto at = r.out.find("status: ");
        if (at == std::string::npos) return "";
        return r.out.substr(at + 8, r.out.find(',', at) - at - 8);
    }
    CmdResult run_dig(const std::string& c, std::vector<std::string> args, bool shrt) {
        std::vector<std::string> argv{"nsenter",  "--net=" + ns(c),
                                      "dig",      std::string("@") + kResolver,
                                      "+tries=1", "+time=5"};
        if (shrt) argv.push_back("+short");
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv);
    }
    // glibc in container `c`, with its endpoint's resolv.conf bind-mounted over /etc/resolv.conf.
    CmdResult getent(const std::string& c, const std::string& resolv_conf,
                     const std::vector<std::string>& args) {
        std::string cmd = "mount --bind " + resolv_conf + " /etc/resolv.conf && exec getent";
        for (const auto& a : args) cmd += " " + a;
        return run({"nsenter", "--net=" + ns(c), "unshare", "--mount", "sh", "-c", cmd});
    }

    std::vector<std::unique_ptr<FakeUpstream>> ups_;
    bool mounted_ = false;
};

// Names, aliases, NAME.NETWORK, the short id, case, AAAA and PTR on a dual-stack network, from
// glibc and dig; a program of the container on 0.0.0.0:53 does not collide; the resolv.conf file.
TEST_F(Dns, LocalNamesAnswerRealClients) {
    start_with_wan_upstream();
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24", "--ipv6", "--subnet", "fd91::/64"});
    container("a", "app", {"--alias", "db", "--alias", "shared"});
    container("b", "app", {"--alias", "shared"});
    json a = endpoint("app", "a"), b = endpoint("app", "b");
    ASSERT_TRUE(a.is_object() && b.is_object()) << d.netctl_json({"network", "inspect", "app"});
    const std::string a4 = bare(a["IPv4Address"]), a6 = bare(a["IPv6Address"]);
    const std::string b4 = bare(b["IPv4Address"]);
    EXPECT_EQ(a["Aliases"], json({"db", "shared"})) << a.dump();

    // The ready file for the runtime: the embedded resolver, ndots:0.
    const std::string rc = b.value("ResolvConf", "");
    ASSERT_FALSE(rc.empty()) << b.dump();
    std::string text = slurp(rc);
    EXPECT_NE(text.find("nameserver 127.0.0.11"), std::string::npos) << text;
    EXPECT_NE(text.find("ndots:0"), std::string::npos) << text;

    // glibc: getent through the file (AAAA first for `hosts`, then A only).
    CmdResult g = getent("b", rc, {"hosts", "db"});
    EXPECT_EQ(g.status, 0) << g.err << "\n" << d.log();
    EXPECT_NE(g.out.find(a6), std::string::npos) << g.out;
    g = getent("b", rc, {"ahostsv4", "db"});
    EXPECT_NE(g.out.find(a4), std::string::npos) << g.out << g.err;

    // dig: name, alias, NAME.NETWORK, short id, case, AAAA, PTR, a shared alias ("-q a": a bare
    // "a" is the record type for dig).
    EXPECT_EQ(dig("b", {"-q", "a"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("b", {"db"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("b", {"DB.App"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("b", {"a.app"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("b", {a["EndpointID"].get<std::string>().substr(0, 12)}),
              std::vector<std::string>{a4});
    EXPECT_EQ(dig("b", {"AAAA", "db"}), std::vector<std::string>{a6});
    EXPECT_EQ(dig("b", {"-x", a4}), std::vector<std::string>{"a.app."});
    EXPECT_EQ(dig("a", {"shared"}), sorted({a4, b4}));
    EXPECT_EQ(dig_status("b", {"MX", "db"}), "NOERROR");

    // A program of the container on 0.0.0.0:53 (UDP and TCP) takes nothing from the resolver.
    TagServer u(ns("b"), TagServer::Proto::Udp, "0.0.0.0", 53, "mine");
    TagServer t(ns("b"), TagServer::Proto::Tcp, "0.0.0.0", 53, "mine");
    ASSERT_TRUE(u.ready() && t.ready());
    EXPECT_EQ(dig("b", {"db"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("b", {"+tcp", "db"}), std::vector<std::string>{a4});
    EXPECT_EQ(udp_ask(ns("b"), b4, 53), "mine");
}

// Scope: a container sees the names of its own networks only; what it does not know is forwarded
// (the fake upstream answers 203.0.113.2); a v4-only name asked for AAAA is an empty NOERROR;
// disconnect removes the name and the endpoint's share of an alias at once.
TEST_F(Dns, ScopeAndDisconnect) {
    start_with_wan_upstream();
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24"});
    ok({"network", "create", "other", "--subnet", "10.92.0.0/24"});
    container("a", "app", {"--alias", "shared"});
    container("b", "app", {"--alias", "shared"});
    container("c", "other");
    const std::string a4 = ip4("app", "a");
    const std::string b4 = ip4("app", "b");

    EXPECT_EQ(dig("c", {"-q", "a"}), std::vector<std::string>{"203.0.113.2"});
    EXPECT_EQ(dig("c", {"a.app"}), std::vector<std::string>{"203.0.113.2"});
    EXPECT_EQ(dig("c", {"-x", a4}), std::vector<std::string>{});
    EXPECT_EQ(dig("c", {"c"}), std::vector<std::string>{ip4("other", "c")});
    EXPECT_EQ(dig_status("c", {"AAAA", "c"}), "NOERROR");
    EXPECT_EQ(dig("c", {"AAAA", "c"}), std::vector<std::string>{});
    EXPECT_FALSE(ups_[0]->got("udp", "c")) << "a local name was forwarded";

    EXPECT_EQ(dig("a", {"shared"}), sorted({a4, b4}));
    ok({"network", "disconnect", "app", "b"});
    EXPECT_EQ(dig("a", {"shared"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("a", {"b"}), std::vector<std::string>{"203.0.113.2"});
    // Joining "other" makes its names visible to a at once.
    ok({"network", "connect", "other", "a"});
    EXPECT_EQ(dig("a", {"c"}), std::vector<std::string>{ip4("other", "c")});
}

// No 127.0.0.11 on the default bridge nor on an enable_dns=false network; their resolv.conf
// holds the host's (non-loopback) servers.
TEST_F(Dns, NoResolverOnDefaultBridgeOrDisabledNetwork) {
    start_with_resolv("nameserver 127.0.0.53\nnameserver 198.51.100.2\n");
    ok({"network", "create", "quiet", "--subnet", "10.93.0.0/24", "-o",
        "com.docker.network.enable_dns=false"});
    container("x", "bridge");
    container("y", "quiet");
    EXPECT_EQ(d.netctl_json({"network", "inspect", "quiet"})[0]["EnableDNS"], false);
    for (const auto& [c, net] : {std::pair{"x", "bridge"}, std::pair{"y", "quiet"}}) {
        CmdResult r =
            run({"nsenter", "--net=" + ns(c), "dig", "@127.0.0.11", "+tries=1", "+time=1", "db"});
        EXPECT_NE(r.status, 0) << c << ": " << r.out;
        std::string text = slurp(endpoint(net, c).value("ResolvConf", "/nonexistent"));
        EXPECT_EQ(text.find("127.0.0.11"), std::string::npos) << c << ": " << text;
        EXPECT_EQ(text.find("127.0.0.53"), std::string::npos) << c << ": " << text;
        EXPECT_NE(text.find("nameserver 198.51.100.2"), std::string::npos) << c << ": " << text;
    }
}

// Forwarding from the host namespace: plain, truncated → TCP, SERVFAIL/REFUSED/dead first server
// → the second, NXDOMAIN returned as it is, every server failing → SERVFAIL; a slow upstream
// does not slow a local name.
TEST_F(Dns, ForwardsThroughTheHostsResolvers) {
    FakeUpstream& one = upstream(wan_path(), "198.51.100.2", 2);
    FakeUpstream& two = upstream(wan_path(), "198.51.100.3", 3);
    start_with_resolv("nameserver 198.51.100.2\nnameserver 198.51.100.3\n");
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24"});
    container("a", "app", {"--alias", "db"});
    const std::string a4 = ip4("app", "a");

    EXPECT_EQ(dig("a", {"www.example"}), std::vector<std::string>{"203.0.113.2"});
    auto l = one.log();
    ASSERT_FALSE(l.empty());
    // Asked from the host's namespace (the wan sees the host's address), not the container's.
    EXPECT_EQ(l.back(), "udp www.example 1 198.51.100.1");
    EXPECT_EQ(dig("a", {"tc.example"}), std::vector<std::string>{"203.0.113.2"});
    EXPECT_TRUE(one.got("tcp", "tc.example")) << "no TCP retry after TC";
    EXPECT_EQ(dig("a", {"servfail2.example"}), std::vector<std::string>{"203.0.113.3"});
    EXPECT_EQ(dig("a", {"refused2.example"}), std::vector<std::string>{"203.0.113.3"});
    EXPECT_EQ(dig("a", {"drop2.example"}), std::vector<std::string>{"203.0.113.3"});
    EXPECT_EQ(dig_status("a", {"nxdomain.example"}), "NXDOMAIN");
    EXPECT_FALSE(two.got("udp", "nxdomain.example")) << "NXDOMAIN is an answer, not a failure";
    EXPECT_EQ(dig_status("a", {"servfail.example"}), "SERVFAIL");

    // A slow forward in flight: the local name still answers at once.
    std::thread slow([&] { dig("a", {"slow.example"}); });
    std::this_thread::sleep_for(300ms);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(dig("a", {"db"}), std::vector<std::string>{a4});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
    slow.join();
    json st = d.netctl_json({"dns"});
    EXPECT_GE(st["Counters"].value("Forwarded", 0), 8) << st.dump();
    EXPECT_GE(st["Counters"].value("UpstreamFailures", 0), 3) << st.dump();
}

// A loopback resolver of the host (systemd-resolved's 127.0.0.53) is asked from the host's
// namespace, where it lives: a container could never reach it itself.
TEST_F(Dns, LoopbackUpstreamIsReachedFromTheHost) {
    upstream("", "127.0.0.53", 53);
    // Two servers, so that /etc/resolv.conf is used as it is (a sole 127.0.0.53 would send cnetd
    // to /run/systemd/resolve/resolv.conf, as Docker).
    start_with_resolv("nameserver 127.0.0.53\nnameserver 198.51.100.9\n");
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24"});
    container("a", "app");
    EXPECT_EQ(dig("a", {"www.example"}), std::vector<std::string>{"203.0.113.53"}) << d.log();
}

// After SIGTERM and after kill -9, resolution works again within 1 s of the daemon answering,
// also for a client that keeps its socket (its conntrack entry pointed at the old port).
TEST_F(Dns, ResolutionReturnsWithinOneSecondOfARestart) {
    start_with_wan_upstream();
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24"});
    container("a", "app", {"--alias", "db"});
    const std::string a4 = ip4("app", "a");
    DnsClient kept(ns("a"));
    ASSERT_EQ(kept.ask("db").addrs, std::vector<std::string>{a4});
    for (int sig : {SIGTERM, SIGKILL}) {
        d.kill(sig);
        start();
        auto t0 = std::chrono::steady_clock::now();
        bool fresh = false, old = false;
        while (std::chrono::steady_clock::now() - t0 < 1s && !(fresh && old)) {
            fresh = fresh || DnsClient(ns("a")).ask("db", 100ms).addrs == std::vector{a4};
            old = old || kept.ask("db", 100ms).addrs == std::vector{a4};
        }
        // And glibc's and dig's way (a fresh socket per query) once it answers.
        EXPECT_EQ(dig("a", {"db"}), std::vector<std::string>{a4});
        EXPECT_TRUE(fresh) << "signal " << sig << ": a new client got no answer within 1 s";
        EXPECT_TRUE(old) << "signal " << sig << ": a kept socket got no answer within 1 s";
    }
}

// No query is lost across SIGHUP reloads: 2000 queries from one socket, 20 reloads among them,
// every query answered on its first try.
TEST_F(Dns, NoQueryLostAcrossReloads) {
    start_with_wan_upstream();
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24"});
    container("a", "app", {"--alias", "db"});
    const std::string a4 = ip4("app", "a");
    DnsClient client(ns("a"));
    int answered = 0;
    for (int i = 0; i < 2000; ++i) {
        if (i % 100 == 50) ::kill(d.pid(), SIGHUP);
        Reply r = client.ask("db", 1s);
        answered += r.rcode == 0 && r.addrs == std::vector<std::string>{a4};
    }
    EXPECT_EQ(answered, 2000) << d.log();
}

// Malformed datagrams are dropped and counted; a 64 KiB TCP query is refused (connection closed)
// and counted; the resolver keeps answering over both transports.
TEST_F(Dns, MalformedAndOversizedQueriesAreRefused) {
    start_with_wan_upstream();
    ok({"network", "create", "app", "--subnet", "10.91.0.0/24"});
    container("a", "app", {"--alias", "db"});
    const std::string a4 = ip4("app", "a");
    EXPECT_EQ(udp_ask(ns("a"), kResolver, 53, 500ms), "");  // "ping": 4 bytes, no DNS header

    pid_t pid = fork();
    if (pid == 0) {  // the oversized TCP query: length 65535, then as much body as is taken
        enter_netns_or_die(ns("a"));
        int s = connect_resolver(SOCK_STREAM);
        if (s < 0) _exit(1);
        timeval tv{3, 0};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string big(65537, 'x');
        big[0] = big[1] = char(0xff);
        (void)!send(s, big.data(), big.size(), MSG_NOSIGNAL);
        char buf[16];
        ssize_t n = recv(s, buf, sizeof buf, 0);  // closed (0) or reset (-1 ECONNRESET): refused
        _exit(n == 0 || (n < 0 && errno == ECONNRESET) ? 0 : 2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the oversized query's connection was not closed (status " << status << ")";

    EXPECT_EQ(dig("a", {"db"}), std::vector<std::string>{a4});
    EXPECT_EQ(dig("a", {"+tcp", "db"}), std::vector<std::string>{a4});
    json st = d.netctl_json({"dns"});
    EXPECT_GE(st["Counters"].value("Malformed", 0), 1) << st.dump();
    EXPECT_GE(st["Counters"].value("TcpRejected", 0), 1) << st.dump();
}

}  // namespace
