// Crash at every point (issue 6): the real daemon is SIGKILLed at the N-th failpoint hit
// (CNETD_FAILPOINTS="*=kill@N", lib/base/failpoint.hpp) while an attach/detach/publish churn runs,
// for N = 1, 2, 3, ... so the kill lands on each kernel step, firewall call and store write in
// turn (and on start-up reconciliation itself). After each kill the daemon is restarted and the
// invariants are checked against the kernel:
//   - no duplicate IP among endpoints; every endpoint's veth exists, is up, on docker0, and its
//     container side has exactly the endpoint's address;
//   - every endpoint answers (a TCP SYN to a closed port comes back as RST: the stack is there);
//   - no orphan veth (host veths == endpoints' veths; a namespace without endpoint has no eth0);
//   - no stale map element (nft map "published" holds exactly the endpoints' mappings);
//   - no leaked IP (at the end, with everything disconnected, four connects get .2 .. .5).
// Prints how many distinct kill points it covered.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr int kContainers = 4;

// TCP connect to addr:port: true when the peer's stack answered (connected or refused).
bool answers(const std::string& addr, int port, std::chrono::milliseconds timeout = 1000ms) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
    int rc = ::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    bool ok = rc == 0 || errno == ECONNREFUSED;
    if (rc < 0 && errno == EINPROGRESS) {
        pollfd p{s, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
            ok = err == 0 || err == ECONNREFUSED;
        }
    }
    ::close(s);
    return ok;
}

class Fault : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).status, 0);
        log_path = d.dir() + "/failpoints.log";
    }
    void TearDown() override {
        unsetenv("CNETD_FAILPOINTS");
        unsetenv("CNETD_FAILPOINTS_LOG");
    }
    std::string ns(int i) const { return d.netns_dir() + "/n" + std::to_string(i); }
    bool alive() {
        if (d.pid() <= 0) return false;
        int st = 0;
        return waitpid(d.pid(), &st, WNOHANG) == 0;
    }
    // Starts the daemon armed to die at the N-th failpoint (0: unarmed). False if it died.
    bool start(long n) {
        if (n > 0) {
            setenv("CNETD_FAILPOINTS", ("*=kill@" + std::to_string(n)).c_str(), 1);
            setenv("CNETD_FAILPOINTS_LOG", log_path.c_str(), 1);
        } else {
            unsetenv("CNETD_FAILPOINTS");
        }
        bool up = d.start();
        unsetenv("CNETD_FAILPOINTS");
        return up;
    }
    // Every endpoint of the default network, by netns path.
    std::map<std::string, json> endpoints() {
        std::map<std::string, json> out;
        json net = d.netctl_json({"network", "inspect", "bridge"});
        EXPECT_TRUE(net.is_array()) << net.dump();
        if (!net.is_array()) return out;
        // A named copy: iterating items() of the temporary value() returns would dangle.
        const json containers = net[0].value("Containers", json::object());
        for (const auto& [id, c] : containers.items()) out[c["SandboxKey"].get<std::string>()] = c;
        return out;
    }
    static size_t published_elems() {
        CmdResult r = run({"nft", "-j", "list", "map", "inet", "cnetd", "published"});
        if (r.status != 0) return 0;
        json m = json::parse(r.out, nullptr, false);
        if (!m.is_object()) return 0;
        for (const auto& o : m["nftables"])
            if (o.contains("map")) return o["map"].value("elem", json::array()).size();
        return 0;
    }
    // The invariants; returns "" or what is wrong.
    std::string check() {
        std::ostringstream bad;
        auto eps = endpoints();
        std::set<std::string> ips, host_veths;
        size_t mappings = 0;
        for (const auto& [path, c] : eps) {
            std::string ip = c["IPv4Address"];
            if (!ips.insert(ip).second) bad << "duplicate IP " << ip << "; ";
            std::string host = c["HostInterface"];
            host_veths.insert(host);
            json l = ip_json({"-d", "link", "show", "dev", host});
            if (!l.is_array() || l.size() != 1) {
                bad << path << ": veth " << host << " missing; ";
                continue;
            }
            if (l[0].value("master", "") != "docker0") bad << host << " not on docker0; ";
            json a = ip_json({"-4", "addr", "show", "dev", "eth0"}, path);
            std::vector<std::string> got;
            if (a.is_array())
                for (const auto& li : a)
                    for (const auto& ai : li["addr_info"])
                        got.push_back(ai["local"].get<std::string>() + "/" +
                                      std::to_string(ai["prefixlen"].get<int>()));
            if (got != std::vector<std::string>{ip}) bad << path << ": eth0 has " << json(got).dump() << " not " << ip << "; ";
            std::string addr = ip.substr(0, ip.find('/'));
            if (!answers(addr, 9)) bad << path << " (" << addr << ") does not answer; ";
            mappings += c.value("Ports", json::object()).size();
        }
        std::set<std::string> kernel_veths;
        for (const auto& l : ip_json({"link", "show", "type", "veth"})) kernel_veths.insert(l["ifname"]);
        if (kernel_veths != host_veths)
            bad << "veths " << json(kernel_veths).dump() << " vs endpoints " << json(host_veths).dump() << "; ";
        for (int i = 0; i < kContainers; ++i) {
            if (eps.count(ns(i))) continue;
            json l = ip_json({"link", "show", "dev", "eth0"}, ns(i));
            if (l.is_array() && !l.empty()) bad << ns(i) << " has an eth0 but no endpoint; ";
        }
        if (published_elems() != mappings)
            bad << "map published has " << published_elems() << " elements, endpoints " << mappings << "; ";
        return bad.str();
    }
    // One churn round: each container connects (n0, n2 with a published port) or disconnects.
    // Returns the operation during which the daemon died ("" if it did not).
    std::string churn() {
        for (int round = 0; round < 3; ++round) {
            std::string op = churn_round();
            if (!op.empty()) return op;
        }
        return "";
    }
    std::string churn_round() {
        auto eps = endpoints();
        for (int i = 0; i < kContainers; ++i) {
            bool connected = eps.count(ns(i)) > 0;
            bool ports = i % 2 == 0;
            std::string op = std::string(connected ? "disconnect" : "connect") + (ports ? "+ports" : "");
            std::vector<std::string> args{"network", connected ? "disconnect" : "connect", "bridge",
                                          "n" + std::to_string(i)};
            if (!connected && ports) {
                args.push_back("-p");
                args.push_back(std::to_string(8000 + i) + ":80");
            }
            CmdResult r = d.netctl(args);
            // A killed daemon closes the socket before waitpid sees it exit: give it a moment.
            for (int k = 0; r.status != 0 && k < 50 && alive(); ++k) std::this_thread::sleep_for(20ms);
            if (!alive()) return op;
            EXPECT_EQ(r.status, 0) << op << " n" << i << ": " << r.err << "\n" << d.log();
        }
        return "";
    }
    // The last "kill <name> <N>" line of the failpoint log.
    std::string last_kill() {
        std::ifstream in(log_path);
        std::string line, last;
        while (std::getline(in, line))
            if (line.rfind("kill ", 0) == 0) last = line.substr(5, line.rfind(' ') - 5);
        return last;
    }

    Daemon d;
    std::string log_path;
};

TEST_F(Fault, KillAtEveryFailpointDuringChurn) {
    ASSERT_TRUE(start(0)) << d.log();
    for (int i = 0; i < kContainers; ++i) ASSERT_EQ(d.netctl({"netns", "create", "n" + std::to_string(i)}).status, 0);
    ASSERT_EQ(check(), "");
    d.kill(SIGKILL);

    const long kMaxN = std::getenv("CNETD_FAULT_MAX") ? std::atol(std::getenv("CNETD_FAULT_MAX")) : 150;
    std::set<std::string> names, points;
    int kills = 0, startup_kills = 0, failures = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long n = 1; n <= kMaxN; ++n) {
        std::string op;
        if (!start(n)) {
            op = "startup";
            ++startup_kills;
            if (!start(0)) {
                ADD_FAILURE() << "daemon does not start after a kill at start-up (N=" << n << ")\n" << d.log();
                break;
            }
        } else {
            std::string why = check();  // the restart after the previous kill
            if (!why.empty()) {
                ++failures;
                ADD_FAILURE() << "after kill #" << kills << " (N=" << n << "): " << why << "\n" << d.log();
            }
            op = churn();
            if (op.empty()) {  // N was beyond three rounds: nothing killed
                d.kill(SIGKILL);
                continue;
            }
        }
        std::string fp = last_kill();
        ++kills;
        names.insert(fp);
        points.insert(op + " @ " + fp);
        if (d.pid() > 0 && alive()) d.kill(SIGKILL);
        if (d.pid() > 0) d.kill(0);  // reap
        if (failures > 5) break;
    }
    // Final restart: invariants, then no leaked IP: all disconnected, four connects get .2-.5.
    ASSERT_TRUE(start(0)) << d.log();
    EXPECT_EQ(check(), "");
    for (const auto& [path, c] : endpoints()) {
        EXPECT_EQ(d.netctl({"network", "disconnect", "bridge", c["Name"].get<std::string>()}).status, 0);
    }
    std::set<std::string> got;
    for (int i = 0; i < kContainers; ++i) {
        ASSERT_EQ(d.netctl({"network", "connect", "bridge", "n" + std::to_string(i)}).status, 0) << d.log();
    }
    for (const auto& [path, c] : endpoints()) got.insert(c["IPv4Address"]);
    EXPECT_EQ(got, (std::set<std::string>{"172.17.0.2/16", "172.17.0.3/16", "172.17.0.4/16", "172.17.0.5/16"}));
    EXPECT_EQ(check(), "");
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ fault ] %d kills (%d during start-up reconciliation) at %zu distinct (operation, "
                "failpoint) points, %zu distinct failpoint names, in %.0f s\n",
                kills, startup_kills, points.size(), names.size(), secs);
    for (const auto& p : points) std::printf("[ fault ]   %s\n", p.c_str());
    // Each kill lands on a distinct hit index of the workload (N = 1, 2, ...).
    EXPECT_GE(kills, 100);
    EXPECT_GE(points.size(), 40u);
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (geteuid() != 0) {
        fprintf(stderr, "fault tests need root (they run inside private namespaces): skipped\n");
        return 77;
    }
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
        perror("fault: private mount namespace");
        return 1;
    }
    return RUN_ALL_TESTS();
}
