#include "cluster.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace cnetd::it {

using namespace std::chrono_literals;

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
    return out;
}

// "" when argv exited 0, else a message naming it.
std::string must(const std::vector<std::string>& argv) {
    CmdResult r = run(argv);
    if (r.status == 0) return "";
    return join(argv, " ") + ": exit " + std::to_string(r.status) + ": " + r.err;
}

// In the holder child: lo up without exec'ing ip (the child only sleeps afterwards).
bool lo_up() {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    if (s >= 0) close(s);
    return ok;
}

// The holder of a simulated host: new net + mount namespaces, its own /run and /sys (sysfs shows
// the mounting process's netns), lo up; then one byte on `ready_fd` and sleep until killed.
[[noreturn]] void hold_host(int ready_fd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) _exit(90);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(91);
    if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) _exit(92);
    umount2("/sys", MNT_DETACH);
    if (mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) _exit(93);
    if (!lo_up()) _exit(94);
    char ok = 1;
    if (write(ready_fd, &ok, 1) != 1) _exit(95);
    close(ready_fd);
    for (;;) pause();
}

void kill_wait(pid_t& pid, int sig) {
    if (pid <= 0) return;
    kill(pid, sig);
    waitpid(pid, nullptr, 0);
    pid = -1;
}

}  // namespace

std::string host_address(int i) {
    return "192.0.2." + std::to_string(10 + i);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds period) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(period);
    }
}

// --- Host
// -----------------------------------------------------------------------------------------

Host::Host(int index) : index_(index) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        hold_host(ready[1]);
    }
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    char ok = 0;
    const bool up = pid > 0 && poll(&p, 1, 5000) == 1 && read(ready[0], &ok, 1) == 1 && ok == 1;
    close(ready[0]);
    if (!up) {
        if (pid > 0) kill_wait(pid, SIGKILL);
        return;
    }
    holder_ = pid;
    d.set_exec_prefix(enter());
}

Host::~Host() {
    d.kill(SIGKILL);
    kill_wait(etcd_pid_, SIGKILL);
    kill_wait(holder_, SIGKILL);
}

std::string Host::netns_path() const {
    return "/proc/" + std::to_string(holder_) + "/ns/net";
}

std::string Host::netns(const std::string& container) const {
    return "/proc/" + std::to_string(holder_) + "/root" + d.netns_dir() + "/" + container;
}

std::vector<std::string> Host::enter() const {
    return {"nsenter", "-t", std::to_string(holder_), "--net", "--mount", "--"};
}

CmdResult Host::sh(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
    std::vector<std::string> a = enter();
    a.insert(a.end(), argv.begin(), argv.end());
    return run(a, timeout);
}

CmdResult Host::in_container(const std::string& name, const std::vector<std::string>& argv,
                             std::chrono::milliseconds timeout) const {
    std::vector<std::string> a{"nsenter", "--net=" + netns(name), "--"};
    a.insert(a.end(), argv.begin(), argv.end());
    return run(a, timeout);
}

bool Host::start_cnetd(std::string* log) {
    return d.start(log);
}

std::string Host::etcd_log() const {
    std::ifstream in(d.dir() + "/etcd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool Host::start_etcd(const std::string& initial_cluster) {
    const std::string a = address();
    std::vector<std::string> argv = enter();
    for (const std::string& s :
         {std::string("etcd"), "--name=" + name(), "--data-dir=/run/etcd-" + name(),
          "--listen-client-urls=http://" + a + ":2379",
          "--advertise-client-urls=http://" + a + ":2379",
          "--listen-peer-urls=http://" + a + ":2380",
          "--initial-advertise-peer-urls=http://" + a + ":2380",
          "--initial-cluster=" + initial_cluster, std::string("--initial-cluster-state=new"),
          std::string("--initial-cluster-token=cnetd-it"), std::string("--logger=zap"),
          std::string("--log-level=warn")})
        argv.push_back(s);
    etcd_pid_ = fork();
    if (etcd_pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd =
            open((d.dir() + "/etcd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char*> args;
        for (auto& s : argv) args.push_back(s.data());
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    return etcd_pid_ > 0;
}

bool Host::wait_etcd(std::string* err) {
    const bool ok = wait_until(
        [&] {
            CmdResult r = run({"curl", "-s", "-m", "1", etcd_endpoint() + "/health"}, 3s);
            return r.out.find("\"health\":\"true\"") != std::string::npos;
        },
        20s, 200ms);
    if (!ok && err) *err = name() + ": etcd not healthy within 20 s; its log:\n" + etcd_log();
    return ok;
}

void Host::kill_etcd(int sig) {
    kill_wait(etcd_pid_, sig);
}

// --- Cluster
// --------------------------------------------------------------------------------------

Cluster::Cluster(ClusterOptions opt) : opt_(std::move(opt)) {}

Cluster::~Cluster() {
    hosts_.clear();  // cnetd, etcd and holders first: nothing runs in the namespaces below
    if (wan_) run({"ip", "netns", "del", kClusterWanNs});
}

std::string Cluster::build_network() {
    std::ofstream("/proc/sys/net/ipv4/ip_forward") << "1\n";  // the test's netns only
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", "ul0", "type", "bridge"},
             {"ip", "addr", "add", std::string(kUnderlayGw) + "/24", "dev", "ul0"},
             {"ip", "link", "set", "ul0", "up"},
             {"ip", "netns", "add", kClusterWanNs},
         })
        if (auto e = must(argv); !e.empty()) return e;
    wan_ = true;
    const std::string wan = "--net=" + wan_path();
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns",
              kClusterWanNs},
             {"ip", "addr", "add", "198.51.100.1/24", "dev", "wan0"},
             {"ip", "link", "set", "wan0", "up"},
             {"nsenter", wan, "sh", "-c",
              "ip link set lo up && ip addr add 198.51.100.2/24 dev eth0 && ip link set eth0 up "
              "&& ip route add default via 198.51.100.1"},
         })
        if (auto e = must(argv); !e.empty()) return e;
    for (int i = 1; i <= opt_.hosts; ++i) {
        auto h = std::make_unique<Host>(i);
        if (!h->ok()) return "host " + std::to_string(i) + ": the holder did not start";
        const std::string port = "ulh" + std::to_string(i), pid = std::to_string(h->holder());
        for (const auto& argv : std::vector<std::vector<std::string>>{
                 {"ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", pid},
                 {"ip", "link", "set", port, "master", "ul0", "up"},
                 {"nsenter", "-t", pid, "--net", "sh", "-c",
                  "ip addr add " + h->address() + "/24 dev eth0 && ip link set eth0 up && " +
                      "ip route add default via " + kUnderlayGw},
             })
            if (auto e = must(argv); !e.empty()) return e;
        h->d.write_config(config_of(i));
        hosts_.push_back(std::move(h));
    }
    return "";
}

std::string Cluster::initial_cluster() const {
    std::vector<std::string> members;
    for (int i = 1; i <= opt_.etcd_members; ++i)
        members.push_back("h" + std::to_string(i) + "=http://" + host_address(i) + ":2380");
    return join(members, ",");
}

std::vector<std::string> Cluster::etcd_endpoints() const {
    std::vector<std::string> eps;
    for (int i = 1; i <= opt_.etcd_members; ++i)
        eps.push_back("http://" + host_address(i) + ":2379");
    return eps;
}

std::string Cluster::start_etcd() {
    const std::string ic = initial_cluster();
    std::string err;
    // Every member first (a member alone never becomes healthy), then wait for each.
    for (int i = 1; i <= opt_.etcd_members; ++i)
        if (!host(i).start_etcd(ic)) return host(i).name() + ": etcd did not start";
    for (int i = 1; i <= opt_.etcd_members; ++i)
        if (!host(i).wait_etcd(&err)) return err;
    return "";
}

std::string Cluster::restart_etcd(int i) {
    std::string err;
    Host& h = host(i);
    if (!h.start_etcd(initial_cluster())) return h.name() + ": etcd did not start";
    return h.wait_etcd(&err) ? "" : err;
}

std::string Cluster::config_of(int i) const {
    std::string y = opt_.extra_config;
    if (!y.empty() && y.back() != '\n') y += '\n';
    if (!opt_.cluster_config || opt_.etcd_members == 0) return y;
    y += "cluster:\n  etcd: [" + join(etcd_endpoints(), ", ") + "]\n";
    y += "  node-name: h" + std::to_string(i) + "\n";
    y += "  advertise-address: " + host_address(i) + "\n";
    y += "  lease-ttl: " + std::to_string(opt_.lease_ttl) + "\n";
    y += "  lease-renew-margin: " + std::to_string(opt_.lease_renew_margin) + "\n";
    return y;
}

std::string Cluster::up(bool start_cnetd) {
    if (auto e = build_network(); !e.empty()) return e;
    if (auto e = start_etcd(); !e.empty()) return e;
    if (!start_cnetd) return "";
    for (auto& h : hosts_) {
        std::string log;
        if (!h->start_cnetd(&log)) return h->name() + ": cnetd did not start:\n" + log;
    }
    return "";
}

CmdResult Cluster::etcdctl(const std::vector<std::string>& args,
                           const std::vector<std::string>& endpoints) const {
    std::vector<std::string> argv{
        "etcdctl", "--endpoints=" + join(endpoints.empty() ? etcd_endpoints() : endpoints, ","),
        "--dial-timeout=2s", "--command-timeout=5s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 15s);
}

nlohmann::json Cluster::route_on(int i, const std::string& dst) const {
    return ip_json({"route", "show", dst}, hosts_.at(static_cast<size_t>(i - 1))->netns_path());
}

}  // namespace cnetd::it
