// The embedded DNS's part of the control API (docs/dns.md, docs/api.md): connect "Aliases" in,
// "Aliases"/"ResolvConf"/"Dns" out (connect answer, inspect, CNI ADD), network "EnableDNS",
// GET /v1/dns; end to end through the real server, handlers and worker with FakeBackend, and
// through the real netctl and cnetd-cni binaries. With a real DnsServer (no sockets: nothing is
// synced to it, only its status and endpoint_dns are read) and without one (503, fields left out).
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "api_server.hpp"
#include "daemon/dns_server.hpp"
#include "proc.hpp"

namespace cnetd {
namespace {

using api::json;
using testing::bin;
using testing::Proc;

class DnsApi : public ApiServer {
protected:
    void create(const std::string& name, const std::string& subnet, json options = json::object()) {
        auto [status, body] = call("POST", "/v1/networks",
                                   {{"Name", name}, {"Subnet", subnet}, {"Options", options}});
        ASSERT_EQ(status, 201) << body.dump();
    }
    // A running embedded resolver reading `upstreams` from a host file of its own, its resolv.conf
    // files under dir_/resolv; handed to the handlers.
    void start_dns(const std::string& host_file_text) {
        std::ofstream(dir_ + "/host-resolv.conf") << host_file_text;
        daemon::DnsOptions o;
        o.resolv_dir = dir_ + "/resolv";
        o.host_resolv_conf = dir_ + "/host-resolv.conf";
        o.systemd_resolv_conf = dir_ + "/no-systemd-resolv.conf";
        dns_.emplace(o);
        handlers_->set_dns(&*dns_);
    }
    void TearDown() override {
        ApiServer::TearDown();  // the handlers borrow the resolver: stop them first
        dns_.reset();
    }
    std::optional<daemon::DnsServer> dns_;
};

TEST_F(DnsApi, WithoutTheResolverGetDnsIs503AndTheFieldsAreLeftOut) {
    auto [status, body] = call("GET", "/v1/dns", nullptr);
    EXPECT_EQ(status, 503);
    EXPECT_EQ(body, json({{"message", "embedded DNS not running"}, {"kind", "unavailable"}}));
    create("web", "10.1.0.0/24");
    auto [cs, ep] = call("POST", "/v1/networks/web/connect", {{"Target", "ns1"}});
    ASSERT_EQ(cs, 201) << ep.dump();
    EXPECT_EQ(ep["Aliases"], json::array());
    EXPECT_FALSE(ep.contains("ResolvConf")) << ep.dump();
    EXPECT_FALSE(ep.contains("Dns")) << ep.dump();
}

TEST_F(DnsApi, AliasesGoInThroughConnectAndShowInTheAnswerAndInspect) {
    create("web", "10.1.0.0/24");
    auto [status, ep] = call("POST", "/v1/networks/web/connect",
                             {{"Target", "ns1"}, {"Name", "db1"}, {"Aliases", {"db", "primary"}}});
    ASSERT_EQ(status, 201) << ep.dump();
    EXPECT_EQ(ep["Aliases"], json::array({"db", "primary"}));
    EXPECT_EQ(ep["Network"], "web");
    auto [is, net] = call("GET", "/v1/networks/web", nullptr);
    ASSERT_EQ(is, 200);
    EXPECT_EQ(net["EnableDNS"], true);
    EXPECT_EQ(net["Containers"][ep["EndpointID"].get<std::string>()]["Aliases"],
              json::array({"db", "primary"}));
    auto [ds, def] = call("GET", "/v1/networks/bridge", nullptr);
    EXPECT_EQ(def["EnableDNS"], false);  // the default network never resolves names
}

TEST_F(DnsApi, EnableDnsFalseIsShownAsCreated) {
    create("quiet", "10.2.0.0/24", {{"com.docker.network.enable_dns", "false"}});
    auto [status, net] = call("GET", "/v1/networks/quiet", nullptr);
    ASSERT_EQ(status, 200);
    EXPECT_EQ(net["EnableDNS"], false);
    EXPECT_EQ(net["Options"]["com.docker.network.enable_dns"], "false");
}

TEST_F(DnsApi, BadAliasesGet400NamingTheFieldAndChangeNothing) {
    create("web", "10.1.0.0/24");
    for (auto [aliases, message] :
         {std::pair{json("db"), "\"Aliases\": expected an array of strings, got string"},
          {json::array({"db", 7}), "\"Aliases\"[1]: expected a string, got number"},
          {json::object({{"db", true}}),
           "\"Aliases\": expected an array of strings, got object"}}) {
        auto [status, body] =
            call("POST", "/v1/networks/web/connect", {{"Target", "ns1"}, {"Aliases", aliases}});
        EXPECT_EQ(status, 400) << body.dump();
        EXPECT_EQ(body["message"], message);
        EXPECT_EQ(body["kind"], "invalid-argument");
    }
    auto [is, net] = call("GET", "/v1/networks/web", nullptr);
    EXPECT_EQ(net["Containers"].size(), 0u) << net.dump();
}

TEST_F(DnsApi, WithTheResolverConnectInspectAndCniAddCarryTheResolvConf) {
    start_dns("search corp.example\nnameserver 192.0.2.53\noptions edns0\n");
    create("web", "10.1.0.0/24");
    auto [status, ep] = call("POST", "/v1/networks/web/connect", {{"Target", "ns1"}});
    ASSERT_EQ(status, 201) << ep.dump();
    const std::string id = ep["EndpointID"];
    const std::string path = dir_ + "/resolv/" + id + "/resolv.conf";
    EXPECT_EQ(ep["ResolvConf"], path);
    EXPECT_EQ(ep["Dns"]["Nameservers"], json::array({"127.0.0.11"})) << ep.dump();
    EXPECT_EQ(ep["Dns"]["Search"], json::array({"corp.example"})) << ep.dump();
    auto [is, net] = call("GET", "/v1/networks/web", nullptr);
    EXPECT_EQ(net["Containers"][id]["ResolvConf"], path);
    EXPECT_EQ(net["Containers"][id]["Dns"], ep["Dns"]);
    // The default network: no resolver, the host's servers.
    auto [bs, def] = call("POST", "/v1/networks/bridge/connect", {{"Target", "ns2"}});
    ASSERT_EQ(bs, 201) << def.dump();
    EXPECT_EQ(def["Dns"]["Nameservers"], json::array({"192.0.2.53"})) << def.dump();

    const std::string netns = netns_dir_ + "/pod1";
    ::close(::open(netns.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    auto [as, att] = call("POST", "/v1/cni/add",
                          {{"Network", {{"Name", "pods"}, {"Subnet", "10.88.0.0/16"}}},
                           {"ContainerID", "c0ffee"},
                           {"IfName", "eth0"},
                           {"Netns", netns}});
    ASSERT_EQ(as, 201) << att.dump();
    EXPECT_EQ(att["Endpoint"]["Dns"]["Nameservers"], json::array({"127.0.0.11"})) << att.dump();
}

TEST_F(DnsApi, WithTheResolverGetDnsAnswersItsStatus) {
    start_dns("nameserver 192.0.2.53\nnameserver 198.51.100.53\n");
    auto [status, body] = call("GET", "/v1/dns", nullptr);
    ASSERT_EQ(status, 200) << body.dump();
    EXPECT_EQ(body["Upstreams"], json::array({"192.0.2.53", "198.51.100.53"}));
    EXPECT_EQ(body["UpstreamsFile"], dir_ + "/host-resolv.conf");
    EXPECT_EQ(body["Sandboxes"], 0);
    EXPECT_EQ(body["Counters"]["QueriesUdp"], 0);
    EXPECT_EQ(body["Counters"].size(), 9u) << body.dump();
}

// ---- the binaries ----

TEST_F(DnsApi, NetctlConnectAliasIsRepeatable) {
    if (bin("NETCTL_BIN").empty()) GTEST_SKIP() << "NETCTL_BIN not set (run through meson)";
    create("web", "10.1.0.0/24");
    Proc r = netctl({"network", "connect", "--alias", "db", "web", "ns1", "--alias", "primary"});
    ASSERT_EQ(r.status, 0) << r.err;
    Proc j = netctl({"--json", "network", "connect", "web", "ns2", "--alias", "cache"});
    ASSERT_EQ(j.status, 0) << j.err;
    EXPECT_EQ(json::parse(j.out)["Aliases"], json::array({"cache"})) << j.out;
    Proc insp = netctl({"network", "inspect", "web"});
    ASSERT_EQ(insp.status, 0) << insp.err;
    const json nets = json::parse(insp.out);
    std::vector<json> aliases;
    for (const auto& [id, ep] : nets[0]["Containers"].items())
        aliases.push_back(ep.value("Aliases", json()));
    EXPECT_EQ(aliases.size(), 2u);
    EXPECT_NE(std::find(aliases.begin(), aliases.end(), json::array({"db", "primary"})),
              aliases.end())
        << insp.out;
    Proc create_off = netctl({"network", "create", "quiet", "--subnet", "10.3.0.0/24", "-o",
                              "com.docker.network.enable_dns=false"});
    ASSERT_EQ(create_off.status, 0) << create_off.err;
    auto [s, quiet] = call("GET", "/v1/networks/quiet", nullptr);
    EXPECT_EQ(quiet["EnableDNS"], false);
}

TEST_F(DnsApi, NetctlDnsSaysWhenTheResolverIsNotRunning) {
    if (bin("NETCTL_BIN").empty()) GTEST_SKIP() << "NETCTL_BIN not set (run through meson)";
    Proc r = netctl({"dns"});
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(r.err, "netctl: embedded DNS not running\n");
}

TEST_F(DnsApi, NetctlDnsPrintsUpstreamsAndCounters) {
    if (bin("NETCTL_BIN").empty()) GTEST_SKIP() << "NETCTL_BIN not set (run through meson)";
    start_dns("nameserver 192.0.2.53\n");
    Proc r = netctl({"dns"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("upstreams   192.0.2.53 (from " + dir_ + "/host-resolv.conf)"),
              std::string::npos)
        << r.out;
    for (const char* row :
         {"sandboxes   0\n", "queries-udp         0\n", "tcp-rejected        0\n"})
        EXPECT_NE(r.out.find(row), std::string::npos) << row << " in\n" << r.out;
    Proc j = netctl({"--json", "dns"});
    ASSERT_EQ(j.status, 0) << j.err;
    EXPECT_EQ(json::parse(j.out)["Upstreams"], json::array({"192.0.2.53"})) << j.out;
}

// cnetd-cni ADD's result "dns": the daemon's resolver facts, unless the conf sets "dns".
TEST_F(DnsApi, CniResultDnsComesFromTheAnswer) {
    if (bin("CNETD_CNI_BIN").empty()) GTEST_SKIP() << "CNETD_CNI_BIN not set (run through meson)";
    start_dns("search corp.example\nnameserver 192.0.2.53\n");
    const std::string netns = netns_dir_ + "/pod1";
    ::close(::open(netns.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    auto add = [&](const std::string& cid, const std::string& extra) {
        const std::string conf = R"({"cniVersion":"1.1.0","name":"pods","type":"cnetd-cni",
            "cnetdSocket":")" + sock_ +
                                 R"(","ipam":{"type":"host-local","subnet":"10.88.0.0/16"})" +
                                 extra + "}";
        Proc r = testing::run(dir_, {bin("CNETD_CNI_BIN")},
                              {"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + cid, "CNI_IFNAME=eth0",
                               "CNI_NETNS=" + netns, "CNI_PATH=/nonexistent"},
                              conf);
        EXPECT_EQ(r.status, 0) << r.out << r.err;
        return json::parse(r.out, nullptr, false);
    };
    json res = add("c1", "");
    EXPECT_EQ(res["dns"]["nameservers"], json::array({"127.0.0.11"})) << res.dump();
    EXPECT_EQ(res["dns"]["search"], json::array({"corp.example"})) << res.dump();
    json own = add("c2", R"(,"dns":{"nameservers":["10.96.0.10"]})");
    EXPECT_EQ(own["dns"], json({{"nameservers", {"10.96.0.10"}}})) << own.dump();
}

}  // namespace
}  // namespace cnetd
