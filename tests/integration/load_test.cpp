// Load: the real cnetd under many concurrent clients. 500 clients connect one container each, all
// at once, across 5 networks; every request must succeed, no address may be handed out twice, and
// the kernel must show exactly what the API says (veths on each bridge, the address inside sampled
// namespaces). Runs as its own test binary (suite "integration", under unshare like the others).
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace cnetd::it;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct Reply {
    int status = 0;  // 0: transport failure (see body)
    std::string body;
};

// One HTTP/1.1 request on a fresh connection (Connection: close), read to EOF.
Reply http(const std::string& sock, const std::string& method, const std::string& target,
           const std::string& body = "") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        Reply r{0, std::string("connect: ") + std::strerror(errno)};
        ::close(fd);
        return r;
    }
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    if (!body.empty())
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    req += "\r\n" + body;
    for (size_t off = 0; off < req.size();) {
        ssize_t n = ::write(fd, req.data() + off, req.size() - off);
        if (n <= 0) {
            ::close(fd);
            return {0, "write failed"};
        }
        off += static_cast<size_t>(n);
    }
    std::string resp;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (resp.rfind("HTTP/1.1 ", 0) != 0 || resp.size() < 12) return {0, "bad response: " + resp};
    auto p = resp.find("\r\n\r\n");
    return {std::atoi(resp.substr(9, 3).c_str()), p == std::string::npos ? "" : resp.substr(p + 4)};
}

class Load : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).status, 0);
        std::string log;
        ASSERT_TRUE(d.start(&log)) << log;
    }
    Daemon d;
};

TEST_F(Load, FiveHundredConcurrentConnectsAcrossFiveNetworks) {
    constexpr int kNetworks = 5, kClients = 500;
    const std::string sock = d.socket();
    for (int n = 0; n < kNetworks; ++n) {
        json req{{"Name", "load" + std::to_string(n)},
                 {"Subnet", "10.200." + std::to_string(n) + ".0/24"},
                 {"Options", {{"com.docker.network.bridge.name", "brload" + std::to_string(n)}}}};
        auto r = http(sock, "POST", "/v1/networks", req.dump());
        ASSERT_EQ(r.status, 201) << r.body;
    }
    // The namespaces, made by the daemon (20 clients at a time, they queue on its worker).
    {
        std::atomic<int> next{0}, failures{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < 20; ++t)
            ts.emplace_back([&] {
                for (int i; (i = next++) < kClients;) {
                    auto r = http(sock, "POST", "/v1/netns",
                                  json{{"Name", "c" + std::to_string(i)}}.dump());
                    if (r.status != 201) ++failures;
                }
            });
        for (auto& t : ts) t.join();
        ASSERT_EQ(failures.load(), 0);
    }

    // 500 clients, released together, one connect each.
    std::vector<Reply> replies(kClients);
    std::vector<std::chrono::steady_clock::duration> took(kClients);
    std::barrier start(kClients + 1);
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&, i] {
            json req{{"Target", "c" + std::to_string(i)}, {"Name", "c" + std::to_string(i)}};
            const std::string target =
                "/v1/networks/load" + std::to_string(i % kNetworks) + "/connect";
            start.arrive_and_wait();
            auto t0 = std::chrono::steady_clock::now();
            replies[i] = http(sock, "POST", target, req.dump());
            took[i] = std::chrono::steady_clock::now() - t0;
        });
    }
    auto t0 = std::chrono::steady_clock::now();
    start.arrive_and_wait();
    for (auto& t : clients) t.join();
    auto wall = std::chrono::steady_clock::now() - t0;

    int errors = 0;
    std::set<std::string> addrs;
    std::map<std::string, int> per_net;
    std::vector<std::string> ips(kClients);
    for (int i = 0; i < kClients; ++i) {
        if (replies[i].status != 201) {
            if (++errors <= 5)
                ADD_FAILURE() << "client " << i << ": " << replies[i].status << " "
                              << replies[i].body;
            continue;
        }
        json ep = json::parse(replies[i].body);
        ips[i] = ep["IPv4Address"].get<std::string>();
        addrs.insert(ips[i]);
        per_net[ep["Network"].get<std::string>()]++;
    }
    std::sort(took.begin(), took.end());
    auto ms = [](auto d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    std::printf("[load] %d connects: wall %lld ms, latency p50 %lld ms, p99 %lld ms, max %lld ms\n",
                kClients, static_cast<long long>(ms(wall)),
                static_cast<long long>(ms(took[kClients / 2])),
                static_cast<long long>(ms(took[kClients * 99 / 100])),
                static_cast<long long>(ms(took.back())));
    EXPECT_EQ(errors, 0);
    EXPECT_EQ(addrs.size(), static_cast<size_t>(kClients)) << "duplicate addresses handed out";

    // The API and the kernel agree: 100 endpoints and 100 veths per network.
    for (int n = 0; n < kNetworks; ++n) {
        const std::string name = "load" + std::to_string(n);
        EXPECT_EQ(per_net[name], kClients / kNetworks) << name;
        auto r = http(sock, "GET", "/v1/networks/" + name);
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(json::parse(r.body)["Containers"].size(),
                  static_cast<size_t>(kClients / kNetworks));
        auto veths = ip_json({"link", "show", "master", "brload" + std::to_string(n)});
        EXPECT_EQ(veths.size(), static_cast<size_t>(kClients / kNetworks)) << name;
    }
    // Sampled namespaces hold the address the API reported.
    for (int i = 0; i < kClients; i += 97) {
        if (ips[i].empty()) continue;
        auto links = ip_json({"-4", "addr", "show", "dev", "eth0"},
                             d.netns_dir() + "/c" + std::to_string(i));
        ASSERT_TRUE(links.is_array() && links.size() == 1) << links;
        const auto& a = links[0]["addr_info"][0];
        EXPECT_EQ(a["local"].get<std::string>() + "/" + std::to_string(a["prefixlen"].get<int>()),
                  ips[i]);
    }
    // Reads were never starved meanwhile, and the daemon is still fine.
    EXPECT_EQ(http(sock, "GET", "/v1/ping").status, 200);
}

}  // namespace
