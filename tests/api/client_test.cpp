// api::Client's deadline, against real unix sockets that accept and never answer (what a SIGSTOPped
// cnetd looks like from outside), and the same through the real netctl and cnetd-cni binaries
// (NETCTL_BIN, CNETD_CNI_BIN from meson). A hang is the defect, so every bound is generous.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/client.hpp"
#include "proc.hpp"

namespace cnetd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::bin;
using testing::Proc;
using testing::run;

// A listening unix socket nobody answers on. `accept`: a thread accepts every connection and holds
// it open without reading (a daemon stopped after accept); otherwise connections stay queued
// (a daemon stopped before accept). Backlog `backlog`.
class SilentServer {
public:
    SilentServer(const std::string& path, bool accept, int backlog = 16) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
            << std::strerror(errno);
        EXPECT_EQ(::listen(fd_, backlog), 0);
        if (accept) thread_ = std::thread([this] { accept_loop(); });
    }
    ~SilentServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        for (int c : held_) ::close(c);
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    size_t accepted() const { return accepted_; }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) == 1) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c >= 0) held_.push_back(c), ++accepted_;
            }
        }
    }
    std::string path_;
    int fd_ = -1;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<size_t> accepted_{0};
    std::vector<int> held_;
};

class ClientDeadline : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cnetd-client-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        sock_ = dir_ + "/cnetd.sock";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_, sock_;
};

// The "waited N ms" of a message, or -1.
long waited_ms(const std::string& msg) {
    std::smatch m;
    if (!std::regex_search(msg, m, std::regex(R"(waited (\d+) ms)"))) return -1;
    return std::stol(m[1]);
}

long ms(Clock::duration d) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

TEST_F(ClientDeadline, AcceptedButNeverAnsweredTimesOutWithTheTimeWaited) {
    SilentServer server(sock_, /*accept=*/true);
    api::Client c(sock_, 300ms);
    const auto t0 = Clock::now();
    auto r = c.request("GET", "/v1/ping");
    const long took = ms(Clock::now() - t0);
    ASSERT_FALSE(r.ok());
    EXPECT_LT(took, 3000);
    EXPECT_GE(took, 290);
    EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
    EXPECT_EQ(r.error().error_number(), ETIMEDOUT);
    EXPECT_FALSE(api::never_sent(r.error()));
    const std::string& msg = r.error().message();
    EXPECT_NE(msg.find("cnetd at " + sock_ + " did not answer GET /v1/ping in time (waited "),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find(" ms for the response; is cnetd stopped or overloaded?)"), std::string::npos)
        << msg;
    // Truthful: what was really waited, not the configured number.
    EXPECT_GE(waited_ms(msg), 290) << msg;
    EXPECT_LE(waited_ms(msg), took) << msg;
    EXPECT_EQ(server.accepted(), 1u);
}

TEST_F(ClientDeadline, QueuedButNeverAcceptedTimesOut) {
    SilentServer server(sock_, /*accept=*/false);
    auto r = api::Client(sock_, 300ms).raw("POST", "/v1/networks", R"({"Name":"a"})");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().error_number(), ETIMEDOUT) << r.error().message();
    EXPECT_LT(waited_ms(r.error().message()), 3000) << r.error().message();
}

TEST_F(ClientDeadline, ABodyTheServerNeverReadsTimesOutWhileSending) {
    SilentServer server(sock_, /*accept=*/true);
    const auto t0 = Clock::now();
    // Far more than a unix socket buffers: the write itself blocks.
    auto r = api::Client(sock_, 300ms).raw("POST", "/v1/networks", std::string(16 << 20, 'x'));
    ASSERT_FALSE(r.ok());
    EXPECT_LT(ms(Clock::now() - t0), 3000);
    EXPECT_EQ(r.error().error_number(), ETIMEDOUT);
    EXPECT_NE(r.error().message().find("ms to send the request;"), std::string::npos)
        << r.error().message();
}

TEST_F(ClientDeadline, AFullListenQueueIsRetriedThenReportedAsNeverSent) {
    SilentServer server(sock_, /*accept=*/false, /*backlog=*/0);
    // Fill the queue: non-blocking connects until the kernel says EAGAIN.
    std::vector<int> fillers;
    for (int i = 0; i < 64; ++i) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_.c_str());
        int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        fillers.push_back(fd);
        if (rc != 0 && errno == EAGAIN) break;
    }
    const auto t0 = Clock::now();
    auto r = api::Client(sock_, 300ms).request("GET", "/v1/ping");
    const long took = ms(Clock::now() - t0);
    for (int fd : fillers) ::close(fd);
    ASSERT_FALSE(r.ok());
    EXPECT_GE(took, 290);
    EXPECT_LT(took, 3000);
    EXPECT_EQ(r.error().error_number(), EAGAIN) << r.error().message();
    EXPECT_TRUE(api::never_sent(r.error())) << r.error().message();
    EXPECT_NE(r.error().message().find("accepted no connection in "), std::string::npos)
        << r.error().message();
}

TEST_F(ClientDeadline, DefaultIsThirtySeconds) {
    EXPECT_EQ(api::Client(sock_).timeout(), 30s);
    EXPECT_EQ(api::kDefaultTimeout, 30s);
}

// ---- the binaries ----

TEST_F(ClientDeadline, NetctlTimeoutFailsWithExit3AndTheTimeWaited) {
    if (bin("NETCTL_BIN").empty()) GTEST_SKIP() << "NETCTL_BIN not set (run through meson)";
    SilentServer server(sock_, /*accept=*/true);
    Proc r = run(dir_, {bin("NETCTL_BIN"), "--socket", sock_, "--timeout", "1", "network", "ls"},
                 {}, "");
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_LT(r.took_ms, 5000);
    EXPECT_GE(r.took_ms, 990);
    EXPECT_NE(r.err.find("netctl: cnetd at " + sock_ + " did not answer GET /v1/networks in time"),
              std::string::npos)
        << r.err;
    const long waited = waited_ms(r.err);
    EXPECT_GE(waited, 990) << r.err;
    EXPECT_LE(waited, r.took_ms) << r.err;

    Proc bad = run(dir_, {bin("NETCTL_BIN"), "--socket", sock_, "--timeout", "0", "network", "ls"},
                   {}, "");
    EXPECT_EQ(bad.status, 2) << bad.err;
    EXPECT_NE(bad.err.find("--timeout"), std::string::npos) << bad.err;
}

TEST_F(ClientDeadline, CniDelWithCnetdTimeoutFailsWithCode11AndTheTimeWaited) {
    if (bin("CNETD_CNI_BIN").empty()) GTEST_SKIP() << "CNETD_CNI_BIN not set (run through meson)";
    SilentServer server(sock_, /*accept=*/true);
    const std::string conf = R"({"cniVersion":"1.1.0","name":"pods","type":"cnetd-cni",
        "cnetdSocket":")" + sock_ +
                             R"(","cnetdTimeout":1})";
    Proc r = run(dir_, {bin("CNETD_CNI_BIN")},
                 {"CNI_COMMAND=DEL", "CNI_CONTAINERID=c0ffee", "CNI_IFNAME=eth0",
                  "CNI_NETNS=", "CNI_PATH=/nonexistent"},
                 conf);
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_LT(r.took_ms, 5000);
    EXPECT_GE(r.took_ms, 990);
    auto e = api::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(e.is_object()) << r.out;
    EXPECT_EQ(e["code"], 11) << r.out;
    const std::string msg = e["msg"];
    EXPECT_NE(msg.find("cnetd is not reachable (waited "), std::string::npos) << msg;
    EXPECT_NE(msg.find("cnetdTimeout 1 s): cnetd at " + sock_ +
                       " did not answer POST /v1/cni/del in time"),
              std::string::npos)
        << msg;
    EXPECT_GE(waited_ms(msg), 990) << msg;
    EXPECT_LE(waited_ms(msg), r.took_ms) << msg;
}

}  // namespace
}  // namespace cnetd
