// Socket authorization (SO_PEERCRED against `group` / `read-group`) and the server's limits
// (idle and read timeouts, max connections, slow clients), on the real server with FakeBackend.
//
// The authorization tests fork a client that drops to uid 65534 (nobody) with chosen groups; they
// need root to do that and skip otherwise.
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "api/client.hpp"
#include "base/fd.hpp"
#include "daemon/auth.hpp"
#include "daemon/handlers.hpp"
#include "daemon/server.hpp"
#include "daemon/worker.hpp"
#include "fake_backend.hpp"

namespace cnetd {
namespace {

namespace asio = boost::asio;
using api::json;
using daemon::Access;
using daemon::AuthPolicy;
using daemon::PeerCred;
using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;
constexpr gid_t kWriters = 4242;  // numeric gids: no /etc/group entry needed
constexpr gid_t kReaders = 4343;
constexpr gid_t kStranger = 4444;

// ---------------------------------------------------------------------------------------------
// the pure decision

AuthPolicy policy(std::optional<gid_t> writers, std::optional<gid_t> readers) {
    AuthPolicy p;
    p.write_group = {writers ? std::to_string(*writers) : "cnetd", writers};
    if (readers) p.read_group = {std::to_string(*readers), readers};
    p.owner_uid = 0;
    return p;
}

TEST(AuthPolicy, RootOwnerWritersReadersAndStrangers) {
    auto p = policy(kWriters, kReaders);
    EXPECT_EQ(daemon::access_of(PeerCred{1, 0, 0, {}}, p), Access::Write);
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kWriters, {}}, p), Access::Write);
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kStranger, {kStranger, kWriters}}, p),
              Access::Write);
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kReaders, {}}, p), Access::Read);
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kStranger, {kReaders}}, p), Access::Read);
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kStranger, {kStranger}}, p), Access::None);
    // The daemon's own uid (an unprivileged test daemon) may do everything.
    p.owner_uid = 1234;
    EXPECT_EQ(daemon::access_of(PeerCred{1, 1234, kStranger, {}}, p), Access::Write);
    // A group that does not exist grants nothing.
    auto missing = policy(std::nullopt, std::nullopt);
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kWriters, {kWriters}}, missing), Access::None);
}

TEST(AuthPolicy, MembershipThroughThePasswdEntry) {
    // nobody's primary group in /etc/passwd is 65534 (nogroup on Debian): getgrouplist sees it
    // even when the process runs with another gid and no supplementary groups.
    AuthPolicy p;
    p.write_group = {"65534", gid_t{65534}};
    EXPECT_EQ(daemon::access_of(PeerCred{1, kNobody, kStranger, {}}, p), Access::Write);
    EXPECT_TRUE(daemon::user_in_group(kNobody, 65534));
    EXPECT_FALSE(daemon::user_in_group(kNobody, kWriters));
}

TEST(AuthPolicy, MethodsAndDenialMessages) {
    EXPECT_EQ(daemon::required_for("GET"), Access::Read);
    EXPECT_EQ(daemon::required_for("HEAD"), Access::Read);
    for (const char* m : {"POST", "DELETE", "PUT", "PATCH", "get", "OPTIONS"})
        EXPECT_EQ(daemon::required_for(m), Access::Write) << m;

    AuthPolicy p;
    p.write_group = {"cnetd", gid_t{998}};
    p.read_group = {"4343", kReaders};
    EXPECT_EQ(
        daemon::denial_message(PeerCred{7, kNobody, kStranger, {}}, p, "POST", "/v1/networks"),
        "permission denied: uid 65534 (nobody) may not POST /v1/networks: changing state "
        "requires root or membership in group cnetd (gid 998)");
    EXPECT_EQ(daemon::denial_message(PeerCred{7, kNobody, kStranger, {}}, p, "GET", "/v1/info"),
              "permission denied: uid 65534 (nobody) may not GET /v1/info: reading state "
              "requires root or membership in group cnetd (gid 998) or read-only group 4343");
    EXPECT_EQ(
        daemon::denial_message(PeerCred{7, kNobody, kReaders, {}}, p, "DELETE", "/v1/netns/a"),
        "permission denied: uid 65534 (nobody) may not DELETE /v1/netns/a: changing state "
        "requires root or membership in group cnetd (gid 998) (group 4343 only allows reads)");
    AuthPolicy none;
    none.write_group = {"cnetd", std::nullopt};
    EXPECT_EQ(daemon::denial_message(PeerCred{7, 4321, 4321, {}}, none, "POST", "/v1/netns"),
              "permission denied: uid 4321 may not POST /v1/netns: changing state requires root "
              "or membership in group cnetd (which does not exist on this host)");
}

TEST(AuthPolicy, GroupsResolveByNameOrGid) {
    auto empty = daemon::resolve_group("read-group", "", false);
    ASSERT_TRUE(empty.ok());
    EXPECT_FALSE(empty->gid);
    auto num = daemon::resolve_group("group", "4242", false);
    ASSERT_TRUE(num.ok());
    EXPECT_EQ(num->gid, gid_t{4242});
    auto named = daemon::resolve_group("group", "nogroup", false);
    ASSERT_TRUE(named.ok()) << named.error().message();
    EXPECT_EQ(named->gid, gid_t{65534});
    auto missing = daemon::resolve_group("group", "no-such-group-cnetd", false);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().message(), "group: group \"no-such-group-cnetd\" does not exist");
    auto tolerated = daemon::resolve_group("group", "no-such-group-cnetd", true);
    ASSERT_TRUE(tolerated.ok());
    EXPECT_FALSE(tolerated->gid);
    auto huge = daemon::resolve_group("group", "99999999999", false);
    ASSERT_FALSE(huge.ok());
    EXPECT_EQ(huge.error().message(), "group: \"99999999999\" is not a valid gid");
}

// ---------------------------------------------------------------------------------------------
// the real server

class ServerFixture : public ::testing::Test {
protected:
    void start(daemon::ServerOptions opts) {
        char tmpl[] = "/tmp/cnetd-auth-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // nobody must reach the socket's directory
        netns_dir_ = dir_ + "/netns";
        ASSERT_EQ(::mkdir(netns_dir_.c_str(), 0755), 0);
        sock_ = dir_ + "/cnetd.sock";
        auto started = worker_.start([this]() -> Result<std::unique_ptr<daemon::Backend>> {
            return std::unique_ptr<daemon::Backend>(
                std::make_unique<testing::FakeBackend>(netns_dir_, false));
        });
        ASSERT_TRUE(started.ok()) << started.error().message();
        handlers_.emplace(worker_, daemon::DaemonInfo{"9.9.9", netns_dir_, dir_ + "/state", sock_,
                                                      "2024-01-01T00:00:00Z"});
        server_.emplace(io_, *handlers_, std::move(opts));
        auto l = server_->listen(sock_);
        ASSERT_TRUE(l.ok()) << l.error().message();
        io_thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        worker_.stop();
        io_.stop();
        if (io_thread_.joinable()) io_thread_.join();
        server_.reset();
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    // Server stats, read on the io thread.
    daemon::ServerStats stats() {
        std::promise<daemon::ServerStats> p;
        asio::post(io_, [&] { p.set_value(server_->stats()); });
        return p.get_future().get();
    }

    UniqueFd connect_raw() const {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, sock_.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
        return fd;
    }

    std::string dir_, netns_dir_, sock_;
    asio::io_context io_{1};
    daemon::Worker worker_;
    std::optional<daemon::Handlers> handlers_;
    std::optional<daemon::Server> server_;
    std::thread io_thread_;
};

// Reads until EOF or `timeout`; returns what came, and whether EOF was seen.
std::pair<std::string, bool> read_all(int fd, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return {out, false};
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return {out, false};
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return {out, true};
        out.append(buf, static_cast<size_t>(n));
    }
}

int status_of(const std::string& response) {
    if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
    return std::atoi(response.substr(9, 3).c_str());
}

std::string body_of(const std::string& response) {
    auto p = response.find("\r\n\r\n");
    return p == std::string::npos ? "" : response.substr(p + 4);
}

// ---------------------------------------------------------------------------------------------
// authorization: a forked client running as nobody

struct ClientResult {
    int connect_errno = 0;  // connect() failed with this
    int status = 0;
    std::string body;
};

class AuthServer : public ServerFixture {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as nobody";
    }

    // Forks a child that becomes uid nobody with primary `gid` and supplementary `groups`, then
    // sends one request; its answer comes back through a pipe. The request text is built before
    // fork(): the child only makes system calls (the parent has other threads).
    ClientResult as_nobody(gid_t gid, std::vector<gid_t> groups, const std::string& method,
                           const std::string& target, const std::string& body = "") {
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
        if (!body.empty()) {
            req +=
                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n";
        }
        req += "Connection: close\r\n\r\n" + body;
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, sock_.c_str(), sizeof addr.sun_path - 1);
        int pfd[2];
        if (::pipe2(pfd, O_CLOEXEC) != 0) return {};
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(pfd[0]);
            if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
                ::setuid(kNobody) != 0)
                ::_exit(2);
            int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                int e = errno;
                [[maybe_unused]] auto w = ::write(pfd[1], &e, sizeof e);
                ::_exit(1);
            }
            int zero = 0;
            [[maybe_unused]] auto w = ::write(pfd[1], &zero, sizeof zero);
            // A refused peer may be answered (and its connection half-closed) before it writes.
            [[maybe_unused]] auto sent = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
            char buf[4096];
            ssize_t n;
            while ((n = ::read(fd, buf, sizeof buf)) > 0) w = ::write(pfd[1], buf, n);
            ::_exit(0);
        }
        ::close(pfd[1]);
        ClientResult r;
        std::string all;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(pfd[0], buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
        ::close(pfd[0]);
        int st = 0;
        ::waitpid(pid, &st, 0);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) <= 1) << "client child failed: " << st;
        if (all.size() >= sizeof(int)) {
            std::memcpy(&r.connect_errno, all.data(), sizeof(int));
            all.erase(0, sizeof(int));
        }
        r.status = status_of(all);
        r.body = body_of(all);
        return r;
    }
};

TEST_F(AuthServer, SocketHasTheGroupAndMode0660AndNoLeftovers) {
    daemon::ServerOptions o;
    o.group = std::to_string(kWriters);
    start(o);
    struct stat st {};
    ASSERT_EQ(::lstat(sock_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, kWriters);
    // The private bind directory is gone.
    for (const auto& e : std::filesystem::directory_iterator(dir_))
        EXPECT_TRUE(e.path().filename() == "cnetd.sock" || e.path().filename() == "netns")
            << e.path();
}

TEST_F(AuthServer, StrangersCannotEvenConnectToThe0660Socket) {
    daemon::ServerOptions o;
    o.group = std::to_string(kWriters);
    start(o);
    auto r = as_nobody(kStranger, {}, "GET", "/v1/ping");
    EXPECT_EQ(r.connect_errno, EACCES);
    // A member of the group (primary gid) changes state.
    auto made = as_nobody(kWriters, {}, "POST", "/v1/netns", R"({"Name":"a"})");
    EXPECT_EQ(made.connect_errno, 0);
    EXPECT_EQ(made.status, 201) << made.body;
    EXPECT_TRUE(std::filesystem::exists(netns_dir_ + "/a"));
}

TEST_F(AuthServer, WithAReadGroupEveryoneConnectsAndPeerCredDecides) {
    daemon::ServerOptions o;
    o.group = std::to_string(kWriters);
    o.read_group = std::to_string(kReaders);
    start(o);
    struct stat st {};
    ASSERT_EQ(::lstat(sock_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0666u);

    // A stranger: 403 as soon as it connects, whatever it sends, with a message naming the uid
    // and what is needed.
    auto get = as_nobody(kStranger, {}, "GET", "/v1/networks");
    EXPECT_EQ(get.status, 403) << get.body;
    auto msg = json::parse(get.body, nullptr, false);
    ASSERT_TRUE(msg.is_object()) << get.body;
    EXPECT_EQ(msg["kind"], "permission-denied");
    EXPECT_EQ(msg["message"],
              "permission denied: uid 65534 (nobody) may not use the control socket: reading "
              "state requires root or membership in group 4242 or read-only group 4343");
    auto post = as_nobody(kStranger, {}, "POST", "/v1/netns", R"({"Name":"x"})");
    EXPECT_EQ(post.status, 403) << post.body;
    EXPECT_FALSE(std::filesystem::exists(netns_dir_ + "/x"));  // never reached the backend

    // A reader (as a supplementary group): reads yes, writes no.
    auto rget = as_nobody(kStranger, {kReaders}, "GET", "/v1/networks");
    EXPECT_EQ(rget.status, 200) << rget.body;
    auto rpost = as_nobody(kStranger, {kReaders}, "POST", "/v1/netns", R"({"Name":"y"})");
    EXPECT_EQ(rpost.status, 403) << rpost.body;
    EXPECT_NE(rpost.body.find("(group 4343 only allows reads)"), std::string::npos) << rpost.body;
    EXPECT_FALSE(std::filesystem::exists(netns_dir_ + "/y"));

    // A writer through a supplementary group.
    auto wpost = as_nobody(kStranger, {kWriters}, "POST", "/v1/netns", R"({"Name":"z"})");
    EXPECT_EQ(wpost.status, 201) << wpost.body;
    EXPECT_TRUE(std::filesystem::exists(netns_dir_ + "/z"));
    // Root (this process) may do everything.
    EXPECT_TRUE(api::Client(sock_).request("DELETE", "/v1/netns/z").ok());

    auto s = stats();
    EXPECT_EQ(s.denied, 3u);
}

TEST_F(AuthServer, GroupByNameMembershipFromThePasswdEntry) {
    // `group: nogroup`: nobody's passwd entry has it as primary group, so getgrouplist() makes
    // nobody a member even while running with an unrelated gid and no supplementary groups.
    daemon::ServerOptions o;
    o.group = "nogroup";
    o.read_group = std::to_string(kReaders);  // 0666, so the kernel lets the stranger gid in
    start(o);
    auto made = as_nobody(kStranger, {}, "POST", "/v1/netns", R"({"Name":"p"})");
    EXPECT_EQ(made.status, 201) << made.body;
    struct stat st {};
    ASSERT_EQ(::lstat(sock_.c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, 65534u);
}

// ---------------------------------------------------------------------------------------------
// connection policy: 403 at connect, per-uid caps, reserved write slots, NSS off the io thread

// One answer as a forked client saw it.
struct Answer {
    int status = 0;
    int closed = 0;  // the server closed the connection after it
    int len = 0;
    char body[1000] = {};
    std::string text() const { return std::string(body, static_cast<size_t>(len)); }
};

std::string get_request(const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
}
std::string post_request(const std::string& target, const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Reads one HTTP response from `fd` (system calls and C string functions only: it runs in a
// forked child of a threaded process). For a non-200 answer also waits up to 1 s for the close.
Answer read_answer(int fd) {
    Answer a;
    char buf[8192];
    buf[0] = 0;
    size_t have = 0;
    const char* end = nullptr;
    auto fill = [&]() {
        pollfd p{fd, POLLIN, 0};
        if (have >= sizeof buf - 1 || ::poll(&p, 1, 5000) <= 0) return false;
        ssize_t n = ::read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) return false;
        have += static_cast<size_t>(n);
        buf[have] = 0;
        return true;
    };
    while (!(end = std::strstr(buf, "\r\n\r\n")))
        if (!fill()) return a;
    a.status = std::atoi(buf + 9);
    const char* cl = std::strstr(buf, "Content-Length: ");
    const size_t body_len = cl && cl < end ? std::strtoul(cl + 16, nullptr, 10) : 0;
    const size_t head = static_cast<size_t>(end + 4 - buf);
    while (have < head + body_len)
        if (!fill()) break;
    a.len = static_cast<int>(std::min(have - head, sizeof a.body));
    std::memcpy(a.body, buf + head, static_cast<size_t>(a.len));
    if (a.status != 200) {
        pollfd p{fd, POLLIN, 0};
        a.closed = ::poll(&p, 1, 1000) > 0 && ::read(fd, buf, sizeof buf) <= 0;
    }
    return a;
}

// A client forked as `uid` (primary `gid`, supplementary `groups`): it opens `conns` connections
// one after another, sends `first` on each ("" = nothing) and reports each answer; then, on the
// first connection, sends each of `then` when the parent calls go(). It holds its connections
// until destroyed.
class ForkedClient {
public:
    ForkedClient(const std::string& sock, uid_t uid, gid_t gid, std::vector<gid_t> groups,
                 int conns, const std::string& first, const std::vector<std::string>& then = {}) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
        int res[2], go[2];
        if (::pipe2(res, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(res[0]);
            ::close(go[1]);
            if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
                ::setuid(uid) != 0)
                ::_exit(2);
            int fds[64];
            for (int i = 0; i < conns && i < 64; ++i) {
                fds[i] = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                Answer a;
                if (::connect(fds[i], reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                    if (!first.empty()) [[maybe_unused]]
                        auto w = ::send(fds[i], first.data(), first.size(), MSG_NOSIGNAL);
                    a = read_answer(fds[i]);
                }
                if (::write(res[1], &a, sizeof a) != sizeof a) ::_exit(3);
            }
            for (const auto& req : then) {
                char c;
                if (::read(go[0], &c, 1) != 1) ::_exit(0);
                [[maybe_unused]] auto w = ::send(fds[0], req.data(), req.size(), MSG_NOSIGNAL);
                Answer a = read_answer(fds[0]);
                if (::write(res[1], &a, sizeof a) != sizeof a) ::_exit(3);
            }
            char c;
            while (::read(go[0], &c, 1) > 0) {
            }
            ::_exit(0);
        }
        ::close(res[1]);
        ::close(go[0]);
        res_.reset(res[0]);
        go_.reset(go[1]);
    }
    ~ForkedClient() {
        go_.reset();  // the child exits, closing its connections
        if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    }
    // The next answer (status 0 when the child reported none within 10 s).
    Answer next() {
        Answer a;
        pollfd p{res_.get(), POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0 || ::read(res_.get(), &a, sizeof a) != sizeof a) return {};
        return a;
    }
    void go() {
        char c = 'g';
        EXPECT_EQ(::write(go_.get(), &c, 1), 1);
    }

private:
    pid_t pid_ = -1;
    UniqueFd res_, go_;
};

daemon::ServerOptions reader_policy() {
    daemon::ServerOptions o;
    o.group = std::to_string(kWriters);
    o.read_group = std::to_string(kReaders);  // 0666: anyone can connect
    return o;
}

TEST_F(AuthServer, AStrangerIsAnswered403AtOnceAndClosedWithoutSendingARequest) {
    start(reader_policy());
    ForkedClient stranger(sock_, kNobody, kStranger, {}, 1, "");
    Answer a = stranger.next();
    EXPECT_EQ(a.status, 403) << a.text();
    EXPECT_TRUE(a.closed);
    EXPECT_EQ(json::parse(a.text())["message"],
              "permission denied: uid 65534 (nobody) may not use the control socket: reading "
              "state requires root or membership in group 4242 or read-only group 4343");
    EXPECT_EQ(stats().denied, 1u);
    for (int i = 0; i < 400 && stats().active > 0; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(stats().active, 0u);  // its slot is free again
}

TEST_F(AuthServer, OneUidCannotTakeEverySlotAndRootIsAlwaysServed) {
    auto o = reader_policy();
    o.max_connections = 8;
    o.max_connections_per_uid = 3;
    o.reserved_write_connections = 2;
    start(o);
    const std::string ping = get_request("/v1/ping");
    // A reader holds as many keep-alive connections as it may: 3 of its 5 get in.
    ForkedClient flood(sock_, kNobody, kReaders, {}, 5, ping);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(flood.next().status, 200) << i;
    for (int i = 0; i < 2; ++i) {
        Answer a = flood.next();
        EXPECT_EQ(a.status, 503) << a.text();
        EXPECT_TRUE(a.closed);
        EXPECT_EQ(json::parse(a.text())["message"],
                  "too many connections from uid 65534: cnetd serves at most 3 per uid at a "
                  "time; retry later");
    }
    // Two more reader uids fill the 8 - 2 slots open to peers without write access.
    ForkedClient second(sock_, kNobody - 1, kReaders, {}, 3, ping);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(second.next().status, 200) << i;
    ForkedClient third(sock_, kNobody - 2, kReaders, {}, 1, ping);
    Answer refused = third.next();
    EXPECT_EQ(refused.status, 503) << refused.text();
    EXPECT_EQ(json::parse(refused.text())["message"],
              "too many connections: the 6 slots for peers without write access are taken (2 "
              "are reserved for root and group members); retry later");
    EXPECT_EQ(stats().unprivileged, 6u);
    // Root is served, on both reserved slots at once.
    auto held = connect_raw();
    ASSERT_TRUE(held.valid());
    const std::string keep = get_request("/v1/ping");
    ASSERT_EQ(::write(held.get(), keep.data(), keep.size()), static_cast<ssize_t>(keep.size()));
    EXPECT_EQ(read_answer(held.get()).status, 200);
    auto r = api::Client(sock_).request("GET", "/v1/ping");
    EXPECT_TRUE(r.ok()) << r.error().message();
    for (int i = 0; i < 200 && stats().active > 7; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(api::Client(sock_).request("POST", "/v1/netns", json{{"Name", "a"}}).ok());
    EXPECT_EQ(stats().refused, 3u);
}

TEST_F(AuthServer, ASlowGroupLookupNeverDelaysRoot) {
    // NSS (LDAP, sssd) hangs for the stranger's uid: root's requests are answered meanwhile,
    // because the lookup runs on a resolver thread, not on the io thread.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<int> lookups{0};
    auto o = reader_policy();
    o.nss_lookup = [released, &lookups](uid_t uid) {
        ++lookups;
        released.wait();
        return daemon::lookup_user(uid);
    };
    start(o);
    ForkedClient stranger(sock_, kNobody, kStranger, {}, 1, get_request("/v1/networks"));
    for (int i = 0; i < 200 && lookups == 0; ++i) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(lookups, 1);  // the lookup is hanging now
    auto root = std::async(std::launch::async, [this] {
        for (int i = 0; i < 5; ++i)
            if (!api::Client(sock_).request("GET", "/v1/networks").ok()) return false;
        return api::Client(sock_).request("POST", "/v1/netns", json{{"Name", "r"}}).ok();
    });
    const bool served = root.wait_for(5s) == std::future_status::ready;
    release.set_value();
    EXPECT_TRUE(served) << "root waited for a stranger's group lookup";
    EXPECT_TRUE(root.get());
    EXPECT_EQ(stranger.next().status, 403);
}

TEST_F(AuthServer, AKeepAliveConnectionIsRecheckedForEveryMutation) {
    // nobody is a writer through its passwd entry only (NSS); then an admin moves it to the
    // read group. Its keep-alive connection's next mutation is refused, its reads still work.
    std::atomic<bool> writer{true};
    auto o = reader_policy();
    o.nss_lookup = [&writer](uid_t) {
        daemon::NssUser u;
        u.found = true;
        u.name = "nobody";
        u.groups = {kStranger, writer ? kWriters : kReaders};
        return u;
    };
    start(o);
    ForkedClient c(sock_, kNobody, kStranger, {}, 1, post_request("/v1/netns", R"({"Name":"one"})"),
                   {post_request("/v1/netns", R"({"Name":"two"})"), get_request("/v1/netns")});
    EXPECT_EQ(c.next().status, 201);
    writer = false;
    c.go();
    Answer denied = c.next();
    EXPECT_EQ(denied.status, 403) << denied.text();
    EXPECT_FALSE(denied.closed);
    EXPECT_EQ(json::parse(denied.text())["message"],
              "permission denied: uid 65534 (nobody) may not POST /v1/netns: changing state "
              "requires root or membership in group 4242 (group 4343 only allows reads)");
    c.go();
    EXPECT_EQ(c.next().status, 200);  // same connection, reads still allowed
    EXPECT_TRUE(std::filesystem::exists(netns_dir_ + "/one"));
    EXPECT_FALSE(std::filesystem::exists(netns_dir_ + "/two"));
}

TEST(AuthServerStandalone, UnknownGroupsAreRefusedAtListen) {
    asio::io_context io;
    daemon::Worker worker;
    daemon::Handlers handlers(worker, daemon::DaemonInfo{});
    char tmpl[] = "/tmp/cnetd-auth-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string dir = tmpl;
    {
        daemon::ServerOptions o;
        o.read_group = "no-such-group-cnetd";
        daemon::Server s(io, handlers, o);
        auto r = s.listen(dir + "/s.sock");
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().message(), "read-group: group \"no-such-group-cnetd\" does not exist");
        EXPECT_FALSE(std::filesystem::exists(dir + "/s.sock"));
    }
    {
        // The default group may be missing: only root (and our own uid) get in.
        daemon::ServerOptions o;
        daemon::Server s(io, handlers, o);
        auto r = s.listen(dir + "/s.sock");
        ASSERT_TRUE(r.ok()) << r.error().message();
        if (!s.policy().write_group.gid) {
            EXPECT_EQ(s.policy().write_group.spec, "cnetd");
        }
        s.close();
    }
    std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// limits

class LimitsServer : public ServerFixture {};

TEST_F(LimitsServer, IdleConnectionsAreClosedAfterTheIdleTimeout) {
    daemon::ServerOptions o;
    o.idle_timeout = 300ms;
    start(o);
    auto fd = connect_raw();
    ASSERT_TRUE(fd.valid());
    auto t0 = std::chrono::steady_clock::now();
    auto [data, eof] = read_all(fd.get(), 3s);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(eof);
    EXPECT_TRUE(data.empty()) << data;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(stats().timed_out, 1u);
    EXPECT_EQ(stats().active, 0u);
}

// GET /v1/events (daemon/events.hpp): a stream holds its connection slot, outlives the idle
// timeout, gets each event as it is published and ends with its last chunk when the log closes.
TEST_F(LimitsServer, EventStreamsOutliveTheIdleTimeoutAndEndWhenTheLogCloses) {
    daemon::EventLog events;
    daemon::ServerOptions o;
    o.idle_timeout = 200ms;
    start(o);
    handlers_->set_events(&events);
    auto fd = connect_raw();
    std::string req = "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::write(fd.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::this_thread::sleep_for(700ms);  // > idle_timeout
    EXPECT_EQ(stats().active, 1u);
    EXPECT_EQ(stats().timed_out, 0u);
    EXPECT_EQ(events.subscribers(), 1u);
    daemon::Event e;
    e.type = "netns";
    e.action = "create";
    e.actor_id = "late";
    events.publish(e);
    events.close();
    auto [data, eof] = read_all(fd.get(), 3s);
    EXPECT_TRUE(eof);
    EXPECT_EQ(status_of(data), 200) << data;
    EXPECT_NE(data.find("Content-Type: application/jsonl\r\n"), std::string::npos) << data;
    EXPECT_NE(data.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << data;
    EXPECT_NE(data.find(R"({"Type":"netns","Action":"create","Actor":{"ID":"late")"),
              std::string::npos)
        << data;
    EXPECT_EQ(data.substr(data.size() - 5), "0\r\n\r\n");
}

TEST_F(LimitsServer, KeepAliveConnectionIsClosedWhenIdleAfterAnAnswer) {
    daemon::ServerOptions o;
    o.idle_timeout = 300ms;
    start(o);
    auto fd = connect_raw();
    std::string req = "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::write(fd.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
    auto [data, eof] = read_all(fd.get(), 3s);
    EXPECT_EQ(status_of(data), 200) << data;
    EXPECT_TRUE(eof);  // the answer, then the idle close
}

TEST_F(LimitsServer, SlowlorisGets408AndOthersAreServedMeanwhile) {
    daemon::ServerOptions o;
    o.read_timeout = 800ms;
    o.idle_timeout = 30s;
    start(o);
    // 100 idle connections and one client dribbling a request one byte every 50 ms.
    std::vector<UniqueFd> idle;
    for (int i = 0; i < 100; ++i) {
        idle.push_back(connect_raw());
        ASSERT_TRUE(idle.back().valid());
    }
    auto slow = connect_raw();
    std::atomic<bool> stop{false};
    std::thread dribbler([&] {
        const std::string req =
            "POST /v1/networks HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n";
        for (size_t i = 0; !stop && i < 10000; ++i) {
            char c = req[i % req.size()];
            if (i >= req.size()) c = 'X';
            if (::send(slow.get(), &c, 1, MSG_NOSIGNAL) != 1) break;
            std::this_thread::sleep_for(50ms);
        }
    });
    // Meanwhile a normal client gets answers promptly, again and again.
    std::chrono::nanoseconds worst{0};
    for (int i = 0; i < 20; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = api::Client(sock_).request("GET", "/v1/networks");
        worst = std::max(worst, std::chrono::steady_clock::now() - t0);
        ASSERT_TRUE(r.ok()) << r.error().message();
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_LT(worst, 200ms);
    // The slow writer is cut off with 408 once read_timeout has passed since its first byte.
    auto [data, eof] = read_all(slow.get(), 3s);
    stop = true;
    dribbler.join();
    EXPECT_EQ(status_of(data), 408) << data;
    EXPECT_NE(body_of(data).find("request not complete within 800 ms of its first byte"),
              std::string::npos)
        << data;
    EXPECT_TRUE(eof);
}

TEST_F(LimitsServer, BeyondMaxConnectionsNewOnesGet503UntilOneCloses) {
    daemon::ServerOptions o;
    o.max_connections = 8;
    o.reserved_write_connections = 2;
    start(o);
    std::vector<UniqueFd> held;
    for (int i = 0; i < 8; ++i) held.push_back(connect_raw());
    // Wait until the server has accepted all of them.
    for (int i = 0; i < 200 && stats().active < 8; ++i) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(stats().active, 8u);
    auto r = api::Client(sock_).raw("GET", "/v1/ping", "");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(json::parse(r->body)["message"],
              "too many connections: cnetd serves at most 8 at a time; retry later");
    EXPECT_EQ(stats().refused, 1u);
    held.pop_back();
    for (int i = 0; i < 200 && stats().active > 7; ++i) std::this_thread::sleep_for(5ms);
    auto again = api::Client(sock_).request("GET", "/v1/ping");
    EXPECT_TRUE(again.ok()) << again.error().message();
}

TEST_F(LimitsServer, ReplacesAStaleSocketInOneStep) {
    // A leftover socket file nobody serves: listen() replaces it (rename over it).
    char tmpl[] = "/tmp/cnetd-auth-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string dir = tmpl, path = dir + "/cnetd.sock";
    {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    struct stat before {};
    ASSERT_EQ(::lstat(path.c_str(), &before), 0);
    asio::io_context io;
    daemon::Worker worker;
    daemon::Handlers handlers(worker, daemon::DaemonInfo{});
    daemon::Server s(io, handlers);
    auto r = s.listen(path);
    ASSERT_TRUE(r.ok()) << r.error().message();
    struct stat after {};
    ASSERT_EQ(::lstat(path.c_str(), &after), 0);
    EXPECT_NE(before.st_ino, after.st_ino);
    EXPECT_EQ(after.st_mode & 07777, 0660u);
    s.close();
    EXPECT_FALSE(std::filesystem::exists(path));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnetd
