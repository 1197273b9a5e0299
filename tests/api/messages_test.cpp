// lib/api's messages and their codec (api/codec.hpp): what the clients send is what the daemon's
// strict parsers accept, unchanged; what the daemon answers reads back without loss; empty
// optional request fields are not sent (netctl's requests stay byte for byte what they were).
#include <gtest/gtest.h>

#include "api/codec.hpp"
#include "daemon/codec.hpp"

namespace cnetd {
namespace {

using api::json;

TEST(Messages, EmptyRequestFieldsAreNotSent) {
    api::CreateNetworkRequest create;
    create.name = "web";
    EXPECT_EQ(api::to_json(create), json({{"Name", "web"}}));
    api::ConnectRequest c;
    c.target = "a";
    EXPECT_EQ(api::to_json(c), json({{"Target", "a"}}));
    c.gw_priority = 0;  // given explicitly: sent, as netctl --gw-priority 0 did
    EXPECT_EQ(api::to_json(c), json({{"Target", "a"}, {"GwPriority", 0}}));
    EXPECT_EQ(api::to_json(api::CniKeyRequest{"pods", "c1", "eth0", ""}),
              json({{"Network", "pods"}, {"ContainerID", "c1"}, {"IfName", "eth0"}}));
}

TEST(Messages, RequestsRoundTripThroughTheStrictParsers) {
    api::CreateNetworkRequest create{"web",
                                     "10.1.0.0/24",
                                     "10.1.0.254",
                                     "10.1.0.128/25",
                                     true,
                                     "fd00:1::/64",
                                     "fd00:1::1",
                                     "fd00:1::/80",
                                     {{"host1", "10.1.0.5"}},
                                     {{"team", "a"}},
                                     {{"com.docker.network.bridge.name", "br-web"}},
                                     true,
                                     "overlay"};
    auto pc = api::parse_create_network(api::to_json(create).dump());
    ASSERT_TRUE(pc.ok()) << pc.error().message();
    EXPECT_EQ(api::to_json(*pc), api::to_json(create));

    api::ConnectRequest connect{"ns1",
                                "c1",
                                "10.1.0.9",
                                "fd00:1::9",
                                "02:42:00:00:00:09",
                                {"8080:80", "[::1]:53:53/udp"},
                                7,
                                {{"udp", "0.0.0.0", "8000-8002", "80-82"}, {"", "::", "", "90"}},
                                {"db", "primary"}};
    auto pn = api::parse_connect(api::to_json(connect).dump());
    ASSERT_TRUE(pn.ok()) << pn.error().message();
    EXPECT_EQ(pn->aliases, connect.aliases);
    EXPECT_EQ(api::to_json(*pn), api::to_json(connect));

    api::CniAddRequest add{
        {"pods", "10.88.0.0/16", "10.88.0.1", "10.88.1.0/24", "cni0", 1400, true, false},
        "c1",
        "eth0",
        "/run/netns/c1",
        "10.88.1.5",
        "02:00:00:00:00:05",
        {{8080, 80, "tcp", "127.0.0.1"}, {53, 53, "udp", ""}}};
    auto pa = api::parse_cni_add(api::to_json(add).dump());
    ASSERT_TRUE(pa.ok()) << pa.error().message();
    EXPECT_EQ(api::to_json(*pa), api::to_json(add));

    api::CniKeyRequest key{"pods", "c1", "eth0", "/run/netns/c1"};
    auto pk = api::parse_cni_key(api::to_json(key).dump(), true);
    ASSERT_TRUE(pk.ok()) << pk.error().message();
    EXPECT_EQ(api::to_json(*pk), api::to_json(key));
    auto missing = api::parse_cni_key(R"({"Network":"p","ContainerID":"c","IfName":"e"})", true);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().message(), "\"Netns\": required");

    api::CniGcRequest gc{"pods", {{"c1", "eth0"}, {"c2", "net1"}}};
    auto pg = api::parse_cni_gc(api::to_json(gc).dump());
    ASSERT_TRUE(pg.ok()) << pg.error().message();
    EXPECT_EQ(api::to_json(*pg), api::to_json(gc));
}

TEST(Messages, AnswersReadBackWithoutLoss) {
    core::Network n;
    n.id = std::string(64, 'a');
    n.name = "web";
    n.bridge = "br-web";
    n.subnet = Ipv4Cidr(Ipv4(0x0A010000), 24);
    n.gateway = Ipv4(0x0A010001);
    n.subnet6 = Ipv6Cidr::parse("fd00:1::/64").value();
    n.gateway6 = Ipv6::parse("fd00:1::1").value();
    n.aux_addresses = {{"h4", "10.1.0.5"}, {"h6", "fd00:1::5"}};
    n.labels = {{"team", "a"}};
    core::Endpoint ep;
    ep.id = std::string(64, 'b');
    ep.name = "c1";
    ep.address = Ipv4Cidr(Ipv4(0x0A010002), 24);
    core::PortBinding b;
    b.proto = core::Proto::Udp;
    b.host_ip = Ipv4(0);
    b.host = {8000, 8001};
    b.container = {80, 81};
    ep.ports.push_back(b);
    ep.aliases = {"db", "primary"};
    n.endpoints.put(ep);
    const auto roles = core::gateway_roles({n});
    const json inspect = daemon::network_to_json(n, &roles);
    EXPECT_EQ(inspect.value("EnableDNS", json()), true);
    EXPECT_EQ(api::to_json(api::read<api::Network>(inspect)), inspect);
    const json connected = daemon::endpoint_to_json(ep, "web");
    EXPECT_EQ(api::to_json(api::read<api::Endpoint>(connected)), connected);
    api::Endpoint with_dns = daemon::to_api(ep, "web");
    daemon::add_dns(with_dns, {"/run/cnetd/resolv/x/resolv.conf", {"127.0.0.11"}, {}, {"ndots:0"}});
    const json resolved = api::to_json(with_dns);
    ASSERT_TRUE(resolved.contains("Dns")) << resolved.dump();
    EXPECT_EQ(resolved["Dns"]["Search"], json::array());
    EXPECT_EQ(api::to_json(api::read<api::Endpoint>(resolved)), resolved);
    api::CniAttachment att_dns{with_dns, "web", "br-web", "10.1.0.0/24", "10.1.0.1", false, 1500};
    EXPECT_EQ(api::to_json(api::read<api::CniAttachment>(api::to_json(att_dns))),
              api::to_json(att_dns));
    const json ports = daemon::ports_to_json({n});
    EXPECT_EQ(api::to_json(api::read_list<api::PortRow>(ports)), ports);
    const json att = api::to_json(daemon::attachment_of(ep, {n}));
    EXPECT_EQ(att["Network"], "web");
    EXPECT_EQ(api::to_json(api::read<api::CniAttachment>(att)), att);

    api::Info info{"1.0",
                   "/run/netns",
                   "/var/lib/cnetd",
                   "/run/cnetd.sock",
                   2,
                   3,
                   "t0",
                   "t1",
                   {"bip: a -> b"},
                   "",
                   {"nftables", 4, "t2", {"w"}},
                   std::nullopt};
    EXPECT_EQ(api::to_json(api::read<api::Info>(api::to_json(info))), api::to_json(info));
    EXPECT_FALSE(api::to_json(info).contains("Cluster"));  // no `cluster:` config: no key
    info.cluster = api::ClusterStatus{"n1",
                                      "192.0.2.1",
                                      {"http://192.0.2.1:2379"},
                                      false,
                                      "connect: refused",
                                      "t3",
                                      0x694d7a2b1c3e4f10,
                                      -1,
                                      2,
                                      1,
                                      3};
    EXPECT_EQ(api::to_json(api::read<api::Info>(api::to_json(info))), api::to_json(info));
    EXPECT_EQ(api::to_json(info)["Cluster"]["LeaseTTL"], -1);
    api::NodeStatus node{"n2", "192.0.2.2", {"mesh 10.200.2.0/24"}, 3541, "t4", true};
    const json nodes = api::to_json(std::vector<api::NodeStatus>{node, {}});
    EXPECT_EQ(api::to_json(api::read_list<api::NodeStatus>(nodes)), nodes);
    EXPECT_EQ(nodes[1]["TTL"], -1);
    api::FirewallShow fw{"nftables", "inet cnetd", true, 1, "t", {"w"}, "table inet cnetd {}\n"};
    EXPECT_EQ(api::to_json(api::read<api::FirewallShow>(api::to_json(fw))), api::to_json(fw));
    api::CniStatus st{true, {"bridge cni0 is missing"}};
    EXPECT_EQ(api::to_json(api::read<api::CniStatus>(api::to_json(st))), api::to_json(st));
    api::DnsStatus dns{{"192.0.2.53", "fe80::1%eth0"}, "/run/systemd/resolve/resolv.conf", 2, 5, 1,
                       {10, 2, 7, 4, 1, 1, 3, 6, 9}};
    const json dns_json = api::to_json(dns);
    EXPECT_EQ(dns_json.at("Counters").at("TcpRejected"), 9);
    EXPECT_EQ(dns_json.at("Counters").at("QueriesUdp"), 10);
    EXPECT_EQ(dns_json.at("UpstreamsFile"), "/run/systemd/resolve/resolv.conf");
    EXPECT_EQ(api::to_json(api::read<api::DnsStatus>(dns_json)), dns_json);
    api::ErrorBody err{"no", "not-found", 3};
    EXPECT_EQ(api::to_json(api::read<api::ErrorBody>(api::to_json(err))), api::to_json(err));
}

// Clients read what they get, never throw: wrong types and missing fields keep the defaults.
TEST(Messages, LenientReadersTolerateForeignShapes) {
    auto n = api::read<api::Network>(json::parse(
        R"({"Name":1,"IPAM":{"Config":"x"},"Containers":[1],"Options":{"a":2,"b":"c"}})"));
    EXPECT_EQ(n.name, "");
    EXPECT_TRUE(n.ipam.empty());
    EXPECT_TRUE(n.containers.empty());
    EXPECT_EQ(n.options, (std::map<std::string, std::string>{{"b", "c"}}));
    EXPECT_TRUE(api::read_list<api::Netns>(json("not a list")).empty());
    EXPECT_EQ(api::read<api::Info>(json(nullptr)).networks, 0u);
    // An answer from a daemon without the embedded DNS (or a foreign shape): no facts, no throw.
    auto ep = api::read<api::Endpoint>(json::parse(R"({"Aliases":"db","Dns":["127.0.0.11"]})"));
    EXPECT_TRUE(ep.aliases.empty());
    EXPECT_FALSE(ep.dns.has_value());
    EXPECT_EQ(api::read<api::DnsStatus>(json::parse(R"({"Counters":[1],"Names":-1})")).names, 0u);
}

}  // namespace
}  // namespace cnetd
