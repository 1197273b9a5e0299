// The spine's acceptance scenario, end to end: the real cnetd and netctl binaries, a fresh network
// namespace per test, assertions on kernel state (ip -j) and on real TCP traffic.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// DaemonTest: a fresh network namespace per test (only `lo`), the daemon, netctl helpers.
class Spine : public DaemonTest {
protected:
    // netctl must fail with one line on stderr; returns that line.
    std::string fails(const std::vector<std::string>& args) {
        std::string err = DaemonTest::fails(args);
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
        return err;
    }
    json link(const std::string& name, const std::string& netns = "") {
        json j = ip_json({"-d", "addr", "show", "dev", name}, netns);
        return j.is_array() && j.size() == 1 ? j[0] : json();
    }
    static std::vector<std::string> inet(const json& link) {
        std::vector<std::string> out;
        if (!link.is_object()) return out;
        for (const auto& a : link["addr_info"])
            if (a["family"] == "inet") out.push_back(a["local"].get<std::string>() + "/" +
                                                     std::to_string(a["prefixlen"].get<int>()));
        return out;
    }
    // Host-side veths enslaved to `bridge`.
    std::vector<std::string> ports(const std::string& bridge) {
        std::vector<std::string> out;
        for (const auto& l : ip_json({"link", "show", "master", bridge})) out.push_back(l["ifname"]);
        return out;
    }
};

TEST_F(Spine, DefaultBridgeExistsRightAfterStart) {
    start();
    json br = link("docker0");
    ASSERT_TRUE(br.is_object()) << "docker0 missing";
    EXPECT_EQ(br["linkinfo"]["info_kind"], "bridge");
    auto flags = br["flags"].get<std::vector<std::string>>();
    EXPECT_NE(std::find(flags.begin(), flags.end(), "UP"), flags.end());
    ASSERT_EQ(inet(br), std::vector<std::string>{"172.17.0.1/16"});
    EXPECT_EQ(br["addr_info"][0]["broadcast"], "172.17.255.255");
    std::string mac = br["address"];
    EXPECT_EQ(std::stoi(mac.substr(0, 2), nullptr, 16) & 0x03, 0x02) << mac;  // local, unicast
    EXPECT_EQ(br["mtu"], 1500);
    std::ifstream fwd("/proc/sys/net/ipv4/ip_forward");
    int v = 0;
    fwd >> v;
    EXPECT_EQ(v, 1);
    std::ifstream ra("/proc/sys/net/ipv6/conf/docker0/accept_ra");
    if (ra) {
        ra >> v;
        EXPECT_EQ(v, 0);
    }
}

TEST_F(Spine, TwoNamespacesConnectTalkAndDisconnect) {
    start();
    ok({"netns", "create", "a"});
    ok({"network", "connect", "bridge", "a"});
    // In a: eth0 with 172.17.0.2/16 and a default route via the gateway; IPv6 off.
    json eth0 = link("eth0", ns("a"));
    ASSERT_TRUE(eth0.is_object());
    EXPECT_EQ(inet(eth0), std::vector<std::string>{"172.17.0.2/16"});
    json routes = ip_json({"route", "show", "default"}, ns("a"));
    ASSERT_EQ(routes.size(), 1u) << routes.dump();
    EXPECT_EQ(routes[0]["gateway"], "172.17.0.1");
    EXPECT_EQ(routes[0]["dev"], "eth0");
    CmdResult v6 = run({"nsenter", "--net=" + ns("a"), "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"});
    if (v6.status == 0) {
        EXPECT_EQ(v6.out, "1\n");
    }
    // On the host: one veth + 7 hex, master docker0, up.
    auto p = ports("docker0");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_TRUE(std::regex_match(p[0], std::regex("veth[0-9a-f]{7}"))) << p[0];

    ok({"netns", "create", "b"});
    ok({"network", "connect", "bridge", "b"});
    EXPECT_EQ(inet(link("eth0", ns("b"))), std::vector<std::string>{"172.17.0.3/16"});
    EXPECT_EQ(ports("docker0").size(), 2u);

    // TCP both ways between the namespaces, and from the host to both.
    EchoServer sa(ns("a"), "0.0.0.0", 7000), sb(ns("b"), "0.0.0.0", 7000);
    ASSERT_TRUE(sa.ready() && sb.ready());
    EXPECT_TRUE(tcp_echo(ns("a"), "172.17.0.3", 7000));
    EXPECT_TRUE(tcp_echo(ns("b"), "172.17.0.2", 7000));
    EXPECT_TRUE(tcp_echo("", "172.17.0.2", 7000));
    EXPECT_TRUE(tcp_echo("", "172.17.0.3", 7000));

    // inspect: Docker's shape.
    json insp = d.netctl_json({"network", "inspect", "bridge"});
    ASSERT_TRUE(insp.is_array() && insp.size() == 1) << insp.dump();
    json net = insp[0];
    EXPECT_EQ(net["Name"], "bridge");
    EXPECT_EQ(net["Driver"], "bridge");
    EXPECT_EQ(net["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");
    EXPECT_EQ(net["IPAM"]["Config"][0]["Gateway"], "172.17.0.1");
    EXPECT_EQ(net["Options"]["com.docker.network.bridge.name"], "docker0");
    EXPECT_EQ(net["Internal"], false);
    ASSERT_EQ(net["Containers"].size(), 2u);
    std::map<std::string, json> by_name;
    for (auto& [id, ep] : net["Containers"].items()) {
        EXPECT_EQ(ep["EndpointID"], id);
        by_name[ep["Name"]] = ep;
    }
    EXPECT_EQ(by_name["a"]["IPv4Address"], "172.17.0.2/16");
    EXPECT_EQ(by_name["b"]["IPv4Address"], "172.17.0.3/16");
    EXPECT_EQ(by_name["a"]["MacAddress"], link("eth0", ns("a"))["address"]);
    EXPECT_EQ(by_name["b"]["MacAddress"], link("eth0", ns("b"))["address"]);

    // Disconnect deletes the veth and frees the address: the next connect gets .2 again.
    ok({"network", "disconnect", "bridge", "a"});
    EXPECT_FALSE(link("eth0", ns("a")).is_object());
    EXPECT_EQ(ports("docker0").size(), 1u);
    EXPECT_FALSE(tcp_echo(ns("b"), "172.17.0.2", 7000, 500ms));
    ok({"network", "connect", "bridge", "a"});
    EXPECT_EQ(inet(link("eth0", ns("a"))), std::vector<std::string>{"172.17.0.2/16"});

    // netns rm: the file and the namespace go; its veth with it.
    ok({"netns", "rm", "a"});
    EXPECT_FALSE(fs::exists(ns("a")));
    EXPECT_EQ(ports("docker0").size(), 1u);
    std::ifstream mounts("/proc/self/mountinfo");
    std::string all((std::istreambuf_iterator<char>(mounts)), {});
    EXPECT_EQ(all.find(ns("a") + " "), std::string::npos);
    json after = d.netctl_json({"network", "inspect", "bridge"});
    EXPECT_EQ(after[0]["Containers"].size(), 1u);
    json list = d.netctl_json({"netns", "ls"});
    ASSERT_EQ(list.size(), 1u) << list.dump();
    EXPECT_EQ(list[0]["Name"], "b");
}

TEST_F(Spine, NetnsFilesWorkWithIpNetns) {
    start();
    ok({"netns", "create", "x"});
    // /run is a private tmpfs in this test binary's mount namespace (see main()).
    fs::remove_all("/run/netns");
    fs::create_directory_symlink(d.netns_dir(), "/run/netns");
    CmdResult r = run({"ip", "netns", "exec", "x", "ip", "-j", "link", "show"});
    fs::remove("/run/netns");
    ASSERT_EQ(r.status, 0) << r.err;
    json links = json::parse(r.out);
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0]["ifname"], "lo");
}

TEST_F(Spine, ConnectByAbsolutePathWithNameAndStaticIp) {
    start();
    ok({"netns", "create", "a"});
    ok({"network", "connect", "bridge", ns("a"), "--name", "web1", "--ip", "172.17.3.4"});
    EXPECT_EQ(inet(link("eth0", ns("a"))), std::vector<std::string>{"172.17.3.4/16"});
    json net = d.netctl_json({"network", "inspect", "bridge"})[0];
    ASSERT_EQ(net["Containers"].size(), 1u);
    EXPECT_EQ(net["Containers"].begin().value()["Name"], "web1");
    // A second network in the same namespace gets eth1.
    ok({"network", "create", "web", "--subnet", "10.10.0.0/24"});
    ok({"network", "connect", "web", "a"});
    EXPECT_EQ(inet(link("eth1", ns("a"))), std::vector<std::string>{"10.10.0.2/24"});
    ok({"network", "disconnect", "web", "a"});
    ok({"network", "disconnect", "bridge", "web1"});  // by endpoint name
    EXPECT_TRUE(ports("docker0").empty());
}

TEST_F(Spine, BipFromConfig) {
    start("bip: 10.200.0.1/24\n");
    EXPECT_EQ(inet(link("docker0")), std::vector<std::string>{"10.200.0.1/24"});
    ok({"netns", "create", "a"});
    ok({"network", "connect", "bridge", "a"});
    EXPECT_EQ(inet(link("eth0", ns("a"))), std::vector<std::string>{"10.200.0.2/24"});
    EXPECT_EQ(ip_json({"route", "show", "default"}, ns("a"))[0]["gateway"], "10.200.0.1");
}

TEST_F(Spine, DaemonJsonIsAConfig) {
    start(R"({"bip": "10.201.0.1/16", "mtu": 1400, "log-driver": "json-file"})");
    EXPECT_EQ(inet(link("docker0")), std::vector<std::string>{"10.201.0.1/16"});
    EXPECT_EQ(link("docker0")["mtu"], 1400);
    ok({"netns", "create", "a"});
    ok({"network", "connect", "bridge", "a"});
    EXPECT_EQ(link("eth0", ns("a"))["mtu"], 1400);
    EXPECT_EQ(link(ports("docker0")[0])["mtu"], 1400);
}

TEST_F(Spine, UserDefinedNetwork) {
    start();
    ok({"network", "create", "web", "--subnet", "10.10.0.0/24"});
    json net = d.netctl_json({"network", "inspect", "web"})[0];
    std::string id = net["Id"];
    ASSERT_EQ(id.size(), 64u);
    std::string bridge = "br-" + id.substr(0, 12);
    EXPECT_EQ(net["Options"]["com.docker.network.bridge.name"], bridge);
    json br = link(bridge);
    ASSERT_TRUE(br.is_object()) << bridge;
    EXPECT_EQ(br["linkinfo"]["info_kind"], "bridge");
    EXPECT_EQ(inet(br), std::vector<std::string>{"10.10.0.1/24"});
    ok({"netns", "create", "a"});
    ok({"netns", "create", "b"});
    ok({"network", "connect", "web", "a"});
    ok({"network", "connect", "web", "b"});
    EchoServer s(ns("b"), "0.0.0.0", 7001);
    ASSERT_TRUE(s.ready());
    EXPECT_TRUE(tcp_echo(ns("a"), "10.10.0.3", 7001));
    json ls = d.netctl_json({"network", "ls"});
    EXPECT_EQ(ls.size(), 2u);
    EXPECT_NE(fails({"network", "rm", "web"}).find("active endpoints"), std::string::npos);
    ok({"network", "disconnect", "web", "a"});
    ok({"network", "disconnect", "web", "b"});
    ok({"network", "rm", "web"});
    EXPECT_FALSE(link(bridge).is_object());
    // A named, pre-existing bridge is adopted and left in place on removal.
    ASSERT_EQ(run({"ip", "link", "add", "mybr0", "type", "bridge"}).status, 0);
    ok({"network", "create", "lan", "--subnet", "10.30.0.0/24", "-o",
        "com.docker.network.bridge.name=mybr0"});
    EXPECT_EQ(inet(link("mybr0")), std::vector<std::string>{"10.30.0.1/24"});
    ok({"network", "rm", "lan"});
    EXPECT_TRUE(link("mybr0").is_object());
}

TEST_F(Spine, BadInputGetsAPreciseErrorAndChangesNothing) {
    start();
    ok({"network", "create", "web", "--subnet", "10.10.0.0/24"});
    ok({"netns", "create", "a"});
    ok({"netns", "create", "b"});
    ok({"network", "connect", "bridge", "a", "--ip", "172.17.0.5"});
    std::ofstream(d.dir() + "/plain") << "not a namespace";
    ASSERT_EQ(run({"ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"}).status, 0);
    const std::string before = kernel_snapshot(d);

    struct Case {
        std::vector<std::string> args;
        std::string expect;
    };
    std::vector<Case> cases = {
        {{"network", "create", "web2", "--subnet", "10.10.0.0/16"}, "overlaps network web (10.10.0.0/24)"},
        {{"network", "create", "web2", "--subnet", "172.17.1.0/24"}, "overlaps network bridge"},
        {{"network", "create", "web2", "--subnet", "10.20.0.0/24", "--gateway", "10.21.0.1"},
         "gateway: 10.21.0.1 is not in subnet 10.20.0.0/24"},
        {{"network", "create", "web2", "--subnet", "10.20.0.0/33"}, "prefix length 33 > 32"},
        {{"network", "create", "web2", "--subnet", "10.20.0.0/24", "-o",
          "com.docker.network.bridge.name=averyveryverylongbridge"},
         "is 23 characters long (the limit is 15)"},
        {{"network", "create", "web2", "--subnet", "10.20.0.0/24", "-o",
          "com.docker.network.bridge.name=dummy0"},
         "not a bridge"},
        {{"network", "create", "web", "--subnet", "10.40.0.0/24"}, "already exists"},
        {{"network", "connect", "nosuchnet", "b"}, "network nosuchnet not found"},
        {{"network", "inspect", "nosuchnet"}, "network nosuchnet not found"},
        {{"network", "rm", "nosuchnet"}, "network nosuchnet not found"},
        {{"network", "connect", "bridge", "b", "--ip", "172.17.0.5"}, "172.17.0.5 is already in use"},
        {{"network", "connect", "bridge", "b", "--ip", "10.99.0.5"}, "not in the network's subnet"},
        {{"network", "connect", "bridge", "b", "--ip", "172.17.0.1"}, "gateway"},
        {{"network", "connect", "bridge", d.dir() + "/plain"}, "is not a network namespace"},
        {{"network", "connect", "bridge", "/etc/hostname"}, "is not a network namespace"},
        {{"network", "connect", "bridge", "nosuchns"}, "No such file or directory"},
        {{"network", "connect", "bridge", "a"}, "already connected"},
        {{"network", "disconnect", "bridge", "b"}, "no such endpoint"},
        {{"network", "rm", "bridge"}, "cannot be removed"},
        {{"netns", "create", "a"}, "already exists"},
        {{"netns", "create", "../evil"}, "invalid"},
        {{"netns", "rm", "nosuchns"}, "not found"},
    };
    for (const auto& c : cases) {
        std::string err = fails(c.args);
        EXPECT_NE(err.find(c.expect), std::string::npos)
            << "netctl " << c.args[0] << " " << c.args[1] << " ...: got: " << err
            << "expected to contain: " << c.expect;
        EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "") << "kernel or state changed by: " << err;
    }
}

// Malformed requests on the socket itself (not through netctl).
std::string raw_http(const std::string& socket, const std::string& request) {
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, socket.c_str(), sizeof sa.sun_path - 1);
    if (connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return "connect failed";
    (void)!write(s, request.data(), request.size());
    shutdown(s, SHUT_WR);
    std::string resp;
    char buf[4096];
    ssize_t n;
    while ((n = read(s, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
    close(s);
    return resp;
}

TEST_F(Spine, MalformedJsonOnTheSocket) {
    start();
    const std::string before = kernel_snapshot(d);
    std::string body = "{\"Name\": \"x\", \"Subnet\": ";
    std::string resp = raw_http(d.socket(), "POST /v1/networks HTTP/1.1\r\nHost: cnetd\r\n"
                                            "Content-Type: application/json\r\nContent-Length: " +
                                                std::to_string(body.size()) +
                                                "\r\nConnection: close\r\n\r\n" + body);
    EXPECT_EQ(resp.rfind("HTTP/1.1 400", 0), 0u) << resp;
    EXPECT_NE(resp.find("\"message\""), std::string::npos) << resp;
    body = R"({"Name": "x", "Subnet": 42})";
    resp = raw_http(d.socket(), "POST /v1/networks HTTP/1.1\r\nHost: cnetd\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    EXPECT_EQ(resp.rfind("HTTP/1.1 400", 0), 0u) << resp;
    EXPECT_NE(resp.find("Subnet"), std::string::npos) << resp;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    // The daemon is still serving.
    EXPECT_EQ(d.netctl({"network", "ls"}).status, 0);
}

TEST_F(Spine, InvalidConfigRefusesToStartAndTouchesNothing) {
    d.write_config("bip: 10.0.0.1/33\n");
    const std::string before = kernel_snapshot(d);
    CmdResult r = d.start_failing();
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("bip: \"10.0.0.1/33\": prefix length 33 > 32"), std::string::npos) << r.err;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_FALSE(link("docker0").is_object());
}

TEST_F(Spine, RestartAndKill9LeaveTrafficUndisturbed) {
    start();
    container("a");
    container("b");
    EchoServer server(ns("b"), "0.0.0.0", 7002);
    ASSERT_TRUE(server.ready());
    Stream stream(ns("a"), "172.17.0.3", 7002);  // a long-lived connection a -> b
    std::this_thread::sleep_for(300ms);
    const auto links_before = ip_json({"link", "show"});

    d.kill(SIGKILL);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(link("docker0").is_object());
    EXPECT_EQ(ports("docker0").size(), 2u);
    start();  // restart on the same state
    std::this_thread::sleep_for(300ms);
    d.kill(SIGTERM);  // a clean stop also leaves everything in place
    std::this_thread::sleep_for(300ms);
    start();
    std::this_thread::sleep_for(300ms);

    auto [round_trips, failures] = stream.finish();
    EXPECT_EQ(failures, 0);
    EXPECT_GT(round_trips, 10);
    EXPECT_EQ(ip_json({"link", "show"}).size(), links_before.size());
    EXPECT_EQ(ports("docker0").size(), 2u);
    EXPECT_TRUE(tcp_echo(ns("a"), "172.17.0.3", 7002));
    // The restarted daemon still knows both endpoints, and hands out a fresh address next.
    json net = d.netctl_json({"network", "inspect", "bridge"})[0];
    EXPECT_EQ(net["Containers"].size(), 2u);
    ok({"netns", "create", "c"});
    ok({"network", "connect", "bridge", "c"});
    EXPECT_EQ(inet(link("eth0", ns("c"))), std::vector<std::string>{"172.17.0.4/16"});
}

}  // namespace
