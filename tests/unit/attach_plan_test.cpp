// The pure attach plan (core/attach_plan.hpp): a connect request checked against its network with
// no kernel and no state. Table-driven: every refusal names the field and the value; every one of
// them, sent through Engine::connect, makes no kernel call and asks the firewall nothing.
#include <gtest/gtest.h>

#include <functional>

#include "core/attach_plan.hpp"
#include "core/engine.hpp"
#include "fakes/fake_kernel.hpp"

namespace attach_plan_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::core;
using cnetd::test::FakeFirewall;
using cnetd::test::FakeKernel;
using cnetd::test::FakeState;
using cnetd::test::FakeStore;

namespace {

constexpr const char* kDir = "/run/test/netns";

Network network(const std::string& name) {
    Network n;
    n.id = name + "-id";
    n.name = name;
    n.bridge = "br-" + name;
    // A subnet of its own per network: the engine test creates all four.
    const int third = name == "v4" ? 1 : name == "dual" ? 2 : name == "int" ? 3 : 4;
    n.subnet = *Ipv4Cidr::parse_network(fmt::format("10.{}.0.0/24", third));
    n.gateway = Ipv4(n.subnet.network().value() + 1);
    if (name == "dual") {
        n.subnet6 = *Ipv6Cidr::parse("fd00:1::/64");
        n.gateway6 = *Ipv6::parse("fd00:1::1");
    }
    if (name == "int") n.internal = true;
    if (name == "hb") n.host_binding = *Ipv4::parse("127.0.0.1");
    return n;
}

ConnectRequest request(const std::string& net, std::function<void(ConnectRequest&)> edit) {
    ConnectRequest r;
    r.network = net;
    r.target = "c";
    if (edit) edit(r);
    return r;
}

PortRequest mapping(uint16_t host, uint16_t cont) {
    PortRequest p;
    p.host = {host, host};
    p.container = {cont, cont};
    return p;
}

// One refusal: the request's edit on network `net`, and the whole error text.
struct Refusal {
    const char* what;
    const char* net;
    std::function<void(ConnectRequest&)> edit;
    std::string error;
};

const std::vector<Refusal>& refusals() {
    static const std::vector<Refusal> rows = {
        {"empty target", "v4", [](auto& r) { r.target = ""; }, "target: must not be empty"},
        {"relative path", "v4", [](auto& r) { r.target = "a/b"; },
         "target: \"a/b\" is neither a netns name nor an absolute path"},
        {"bad netns name", "v4", [](auto& r) { r.target = "-x"; },
         "target: \"-x\" is invalid (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)"},
        {"bad ip", "v4", [](auto& r) { r.ipv4 = "10.1.0.x"; },
         "ip: \"10.1.0.x\" is not an IPv4 address"},
        {"bad ip6", "dual", [](auto& r) { r.ipv6 = "fd00::zz"; },
         "ip6: \"fd00::zz\" is not an IPv6 address"},
        {"ip6 on IPv4 only", "v4", [](auto& r) { r.ipv6 = "fd00::5"; },
         "ip6: fd00::5 given, but network v4 is IPv4 only"},
        {"bad mac", "v4", [](auto& r) { r.mac = "02:00"; },
         "mac: \"02:00\" is not a MAC address (expected xx:xx:xx:xx:xx:xx)"},
        {"multicast mac", "v4", [](auto& r) { r.mac = "01:00:5e:00:00:01"; },
         "mac: 01:00:5e:00:00:01 is not a unicast address"},
        {"bad ifname", "v4", [](auto& r) { r.ifname = "a-very-long-ifname"; },
         "ifname: interface name \"a-very-long-ifname\" is 18 characters long (the limit is 15)"},
        {"bad container id", "v4", [](auto& r) { r.container_id = "-abc"; },
         "container id: container id \"-abc\" must start with a letter or digit (allowed: "
         "[a-zA-Z0-9][a-zA-Z0-9_.-]*)"},
        {"bad name", "v4", [](auto& r) { r.name = "a b"; },
         "name: \"a b\" is invalid (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)"},
        {"bad proto", "v4",
         [](auto& r) {
             r.publish = {"80", "80:80/xtp"};
         },
         "publish[1]: port spec \"80:80/xtp\": protocol \"xtp\" is not one of tcp, udp, sctp"},
        {"bad port", "v4", [](auto& r) { r.publish = {"70000:80"}; },
         "publish[0]: port spec \"70000:80\": \"70000\" is not a port (1-65535)"},
        {"ranges differ", "v4", [](auto& r) { r.publish = {"[::]:8000-8002:80-81"}; },
         "publish[0]: port spec \"[::]:8000-8002:80-81\": host range has 3 ports but container "
         "range has 2"},
        {"empty host port", "v4", [](auto& r) { r.publish = {":80"}; },
         "publish[0]: port spec \":80\": empty host port"},
        {"v6 without brackets", "v4", [](auto& r) { r.publish = {"::1:80:80"}; },
         "publish[0]: port spec \"::1:80:80\": too many ':' (IPv6 addresses go in brackets)"},
        {"bad v6 form", "dual", [](auto& r) { r.publish = {"[::1]80"}; },
         "publish[0]: port spec \"[::1]80\": expected [IPv6]:HOSTPORT:CONTAINERPORT"},
        {"too many mappings", "v4",
         [](auto& r) {
             r.publish = {"1-65535", "80"};
         },
         "publish[1]: \"80\": more than 65535 port mappings in one request"},
        {"structured: container port 0", "v4",
         [](auto& r) {
             r.ports = {mapping(8080, 80), mapping(8081, 0)};
         },
         "ports[1]: invalid mapping 8081-8081 -> 0-0"},
        {"published on internal", "int", [](auto& r) { r.publish = {"8080:80"}; },
         "publish: network int is internal: nothing outside it can reach published ports"},
        {"v6 host address on IPv4 only", "v4", [](auto& r) { r.publish = {"[::1]:8080:80"}; },
         "publish: IPv6 host address [::1] needs a dual-stack network; v4 is IPv4 only"},
        {"sctp on [::1]", "dual", [](auto& r) { r.publish = {"[::1]:7070:70/sctp"}; },
         "publish: [::1]:7070->70/sctp: proto sctp cannot be published on [::1] (IPv6 loopback "
         "is relayed in userland, for tcp and udp only); publish sctp on [::], a host IPv6 "
         "address or 127.0.0.1"},
    };
    return rows;
}

TEST(AttachPlan, EveryRefusalNamesTheFieldAndTheValue) {
    for (const auto& row : refusals()) {
        auto p = plan_attach(network(row.net), request(row.net, row.edit), kDir);
        ASSERT_FALSE(p.ok()) << row.what;
        EXPECT_EQ(p.error().kind(), ErrorKind::InvalidArgument) << row.what;
        EXPECT_EQ(p.error().message(), row.error) << row.what;
    }
}

// One accepted request and the plan it must give.
struct Accepted {
    const char* what;
    const char* net;
    std::function<void(ConnectRequest&)> edit;
    std::function<void(AttachPlan&)> expect;  // edits the default plan into the expected one
};

PortPlan plan(PortRequest req, bool dual = false) {
    return PortPlan{req, dual};
}

TEST(AttachPlan, AcceptedRequestsGiveThePlan) {
    const PortRequest any80 = mapping(0, 80);
    const std::vector<Accepted> rows = {
        {"defaults: name from the netns file", "v4", nullptr, nullptr},
        {"absolute path: named by it", "v4", [](auto& r) { r.target = "/proc/1/ns/net"; },
         [](auto& p) { p.path = p.name = "/proc/1/ns/net"; }},
        {"static addresses and MAC", "dual",
         [](auto& r) {
             r.ipv4 = "10.2.0.7";
             r.ipv6 = "fd00:1::7";
             r.mac = "02:42:ac:11:00:07";
             r.name = "web";
         },
         [](auto& p) {
             p.ipv4 = *Ipv4::parse("10.2.0.7");
             p.ipv6 = *Ipv6::parse("fd00:1::7");
             p.mac = *Mac::parse("02:42:ac:11:00:07");
             p.name = "web";
         }},
        {"IPv4 only: every IPv4 address", "v4", [](auto& r) { r.publish = {"80"}; },
         [&](auto& p) { p.ports = {plan(any80)}; }},
        {"dual stack: both families on one port", "dual", [](auto& r) { r.publish = {"80"}; },
         [&](auto& p) { p.ports = {plan(any80, true)}; }},
        {"host binding: the network's address", "hb", [](auto& r) { r.publish = {"80"}; },
         [&](auto& p) {
             PortRequest want = any80;
             want.host_ip = *Ipv4::parse("127.0.0.1");
             p.ports = {plan(want)};
         }},
        {"explicit 0.0.0.0 beats the host binding", "hb",
         [](auto& r) { r.publish = {"0.0.0.0::80"}; },
         [&](auto& p) {
             PortRequest want = any80;
             want.host_ip = Ipv4(0);
             p.ports = {plan(want)};
         }},
        {"[::1] on dual stack: IPv6 only", "dual", [](auto& r) { r.publish = {"[::1]:7070:70"}; },
         [](auto& p) {
             PortRequest want = mapping(7070, 70);
             want.ipv6 = true;
             want.host_ip6 = *Ipv6::parse("::1");
             p.ports = {plan(want)};
         }},
        {"structured ports first, then -p specs", "v4",
         [](auto& r) {
             r.publish = {"9090:90/udp"};
             r.ports = {mapping(8080, 80)};
         },
         [](auto& p) {
             PortRequest udp = mapping(9090, 90);
             udp.proto = Proto::Udp;
             p.ports = {plan(mapping(8080, 80)), plan(udp)};
         }},
    };
    for (const auto& row : rows) {
        auto got = plan_attach(network(row.net), request(row.net, row.edit), kDir);
        ASSERT_TRUE(got.ok()) << row.what << ": " << got.error().message();
        AttachPlan want;
        want.path = std::string(kDir) + "/c";
        want.name = "c";
        if (row.expect) row.expect(want);
        EXPECT_EQ(got->path, want.path) << row.what;
        EXPECT_EQ(got->name, want.name) << row.what;
        EXPECT_EQ(got->ipv4, want.ipv4) << row.what;
        EXPECT_EQ(got->ipv6, want.ipv6) << row.what;
        EXPECT_EQ(got->mac, want.mac) << row.what;
        EXPECT_EQ(got->ports, want.ports) << row.what;
    }
}

TEST(AttachPlan, CheckNamespaceRefusesTheHostAndWhatIsConnectedAlready) {
    Network n = network("v4");
    Endpoint ep;
    ep.id = "e1";
    ep.name = "web";
    ep.netns_id = NetnsId{1, 100};
    n.endpoints.put(ep);
    AttachPlan p;
    p.path = "/run/test/netns/c";
    p.name = "db";
    const std::vector<NetnsId> host = {NetnsId{1, 1}};
    EXPECT_TRUE(check_namespace(n, NetnsId{1, 200}, host, p).ok());

    auto h = check_namespace(n, NetnsId{1, 1}, host, p);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(h.error().message().rfind("target: /run/test/netns/c is the host's own network", 0),
              0u)
        << h.error().message();

    auto again = check_namespace(n, NetnsId{1, 100}, host, p);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(again.error().message(),
              "namespace /run/test/netns/c is already connected as endpoint web");

    p.name = "web";
    auto name = check_namespace(n, NetnsId{1, 200}, host, p);
    ASSERT_FALSE(name.ok());
    EXPECT_EQ(name.error().message(), "name: an endpoint named web already exists");
}

// The same refusals through the engine: refused before the first kernel call and before the
// firewall is asked about ports (the issue: "a request that can be refused is refused with zero
// kernel calls", asserted with the fake kernel's op log).
TEST(AttachPlan, EngineRefusesEveryPlanErrorWithNoKernelCallAndNoPortCheck) {
    FakeKernel kernel;
    FakeFirewall fw;
    FakeStore store;
    Engine engine(kernel, fw, store, EngineOptions{kDir, 1500});
    ASSERT_TRUE(engine.start(std::nullopt, false).ok());
    kernel.state.netns.insert(std::string(kDir) + "/c");
    for (const char* name : {"v4", "dual", "int", "hb"}) {
        const Network want = network(name);
        CreateNetworkRequest req;
        req.name = name;
        req.subnet = want.subnet.str();
        req.internal = want.internal;
        if (want.subnet6) {
            req.ipv6 = true;
            req.subnet6 = want.subnet6->str();
        }
        if (want.host_binding) req.options[kOptHostBinding] = want.host_binding->str();
        auto made = engine.create_network(req);
        ASSERT_TRUE(made.ok()) << made.error().message();
    }
    const FakeState before = kernel.state.normalized();
    kernel.ops.clear();
    for (const auto& row : refusals()) {
        auto r = engine.connect(request(row.net, row.edit));
        ASSERT_FALSE(r.ok()) << row.what;
        EXPECT_NE(r.error().message().find(row.error), std::string::npos)
            << row.what << ": " << r.error().message();
        EXPECT_TRUE(kernel.ops.empty()) << row.what << ": " << kernel.ops.front();
        EXPECT_EQ(fw.port_checks, 0) << row.what;
        EXPECT_TRUE(kernel.held.empty()) << row.what;
    }
    EXPECT_EQ(kernel.state.normalized(), before);
}

}  // namespace

}  // namespace attach_plan_test
