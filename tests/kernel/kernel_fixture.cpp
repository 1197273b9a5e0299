#include "kernel_fixture.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netlink/attr.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "netlink/link.hpp"
#include "netlink/socket.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {

CmdResult run(const std::string& cmd) {
    CmdResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool ipv6_enabled() {
    return ::access("/proc/sys/net/ipv6/conf/all", F_OK) == 0;
}

bool has_flag(const nlohmann::json& l, const char* f) {
    for (const auto& x : l["flags"])
        if (x == f) return true;
    return false;
}

size_t link_count(const std::string& ns) {
    return ip_json((ns.empty() ? "" : "-n " + ns + " ") + "link show").size();
}

std::string mac_of(nlattr* a) {
    if (!a || nla_len(a) != 6) return "";
    std::array<uint8_t, 6> b{};
    std::memcpy(b.data(), nla_data(a), 6);
    return Mac(b).str();
}

nlohmann::json ip_json(const std::string& args) {
    auto r = run("ip -j " + args + " 2>/dev/null");
    EXPECT_EQ(r.status, 0) << "ip -j " << args;
    if (r.status != 0 || r.out.empty()) return nlohmann::json::array();
    return nlohmann::json::parse(r.out);
}

void KernelTest::SetUp() {
    // A fresh network namespace for this test: whatever the test creates dies with it.
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    auto sock = netlink::RouteSocket::open_current();
    ASSERT_TRUE(sock.ok()) << sock.error().message();
    auto up = netlink::set_up(*sock, "lo");
    ASSERT_TRUE(up.ok()) << up.error().message();
    auto k = platform::LinuxKernel::create();
    ASSERT_TRUE(k.ok()) << k.error().message();
    kernel = std::move(k).value();
}

void KernelTest::TearDown() {
    kernel.reset();
    // Unmount and unlink every netns file the test made (the namespaces die with their last user).
    if (DIR* d = ::opendir(g_netns_dir.c_str())) {
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d))
            if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, ".."))
                names.push_back(e->d_name);
        ::closedir(d);
        for (const auto& n : names) {
            auto r = netns::remove(ns_path(n));
            EXPECT_TRUE(r.ok()) << r.error().message();
        }
    }
}

void BridgeKernelTest::SetUp() {
    KernelTest::SetUp();
    if (HasFatalFailure()) return;
    auto br = kernel->ensure_bridge({"br0", Ipv4Cidr::parse("192.0.2.1/24").value(), mtu_});
    ASSERT_TRUE(br.ok()) << br.error().message();
}

std::unique_ptr<core::Netns> KernelTest::make_ns(const std::string& name) {
    auto c = kernel->create_netns(ns_path(name));
    EXPECT_TRUE(c.ok()) << c.error().message();
    auto ns = kernel->open_netns(ns_path(name));
    EXPECT_TRUE(ns.ok()) << ns.error().message();
    return ns.ok() ? std::move(ns).value() : nullptr;
}

namespace {

// A socket is bound to the namespace of the thread that creates it.
UniqueFd socket_in(int ns_fd, int family) {
    if (ns_fd < 0) return UniqueFd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto scope = netns::ScopedNetns::enter(ns_fd, "test netns");
    if (!scope.ok()) return UniqueFd();
    return UniqueFd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

bool wait_fd(int fd, short events, int ms) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, ms) == 1 && (p.revents & events);
}

}  // namespace

std::string tcp_exchange(int client_ns, int server_ns, const std::string& ip, int port,
                         bool listen_any) {
    // IPv4 or IPv6 by the address's text.
    sockaddr_storage ss{};
    socklen_t sl = 0;
    sockaddr_storage bind_ss{};
    const bool v6 = ip.find(':') != std::string::npos;
    if (v6) {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(static_cast<uint16_t>(port));
        if (::inet_pton(AF_INET6, ip.c_str(), &sa->sin6_addr) != 1) return "bad ip " + ip;
        sl = sizeof *sa;
        bind_ss = ss;
        if (listen_any) reinterpret_cast<sockaddr_in6*>(&bind_ss)->sin6_addr = in6addr_any;
    } else {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        sa->sin_family = AF_INET;
        sa->sin_port = htons(static_cast<uint16_t>(port));
        if (::inet_pton(AF_INET, ip.c_str(), &sa->sin_addr) != 1) return "bad ip " + ip;
        sl = sizeof *sa;
        bind_ss = ss;
        if (listen_any)
            reinterpret_cast<sockaddr_in*>(&bind_ss)->sin_addr.s_addr = htonl(INADDR_ANY);
    }
    auto* addr = reinterpret_cast<sockaddr*>(&ss);
    const int family = v6 ? AF_INET6 : AF_INET;

    UniqueFd lst = socket_in(server_ns, family);
    if (!lst.valid()) return "listener socket";
    int one = 1;
    ::setsockopt(lst.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(lst.get(), reinterpret_cast<sockaddr*>(&bind_ss), sl) != 0)
        return std::string("bind: ") + std::strerror(errno);
    if (::listen(lst.get(), 1) != 0) return "listen";

    UniqueFd cli = socket_in(client_ns, family);
    if (!cli.valid()) return "client socket";
    ::fcntl(cli.get(), F_SETFL, O_NONBLOCK);
    if (::connect(cli.get(), addr, sl) != 0 && errno != EINPROGRESS)
        return std::string("connect: ") + std::strerror(errno);
    if (!wait_fd(cli.get(), POLLOUT, 3000)) return "connect timed out";
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(cli.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return std::string("connect: ") + std::strerror(err);
    if (!wait_fd(lst.get(), POLLIN, 3000)) return "accept timed out";
    UniqueFd conn(::accept4(lst.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) return "accept";
    const char msg[] = "ping";
    if (::send(cli.get(), msg, 4, MSG_NOSIGNAL) != 4) return "send";
    if (!wait_fd(conn.get(), POLLIN, 3000)) return "recv timed out";
    char buf[8] = {};
    if (::recv(conn.get(), buf, sizeof buf, 0) != 4 || std::memcmp(buf, msg, 4) != 0)
        return "wrong payload";
    return "";
}

}  // namespace cnetd::ktest
