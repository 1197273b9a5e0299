// Crash at every point (issue 6): the real daemon is SIGKILLed at the N-th failpoint hit
// (CNETD_FAILPOINTS="*=kill@N", lib/base/failpoint.hpp) while a churn runs, for N = 1, 2, 3, ...
// so the kill lands on each kernel step, firewall call and store write in turn (and on start-up
// reconciliation itself). The churn (churn_round) connects and disconnects four containers with
// and without published ports, creates, uses and removes a dual-stack network, and creates,
// connects and removes a namespace, in an order that changes from one N to the next. After each
// kill the daemon is restarted and the invariants are checked against the kernel:
//   - no duplicate IP among endpoints; every endpoint's veth exists, is on its network's bridge,
//     and its container side has exactly the endpoint's IPv4 (and IPv6) address;
//   - every endpoint answers (a TCP SYN to a closed port comes back as RST: the stack is there);
//   - no orphan veth (host veths == endpoints' veths; a namespace holds lo and its endpoints'
//     interfaces only); no orphan bridge (brdual exists exactly when network dual does);
//   - no stale map element (the nft published* maps hold exactly the endpoints' bindings);
//   - no leaked IP or port (at the end, with everything removed, four connects get .2 .. .5 and
//     the churn's host ports can be published again).
// Asserts 100+ kills at 100+ distinct (operation, failpoint) points; about 2-3 minutes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr int kContainers = 4;
constexpr int kRounds = 1;

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
    std::string ns(const std::string& name) const { return d.netns_dir() + "/" + name; }
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
    // Every endpoint of both networks, keyed "<network>/<netns path>", with "Network" and the
    // network's bridge ("Bridge") added.
    std::map<std::string, json> endpoints() {
        std::map<std::string, json> out;
        for (const char* name : {"bridge", "dual"}) {
            if (std::string(name) == "dual" && !dual_exists()) continue;
            json net = d.netctl_json({"network", "inspect", name});
            EXPECT_TRUE(net.is_array()) << name << ": " << net.dump();
            if (!net.is_array()) continue;
            const std::string bridge =
                net[0]["Options"].value("com.docker.network.bridge.name", std::string(name));
            // A named copy: iterating items() of the temporary value() returns would dangle.
            const json containers = net[0].value("Containers", json::object());
            for (const auto& [id, c] : containers.items()) {
                json e = c;
                e["Network"] = name;
                e["Bridge"] = bridge;
                out[std::string(name) + "/" + c["SandboxKey"].get<std::string>()] = e;
            }
        }
        return out;
    }
    bool dual_exists() { return d.netctl({"network", "inspect", "dual"}).status == 0; }
    bool netns_exists(const std::string& name) {
        struct stat st {};
        return ::stat((d.netns_dir() + "/" + name).c_str(), &st) == 0;
    }
    static size_t map_elems(const char* map) {
        CmdResult r = run({"nft", "-j", "list", "map", "inet", "cnetd", map});
        if (r.status != 0) return 0;
        json m = json::parse(r.out, nullptr, false);
        if (!m.is_object()) return 0;
        for (const auto& o : m["nftables"])
            if (o.contains("map")) return o["map"].value("elem", json::array()).size();
        return 0;
    }
    static std::vector<std::string> addrs(const std::string& family, const std::string& dev,
                                          const std::string& netns) {
        json a = ip_json({family, "addr", "show", "dev", dev, "scope", "global"}, netns);
        std::vector<std::string> got;
        if (a.is_array())
            for (const auto& li : a)
                for (const auto& ai : li.value("addr_info", json::array()))
                    if (ai.contains("local") &&
                        ai.contains("prefixlen"))  // `ip -j` prints {} for filtered ones
                        got.push_back(ai["local"].get<std::string>() + "/" +
                                      std::to_string(ai["prefixlen"].get<int>()));
        return got;
    }
    // The invariants; returns "" or what is wrong.
    std::string check() {
        std::ostringstream bad;
        auto eps = endpoints();
        std::set<std::string> ips, host_veths;
        std::map<std::string, std::set<std::string>> ifaces;  // netns path -> endpoint interfaces
        size_t bindings = 0;
        for (const auto& [key, c] : eps) {
            const std::string path = c["SandboxKey"], ifname = c["Interface"];
            const std::string ip = c["IPv4Address"], ip6 = c.value("IPv6Address", "");
            if (!ips.insert(ip).second) bad << "duplicate IP " << ip << "; ";
            if (!ip6.empty() && !ips.insert(ip6).second) bad << "duplicate IP " << ip6 << "; ";
            ifaces[path].insert(ifname);
            std::string host = c["HostInterface"];
            host_veths.insert(host);
            json l = ip_json({"-d", "link", "show", "dev", host});
            if (!l.is_array() || l.size() != 1) {
                bad << key << ": veth " << host << " missing; ";
                continue;
            }
            if (l[0].value("master", "") != c["Bridge"])
                bad << host << " not on " << c["Bridge"] << "; ";
            if (addrs("-4", ifname, path) != std::vector<std::string>{ip})
                bad << key << ": " << ifname << " has " << json(addrs("-4", ifname, path)).dump()
                    << " not " << ip << "; ";
            if (!ip6.empty() && addrs("-6", ifname, path) != std::vector<std::string>{ip6})
                bad << key << ": " << ifname << " has " << json(addrs("-6", ifname, path)).dump()
                    << " not " << ip6 << "; ";
            std::string addr = ip.substr(0, ip.find('/'));
            if (!answers(addr, 9)) {
                bad << key << " (" << addr << ") does not answer (mac "
                    << c.value("MacAddress", "?") << "; neighbours "
                    << run({"ip", "neigh", "show", "dev", c["Bridge"]}).out << "); ";
            }
            const json ports = c.value("Ports", json::object());  // named: items() must not dangle
            for (const auto& [port, hosts] : ports.items()) bindings += hosts.size();
        }
        std::set<std::string> kernel_veths;
        json veths = ip_json({"link", "show", "type", "veth"});
        if (veths.is_array())
            for (const auto& l : veths) kernel_veths.insert(l["ifname"].get<std::string>());
        if (kernel_veths != host_veths)
            bad << "veths " << json(kernel_veths).dump() << " vs endpoints "
                << json(host_veths).dump() << "; ";
        // Every namespace holds lo and its endpoints' interfaces, nothing else.
        std::vector<std::string> names;
        for (int i = 0; i < kContainers; ++i) names.push_back("n" + std::to_string(i));
        if (netns_exists("t")) names.push_back("t");
        for (const auto& name : names) {
            std::set<std::string> got;
            json links = ip_json({"link", "show"}, ns(name));
            if (!links.is_array()) {
                bad << name << ": ip link: " << links.dump() << "; ";
                continue;
            }
            for (const auto& l : links)
                if (l["ifname"] != "lo") got.insert(l["ifname"].get<std::string>());
            if (got != ifaces[ns(name)])
                bad << name << " has interfaces " << json(got).dump() << ", endpoints "
                    << json(ifaces[ns(name)]).dump() << "; ";
        }
        // The user network's bridge exists exactly when the network does.
        json br = ip_json({"link", "show", "dev", "brdual"});
        bool bridge = br.is_array() && !br.empty();
        if (bridge != dual_exists())
            bad << "bridge brdual " << (bridge ? "exists without" : "missing for")
                << " network dual; ";
        size_t elems = 0;
        for (const char* m : {"published", "published6", "published_ranges", "published6_ranges"})
            elems += map_elems(m);
        if (elems != bindings)
            bad << "maps published* have " << elems << " elements, endpoints " << bindings
                << " bindings; ";
        return bad.str();
    }
    // Churn rounds until the daemon dies. Returns the operation during which it died ("" if it
    // did not die in kRounds rounds). `seed` orders the steps of each round.
    std::string churn(unsigned seed) {
        std::mt19937 rng(seed);
        for (int round = 0; round < kRounds; ++round) {
            std::string op = churn_round(rng);
            if (!op.empty()) return op;
        }
        return "";
    }
    // One request; returns op when the daemon died during it, "" otherwise.
    std::string request(const std::string& op, const std::vector<std::string>& args) {
        CmdResult r = d.netctl(args);
        // A killed daemon closes the socket before waitpid sees it exit: give it a moment.
        for (int k = 0; r.status != 0 && k < 50 && alive(); ++k) std::this_thread::sleep_for(20ms);
        if (!alive()) return op;
        EXPECT_EQ(r.status, 0) << op << ": " << json(args).dump() << ": " << r.err << "\n"
                               << d.log();
        return "";
    }
    // One round, decided from the current state (a kill may have left any step half-way), its
    // steps in an order drawn from `rng` so that every kind of operation comes first (right after
    // the start-up's own failpoints) in some rounds and the kill positions N = 1, 2, ... land in
    // all of them:
    //   each of n0..n3 connects to or disconnects from the default network (n0, n2 publishing);
    //   the dual-stack network "dual" is created, gets n1 (publishing on IPv4 and IPv6), loses it,
    //   and is removed, one step per round;
    //   the namespace "t" is created and connected (publishing on 127.0.0.1), disconnected or
    //   removed with its endpoint, or removed.
    using Request = std::pair<std::string, std::vector<std::string>>;
    std::string churn_round(std::mt19937& rng) {
        auto eps = endpoints();
        std::vector<std::vector<Request>> steps;
        for (int i = 0; i < kContainers; ++i) {
            bool connected = eps.count("bridge/" + ns("n" + std::to_string(i))) > 0;
            bool ports = i % 2 == 0;
            std::string op =
                std::string(connected ? "disconnect" : "connect") + (ports ? "+ports" : "");
            std::vector<std::string> args{"network", connected ? "disconnect" : "connect", "bridge",
                                          "n" + std::to_string(i)};
            if (!connected && ports) {
                args.push_back("-p");
                args.push_back(std::to_string(8000 + i) + ":80");
            }
            steps.push_back({{op, args}});
        }
        if (!dual_exists()) {
            steps.push_back({{"network create dual",
                              {"network", "create", "dual", "--subnet", "10.99.0.0/24", "--subnet",
                               "fd00:99::/64", "-o", "com.docker.network.bridge.name=brdual"}}});
        } else if (!eps.count("dual/" + ns("n1"))) {
            steps.push_back(
                {{"connect dual+ports", {"network", "connect", "dual", "n1", "-p", "9001:80"}}});
        } else {
            std::vector<Request> rm{
                {"disconnect dual+ports", {"network", "disconnect", "dual", "n1"}}};
            if (eps.count("dual/" + ns("n3")))
                rm.push_back({"disconnect dual", {"network", "disconnect", "dual", "n3"}});
            rm.push_back({"network rm dual", {"network", "rm", "dual"}});
            steps.push_back(rm);
        }
        // n3 joins and leaves "dual" while it stays (a second interface in its namespace).
        if (dual_exists() && !eps.count("dual/" + ns("n1"))) {
            if (eps.count("dual/" + ns("n3")))
                steps.push_back({{"disconnect dual", {"network", "disconnect", "dual", "n3"}}});
            else
                steps.push_back({{"connect dual", {"network", "connect", "dual", "n3"}}});
        }
        if (!netns_exists("t")) {
            steps.push_back({{"netns create", {"netns", "create", "t"}},
                             {"connect t+ports",
                              {"network", "connect", "bridge", "t", "-p", "127.0.0.1:8009:80"}}});
        } else if (!eps.count("bridge/" + ns("t"))) {
            if (rng() % 2)
                steps.push_back(
                    {{"connect t+ports",
                      {"network", "connect", "bridge", "t", "-p", "127.0.0.1:8009:80"}}});
            else
                steps.push_back({{"netns rm", {"netns", "rm", "t"}}});
        } else if (rng() % 2) {
            steps.push_back({{"netns rm (with endpoint)", {"netns", "rm", "t"}}});
        } else {
            steps.push_back({{"disconnect t+ports", {"network", "disconnect", "bridge", "t"}}});
        }
        std::shuffle(steps.begin(), steps.end(), rng);
        for (const auto& step : steps)
            for (const auto& [op, args] : step)
                if (auto died = request(op, args); !died.empty()) return died;
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
    for (int i = 0; i < kContainers; ++i)
        ASSERT_EQ(d.netctl({"netns", "create", "n" + std::to_string(i)}).status, 0);
    ASSERT_EQ(check(), "");
    d.kill(SIGKILL);

    // Sweeps N = 1, 2, ... until the round survives (N beyond the workload); another sweep with
    // other step orders follows until kTargetPoints distinct points are covered (or kMaxPasses).
    const long kMaxN =
        std::getenv("CNETD_FAULT_MAX") ? std::atol(std::getenv("CNETD_FAULT_MAX")) : 400;
    // CNETD_FAULT_POINTS: how many distinct points to cover (default 130; CI asks for 100, the
    // issue's minimum, to stay in its time budget with the ASan build).
    const size_t kTargetPoints = std::max<size_t>(
        100,
        std::getenv("CNETD_FAULT_POINTS") ? std::atol(std::getenv("CNETD_FAULT_POINTS")) : 130);
    constexpr int kMaxPasses = 3;
    std::set<std::string> names, points;
    int kills = 0, startup_kills = 0, failures = 0, passes = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int pass = 0; pass < kMaxPasses && points.size() < kTargetPoints && failures <= 5;
         ++pass) {
        ++passes;
        int survived = 0;
        for (long n = 1; n <= kMaxN; ++n) {
            std::string op;
            if (!start(n)) {
                op = "startup";
                ++startup_kills;
                if (!start(0)) {
                    ADD_FAILURE() << "daemon does not start after a kill at start-up (N=" << n
                                  << ")\n"
                                  << d.log();
                    failures = 100;
                    break;
                }
            } else {
                std::string why = check();  // the restart after the previous kill
                if (!why.empty()) {
                    ++failures;
                    ADD_FAILURE() << "after kill #" << kills << " (N=" << n << ", killed at "
                                  << last_kill() << "): " << why << "\n"
                                  << d.log();
                }
                op = churn(static_cast<unsigned>(n + 1000 * pass));
                if (op.empty()) {  // N was beyond the rounds: nothing killed
                    d.kill(SIGKILL);
                    if (++survived >= 3) break;  // the workload is shorter than N: done
                    continue;
                }
                survived = 0;
            }
            std::string fp = last_kill();
            ++kills;
            names.insert(fp);
            points.insert(op + " @ " + fp);
            if (d.pid() > 0 && alive()) d.kill(SIGKILL);
            if (d.pid() > 0) d.kill(0);  // reap
            if (failures > 5) break;
            if (points.size() >= kTargetPoints) break;
        }
    }
    // Final restart: invariants, then nothing leaked: with everything disconnected and removed,
    // four connects get .2 - .5 and the ports published during the churn can be published again.
    ASSERT_TRUE(start(0)) << d.log();
    EXPECT_EQ(check(), "");
    for (const auto& [key, c] : endpoints()) {
        EXPECT_EQ(d.netctl({"network", "disconnect", c["Network"], c["Name"]}).status, 0) << key;
    }
    if (dual_exists()) {
        EXPECT_EQ(d.netctl({"network", "rm", "dual"}).status, 0) << d.log();
    }
    if (netns_exists("t")) {
        EXPECT_EQ(d.netctl({"netns", "rm", "t"}).status, 0) << d.log();
    }
    EXPECT_EQ(check(), "");
    std::set<std::string> got;
    for (int i = 0; i < kContainers; ++i) {
        std::vector<std::string> args{"network", "connect", "bridge", "n" + std::to_string(i)};
        if (i % 2 == 0) args.insert(args.end(), {"-p", std::to_string(8000 + i) + ":80"});
        ASSERT_EQ(d.netctl(args).status, 0) << d.log();
    }
    ASSERT_EQ(d.netctl({"network", "create", "dual", "--subnet", "10.99.0.0/24", "--subnet",
                        "fd00:99::/64", "-o", "com.docker.network.bridge.name=brdual"})
                  .status,
              0)
        << d.log();
    ASSERT_EQ(d.netctl({"network", "connect", "dual", "n1", "-p", "9001:80"}).status, 0) << d.log();
    for (const auto& [key, c] : endpoints()) got.insert(c["IPv4Address"]);
    EXPECT_EQ(got, (std::set<std::string>{"172.17.0.2/16", "172.17.0.3/16", "172.17.0.4/16",
                                          "172.17.0.5/16", "10.99.0.2/24"}));
    EXPECT_EQ(check(), "");
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "[ fault ] %d kills (%d during start-up reconciliation) in %d sweep(s) at %zu distinct "
        "(operation, failpoint) points, %zu distinct failpoint names, in %.0f s\n",
        kills, startup_kills, passes, points.size(), names.size(), secs);
    for (const auto& p : points) std::printf("[ fault ]   %s\n", p.c_str());
    // Each kill lands on a distinct hit index of the workload (N = 1, 2, ...); the issue asks for
    // 100 or more distinct points: (operation, failpoint) pairs.
    EXPECT_GE(kills, 100);
    EXPECT_GE(points.size(), 100u);
}

}  // namespace
