// The embedded resolver's kernel side in a real namespace (LinuxKernel's Netns:
// open_dns_listener, set_dns_nat, remove_dns_nat; docs/dns.md): a query a container sends to
// 127.0.0.11:53 arrives on the daemon's socket and the answer comes back from 127.0.0.11:53, over
// UDP and TCP; a container program keeps its own 0.0.0.0:53; new ports take over at once.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "kernel_fixture.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {
namespace {

sockaddr_in addr(const char* ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

bool readable(int fd, int ms = 2000) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

// A socket made inside namespace `ns_fd` (it stays there).
UniqueFd inet_socket_in(int ns_fd, int type) {
    auto scope = netns::ScopedNetns::enter(ns_fd, "test netns");
    EXPECT_TRUE(scope.ok()) << scope.error().message();
    return UniqueFd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
}

// Receives one datagram on `fd`: its text, and the sender in `from`.
std::string recv_text(int fd, sockaddr_in* from = nullptr) {
    if (!readable(fd)) return "<nothing>";
    char buf[512];
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) return std::string("<error ") + std::strerror(errno) + ">";
    if (from) *from = sa;
    return std::string(buf, static_cast<size_t>(n));
}

std::string str(const sockaddr_in& sa) {
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port));
}

class DnsListenerTest : public KernelTest {
protected:
    void SetUp() override {
        KernelTest::SetUp();
        ns = make_ns("c1");
        ASSERT_TRUE(ns);
        auto fd = netns::open(ns_path("c1"));
        ASSERT_TRUE(fd.ok()) << fd.error().message();
        ns_fd = std::move(fd).value();
    }
    std::unique_ptr<core::DnsListener> open_and_nat() {
        auto l = ns->open_dns_listener();
        EXPECT_TRUE(l.ok()) << l.error().message();
        if (!l.ok()) return nullptr;
        auto nat = ns->set_dns_nat((*l)->udp_port(), (*l)->tcp_port());
        EXPECT_TRUE(nat.ok()) << nat.error().message();
        return std::move(l).value();
    }
    // Sends `text` from `client` to 127.0.0.11:53.
    static void query(int client, const std::string& text) {
        const sockaddr_in dst = addr("127.0.0.11", 53);
        ASSERT_EQ(::sendto(client, text.data(), text.size(), 0,
                           reinterpret_cast<const sockaddr*>(&dst), sizeof dst),
                  static_cast<ssize_t>(text.size()))
            << std::strerror(errno);
    }
    // The namespace's nftables tables, as `nft -j list tables` run inside it lists them.
    std::vector<std::string> tables() {
        auto r = run("ip netns exec c1 nft -j list tables");
        EXPECT_EQ(r.status, 0) << r.out;
        std::vector<std::string> out;
        const auto j = nlohmann::json::parse(r.out);
        for (const auto& o : j["nftables"])
            if (o.contains("table"))
                out.push_back(o["table"]["family"].get<std::string>() + " " +
                              o["table"]["name"].get<std::string>());
        return out;
    }

    std::unique_ptr<core::Netns> ns;
    UniqueFd ns_fd;
};

TEST_F(DnsListenerTest, UdpQueryReachesTheListenerAndTheReplyComesFrom127_0_0_11Port53) {
    auto l = open_and_nat();
    ASSERT_TRUE(l);
    EXPECT_NE(l->udp_port(), 53);
    EXPECT_GE(l->udp_fd(), 0);
    EXPECT_GE(l->tcp_fd(), 0);
    EXPECT_EQ(tables(), std::vector<std::string>{"ip cnetd-dns"});
    // The rules read back as nft prints them: our typed specs are what the text says.
    auto listed = run("ip netns exec c1 nft list table ip cnetd-dns");
    EXPECT_NE(listed.out.find("type nat hook output priority"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:" +
                              std::to_string(l->udp_port())),
              std::string::npos)
        << listed.out;

    UniqueFd client = inet_socket_in(ns_fd.get(), SOCK_DGRAM);
    query(client.get(), "ping");
    sockaddr_in from{};
    ASSERT_EQ(recv_text(l->udp_fd(), &from), "ping");
    ASSERT_EQ(
        ::sendto(l->udp_fd(), "pong", 4, 0, reinterpret_cast<const sockaddr*>(&from), sizeof from),
        4);
    sockaddr_in replier{};
    EXPECT_EQ(recv_text(client.get(), &replier), "pong");
    EXPECT_EQ(str(replier), "127.0.0.11:53") << "conntrack un-NATs the reply";
}

TEST_F(DnsListenerTest, TcpConnectTo127_0_0_11Port53IsAcceptedOnTheListener) {
    auto l = open_and_nat();
    ASSERT_TRUE(l);
    UniqueFd client = inet_socket_in(ns_fd.get(), SOCK_STREAM);
    const sockaddr_in dst = addr("127.0.0.11", 53);
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<const sockaddr*>(&dst), sizeof dst), 0)
        << std::strerror(errno);
    ASSERT_TRUE(readable(l->tcp_fd()));
    UniqueFd conn(::accept4(l->tcp_fd(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid()) << std::strerror(errno);
    ASSERT_EQ(::send(client.get(), "q", 1, 0), 1);
    ASSERT_TRUE(readable(conn.get()));
    char c = 0;
    EXPECT_EQ(::recv(conn.get(), &c, 1, 0), 1);
    EXPECT_EQ(c, 'q');
}

TEST_F(DnsListenerTest, AContainerProgramOnPort53Coexists) {
    // The program's sockets first: nothing of ours holds 53.
    UniqueFd own_udp = inet_socket_in(ns_fd.get(), SOCK_DGRAM);
    UniqueFd own_tcp = inet_socket_in(ns_fd.get(), SOCK_STREAM);
    const sockaddr_in any53 = addr("0.0.0.0", 53);
    ASSERT_EQ(::bind(own_udp.get(), reinterpret_cast<const sockaddr*>(&any53), sizeof any53), 0);
    ASSERT_EQ(::bind(own_tcp.get(), reinterpret_cast<const sockaddr*>(&any53), sizeof any53), 0);
    ASSERT_EQ(::listen(own_tcp.get(), 4), 0);
    auto l = open_and_nat();
    ASSERT_TRUE(l);
    UniqueFd client = inet_socket_in(ns_fd.get(), SOCK_DGRAM);
    query(client.get(), "to resolver");
    EXPECT_EQ(recv_text(l->udp_fd()), "to resolver");
    const sockaddr_in lo53 = addr("127.0.0.1", 53);
    ASSERT_EQ(::sendto(client.get(), "to program", 10, 0, reinterpret_cast<const sockaddr*>(&lo53),
                       sizeof lo53),
              10);
    EXPECT_EQ(recv_text(own_udp.get()), "to program");
    EXPECT_FALSE(readable(l->udp_fd(), 100));
}

TEST_F(DnsListenerTest, NewPortsTakeOverAtOnceForAnExistingFlow) {
    auto first = open_and_nat();
    ASSERT_TRUE(first);
    // One client socket (one source port) throughout: its conntrack entry still says "first".
    UniqueFd client = inet_socket_in(ns_fd.get(), SOCK_DGRAM);
    query(client.get(), "one");
    ASSERT_EQ(recv_text(first->udp_fd()), "one");
    auto second = open_and_nat();  // a restarted daemon: new sockets, new ports
    ASSERT_TRUE(second);
    ASSERT_NE(second->udp_port(), first->udp_port());
    query(client.get(), "two");
    EXPECT_EQ(recv_text(second->udp_fd()), "two") << "the old conntrack entry was not flushed";
    EXPECT_FALSE(readable(first->udp_fd(), 100));
}

TEST_F(DnsListenerTest, RemoveLeavesNoTableAndAbsentIsSuccess) {
    auto l = open_and_nat();
    ASSERT_TRUE(l);
    ASSERT_EQ(tables(), std::vector<std::string>{"ip cnetd-dns"});
    auto r = ns->remove_dns_nat();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(tables().empty());
    auto again = ns->remove_dns_nat();
    EXPECT_TRUE(again.ok()) << again.error().message();
}

TEST_F(DnsListenerTest, ClosingShutsTheSocketsDownForDups) {
    auto l = open_and_nat();
    ASSERT_TRUE(l);
    UniqueFd dup_tcp(::fcntl(l->tcp_fd(), F_DUPFD_CLOEXEC, 0));
    ASSERT_TRUE(dup_tcp.valid());
    l.reset();
    // The dup still exists, but a shut-down listener accepts nothing: connect is refused.
    UniqueFd client = inet_socket_in(ns_fd.get(), SOCK_STREAM);
    const sockaddr_in dst = addr("127.0.0.11", 53);
    EXPECT_NE(::connect(client.get(), reinterpret_cast<const sockaddr*>(&dst), sizeof dst), 0);
}

}  // namespace
}  // namespace cnetd::ktest
