// cnetd under systemd, without systemd: the real cnetd binary is run the way the service manager
// runs it, and what the manager would see is checked.
//  - Type=notify: $NOTIFY_SOCKET is a datagram socket of the test; the messages and their order are
//    asserted (STATUS before READY=1, READY=1 only once the control socket answers /v1/ping — the
//    test connects the moment READY=1 arrives —, STOPPING=1 after SIGTERM).
//  - Socket activation: the test creates the listening socket and passes it as fd 3 with
//    LISTEN_FDS=1/LISTEN_PID, as cnetd.socket does; a request queued before cnetd even started is
//    answered, the socket survives a restart, and a wrong hand-over is refused with a precise
//    error.
//  - The unit files pass `systemd-analyze verify` (ExecStart pointing at the built binary) and the
//    tmpfiles.d entries create what they promise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace cnetd::it;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const char* dflt) {
    const char* v = getenv(name);
    return v && *v ? v : dflt;
}

int unix_socket(int type, const std::string& path, bool listening) {
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        (listening && listen(fd, 16) != 0)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

// Connects to the control socket and sends GET /v1/ping (fd, or -1 when connect fails).
int send_ping(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    const std::string req = "GET /v1/ping HTTP/1.1\r\nHost: cnetd\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
        close(fd);
        return -1;
    }
    return fd;
}

// Reads the HTTP answer on `fd` (until EOF or timeout) and closes it.
std::string read_answer(int fd, std::chrono::milliseconds timeout = 5s) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) != 1) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
}

bool answers_ping(const std::string& path) {
    int fd = send_ping(path);
    return fd >= 0 && read_answer(fd).rfind("HTTP/1.1 200", 0) == 0;
}

// The next datagram on `fd` within `timeout`, "" if none came.
std::string next_datagram(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

bool has_field(const std::string& msg, const std::string& field) {
    std::istringstream in(msg);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field, 0) == 0) return true;
    return false;
}

int exit_code(pid_t pid) {
    int status = 0;
    for (int i = 0; i < 200; ++i) {  // up to 10 s
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(50ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

class Systemd : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).status, 0);
        d.write_config("");
    }
    void TearDown() override {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    // Starts cnetd like the harness does, with extra environment, and `listen_fd` (if >= 0) as
    // fd 3 with LISTEN_FDS=n_fds and LISTEN_PID set to cnetd's pid, as systemd does.
    // `protect_system`: run cnetd the way ProtectSystem=strict + ReadWritePaths= do — in a mount
    // namespace of its own that is a slave of ours, with / read-only (the temp dir, a mount of its
    // own, stays writable).
    void spawn(const std::vector<std::pair<std::string, std::string>>& env, int listen_fd = -1,
               int n_fds = 1, bool protect_system = false) {
        pid_ = fork();
        if (pid_ == 0) {
            if (protect_system &&
                (unshare(CLONE_NEWNS) != 0 ||
                 mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0 ||
                 mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0))
                _exit(125);
            int logfd = open((d.dir() + "/cnetd.log").c_str(),
                             O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            dup2(logfd, 1);
            dup2(logfd, 2);
            for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
            if (listen_fd >= 0) {
                if (listen_fd == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(listen_fd, 3) != 3)
                    _exit(126);                  // fd 3 without close-on-exec (dup2 clears it)
                for (int i = 1; i < n_fds; ++i)  // more fds: copies of the same socket
                    if (dup2(3, 3 + i) != 3 + i) _exit(126);
                setenv("LISTEN_FDS", std::to_string(n_fds).c_str(), 1);
                setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
            }
            std::string bin = env_or("CNETD_BIN", "cnetd");
            execl(bin.c_str(), bin.c_str(), "--config", d.config().c_str(), "--socket",
                  d.socket().c_str(), "--state-dir", d.state_dir().c_str(), "--netns-dir",
                  d.netns_dir().c_str(), "--log-level", "debug", static_cast<char*>(nullptr));
            _exit(127);
        }
    }
    int stop(int sig = SIGTERM) {
        kill(pid_, sig);
        int code = exit_code(pid_);
        pid_ = -1;
        return code;
    }

    Daemon d;  // paths in a temp dir, cleanup; the daemon itself is started by spawn()
    pid_t pid_ = -1;
};

TEST_F(Systemd, NotifyStatusThenReadyWhenServingThenStopping) {
    const std::string notify_path = d.dir() + "/notify.sock";
    int nfd = unix_socket(SOCK_DGRAM, notify_path, false);
    ASSERT_GE(nfd, 0) << strerror(errno);
    spawn({{"NOTIFY_SOCKET", notify_path}});

    std::vector<std::string> before_ready;
    std::string ready, ping_answer;
    for (int i = 0; i < 50 && ready.empty(); ++i) {
        std::string msg = next_datagram(nfd, 10s);
        ASSERT_FALSE(msg.empty()) << "no READY=1 within 10 s; got " << before_ready.size()
                                  << " messages\n--- cnetd log ---\n"
                                  << d.log();
        if (!has_field(msg, "READY=1")) {
            before_ready.push_back(msg);
            continue;
        }
        ready = msg;
        // The moment READY=1 arrives, the control socket must serve requests.
        ping_answer = read_answer(send_ping(d.socket()));
    }
    EXPECT_EQ(ping_answer.rfind("HTTP/1.1 200", 0), 0u)
        << "READY=1 sent before /v1/ping answered: " << ping_answer;
    ASSERT_FALSE(before_ready.empty()) << "no STATUS= before READY=1";
    EXPECT_TRUE(has_field(before_ready.front(), "STATUS=starting")) << before_ready.front();
    for (const auto& m : before_ready) EXPECT_FALSE(has_field(m, "STOPPING=1")) << m;
    // The default network "bridge" exists right after start, with no endpoint.
    EXPECT_TRUE(has_field(ready, "STATUS=ready: 1 networks, 0 endpoints")) << ready;

    // Nothing more while running; SIGTERM → STOPPING=1, then a clean exit.
    EXPECT_EQ(next_datagram(nfd, 200ms), "");
    kill(pid_, SIGTERM);
    std::string stopping = next_datagram(nfd, 10s);
    EXPECT_TRUE(has_field(stopping, "STOPPING=1")) << "after SIGTERM: \"" << stopping << "\"";
    EXPECT_FALSE(has_field(stopping, "READY=1"));
    EXPECT_EQ(exit_code(pid_), 0) << d.log();
    pid_ = -1;
    close(nfd);
}

// SIGHUP (systemctl reload): RELOADING=1 with MONOTONIC_USEC= first, READY=1 once applied.
TEST_F(Systemd, ReloadSendsReloadingThenReady) {
    const std::string notify_path = d.dir() + "/notify.sock";
    int nfd = unix_socket(SOCK_DGRAM, notify_path, false);
    ASSERT_GE(nfd, 0) << strerror(errno);
    spawn({{"NOTIFY_SOCKET", notify_path}});
    std::string msg;
    for (int i = 0; i < 50 && !has_field(msg, "READY=1"); ++i) msg = next_datagram(nfd, 10s);
    ASSERT_TRUE(has_field(msg, "READY=1")) << d.log();

    d.write_config("icc: false\n");  // applies live
    kill(pid_, SIGHUP);
    std::string reloading = next_datagram(nfd, 10s);
    EXPECT_TRUE(has_field(reloading, "RELOADING=1")) << reloading;
    EXPECT_TRUE(has_field(reloading, "MONOTONIC_USEC=")) << reloading;
    EXPECT_FALSE(has_field(reloading, "READY=1")) << reloading;
    std::string ready = next_datagram(nfd, 10s);
    EXPECT_TRUE(has_field(ready, "READY=1")) << ready;
    EXPECT_TRUE(has_field(ready, "STATUS=ready: reloaded")) << ready;

    // A config that does not parse: RELOADING=1, then READY=1 with the reason.
    d.write_config("icc: [\n");
    kill(pid_, SIGHUP);
    EXPECT_TRUE(has_field(next_datagram(nfd, 10s), "RELOADING=1"));
    std::string failed = next_datagram(nfd, 10s);
    EXPECT_TRUE(has_field(failed, "READY=1")) << failed;
    EXPECT_TRUE(has_field(failed, "STATUS=reload failed")) << failed;
    EXPECT_EQ(stop(), 0) << d.log();
    close(nfd);
}

// ProtectSystem=strict (etc/systemd/cnetd.service): cnetd in a private slave mount namespace with
// a read-only root still makes netns files everyone sees, that outlive it, and removes them for
// everyone.
TEST_F(Systemd, ProtectSystemNetnsFilesAreMountedForTheHost) {
    // cnetd mounts in PID 1's mount namespace: this test plays the host only as PID 1 (meson runs
    // it so: `unshare --pid --fork ... systemd_it`).
    if (getpid() != 1) GTEST_SKIP() << "run as PID 1 of a PID namespace (as meson runs it)";
    // As on a systemd host (where / is shared), the temp dir is a shared mount of its own: the
    // host's mounts there propagate into cnetd's slave namespace. ReadWritePaths= does the same.
    ASSERT_EQ(mount(d.dir().c_str(), d.dir().c_str(), nullptr, MS_BIND, nullptr), 0);
    ASSERT_EQ(mount(nullptr, d.dir().c_str(), nullptr, MS_SHARED, nullptr), 0);
    struct Unbind {
        std::string dir;
        ~Unbind() { umount2(dir.c_str(), MNT_DETACH); }
    } unbind{d.dir()};
    auto is_netns = [](const std::string& path) {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        bool yes = ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
        close(fd);
        return yes;
    };
    auto serving = [&] {
        for (int i = 0; i < 200; ++i) {
            if (d.netctl({"info"}).status == 0) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    };
    spawn({}, -1, 1, /*protect_system=*/true);
    ASSERT_TRUE(serving()) << d.log();
    EXPECT_NE(d.log().find("netns files are mounted in the host's mount namespace"),
              std::string::npos)
        << d.log();
    // The root really is read-only for it (so the test does emulate ProtectSystem=strict).
    {
        std::ifstream mi("/proc/" + std::to_string(pid_) + "/mountinfo");
        bool root_ro = false;
        for (std::string line; std::getline(mi, line);) {
            std::istringstream ls(line);
            std::string id, parent, devno, root, mnt, opts;
            ls >> id >> parent >> devno >> root >> mnt >> opts;
            if (mnt == "/") root_ro = opts.rfind("ro", 0) == 0;
        }
        EXPECT_TRUE(root_ro) << "cnetd's / should be read-only";
    }
    const std::string a = d.netns_dir() + "/a";
    CmdResult c = d.netctl({"netns", "create", "a"});
    ASSERT_EQ(c.status, 0) << c.err << d.log();
    EXPECT_TRUE(is_netns(a)) << "the host (this test) must see the namespace, not an empty file";
    c = d.netctl({"network", "connect", "bridge", "a"});
    ASSERT_EQ(c.status, 0) << c.err << d.log();

    // cnetd stops: the namespace, its eth0 and its address stay.
    EXPECT_EQ(stop(), 0) << d.log();
    ASSERT_TRUE(is_netns(a));
    CmdResult addr = run({"nsenter", "--net=" + a, "ip", "-4", "-o", "addr", "show", "eth0"});
    EXPECT_NE(addr.out.find("172.17.0.2/16"), std::string::npos) << addr.out << addr.err;

    // Restarted the same way, it removes the namespace for everyone.
    spawn({}, -1, 1, /*protect_system=*/true);
    ASSERT_TRUE(serving()) << d.log();
    c = d.netctl({"netns", "rm", "a"});
    EXPECT_EQ(c.status, 0) << c.err << d.log();
    EXPECT_FALSE(fs::exists(a));
    std::ifstream mi("/proc/self/mountinfo");
    std::string all((std::istreambuf_iterator<char>(mi)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all.find(" " + a + " "), std::string::npos) << all;
    EXPECT_EQ(stop(), 0) << d.log();
}

TEST_F(Systemd, NoNotifySocketStillStartsAndServes) {
    spawn({});
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i, std::this_thread::sleep_for(50ms))
        up = fs::exists(d.socket()) && answers_ping(d.socket());
    ASSERT_TRUE(up) << d.log();
    EXPECT_EQ(stop(), 0) << d.log();
}

TEST_F(Systemd, SocketActivationServesOnThePassedSocketAndKeepsIt) {
    // The "service manager" (this test) owns the socket, at a path other than --socket.
    const std::string act = d.dir() + "/activated.sock";
    int lfd = unix_socket(SOCK_STREAM, act, true);
    ASSERT_GE(lfd, 0) << strerror(errno);

    // A client connects before cnetd runs at all: its request waits in the backlog.
    int early = send_ping(act);
    ASSERT_GE(early, 0);

    const std::string notify_path = d.dir() + "/notify.sock";
    int nfd = unix_socket(SOCK_DGRAM, notify_path, false);
    ASSERT_GE(nfd, 0);
    spawn({{"NOTIFY_SOCKET", notify_path}}, lfd);
    std::string msg;
    for (int i = 0; i < 50 && !has_field(msg, "READY=1"); ++i) {
        msg = next_datagram(nfd, 10s);
        ASSERT_FALSE(msg.empty()) << "no READY=1\n--- cnetd log ---\n" << d.log();
    }
    EXPECT_EQ(read_answer(early).rfind("HTTP/1.1 200", 0), 0u) << d.log();
    EXPECT_TRUE(answers_ping(act));
    EXPECT_FALSE(fs::exists(d.socket())) << "cnetd bound its own socket too";
    // It reports the socket it serves on, not the --socket it was given.
    auto info = nlohmann::json::parse(
        run({env_or("NETCTL_BIN", "netctl"), "--socket", act, "--json", "info"}).out, nullptr,
        false);
    EXPECT_EQ(info.is_object() ? info.value("Socket", "") : "", act) << info.dump();
    EXPECT_NE(d.log().find("socket-activated"), std::string::npos) << d.log();

    // Stop: the socket file stays (the manager owns it) and keeps accepting connections; a
    // request made while cnetd is down is answered by the next instance.
    EXPECT_EQ(stop(), 0) << d.log();
    EXPECT_TRUE(fs::exists(act));
    int during_restart = send_ping(act);
    ASSERT_GE(during_restart, 0) << "connection refused while cnetd was down";
    spawn({}, lfd);
    EXPECT_EQ(read_answer(during_restart, 10s).rfind("HTTP/1.1 200", 0), 0u) << d.log();
    EXPECT_EQ(stop(), 0) << d.log();
    close(lfd);
    close(nfd);
}

TEST_F(Systemd, SocketActivationRefusesWrongSockets) {
    // fd 3 is a datagram socket.
    int dfd = unix_socket(SOCK_DGRAM, d.dir() + "/dgram.sock", false);
    ASSERT_GE(dfd, 0);
    spawn({}, dfd);
    EXPECT_EQ(exit_code(pid_), 1);
    pid_ = -1;
    EXPECT_NE(d.log().find("socket activation: fd 3 is not a listening unix stream socket"),
              std::string::npos)
        << d.log();
    close(dfd);

    // Two sockets passed (cnetd.socket with two ListenStream=).
    int lfd = unix_socket(SOCK_STREAM, d.dir() + "/a.sock", true);
    ASSERT_GE(lfd, 0);
    spawn({}, lfd, 2);
    EXPECT_EQ(exit_code(pid_), 1);
    pid_ = -1;
    EXPECT_NE(d.log().find("socket activation: 2 sockets passed"), std::string::npos) << d.log();
    EXPECT_FALSE(fs::exists(d.socket()));
    close(lfd);
}

// LISTEN_PID of another process: not for us, cnetd binds its own socket (sd_listen_fds(3)).
TEST_F(Systemd, ListenFdsForAnotherPidAreIgnored) {
    pid_ = fork();
    if (pid_ == 0) {
        int logfd = open((d.dir() + "/cnetd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(logfd, 1);
        dup2(logfd, 2);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_PID", "1", 1);
        std::string bin = env_or("CNETD_BIN", "cnetd");
        execl(bin.c_str(), bin.c_str(), "--config", d.config().c_str(), "--socket",
              d.socket().c_str(), "--state-dir", d.state_dir().c_str(), "--netns-dir",
              d.netns_dir().c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i, std::this_thread::sleep_for(50ms))
        up = fs::exists(d.socket()) && answers_ping(d.socket());
    EXPECT_TRUE(up) << d.log();
    EXPECT_EQ(stop(), 0) << d.log();
}

// --- unit files --------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
    return s;
}

bool have_program(const std::string& name) {
    return run({"sh", "-c", "command -v " + name}).status == 0;
}

TEST(SystemdUnits, VerifyPasses) {
    if (!have_program("systemd-analyze")) GTEST_SKIP() << "systemd-analyze not installed";
    const std::string src = env_or("CNETD_SRC_DIR", "");
    ASSERT_FALSE(src.empty()) << "CNETD_SRC_DIR not set (meson sets it)";
    const std::string bin = env_or("CNETD_BIN", "");
    ASSERT_TRUE(bin.rfind('/') != std::string::npos && fs::exists(bin)) << bin;

    char tmpl[] = "/tmp/cnetd-units-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    // The service as `meson install` generates it, but with ExecStart at the built binary.
    std::string unit = read_file(src + "/etc/systemd/cnetd.service.in");
    ASSERT_NE(unit.find("ExecStart=@sbindir@/cnetd"), std::string::npos);
    unit = replace_all(unit, "@sbindir@", bin.substr(0, bin.rfind('/')));
    unit = replace_all(unit, "@sysconfdir@", "/etc");
    std::ofstream(dir + "/cnetd.service") << unit;
    fs::copy_file(src + "/etc/systemd/cnetd.socket", dir + "/cnetd.socket");
    // Documentation=man:... is checked too: our pages, found through MANPATH.
    fs::create_directories(dir + "/man/man8");
    fs::create_directories(dir + "/man/man5");
    fs::copy_file(src + "/docs/man/cnetd.8", dir + "/man/man8/cnetd.8");
    fs::copy_file(src + "/docs/man/netctl.8", dir + "/man/man8/netctl.8");
    fs::copy_file(src + "/docs/man/cnetd.yaml.5", dir + "/man/man5/cnetd.yaml.5");

    bool have_man = have_program("man");
    CmdResult r = run(
        {"env", "MANPATH=" + dir + "/man", "SYSTEMD_LOG_LEVEL=notice", "systemd-analyze", "verify",
         have_man ? "--man=yes" : "--man=no", dir + "/cnetd.service", dir + "/cnetd.socket"},
        60s);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    // verify reports problems as messages naming the unit, sometimes with status 0.
    EXPECT_EQ(r.err.find("cnetd."), std::string::npos) << r.err;

    // And it does catch a broken unit (so the check above can fail).
    std::ofstream(dir + "/broken.service")
        << replace_all(unit, "ExecStart=" + bin, "ExecStart=" + dir + "/no-such-cnetd");
    CmdResult b = run({"systemd-analyze", "verify", "--man=no", dir + "/broken.service"}, 60s);
    EXPECT_NE(b.status, 0) << b.err;
    EXPECT_NE(b.err.find("no-such-cnetd"), std::string::npos) << b.err;
    fs::remove_all(dir);
}

TEST(SystemdUnits, TmpfilesCreateRunAndNetnsDirs) {
    if (!have_program("systemd-tmpfiles")) GTEST_SKIP() << "systemd-tmpfiles not installed";
    if (geteuid() != 0) GTEST_SKIP() << "needs root (the entries chown to root)";
    const std::string src = env_or("CNETD_SRC_DIR", "");
    ASSERT_FALSE(src.empty());
    char tmpl[] = "/tmp/cnetd-tmpfiles-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string root = tmpl;
    CmdResult r =
        run({"systemd-tmpfiles", "--create", "--root=" + root, src + "/etc/tmpfiles.d/cnetd.conf"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");  // no warnings (e.g. about legacy /var/run paths)
    for (auto [path, mode] : {std::pair{"/run/cnetd", 0755}, std::pair{"/run/docker/netns", 0755},
                              std::pair{"/var/lib/cnetd", 0700}}) {
        struct stat st {};
        ASSERT_EQ(stat((root + path).c_str(), &st), 0) << path;
        EXPECT_TRUE(S_ISDIR(st.st_mode)) << path;
        EXPECT_EQ(st.st_mode & 07777, static_cast<mode_t>(mode)) << path;
    }
    fs::remove_all(root);
}

TEST(SystemdUnits, SysusersCreatesTheSocketGroup) {
    if (!have_program("systemd-sysusers")) GTEST_SKIP() << "systemd-sysusers not installed";
    const std::string src = env_or("CNETD_SRC_DIR", "");
    ASSERT_FALSE(src.empty());
    // cnetd.socket's SocketGroup= must be the group sysusers.d creates, or the socket fails.
    const std::string sock = read_file(src + "/etc/systemd/cnetd.socket");
    ASSERT_NE(sock.find("\nSocketGroup=cnetd\n"), std::string::npos);
    char tmpl[] = "/tmp/cnetd-sysusers-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string root = tmpl;
    fs::create_directories(root + "/etc");  // sysusers locks <root>/etc/passwd
    CmdResult r = run({"systemd-sysusers", "--root=" + root, src + "/etc/sysusers.d/cnetd.conf"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(("\n" + read_file(root + "/etc/group")).find("\ncnetd:x:"), std::string::npos)
        << read_file(root + "/etc/group");
    fs::remove_all(root);
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (geteuid() != 0) {
        // The unit-file checks need no privileges; the daemon tests do.
        fprintf(stderr, "systemd_it: not root: only SystemdUnits.* (daemon tests need root)\n");
        ::testing::GTEST_FLAG(filter) = "SystemdUnits.*";
        return RUN_ALL_TESTS();
    }
    // Our own private mount namespace with a tmpfs on /run (as the other integration binaries):
    // nothing mounted under /run reaches the machine.
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
        perror("systemd_it: private mount namespace");
        return 1;
    }
    return RUN_ALL_TESTS();
}
