// daemon/relay.hpp directly, as root inside the sandbox (tests/daemon/meson.build runs this binary
// under unshare): real sockets on [::1] in the private network namespace. The "container" is a
// server on another [::1] port; the test plays the engine (it holds the host port the way
// core::Kernel::hold_ports6 does and calls sync() as the worker's publish hook would). The worker
// is never started, so the relay's own hook never syncs behind the test's back.
#include "daemon/relay.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>
#include <boost/asio/post.hpp>

#include "base/fd.hpp"

namespace cnetd {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

sockaddr_in6 loopback6(uint16_t port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_loopback;
    return sa;
}

uint16_t port_of(int fd) {
    sockaddr_in6 sa{};
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin6_port);
}

// A socket bound to [::1] (port 0: any), 1 s receive timeout so a broken relay fails, not hangs.
UniqueFd bound6(int type, uint16_t port = 0) {
    UniqueFd s(::socket(AF_INET6, type | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    timeval tv{1, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in6 sa = loopback6(port);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0)
        << std::strerror(errno);
    return s;
}

UniqueFd connect6(int type, uint16_t port) {
    UniqueFd s(::socket(AF_INET6, type | SOCK_CLOEXEC, 0));
    timeval tv{1, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in6 sa = loopback6(port);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) s.reset();
    return s;
}

void send_str(int fd, const std::string& s) {
    ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

// Reads exactly n bytes (or what came before EOF / the timeout).
std::string recv_n(int fd, size_t n) {
    std::string out;
    char buf[4096];
    while (out.size() < n) {
        ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
        if (r <= 0) break;
        out.append(buf, static_cast<size_t>(r));
    }
    return out;
}

bool eof(int fd) {
    char c;
    return ::recv(fd, &c, 1, 0) == 0;
}

UniqueFd accept_one(int listener) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return UniqueFd();
    return UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

class RelayTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_EQ(std::system("ip link set lo up"), 0); }
    void SetUp() override {
        relay_.emplace(io_, worker_, limits_);
        io_thread_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        on_io([this] { relay_.reset(); });
        guard_.reset();
        io_.stop();
        io_thread_.join();
    }

    // Runs `f` on the io thread and waits for it (the relay's stats() and destructor live there).
    template <class F>
    std::invoke_result_t<F> on_io(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto fut = task.get_future();
        asio::post(io_, [&task] { task(); });
        return fut.get();
    }
    daemon::RelayStats stats() {
        return on_io([this] { return relay_->stats(); });
    }
    // The engine's hold of [::1]:port for `type`, published as the binding to `target_port`.
    core::LoopbackRelay publish(int type, UniqueFd& hold, uint16_t target_port) {
        hold = bound6(type);
        if (type == SOCK_DGRAM) {  // the engine keeps datagrams off a held udp port
            static sock_filter drop_all[] = {{BPF_RET | BPF_K, 0, 0, 0}};
            sock_fprog prog{1, drop_all};
            EXPECT_EQ(::setsockopt(hold.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog),
                      0);
        }
        core::LoopbackRelay b;
        b.endpoint = "c1";
        b.proto = type == SOCK_STREAM ? core::Proto::Tcp : core::Proto::Udp;
        b.host_port = port_of(hold.get());
        b.container_ip = *Ipv6::parse("::1");
        b.container_port = target_port;
        b.fd = hold.get();
        return b;
    }
    // Waits up to 1 s for the relay to serve `n` listeners (sync() applies on the io thread).
    void wait_listeners(size_t n) {
        for (int i = 0; i < 100 && stats().listeners != n; ++i) std::this_thread::sleep_for(10ms);
        ASSERT_EQ(stats().listeners, n);
    }

    // A "container" server on [::1] (tcp: listening unless told not to), its host port held and
    // synced to the relay, served once this returns.
    void serve(int type, bool listening = true) {
        container_ = bound6(type);
        if (type == SOCK_STREAM && listening) {
            ASSERT_EQ(::listen(container_.get(), 8), 0);
        }
        b_ = publish(type, hold_, port_of(container_.get()));
        relay_->sync({b_});
        wait_listeners(1);
    }
    // A client connected through the relay, and the container's side of it (invalid if the relay
    // never connected).
    std::pair<UniqueFd, UniqueFd> connect_through() {
        UniqueFd client = connect6(SOCK_STREAM, b_.host_port);
        return {std::move(client), accept_one(container_.get())};
    }

    UniqueFd container_, hold_;
    core::LoopbackRelay b_;
    daemon::RelayLimits limits_;
    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
    daemon::Worker worker_;  // not started: the relay's hook never fires
    std::optional<daemon::Relay> relay_;
    std::thread io_thread_;
};

TEST_F(RelayTest, TcpBytesBothWaysAndHalfClose) {
    serve(SOCK_STREAM);
    auto [client, server] = connect_through();
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(server.valid()) << "the relay did not connect to the container";
    const std::string big(300000, 'b');  // more than the relay's buffers
    send_str(client.get(), "ping" + big);
    EXPECT_EQ(recv_n(server.get(), 4 + big.size()), "ping" + big);
    send_str(server.get(), "pong");
    EXPECT_EQ(recv_n(client.get(), 4), "pong");
    EXPECT_EQ(stats().tcp_connections, 1u);

    // The client's FIN reaches the container; the other direction keeps working.
    ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
    EXPECT_TRUE(eof(server.get()));
    send_str(server.get(), "bye");
    EXPECT_EQ(recv_n(client.get(), 3), "bye");
    server.reset();  // then the container closes: the client sees it, the relay forgets it
    EXPECT_TRUE(eof(client.get()));
    for (int i = 0; i < 100 && stats().tcp_connections != 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(stats().tcp_connections, 0u);
}

TEST_F(RelayTest, TcpClientCloseReachesTheContainer) {
    serve(SOCK_STREAM);
    auto [client, server] = connect_through();
    ASSERT_TRUE(server.valid());
    send_str(client.get(), "x");
    EXPECT_EQ(recv_n(server.get(), 1), "x");
    client.reset();
    EXPECT_TRUE(eof(server.get()));
}

TEST_F(RelayTest, TcpWithoutAContainerListenerClosesTheClient) {
    serve(SOCK_STREAM, false);  // bound, never listening: the relay's connect is refused
    UniqueFd client = connect6(SOCK_STREAM, b_.host_port);
    ASSERT_TRUE(client.valid());     // accepted by the relay's listener...
    EXPECT_TRUE(eof(client.get()));  // ...and closed once the upstream connect failed
}

class RelayUdpIdle : public RelayTest {
protected:
    RelayUdpIdle() { limits_.udp_idle = 300ms; }
};

TEST_F(RelayUdpIdle, UdpFlowsBothWaysOnePerClientAndIdleOnesEnd) {
    serve(SOCK_DGRAM);

    UniqueFd c1 = connect6(SOCK_DGRAM, b_.host_port), c2 = connect6(SOCK_DGRAM, b_.host_port);
    for (auto* c : {&c1, &c2}) {
        send_str(c->get(), "hi");
        sockaddr_in6 from{};
        socklen_t len = sizeof from;
        char buf[16];
        ssize_t n = ::recvfrom(container_.get(), buf, sizeof buf, 0,
                               reinterpret_cast<sockaddr*>(&from), &len);
        ASSERT_EQ(n, 2) << "the datagram did not reach the container (drop-all filter kept?)";
        // The container answers the flow's own socket; the client hears it from [::1]:host_port.
        ASSERT_EQ(::sendto(container_.get(), "ho", 2, 0, reinterpret_cast<sockaddr*>(&from), len),
                  2);
        EXPECT_EQ(recv_n(c->get(), 2), "ho");
    }
    EXPECT_EQ(stats().udp_flows, 2u);
    std::this_thread::sleep_for(700ms);  // no datagram for longer than udp_idle
    EXPECT_EQ(stats().udp_flows, 0u);
}

class RelayOneConnection : public RelayTest {
protected:
    RelayOneConnection() { limits_.max_tcp_connections = 1; }
};

TEST_F(RelayOneConnection, TcpConnectionsBeyondTheLimitAreClosed) {
    serve(SOCK_STREAM);
    auto [first, server] = connect_through();
    ASSERT_TRUE(server.valid());
    UniqueFd second = connect6(SOCK_STREAM, b_.host_port);
    ASSERT_TRUE(second.valid());
    EXPECT_TRUE(eof(second.get()));
    send_str(first.get(), "still");
    EXPECT_EQ(recv_n(server.get(), 5), "still");
}

// The engine's hold shuts the socket down and closes it when the mapping goes; the next sync
// (without it) closes the relay's listener and its connections.
TEST_F(RelayTest, ASyncWithoutTheBindingClosesItsListenerAndConnections) {
    serve(SOCK_STREAM);
    auto [client, server] = connect_through();
    ASSERT_TRUE(server.valid());

    ::shutdown(hold_.get(), SHUT_RDWR);
    hold_.reset();
    relay_->sync({});
    wait_listeners(0);
    EXPECT_TRUE(eof(client.get()));
    EXPECT_FALSE(connect6(SOCK_STREAM, b_.host_port).valid());  // refused: nobody listens
    // The same sync again changes nothing.
    relay_->sync({});
    EXPECT_EQ(stats().listeners, 0u);
}

}  // namespace
}  // namespace cnetd
