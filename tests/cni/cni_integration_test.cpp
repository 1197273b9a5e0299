// cnetd-cni driven by real CNI clients: a libcni client (tests/cni/libcni-client, what CRI-O,
// Podman and Nomad use) and a go-cni client (tests/cni/containerd-client, containerd's pod sandbox
// calls), against the real cnetd, inside the test's private namespaces (tests/meson.build wraps the
// binary in unshare; each test unshares a fresh netns). Assertions read the kernel (ip -j in the
// container's netns), send traffic (ping to the gateway, a published port answering) and check
// the CNI answers (codes, results).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../integration/harness.hpp"

namespace cnetd::it {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string env(const char* k) {
    const char* v = std::getenv(k);
    return v ? v : "";
}

class Cni : public ::testing::Test {
protected:
    void SetUp() override {
        if (env("CNI_LIBCNI_CLIENT").empty() || !fs::exists(env("CNI_LIBCNI_CLIENT")))
            GTEST_SKIP() << "the Go clients were not built (golang-go missing)";
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).status, 0);
        plugins_ = d.dir() + "/plugins";
        confdir_ = d.dir() + "/net.d";
        cache_ = d.dir() + "/cache";
        fs::create_directories(plugins_);
        fs::create_directories(confdir_);
        fs::create_directories(d.netns_dir());
        fs::create_symlink(env("CNETD_CNI_BIN"), plugins_ + "/cnetd-cni");
        for (const char* p : {"loopback", "tuning"})
            if (fs::exists(std::string("/usr/lib/cni/") + p))
                fs::create_symlink(std::string("/usr/lib/cni/") + p, plugins_ + "/" + p);
        setenv("CNI_PATH", plugins_.c_str(), 1);
        setenv("CNI_CACHE_DIR", cache_.c_str(), 1);
    }

    // The plugin entry cnetd-cni gets: a CRI-O style bridge entry with type replaced.
    json entry(const std::string& subnet = "10.88.0.0/16") const {
        return {{"type", "cnetd-cni"},
                {"bridge", "cni0"},
                {"isGateway", true},
                {"ipMasq", true},
                {"hairpinMode", true},
                {"cnetdSocket", d.socket()},
                {"cnetdTimeout", 2},
                {"capabilities", {{"portMappings", true}, {"ips", true}, {"mac", true}}},
                {"ipam",
                 {{"type", "host-local"},
                  {"routes", {{{"dst", "0.0.0.0/0"}}}},
                  {"ranges", {{{{"subnet", subnet}}}}}}}};
    }
    std::string conflist(const std::string& version, const json& plugins,
                         const std::string& file = "10-pods.conflist") const {
        json l = {{"cniVersion", version}, {"name", "pods"}, {"plugins", plugins}};
        std::string path = confdir_ + "/" + file;
        std::ofstream(path) << l.dump(2);
        return path;
    }
    std::string netns(const std::string& name) {
        CmdResult r = d.netctl({"netns", "create", name});
        EXPECT_EQ(r.status, 0) << r.err;
        return d.netns_dir() + "/" + name;
    }
    CmdResult client(std::vector<std::string> args) const {
        args.insert(args.begin(), env("CNI_LIBCNI_CLIENT"));
        return run(args, std::chrono::seconds(60));
    }
    // cnetd-cni executed directly, as a runtime does: env + stdin.
    CmdResult plugin(const std::map<std::string, std::string>& e, const json& conf) const {
        std::string in = d.dir() + "/stdin.json";
        std::ofstream(in) << conf.dump();
        std::vector<std::string> argv{"env", "-i"};
        for (const auto& [k, v] : e) argv.push_back(k + "=" + v);
        argv.insert(argv.end(), {"sh", "-c", "exec \"$0\" < \"$1\"", env("CNETD_CNI_BIN"), in});
        return run(argv, std::chrono::seconds(30));
    }
    // A CNI ADD of eth0 executed directly (network "pods", 1.0.0), as a runtime's retry does.
    CmdResult add_direct(const std::string& cid, const std::string& ns) const {
        json conf = entry();
        conf["name"] = "pods";
        conf["cniVersion"] = "1.0.0";
        return plugin({{"CNI_COMMAND", "ADD"},
                       {"CNI_CONTAINERID", cid},
                       {"CNI_NETNS", ns},
                       {"CNI_IFNAME", "eth0"},
                       {"CNI_PATH", plugins_}},
                      conf);
    }
    void start() {
        std::string log;
        ASSERT_TRUE(d.start(&log)) << log;
    }
    // The IPv4 addresses on `ifname` in `ns` ("" if the interface does not exist).
    static std::vector<std::string> addrs(const std::string& ns, const std::string& ifname) {
        std::vector<std::string> out;
        json j = ip_json({"-4", "addr", "show"}, ns);
        for (const auto& l : j)
            if (l.value("ifname", "") == ifname)
                for (const auto& a : l["addr_info"])
                    out.push_back(a["local"].get<std::string>() + "/" +
                                  std::to_string(a["prefixlen"].get<int>()));
        return out;
    }
    static bool ping(const std::string& ns, const std::string& addr) {
        return run({"nsenter", "--net=" + ns, "ping", "-c", "1", "-W", "2", addr}).status == 0;
    }

    Daemon d;
    std::string plugins_, confdir_, cache_;
};

TEST_F(Cni, LibcniAddCheckDelAgainstTheKernel) {
    start();
    std::string list = conflist("1.0.0", json::array({entry()}));
    std::string a = netns("a");
    CmdResult r = client({"add", list, "ctr-a", a, "eth0", "K8S_POD_NAME=a", "IgnoreUnknown=1"});
    ASSERT_EQ(r.status, 0) << r.err << r.out << d.log();
    json res = json::parse(r.out);
    ASSERT_EQ(res["ips"].size(), 1u) << r.out;
    EXPECT_EQ(res["ips"][0]["address"], "10.88.0.2/16");
    EXPECT_EQ(res["ips"][0]["gateway"], "10.88.0.1");
    const json& itf = res["interfaces"][res["ips"][0]["interface"].get<int>()];
    EXPECT_EQ(itf["name"], "eth0");
    EXPECT_EQ(itf["sandbox"], a);
    EXPECT_EQ(res["routes"][0], json({{"dst", "0.0.0.0/0"}, {"gw", "10.88.0.1"}}));
    // The result's dns is the embedded resolver (docs/dns.md), which answers in the pod's netns:
    // the attachment's name (its container id) resolves to its address.
    EXPECT_EQ(res["dns"]["nameservers"], json::array({"127.0.0.11"})) << r.out;
    EXPECT_EQ(
        run({"nsenter", "--net=" + a, "dig", "+short", "+time=2", "@127.0.0.11", "ctr-a"}).out,
        "10.88.0.2\n");
    // Kernel: the address on eth0 in the netns, the bridge cni0 carrying the gateway, traffic.
    EXPECT_EQ(addrs(a, "eth0"), std::vector<std::string>{"10.88.0.2/16"});
    EXPECT_EQ(addrs("", "cni0"), std::vector<std::string>{"10.88.0.1/16"});
    EXPECT_TRUE(ping(a, "10.88.0.1"));
    // The MAC in the result is the interface's.
    json link = ip_json({"link", "show", "eth0"}, a);
    EXPECT_EQ(link[0]["address"], itf["mac"]);

    r = client({"check", list, "ctr-a", a, "eth0"});
    EXPECT_EQ(r.status, 0) << r.err;
    // CHECK sees a missing address.
    ASSERT_EQ(run({"nsenter", "--net=" + a, "ip", "addr", "flush", "dev", "eth0"}).status, 0);
    r = client({"check", list, "ctr-a", a, "eth0"});
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("has address (none), expected 10.88.0.2"), std::string::npos) << r.err;
    // A second ADD of the same attachment is refused.
    r = plugin({{"CNI_COMMAND", "ADD"},
                {"CNI_CONTAINERID", "ctr-a"},
                {"CNI_NETNS", a},
                {"CNI_IFNAME", "eth0"},
                {"CNI_PATH", plugins_}},
               [&] {
                   json c = entry();
                   c["name"] = "pods";
                   c["cniVersion"] = "1.0.0";
                   return c;
               }());
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(json::parse(r.out)["code"], 7) << r.out;

    r = client({"del", list, "ctr-a", a, "eth0"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(addrs(a, "eth0").empty());
    // Idempotent: DEL again (libcni's cache is gone now: no prevResult).
    r = client({"del", list, "ctr-a", a, "eth0"});
    EXPECT_EQ(r.status, 0) << r.err;
    // The address was released: the next container gets it.
    std::string b = netns("b");
    r = client({"add", list, "ctr-b", b, "eth0"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["ips"][0]["address"], "10.88.0.2/16");
}

TEST_F(Cni, StaticIpAndMacFromArgsAndCapabilities) {
    start();
    std::string list = conflist("1.0.0", json::array({entry()}));
    std::string a = netns("a"), b = netns("b");
    CmdResult r = client({"add", list, "ctr-a", a, "eth0", "IP=10.88.7.7"});  // Podman's --ip
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(addrs(a, "eth0"), std::vector<std::string>{"10.88.7.7/16"});
    r = client({"add", list, "ctr-b", b, "eth0", "ips=10.88.8.8/16", "mac=02:42:0a:58:08:08"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(addrs(b, "eth0"), std::vector<std::string>{"10.88.8.8/16"});
    EXPECT_EQ(ip_json({"link", "show", "eth0"}, b)[0]["address"], "02:42:0a:58:08:08");
}

TEST_F(Cni, GcRemovesAttachmentsNotListedAndStatusAnswers) {
    start();
    std::string list = conflist("1.0.0", json::array({entry()}));
    std::string a = netns("a"), b = netns("b"), c = netns("c");
    for (auto [id, ns] : {std::pair{"ctr-a", a}, {"ctr-b", b}, {"ctr-c", c}}) {
        CmdResult r = client({"add", list, id, ns, "eth0"});
        ASSERT_EQ(r.status, 0) << r.err;
    }
    // A container that died without DEL and whose cache entry is gone too (reboot): only the
    // plugin's GC can find it.
    for (const auto& f : fs::directory_iterator(cache_ + "/results"))
        if (f.path().filename().string().find("ctr-c") != std::string::npos) fs::remove(f.path());
    CmdResult r = client({"gc", list, "ctr-a/eth0"});
    ASSERT_EQ(r.status, 0) << r.err << d.log();
    EXPECT_EQ(addrs(a, "eth0").size(), 1u);
    EXPECT_TRUE(addrs(b, "eth0").empty());  // DEL synthesised from the cache
    EXPECT_TRUE(addrs(c, "eth0").empty());  // the plugin's GC
    json net = d.netctl_json({"network", "inspect", "pods"});
    if (net.is_array()) net = net[0];
    EXPECT_EQ(net["Containers"].size(), 1u) << net.dump();
    // The older key works the same.
    json conf = entry();
    conf["name"] = "pods";
    conf["cniVersion"] = "1.1.0";
    conf["cni.dev/attachments"] = json::array();
    r = plugin({{"CNI_COMMAND", "GC"}, {"CNI_PATH", plugins_}}, conf);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(addrs(a, "eth0").empty());

    r = client({"status", list});
    EXPECT_EQ(r.status, 0) << r.err;
    // Degraded: the bridge is gone.
    ASSERT_EQ(run({"ip", "link", "del", "cni0"}).status, 0);
    r = client({"status", list});
    EXPECT_EQ(r.status, 51) << r.err;
    d.kill(SIGTERM);
    auto t0 = std::chrono::steady_clock::now();
    r = client({"status", list});
    EXPECT_EQ(r.status, 50) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(Cni, ChainPassesAndExtendsPrevResultInEveryVersion) {
    start();
    if (!fs::exists(plugins_ + "/loopback") || !fs::exists(plugins_ + "/tuning"))
        GTEST_SKIP() << "containernetworking-plugins not installed";
    int n = 0;
    for (const char* v : {"0.3.1", "0.4.0", "1.0.0"}) {
        // loopback's result comes in as prevResult; tuning after us gets ours.
        std::string list = conflist(
            v, json::array({{{"type", "loopback"}}, entry(), {{"type", "tuning"}, {"mtu", 1400}}}));
        std::string ns = netns(fmt::format("ch{}", n++));
        CmdResult r = client({"add", list, "chain-" + std::to_string(n), ns, "eth0"});
        ASSERT_EQ(r.status, 0) << v << ": " << r.err << d.log();
        json res = json::parse(r.out);
        ASSERT_EQ(res["interfaces"].size(), 4u) << v << ": " << r.out;
        EXPECT_EQ(res["interfaces"][0]["name"], "lo") << r.out;
        EXPECT_EQ(res["interfaces"][3]["name"], "eth0") << r.out;
        bool found = false;
        for (const auto& ip : res["ips"]) {
            if (ip["address"].get<std::string>().rfind("10.88.", 0) == 0) {
                EXPECT_EQ(ip["interface"], 3) << r.out;
                found = true;
            }
        }
        EXPECT_TRUE(found) << r.out;
        // tuning ran after us on our interface.
        EXPECT_EQ(ip_json({"link", "show", "eth0"}, ns)[0]["mtu"], 1400) << v;
        if (std::string(v) != "0.3.1") {
            r = client({"check", list, "chain-" + std::to_string(n), ns, "eth0"});
            EXPECT_EQ(r.status, 0) << v << ": " << r.err;
        }
        r = client({"del", list, "chain-" + std::to_string(n), ns, "eth0"});
        EXPECT_EQ(r.status, 0) << v << ": " << r.err;
        EXPECT_TRUE(addrs(ns, "eth0").empty());
    }
}

TEST_F(Cni, ContainerdPodSandboxWithPublishedPort) {
    if (env("CNI_CONTAINERD_CLIENT").empty()) GTEST_SKIP() << "go-cni client not built";
    if (!fs::exists(plugins_ + "/loopback")) GTEST_SKIP() << "loopback plugin not installed";
    // go-cni keeps libcni's cache in /var/lib/cni (no option for another place): a tmpfs of this
    // private mount namespace, so the test leaves nothing on the host's disk.
    ASSERT_EQ(mount("tmpfs", "/var/lib", "tmpfs", 0, nullptr), 0) << strerror(errno);
    start();
    conflist("1.0.0", json::array({entry()}));
    std::string ns = netns("pod1");
    CmdResult r =
        run({env("CNI_CONTAINERD_CLIENT"), "setup", confdir_, "sandbox1", ns, "web", "8080:80"},
            std::chrono::seconds(60));
    ASSERT_EQ(r.status, 0) << r.err << d.log();
    json res = json::parse(r.out);
    EXPECT_EQ(res["eth0"], "10.88.0.2") << r.out;  // the pod IP as containerd reads it
    // loopback ran first: lo is up in the pod.
    EXPECT_EQ(ip_json({"link", "show", "lo"}, ns)[0]["operstate"], "UNKNOWN");
    EXPECT_EQ(addrs(ns, "lo"), std::vector<std::string>{"127.0.0.1/8"});
    // The published port answers from the host side (via the host's address on the bridge).
    EchoServer srv(ns, "0.0.0.0", 80);
    ASSERT_TRUE(srv.ready());
    EXPECT_TRUE(tcp_echo("", "10.88.0.1", 8080));
    json ports = d.netctl_json({"port", "ls"});
    EXPECT_NE(ports.dump().find("\"8080\""), std::string::npos) << ports.dump();
    r = run({env("CNI_CONTAINERD_CLIENT"), "remove", confdir_, "sandbox1", ns, "web", "8080:80"},
            std::chrono::seconds(60));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(addrs(ns, "eth0").empty());
    EXPECT_FALSE(tcp_echo("", "10.88.0.1", 8080, std::chrono::milliseconds(500)));
}

TEST_F(Cni, DaemonDownAddIsCode11WithinTheWaitAndLeavesNothing) {
    // No daemon: ADD waits cnetdTimeout (0.5 s) and answers 11.
    json conf = entry();
    conf["name"] = "pods";
    conf["cniVersion"] = "1.1.0";
    conf["cnetdTimeout"] = 0.5;
    std::string before = kernel_snapshot(d);
    auto t0 = std::chrono::steady_clock::now();
    CmdResult r = plugin({{"CNI_COMMAND", "ADD"},
                          {"CNI_CONTAINERID", "x1"},
                          {"CNI_NETNS", "/proc/1/ns/net"},
                          {"CNI_IFNAME", "eth0"},
                          {"CNI_PATH", plugins_}},
                         conf);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.status, 1);
    json e = json::parse(r.out);
    EXPECT_EQ(e["code"], 11) << r.out;
    EXPECT_EQ(e["cniVersion"], "1.1.0");
    EXPECT_NE(e["msg"].get<std::string>().find("not reachable"), std::string::npos);
    EXPECT_GE(took, std::chrono::milliseconds(450));
    EXPECT_LT(took, std::chrono::seconds(3));
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    // The daemon comes up: no half-made network from the failed call.
    start();
    EXPECT_EQ(d.netctl_json({"network", "ls"}).dump().find("pods"), std::string::npos);
}

TEST_F(Cni, BadConfigAndConflictingNetworkChangeNothing) {
    start();
    ASSERT_EQ(d.netctl({"network", "create", "pods", "--subnet", "10.77.0.0/24"}).status, 0);
    std::string a = netns("a");
    std::map<std::string, std::string> e = {{"CNI_COMMAND", "ADD"},
                                            {"CNI_CONTAINERID", "x1"},
                                            {"CNI_NETNS", a},
                                            {"CNI_IFNAME", "eth0"},
                                            {"CNI_PATH", plugins_}};
    json conf = entry();
    conf["name"] = "pods";
    conf["cniVersion"] = "1.0.0";
    std::string before = kernel_snapshot(d);
    CmdResult r = plugin(e, conf);
    EXPECT_EQ(r.status, 1);
    json err = json::parse(r.out);
    EXPECT_EQ(err["code"], 7) << r.out;
    EXPECT_NE(
        err["msg"].get<std::string>().find(
            "network pods exists with subnet 10.77.0.0/24, the CNI config asks for 10.88.0.0/16"),
        std::string::npos)
        << r.out;
    conf["vlan"] = 100;
    r = plugin(e, conf);
    err = json::parse(r.out);
    EXPECT_EQ(err["code"], 2) << r.out;
    EXPECT_EQ(err["msg"].get<std::string>().rfind("vlan: 100: ", 0), 0u) << r.out;
    conf.erase("vlan");
    e["CNI_IFNAME"] = "bad/name";
    r = plugin(e, conf);
    EXPECT_EQ(json::parse(r.out)["code"], 4) << r.out;
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    // VERSION lists every version.
    r = plugin({{"CNI_COMMAND", "VERSION"}}, json{{"cniVersion", "0.4.0"}});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(json::parse(r.out)["supportedVersions"].size(), 7u) << r.out;
}

TEST_F(Cni, DelIsIdempotentWhenTheNetnsVanished) {
    start();
    std::string list = conflist("1.0.0", json::array({entry()}));
    std::string a = netns("a");
    CmdResult r = client({"add", list, "ctr-a", a, "eth0"});
    ASSERT_EQ(r.status, 0) << r.err;
    // The container died: its namespace is gone (and the veth pair with it).
    ASSERT_EQ(umount2(a.c_str(), MNT_DETACH), 0) << strerror(errno);
    fs::remove(a);
    json conf = entry();
    conf["name"] = "pods";
    conf["cniVersion"] = "1.0.0";
    // containerd's DEL after the fact: empty CNI_NETNS, no prevResult.
    for (int i = 0; i < 2; ++i) {
        r = plugin({{"CNI_COMMAND", "DEL"},
                    {"CNI_CONTAINERID", "ctr-a"},
                    {"CNI_NETNS", ""},
                    {"CNI_IFNAME", "eth0"},
                    {"CNI_PATH", plugins_}},
                   conf);
        EXPECT_EQ(r.status, 0) << r.out << d.log();
    }
    // The address was released even though the netns was gone.
    std::string b = netns("b");
    r = client({"add", list, "ctr-b", b, "eth0"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["ips"][0]["address"], "10.88.0.2/16");
}

TEST_F(Cni, HundredParallelAddsGetDistinctAddresses) {
    start();
    // The whole call's deadline covers the wait behind 99 others (ASan builds: ~30 s in all).
    json e = entry();
    e["cnetdTimeout"] = 120;
    std::string list = conflist("1.0.0", json::array({e}));
    const int n = 100;
    for (int i = 0; i < n; ++i) netns(fmt::format("p{}", i));
    // 100 libcni clients at once, as a node starting 100 pods would.
    std::string script = fmt::format(
        // The pids are collected as they start: `jobs -p` in a command substitution runs in a
        // subshell that has no jobs, and the script would not wait at all.
        "pids=; for i in $(seq 0 {}); do \"$0\" add \"$1\" ctr-$i \"$2\"/p$i eth0 > \"$3\"/out.$i "
        "2> \"$3\"/err.$i & pids=\"$pids $!\"; done; fail=0; for j in $pids; do wait $j || fail=1; "
        "done; exit $fail",
        n - 1);
    auto t0 = std::chrono::steady_clock::now();
    CmdResult r = run({"sh", "-c", script, env("CNI_LIBCNI_CLIENT"), list, d.netns_dir(), d.dir()},
                      std::chrono::seconds(120));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    ASSERT_EQ(r.status, 0) << r.err << d.log();
    std::set<std::string> ips;
    for (int i = 0; i < n; ++i) {
        std::ifstream in(fmt::format("{}/out.{}", d.dir(), i));
        std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        json res = json::parse(out, nullptr, false);
        ASSERT_FALSE(res.is_discarded()) << i << ": " << out;
        std::string ip = res["ips"][0]["address"];
        ips.insert(ip);
        // The kernel agrees with the result.
        EXPECT_EQ(addrs(d.netns_dir() + fmt::format("/p{}", i), "eth0"),
                  std::vector<std::string>{ip});
    }
    EXPECT_EQ(ips.size(), static_cast<size_t>(n));
    json br = ip_json({"link", "show", "master", "cni0"});
    EXPECT_EQ(br.size(), static_cast<size_t>(n));
    RecordProperty("parallel_add_100_ms", static_cast<int>(ms.count()));
    std::printf("100 parallel libcni ADDs: %lld ms\n", static_cast<long long>(ms.count()));
}

// Runtimes retry ADD (a timeout, a kubelet restart): an ADD of an attachment that exists in the
// same namespace and is intact in the kernel answers with that attachment again (issue 15 item
// 10), instead of code 7 "already has eth0"; in another namespace it stays code 7.
TEST_F(Cni, RetriedAddOfARecordedAttachmentReturnsIt) {
    start();
    std::string a = netns("a"), b = netns("b");
    CmdResult first = add_direct("ctr-a", a);
    ASSERT_EQ(first.status, 0) << first.out << d.log();
    CmdResult again = add_direct("ctr-a", a);
    ASSERT_EQ(again.status, 0) << again.out << d.log();
    json r1 = json::parse(first.out), r2 = json::parse(again.out);
    EXPECT_EQ(r2["ips"], r1["ips"]);
    EXPECT_EQ(r2["interfaces"], r1["interfaces"]);
    // The kernel: still one eth0 with the one address, one port on the bridge.
    EXPECT_EQ(addrs(a, "eth0"), std::vector<std::string>{"10.88.0.2/16"});
    EXPECT_EQ(ip_json({"link", "show", "master", "cni0"}).size(), 1u);
    EXPECT_EQ(ip_json({"link", "show"}, a).size(), 2u);  // lo, eth0
    EXPECT_TRUE(ping(a, "10.88.0.1"));
    // The same key from another namespace is not a retry.
    CmdResult other = add_direct("ctr-a", b);
    EXPECT_EQ(other.status, 1);
    EXPECT_EQ(json::parse(other.out)["code"], 7) << other.out;
    EXPECT_TRUE(addrs(b, "eth0").empty());
}

// The daemon dies in the middle of an ADD, after the kernel steps: before the attachment was saved
// (store.journal.append.before: the restart's reconciliation deletes the unowned veth pair) or
// after (store.journal.append.after: recorded, but the plugin never got the answer). Either way
// the runtime's retry after the restart succeeds, with one eth0 carrying one address and nothing
// left of the interrupted attempt.
TEST_F(Cni, AddRetriedAfterADaemonCrashMidAddSucceeds) {
    start();
    std::string a = netns("a");
    ASSERT_EQ(add_direct("ctr-a", a).status, 0) << d.log();  // the network exists from here on
    int n = 0;
    for (const char* point : {"store.journal.append.before", "store.journal.append.after"}) {
        SCOPED_TRACE(point);
        const std::string cid = fmt::format("ctr-{}", n), ns = netns(fmt::format("b{}", n));
        ++n;
        d.kill(SIGTERM);
        setenv("CNETD_FAILPOINTS", fmt::format("{}=kill", point).c_str(), 1);
        start();
        unsetenv("CNETD_FAILPOINTS");
        CmdResult crashed = add_direct(cid, ns);
        EXPECT_EQ(crashed.status, 1) << crashed.out;
        d.kill(SIGKILL);  // reaps the daemon the failpoint killed
        // The interrupted ADD made its veth pair: eth0 is in the namespace.
        EXPECT_EQ(ip_json({"link", "show", "eth0"}, ns).size(), 1u);
        start();
        CmdResult retried = add_direct(cid, ns);
        ASSERT_EQ(retried.status, 0) << retried.out << d.log();
        std::string ip = json::parse(retried.out)["ips"][0]["address"];
        EXPECT_EQ(addrs(ns, "eth0"), std::vector<std::string>{ip});
        EXPECT_EQ(ip_json({"link", "show"}, ns).size(), 2u);  // lo, eth0
        EXPECT_EQ(ip_json({"link", "show", "master", "cni0"}).size(), 1u + n);
        EXPECT_TRUE(ping(ns, "10.88.0.1"));
    }
    EXPECT_TRUE(ping(a, "10.88.0.1"));
}

}  // namespace
}  // namespace cnetd::it
