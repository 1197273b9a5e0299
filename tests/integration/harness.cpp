#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
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
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/client.hpp"

namespace cnetd::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string fmt_line(const std::string& s) {
    return s + "\n";
}

// The forked servers report readiness with one byte on a pipe: closes our write end, waits up to
// 5 s for the byte, closes the read end.
bool wait_ready(int ready[2]) {
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    char ok = 0;
    bool r = poll(&p, 1, 5000) == 1 && read(ready[0], &ok, 1) == 1 && ok == 1;
    close(ready[0]);
    return r;
}

// A socket address of either family: "fd00::1" (any text with ':') is IPv6, else IPv4.
struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
};

SockAddr make_addr(const std::string& addr, int port) {
    SockAddr a;
    if (addr.find(':') != std::string::npos) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr);
        a.len = sizeof(sockaddr_in6);
        a.family = AF_INET6;
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, addr.c_str(), &s4->sin_addr);
        a.len = sizeof(sockaddr_in);
    }
    return a;
}

// The address text of a peer of either family ("198.51.100.2", "2001:db8::2").
std::string peer_text(const sockaddr_storage& ss) {
    char b[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, b, sizeof b);
    } else {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, b, sizeof b);
    }
    return b;
}

// In a forked server child: a TCP listener on addr:port, then one byte on `ready_fd` to say so.
// Exits the child (91, 92) if either fails.
int listen_tcp_or_die(const std::string& addr, int port, int ready_fd) {
    SockAddr sa = make_addr(addr, port);
    int s = socket(sa.family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, sa.sa(), sa.len) != 0 || listen(s, 64) != 0) _exit(91);
    char ok = 1;
    if (write(ready_fd, &ok, 1) != 1) _exit(92);
    return s;
}

void kill_child(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

std::string env_or(const char* name, const char* dflt) {
    const char* v = getenv(name);
    return v && *v ? v : dflt;
}

int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// In a forked child: enter the network namespace at `path` ("" = stay).
void enter_netns_or_die(const std::string& path) {
    if (path.empty()) return;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(90);
    close(fd);
}

int connect_with_timeout(const std::string& addr, int port, std::chrono::milliseconds timeout) {
    SockAddr sa = make_addr(addr, port);
    int s = socket(sa.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int r = ::connect(s, sa.sa(), sa.len);
    if (r != 0 && errno != EINPROGRESS) {
        close(s);
        return -1;
    }
    pollfd p{s, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
        close(s);
        return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        close(s);
        return -1;
    }
    fcntl(s, F_SETFL, 0);  // blocking again; reads use poll for their timeout
    return s;
}

// Sends msg and reads exactly msg.size() bytes back within timeout.
bool echo_once(int s, const std::string& msg, std::chrono::milliseconds timeout) {
    if (send(s, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size()))
        return false;
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < msg.size()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) return false;
        pollfd p{s, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
        char buf[256];
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0) return false;
        got.append(buf, static_cast<size_t>(n));
    }
    return got == msg;
}

}  // namespace

CmdResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    CmdResult r;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            kill(pid, SIGKILL);
            r.err += "\n[harness: timed out]";
            break;
        }
        if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP))) {
                char buf[4096];
                ssize_t n = read(fds[i].fd, buf, sizeof buf);
                if (n <= 0) {
                    close(fds[i].fd);
                    fds[i].fd = -1;
                    --open_fds;
                } else {
                    (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
                }
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    int status = 0;
    waitpid(pid, &status, 0);
    r.status = exit_code(status);
    return r;
}

nlohmann::json ip_json(const std::vector<std::string>& args, const std::string& netns) {
    std::vector<std::string> argv;
    if (!netns.empty()) argv = {"nsenter", "--net=" + netns};
    argv.push_back("ip");
    argv.push_back("-j");
    argv.insert(argv.end(), args.begin(), args.end());
    CmdResult r = run(argv);
    if (r.status != 0) return nlohmann::json{{"error", r.err}};
    if (r.out.empty()) return nlohmann::json::array();
    return nlohmann::json::parse(r.out, nullptr, false);
}

// --- traffic -----------------------------------------------------------------------------------

EchoServer::EchoServer(const std::string& netns_path, const std::string& addr, int port) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        enter_netns_or_die(netns_path);
        int s = listen_tcp_or_die(addr, port, ready[1]);
        signal(SIGCHLD, SIG_IGN);  // no zombies from the per-connection children
        for (;;) {
            int c = accept(s, nullptr, nullptr);
            if (c < 0) continue;
            if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                char buf[4096];
                ssize_t n;
                while ((n = read(c, buf, sizeof buf)) > 0) {
                    if (write(c, buf, static_cast<size_t>(n)) != n) break;
                }
                _exit(0);
            }
            close(c);
        }
    }
    ready_ = wait_ready(ready);
}

EchoServer::~EchoServer() {
    kill_child(pid_);
}

bool tcp_echo(const std::string& netns_path, const std::string& addr, int port,
              std::chrono::milliseconds timeout) {
    pid_t pid = fork();
    if (pid == 0) {
        enter_netns_or_die(netns_path);
        int s = connect_with_timeout(addr, port, timeout);
        if (s < 0) _exit(1);
        _exit(echo_once(s, "hello cnetd\n", timeout) ? 0 : 2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

WhoAmIServer::WhoAmIServer(const std::string& netns_path, const std::string& addr, int port) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        enter_netns_or_die(netns_path);
        int s = listen_tcp_or_die(addr, port, ready[1]);
        for (;;) {  // one short answer per connection: no per-connection children needed
            sockaddr_storage peer{};
            socklen_t len = sizeof peer;
            int c = accept(s, reinterpret_cast<sockaddr*>(&peer), &len);
            if (c < 0) continue;
            std::string line = peer_text(peer) + "\n";
            (void)!send(c, line.data(), line.size(), MSG_NOSIGNAL);
            close(c);
        }
    }
    ready_ = wait_ready(ready);
}

WhoAmIServer::~WhoAmIServer() {
    kill_child(pid_);
}

std::string tcp_whoami(const std::string& netns_path, const std::string& addr, int port,
                       std::chrono::milliseconds timeout) {
    int res[2];
    if (pipe2(res, O_CLOEXEC) != 0) return "";
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pid_t pid = fork();
    if (pid == 0) {  // a child, because setns() would move the whole test thread
        close(res[0]);
        enter_netns_or_die(netns_path);
        int s = connect_with_timeout(addr, port, timeout);
        if (s < 0) _exit(1);
        std::string got;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{s, POLLIN, 0};
            if (left <= 0ms || poll(&p, 1, static_cast<int>(left.count())) != 1) _exit(2);
            char buf[64];
            ssize_t n = recv(s, buf, sizeof buf, 0);
            if (n < 0) _exit(3);
            if (n == 0) break;
            got.append(buf, static_cast<size_t>(n));
        }
        if (!got.empty() && got.back() == '\n') got.pop_back();
        _exit(write(res[1], got.data(), got.size()) == static_cast<ssize_t>(got.size()) ? 0 : 4);
    }
    close(res[1]);
    std::string out;
    char buf[64];
    ssize_t n;
    while ((n = read(res[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(res[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? out : "";
}

namespace {
volatile sig_atomic_t g_stream_stop = 0;
void on_stream_term(int) {
    g_stream_stop = 1;
}
}  // namespace

Stream::Stream(const std::string& netns_path, const std::string& addr, int port) {
    int res[2];
    if (pipe2(res, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(res[0]);
        signal(SIGTERM, on_stream_term);
        enter_netns_or_die(netns_path);
        int okc = 0, fails = 0;
        int s = connect_with_timeout(addr, port, 3s);
        if (s < 0) fails = 1;
        for (int i = 0; s >= 0 && !g_stream_stop; ++i) {
            if (echo_once(s, "seq " + std::to_string(i) + "\n", 2s)) {
                ++okc;
            } else {
                ++fails;
                break;  // a broken connection stays broken
            }
            usleep(50 * 1000);
        }
        int out[2] = {okc, fails};
        ssize_t w = write(res[1], out, sizeof out);
        _exit(w == sizeof out ? 0 : 1);
    }
    close(res[1]);
    result_fd_ = res[0];
}

std::pair<int, int> Stream::finish() {
    if (pid_ <= 0) return {0, 1};
    kill(pid_, SIGTERM);
    int out[2] = {0, 1};
    pollfd p{result_fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1 || read(result_fd_, out, sizeof out) != sizeof out) out[1] = 1;
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    close(result_fd_);
    return {out[0], out[1]};
}

Stream::~Stream() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        close(result_fd_);
    }
}

// --- daemon --------------------------------------------------------------------------------------

Daemon::Daemon() {
    char tmpl[] = "/tmp/cnetd-it-XXXXXX";
    if (mkdtemp(tmpl)) dir_ = tmpl;
    setenv("CNETD_SOCKET", socket().c_str(), 1);
}

Daemon::~Daemon() {
    if (pid_ > 0) kill(SIGKILL);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(netns_dir(), ec)) {
        umount2(e.path().c_str(), MNT_DETACH);
    }
    fs::remove_all(dir_, ec);
}

void Daemon::write_config(const std::string& yaml) {
    std::ofstream(config()) << yaml;
}

std::string Daemon::log() const {
    std::ifstream in(dir_ + "/cnetd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool Daemon::start(std::string* log_out) {
    if (!fs::exists(config())) write_config("");
    pid_ = fork();
    if (pid_ == 0) {
        int logfd =
            open((dir_ + "/cnetd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        dup2(logfd, 1);
        dup2(logfd, 2);
        std::vector<std::string> argv = prefix_;
        for (std::string a : {env_or("CNETD_BIN", "cnetd"), std::string("--config"), config(),
                              std::string("--socket"), socket(), std::string("--state-dir"),
                              state_dir(), std::string("--netns-dir"), netns_dir(),
                              std::string("--log-level"), std::string("debug")})
            argv.push_back(a);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 10 s
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            if (log_out) *log_out = log();
            return false;
        }
        // In-process, not `netctl info`: an ASan netctl costs ~0.1 s of CPU per start, and the
        // suites start daemons about a thousand times.
        if (fs::exists(socket()) && api::Client(socket(), 2s).request("GET", "/v1/info").ok())
            return true;
        std::this_thread::sleep_for(50ms);
    }
    if (log_out) *log_out = log() + "\n[harness: no answer on the socket within 10 s]";
    return false;
}

CmdResult Daemon::start_failing() {
    if (!fs::exists(config())) write_config("");
    return run({env_or("CNETD_BIN", "cnetd"), "--config", config(), "--socket", socket(),
                "--state-dir", state_dir(), "--netns-dir", netns_dir()},
               10s);
}

void Daemon::kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

CmdResult Daemon::netctl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{env_or("NETCTL_BIN", "netctl"), "--socket", socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

nlohmann::json Daemon::netctl_json(const std::vector<std::string>& args) const {
    std::vector<std::string> a = args;
    a.push_back("--json");
    CmdResult r = netctl(a);
    if (r.status != 0) return nlohmann::json{{"netctl_error", r.err}, {"status", r.status}};
    return nlohmann::json::parse(r.out, nullptr, false);
}

nlohmann::json inspect_endpoint(const Daemon& d, const std::string& network,
                                const std::string& name) {
    nlohmann::json n = d.netctl_json({"network", "inspect", network});
    if (!n.is_array() || n.empty()) return nlohmann::json();
    for (const auto& [id, ep] : n[0]["Containers"].items())
        if (ep["Name"] == name) return ep;
    return nlohmann::json();
}

std::string kernel_snapshot(const Daemon& d) {
    auto strip = [](nlohmann::json j) {
        // Fields the kernel changes by itself: operstate settles after a link goes up, and IPv6
        // link-local addresses appear and pass DAD ("tentative") on their own timer.
        for (auto& l : j) {
            if (!l.is_object()) continue;
            l.erase("operstate");
            // NO-CARRIER comes and goes with the first port of a bridge, on the kernel's timer.
            if (l.contains("flags") && l["flags"].is_array()) {
                nlohmann::json flags = nlohmann::json::array();
                for (auto& f : l["flags"])
                    if (f != "NO-CARRIER" && f != "LOWER_UP") flags.push_back(f);
                l["flags"] = flags;
            }
            if (!l.contains("addr_info")) continue;
            nlohmann::json kept = nlohmann::json::array();
            for (auto& a : l["addr_info"])
                if (!(a.value("family", "") == "inet6" && a.value("scope", "") == "link"))
                    kept.push_back(a);
            l["addr_info"] = kept;
        }
        return j;
    };
    auto strip_routes = [](nlohmann::json j) {
        nlohmann::json kept = nlohmann::json::array();
        for (auto& r : j) {
            std::string dst = r.value("dst", "");
            if (dst.rfind("fe80:", 0) == 0 || dst == "ff00::/8") continue;  // follow link-locals
            r.erase("flags");  // "linkdown" follows the carrier of a bridge's first port
            kept.push_back(r);
        }
        return kept;
    };
    nlohmann::json s;
    s["links"] = strip(ip_json({"link", "show"}));
    s["addrs"] = strip(ip_json({"addr", "show"}));
    s["routes"] = strip_routes(ip_json({"route", "show", "table", "all"}));
    std::error_code ec;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(d.netns_dir(), ec))
        files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        s["netns"][f]["addrs"] = strip(ip_json({"addr", "show"}, f));
        s["netns"][f]["routes"] = strip_routes(ip_json({"route", "show", "table", "all"}, f));
    }
    std::ifstream st(d.state_dir() + "/state.json");
    std::stringstream ss;
    ss << st.rdbuf();
    s["state"] = ss.str();
    return s.dump(1);
}

std::string snapshot_diff(const std::string& a, const std::string& b) {
    std::istringstream sa(a), sb(b);
    std::vector<std::string> la, lb;
    for (std::string l; std::getline(sa, l);) la.push_back(l);
    for (std::string l; std::getline(sb, l);) lb.push_back(l);
    size_t i = 0;
    while (i < la.size() && i < lb.size() && la[i] == lb[i]) ++i;
    if (i == la.size() && i == lb.size()) return "";
    std::string out = fmt_line("first difference at line " + std::to_string(i + 1));
    for (size_t k = (i > 6 ? i - 6 : 0); k < i + 4; ++k) {
        out += "  before: " + (k < la.size() ? la[k] : "<end>") + "\n";
        out += "  after:  " + (k < lb.size() ? lb[k] : "<end>") + "\n";
    }
    return out;
}

// --- tagged servers and UDP clients --------------------------------------------------------------

namespace {

// Sends "ping" on `s` to addr:port and waits for one datagram; "" on timeout.
std::string udp_roundtrip(int s, const std::string& addr, int port,
                          std::chrono::milliseconds timeout) {
    SockAddr sa = make_addr(addr, port);
    if (sendto(s, "ping", 4, 0, sa.sa(), sa.len) != 4) return "";
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[256];
    ssize_t n = recv(s, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

TagServer::TagServer(const std::string& netns_path, Proto proto, const std::string& addr, int port,
                     const std::string& tag) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        enter_netns_or_die(netns_path);
        const bool tcp = proto == Proto::Tcp;
        SockAddr sa = make_addr(addr, port);
        int s = socket(sa.family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, sa.sa(), sa.len) != 0) _exit(91);
        if (tcp && listen(s, 64) != 0) _exit(91);
        char ok = 1;
        if (write(ready[1], &ok, 1) != 1) _exit(92);
        for (;;) {
            if (tcp) {
                int c = accept(s, nullptr, nullptr);
                if (c < 0) continue;
                std::string line = tag + "\n";
                (void)!send(c, line.data(), line.size(), MSG_NOSIGNAL);
                close(c);
            } else {
                char buf[512];
                sockaddr_storage peer{};
                socklen_t len = sizeof peer;
                ssize_t n =
                    recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
                if (n < 0) continue;
                (void)!sendto(s, tag.data(), tag.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                              len);
            }
        }
    }
    ready_ = wait_ready(ready);
}

TagServer::~TagServer() {
    kill_child(pid_);
}

std::string udp_ask(const std::string& netns_path, const std::string& addr, int port,
                    std::chrono::milliseconds timeout) {
    int res[2];
    if (pipe2(res, O_CLOEXEC) != 0) return "";
    pid_t pid = fork();
    if (pid == 0) {  // a child, because setns() would move the whole test thread
        close(res[0]);
        enter_netns_or_die(netns_path);
        int s = socket(make_addr(addr, port).family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        std::string got = udp_roundtrip(s, addr, port, timeout);
        _exit(write(res[1], got.data(), got.size()) == static_cast<ssize_t>(got.size()) ? 0 : 4);
    }
    close(res[1]);
    std::string out;
    char buf[256];
    ssize_t n;
    while ((n = read(res[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(res[0]);
    waitpid(pid, nullptr, 0);
    return out;
}

namespace {
// UdpClient's pipe protocol: the test writes a Request, the child answers with a length and bytes.
struct UdpRequest {
    char addr[INET_ADDRSTRLEN];
    int port;
    int timeout_ms;
};
}  // namespace

UdpClient::UdpClient(const std::string& netns_path) {
    int cmd[2], res[2];
    if (pipe2(cmd, O_CLOEXEC) != 0) return;
    if (pipe2(res, O_CLOEXEC) != 0) {
        close(cmd[0]);
        close(cmd[1]);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(cmd[1]);
        close(res[0]);
        enter_netns_or_die(netns_path);
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // IPv4 only
        sockaddr_in any{};
        any.sin_family = AF_INET;
        if (bind(s, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) _exit(91);
        socklen_t len = sizeof any;
        getsockname(s, reinterpret_cast<sockaddr*>(&any), &len);
        int local = ntohs(any.sin_port);
        if (write(res[1], &local, sizeof local) != sizeof local) _exit(92);
        UdpRequest rq{};
        while (read(cmd[0], &rq, sizeof rq) == sizeof rq) {
            rq.addr[INET_ADDRSTRLEN - 1] = 0;
            // Drop late answers to an earlier question, so they cannot pass for this one.
            char junk[256];
            while (recv(s, junk, sizeof junk, MSG_DONTWAIT) > 0) {
            }
            std::string got =
                udp_roundtrip(s, rq.addr, rq.port, std::chrono::milliseconds(rq.timeout_ms));
            uint32_t n = static_cast<uint32_t>(got.size());
            if (write(res[1], &n, sizeof n) != sizeof n) _exit(93);
            if (n && write(res[1], got.data(), n) != static_cast<ssize_t>(n)) _exit(94);
        }
        _exit(0);
    }
    close(cmd[0]);
    close(res[1]);
    cmd_fd_ = cmd[1];
    res_fd_ = res[0];
    pollfd p{res_fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) == 1 &&
        read(res_fd_, &local_port_, sizeof local_port_) == sizeof local_port_) {
        pid_ = pid;
    } else {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
}

UdpClient::~UdpClient() {
    if (cmd_fd_ >= 0) close(cmd_fd_);
    if (res_fd_ >= 0) close(res_fd_);
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

std::string UdpClient::ask(const std::string& addr, int port, std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return "";
    UdpRequest rq{};
    std::snprintf(rq.addr, sizeof rq.addr, "%s", addr.c_str());
    rq.port = port;
    rq.timeout_ms = static_cast<int>(timeout.count());
    if (write(cmd_fd_, &rq, sizeof rq) != sizeof rq) return "";
    uint32_t n = 0;
    pollfd p{res_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count()) + 5000) != 1 ||
        read(res_fd_, &n, sizeof n) != sizeof n)
        return "";
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(res_fd_, out.data() + got, n - got);
        if (r <= 0) return "";
        got += static_cast<size_t>(r);
    }
    return out;
}

int try_bind(bool tcp, const std::string& addr, int port) {
    SockAddr sa = make_addr(addr, port);
    int s = socket(sa.family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    if (sa.family == AF_INET6) {
        int one = 1;  // like the daemon's IPv6 holds: never touch IPv4
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    int rc = bind(s, sa.sa(), sa.len) == 0 ? 0 : errno;
    close(s);
    return rc;
}

}  // namespace cnetd::it
