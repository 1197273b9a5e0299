// Request validation, response shapes and the error codec: pure functions, no socket.
#include <gtest/gtest.h>

#include "api/codec.hpp"
#include "api/json_parse.hpp"
#include "api/protocol.hpp"
#include "daemon/codec.hpp"

namespace cnetd {
namespace {

using daemon::json;

std::string create_error(std::string_view body) {
    auto r = daemon::parse_create_network(body);
    EXPECT_FALSE(r.ok()) << body;
    if (r) return "";
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    return r.error().message();
}

TEST(Codec, CreateNetworkParsesEveryField) {
    auto r = daemon::parse_create_network(
        R"({"Name":"web","Subnet":"10.88.0.0/24","Gateway":"10.88.0.254","IPRange":"10.88.0.128/25",
            "Options":{"com.docker.network.bridge.name":"br-web"}})");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->name, "web");
    EXPECT_EQ(r->subnet, "10.88.0.0/24");
    EXPECT_EQ(r->gateway, "10.88.0.254");
    EXPECT_EQ(r->ip_range, "10.88.0.128/25");
    EXPECT_EQ(r->options.at("com.docker.network.bridge.name"), "br-web");
    EXPECT_FALSE(r->internal);  // absent means false
}

TEST(Codec, CreateNetworkInternalIsABoolean) {
    auto r = daemon::parse_create_network(
        R"({"Name":"back","Subnet":"10.90.0.0/24","Internal":true,
            "Options":{"com.docker.network.bridge.enable_icc":"false"}})");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(r->internal);
    // Option keys and values are the engine's to judge; the codec passes them through.
    EXPECT_EQ(r->options.at("com.docker.network.bridge.enable_icc"), "false");
    auto off =
        daemon::parse_create_network(R"({"Name":"a","Subnet":"10.0.0.0/8","Internal":null})");
    ASSERT_TRUE(off.ok()) << off.error().message();
    EXPECT_FALSE(off->internal);
    EXPECT_EQ(create_error(R"({"Name":"a","Subnet":"10.0.0.0/8","Internal":"true"})"),
              "\"Internal\": expected a boolean, got string");
    EXPECT_EQ(create_error(R"({"Name":"a","Subnet":"10.0.0.0/8","Internal":1})"),
              "\"Internal\": expected a boolean, got number");
}

TEST(Codec, MalformedJsonNamesThePosition) {
    EXPECT_EQ(create_error(R"({"Name": "web",)"),
              "create network: invalid JSON body: parse error at line 1, column 16: syntax error "
              "while parsing object key - unexpected end of input; expected string literal");
    EXPECT_EQ(create_error("{\n  \"Name\": x}"),
              "create network: invalid JSON body: parse error at line 2, column 11: syntax error "
              "while parsing value - invalid literal; last read: '\"Name\": x'");
}

// nlohmann throws out_of_range (not parse_error) for a number beyond a double; it used to escape
// the codec (a 500 from the daemon, an abort in fuzz_api). Now a 400 naming the field.
TEST(Codec, NumberOutOfRangeNamesTheField) {
    const std::string tail = " is out of range (magnitude above 1.8e308)";
    EXPECT_EQ(create_error(R"({"Name":"x","MTU":1e999})"),
              "create network: invalid JSON body: \"MTU\": number 1e999" + tail);
    EXPECT_EQ(create_error(R"({"Name":"x","Labels":{"a":-2E+400}})"),
              "create network: invalid JSON body: \"Labels\".\"a\": number -2E+400" + tail);
    auto c = daemon::parse_connect(
        R"({"Target":"a","PortBindings":[{"ContainerPort":"80"},{"HostPort":1e999}]})", "bridge");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(c.error().message(),
              "connect: invalid JSON body: \"PortBindings\"[1].\"HostPort\": number 1e999" + tail);
    // The fuzz_api finding's shape: hundreds of digits and a huge exponent, at the top level.
    const std::string huge = std::string(300, '3') + "E" + std::string(40, '6') + "94";
    auto top = daemon::parse_object(huge);
    ASSERT_FALSE(top.ok());
    EXPECT_EQ(top.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(top.error().message(),
              "invalid JSON body: number 33333333333333333333...6666666694" + tail);
    // Every decoder, none throwing.
    const std::string body = R"({"Name":"x","Target":"t","MTU":1e999})";
    for (auto r : {daemon::parse_disconnect(body), daemon::parse_create_netns(body)}) {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
        EXPECT_NE(r.error().message().find("\"MTU\": number 1e999" + tail), std::string::npos)
            << r.error().message();
    }
    // Small and negative exponents are numbers like any other (0 and 1e308 fit).
    EXPECT_EQ(create_error(R"({"Name":"x","MTU":1e-999})"), "unknown field \"MTU\"");
    EXPECT_EQ(create_error(R"({"Name":"x","MTU":1e308})"), "unknown field \"MTU\"");
}

TEST(Codec, ParseJsonPathsNameArraysAndObjects) {
    auto q = api::parse_json(R"({"a":[1,[2,{"b":1e999}]]})");
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.error().message().rfind("\"a\"[1][1].\"b\": number 1e999 is out of range", 0), 0u)
        << q.error().message();
    auto p = api::parse_json(R"({"ipam":{"ranges":[[{"gateway":1},{"x":9e9999}]]}})",
                             api::PathStyle::Plain);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message().rfind("ipam.ranges[0][1].x: number 9e9999 is out of range", 0),
              0u)
        << p.error().message();
    auto ok = api::parse_json(R"({"a":[1,2,{"b":null}],"c":"d"})");
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_EQ((*ok)["a"][2]["b"], nullptr);
}

TEST(Codec, BodyMustBeAnObject) {
    EXPECT_EQ(create_error("[1,2]"),
              "create network: request body: expected a JSON object, got array");
    EXPECT_EQ(create_error(""),
              "create network: request body: expected a JSON object, got nothing");
}

TEST(Codec, WrongTypeNamesTheField) {
    EXPECT_EQ(create_error(R"({"Name":"web","Subnet":24})"),
              "\"Subnet\": expected a string, got number");
    EXPECT_EQ(create_error(R"({"Name":"web","Subnet":"10.0.0.0/8","Options":{"a":1}})"),
              "\"Options\".\"a\": expected a string, got number");
    EXPECT_EQ(create_error(R"({"Name":"web","Subnet":"10.0.0.0/8","Options":[]})"),
              "\"Options\": expected an object of strings, got array");
}

TEST(Codec, UnknownFieldsAreNamed) {
    EXPECT_EQ(create_error(R"({"Name":"web","Subnet":"10.0.0.0/8","driver":"x","labels":{}})"),
              "unknown fields \"driver\", \"labels\"");
    auto r = daemon::parse_disconnect(R"({"Target":"a","Force":true})");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "unknown field \"Force\"");
}

TEST(Codec, MissingRequiredFieldIsNamed) {
    EXPECT_EQ(create_error(R"({"Subnet":"10.0.0.0/8"})"), "\"Name\": required");
    EXPECT_EQ(create_error(R"({"Name":"web","Subnet":5})"),
              "\"Subnet\": expected a string, got number");
    EXPECT_EQ(create_error(R"({"Name":"","Subnet":"10.0.0.0/8"})"), "\"Name\": must not be empty");
    auto c = daemon::parse_connect(R"({"Name":"c1"})", "bridge");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().message(), "\"Target\": required");
    auto n = daemon::parse_create_netns("{}");
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().message(), "\"Name\": required");
}

TEST(Codec, ConnectTakesNetworkFromPath) {
    auto r = daemon::parse_connect(
        R"({"Target":"/proc/1/ns/net","Name":"c1","IPv4Address":"172.17.0.9"})", "bridge");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->network, "bridge");
    EXPECT_EQ(r->target, "/proc/1/ns/net");
    EXPECT_EQ(r->name, "c1");
    EXPECT_EQ(r->ipv4, "172.17.0.9");
}

TEST(Codec, NetworkJsonIsShapedLikeDockerInspect) {
    core::Network n;
    n.id = std::string(64, 'a');
    n.name = "bridge";
    n.bridge = "docker0";
    n.subnet = Ipv4Cidr(Ipv4(0xAC110000), 16);
    n.gateway = Ipv4(0xAC110001);
    n.ip_range = Ipv4Cidr(Ipv4(0xAC118000), 17);
    n.is_default = true;
    n.dns = false;
    n.created = "2024-01-01T00:00:00Z";
    core::Endpoint ep;
    ep.id = std::string(64, 'b');
    ep.name = "c1";
    ep.netns_path = "/var/run/docker/netns/c1";
    ep.host_ifname = "veth1234567";
    ep.ifname = "eth0";
    ep.mac = Mac({0x02, 0x42, 0xac, 0x11, 0, 2});
    ep.address = Ipv4Cidr(Ipv4(0xAC110002), 16);
    n.endpoints.put(ep);

    json j = daemon::network_to_json(n);
    EXPECT_EQ(j["Name"], "bridge");
    EXPECT_EQ(j["Scope"], "local");
    EXPECT_EQ(j["Driver"], "bridge");
    EXPECT_EQ(j["EnableIPv6"], false);
    EXPECT_EQ(j["Internal"], false);
    EXPECT_EQ(j["IPAM"]["Driver"], "default");
    EXPECT_EQ(
        j["IPAM"]["Config"],
        json::parse(
            R"([{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1","IPRange":"172.17.128.0/17"}])"));
    EXPECT_EQ(j["Options"]["com.docker.network.bridge.name"], "docker0");
    EXPECT_EQ(j["Options"]["com.docker.network.bridge.default_bridge"], "true");
    EXPECT_EQ(j["Labels"], json::object());
    EXPECT_EQ(j["Containers"][ep.id],
              json::parse(R"({"Name":"c1","EndpointID":")" + ep.id +
                          R"(","MacAddress":"02:42:ac:11:00:02","IPv4Address":"172.17.0.2/16",
                          "IPv6Address":"","SandboxKey":"/var/run/docker/netns/c1",
                          "Interface":"eth0","HostInterface":"veth1234567","Ports":{},
                          "GwPriority":0,"Aliases":[]})"));
    // The default network has no embedded resolver; a user-defined one says so.
    EXPECT_EQ(j["EnableDNS"], false);
    // With the gateway roles (core::gateway_roles of every network): the families it carries.
    const auto roles = core::gateway_roles({n});
    EXPECT_EQ(daemon::network_to_json(n, &roles)["Containers"][ep.id]["DefaultRoute"],
              json::array({"IPv4"}));
    n.is_default = false;
    EXPECT_FALSE(
        daemon::network_to_json(n)["Options"].contains("com.docker.network.bridge.default_bridge"));
    // Internal and the engine's stored options come from the network.
    n.internal = true;
    n.options[core::kOptEnableIcc] = "false";
    json internal = daemon::network_to_json(n);
    EXPECT_EQ(internal["Internal"], true);
    EXPECT_EQ(internal["Options"]["com.docker.network.bridge.enable_icc"], "false");
}

std::string connect_error(std::string_view body) {
    auto r = daemon::parse_connect(body, "bridge");
    EXPECT_FALSE(r.ok()) << body;
    if (r) return "";
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
    return r.error().message();
}

TEST(Codec, ConnectPassesPublishStringsThrough) {
    auto r = daemon::parse_connect(
        R"({"Target":"a","Publish":["8080:80","127.0.0.1::53/udp","not a spec"]})", "bridge");
    ASSERT_TRUE(r.ok()) << r.error().message();
    // Spec syntax is the engine's to judge (its errors name publish[i]); the codec keeps order.
    EXPECT_EQ(r->publish, (std::vector<std::string>{"8080:80", "127.0.0.1::53/udp", "not a spec"}));
    EXPECT_TRUE(r->ports.empty());
    auto none = daemon::parse_connect(R"({"Target":"a","Publish":null})", "bridge");
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->publish.empty());
    EXPECT_EQ(connect_error(R"({"Target":"a","Publish":"8080:80"})"),
              "\"Publish\": expected an array of strings, got string");
    EXPECT_EQ(connect_error(R"({"Target":"a","Publish":["8080:80",8080]})"),
              "\"Publish\"[1]: expected a string, got number");
}

TEST(Codec, ConnectPassesAliasesThrough) {
    auto r = daemon::parse_connect(R"({"Target":"a","Aliases":["db","Primary.DB"]})", "web");
    ASSERT_TRUE(r.ok()) << r.error().message();
    // As given: DNS name syntax and duplicates are the engine's (core::ConnectRequest::aliases).
    EXPECT_EQ(r->aliases, (std::vector<std::string>{"db", "Primary.DB"}));
    auto none = daemon::parse_connect(R"({"Target":"a","Aliases":null})", "web");
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_TRUE(none->aliases.empty());
    EXPECT_EQ(connect_error(R"({"Target":"a","Aliases":"db"})"),
              "\"Aliases\": expected an array of strings, got string");
    EXPECT_EQ(connect_error(R"({"Target":"a","Aliases":["db",7]})"),
              "\"Aliases\"[1]: expected a string, got number");
    EXPECT_EQ(connect_error(R"({"Target":"a","Aliases":[["db"]]})"),
              "\"Aliases\"[0]: expected a string, got array");
    EXPECT_EQ(connect_error(R"({"Target":"a","Alias":["db"]})"), "unknown field \"Alias\"");
}

TEST(Codec, ConnectParsesPortBindings) {
    auto r = daemon::parse_connect(
        R"({"Target":"a","PortBindings":[
              {"ContainerPort":"80"},
              {"Proto":"udp","HostIp":"127.0.0.1","HostPort":"5353","ContainerPort":"53"},
              {"Proto":"tcp","HostIp":"0.0.0.0","HostPort":"8000-8002","ContainerPort":"80-82"},
              {"HostIp":"","HostPort":"9000-9010","ContainerPort":"443"}]})",
        "bridge");
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->ports.size(), 4u);
    using core::PortRange;
    using core::Proto;
    EXPECT_EQ(r->ports[0],
              (core::PortRequest{Proto::Tcp, std::nullopt, PortRange{0, 0}, PortRange{80, 80}}));
    EXPECT_EQ(r->ports[1], (core::PortRequest{Proto::Udp, Ipv4(0x7F000001), PortRange{5353, 5353},
                                              PortRange{53, 53}}));
    // "0.0.0.0" asks for every host address explicitly; "" leaves it to the network's default.
    EXPECT_EQ(r->ports[2],
              (core::PortRequest{Proto::Tcp, Ipv4(0), PortRange{8000, 8002}, PortRange{80, 82}}));
    EXPECT_EQ(r->ports[3], (core::PortRequest{Proto::Tcp, std::nullopt, PortRange{9000, 9010},
                                              PortRange{443, 443}}));
    EXPECT_TRUE(r->publish.empty());
}

TEST(Codec, PortBindingErrorsNameElementAndField) {
    auto bad = [](std::string_view binding) {
        return connect_error(fmt::format(
            R"({{"Target":"a","PortBindings":[{{"ContainerPort":"1"}},{}]}})", binding));
    };
    EXPECT_EQ(connect_error(R"({"Target":"a","PortBindings":{"ContainerPort":"80"}})"),
              "\"PortBindings\": expected an array, got object");
    EXPECT_EQ(bad(R"("80")"), "\"PortBindings\"[1]: expected an object, got string");
    EXPECT_EQ(bad(R"({})"), "\"PortBindings\"[1].\"ContainerPort\": required");
    EXPECT_EQ(bad(R"({"ContainerPort":80})"),
              "\"PortBindings\"[1].\"ContainerPort\": expected a string, got number");
    EXPECT_EQ(bad(R"({"ContainerPort":""})"),
              "\"PortBindings\"[1].\"ContainerPort\": must not be empty");
    EXPECT_EQ(bad(R"({"ContainerPort":"80/tcp"})"),
              "\"PortBindings\"[1].\"ContainerPort\": \"80/tcp\" is not a port (1-65535) or a "
              "port range like 8000-8010");
    EXPECT_EQ(bad(R"({"ContainerPort":"0"})"),
              "\"PortBindings\"[1].\"ContainerPort\": \"0\" is not a port (1-65535) or a port "
              "range like 8000-8010");
    EXPECT_EQ(bad(R"({"ContainerPort":"80","HostPort":"65536"})"),
              "\"PortBindings\"[1].\"HostPort\": \"65536\" is not a port (1-65535) or a port "
              "range like 8000-8010");
    EXPECT_EQ(bad(R"({"ContainerPort":"90-80"})"),
              "\"PortBindings\"[1].\"ContainerPort\": range \"90-80\" ends before it starts");
    EXPECT_EQ(bad(R"({"ContainerPort":"80","HostPort":8080})"),
              "\"PortBindings\"[1].\"HostPort\": expected a string, got number");
    EXPECT_EQ(bad(R"({"ContainerPort":"80","Proto":"icmp"})"),
              "\"PortBindings\"[1].\"Proto\": protocol \"icmp\" is not one of tcp, udp, sctp");
    EXPECT_EQ(bad(R"({"ContainerPort":"80","HostIp":"localhost"})"),
              "\"PortBindings\"[1].\"HostIp\": \"localhost\" is not an IP address");
    EXPECT_EQ(bad(R"({"ContainerPort":"80","HostPort":"8080","Host":"x","Type":1})"),
              "\"PortBindings\"[1]: unknown fields \"Host\", \"Type\"");
    EXPECT_EQ(bad(R"({"ContainerPort":"80-82","HostPort":"8000-8001"})"),
              "\"PortBindings\"[1]: host ports \"8000-8001\" and container ports \"80-82\" are "
              "ranges of different sizes");
}

core::Endpoint endpoint_with_ports() {
    core::Endpoint ep;
    ep.id = std::string(64, 'c');
    ep.name = "web";
    ep.netns_path = "/var/run/docker/netns/web";
    ep.host_ifname = "veth7654321";
    ep.ifname = "eth0";
    ep.mac = Mac({0x02, 0x42, 0xac, 0x11, 0, 3});
    ep.address = Ipv4Cidr(Ipv4(0xAC110003), 16);
    using core::PortRange;
    using core::Proto;
    ep.ports = {
        {Proto::Tcp, std::nullopt, PortRange{8080, 8080}, PortRange{80, 80}},
        {Proto::Udp, Ipv4(0x7F000001), PortRange{5353, 5353}, PortRange{53, 53}},
        {Proto::Tcp, std::nullopt, PortRange{8000, 8002}, PortRange{90, 92}},
        {Proto::Tcp, Ipv4(0x7F000001), PortRange{9090, 9090}, PortRange{80, 80}},
    };
    return ep;
}

TEST(Codec, EndpointPortsAreShapedLikeDockerNetworkSettings) {
    json j = daemon::endpoint_to_json(endpoint_with_ports(), "bridge");
    EXPECT_EQ(j["Network"], "bridge");
    // One key per container port; a container port published twice lists both bindings.
    EXPECT_EQ(j["Ports"], json::parse(R"({
        "80/tcp": [{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"127.0.0.1","HostPort":"9090"}],
        "53/udp": [{"HostIp":"127.0.0.1","HostPort":"5353"}],
        "90/tcp": [{"HostIp":"0.0.0.0","HostPort":"8000"}],
        "91/tcp": [{"HostIp":"0.0.0.0","HostPort":"8001"}],
        "92/tcp": [{"HostIp":"0.0.0.0","HostPort":"8002"}]})"));
}

// "Aliases" always; "ResolvConf" and "Dns" only with the embedded resolver's facts; "EnableDNS"
// is the network's flag.
TEST(Codec, EndpointShowsAliasesAndResolverFacts) {
    core::Endpoint ep = endpoint_with_ports();
    ep.aliases = {"db", "primary"};
    json plain = daemon::endpoint_to_json(ep, "web");
    EXPECT_EQ(plain["Aliases"], json::array({"db", "primary"}));
    EXPECT_FALSE(plain.contains("ResolvConf"));
    EXPECT_FALSE(plain.contains("Dns"));

    api::Endpoint out = daemon::to_api(ep, "web");
    daemon::add_dns(out, {"/run/cnetd/resolv/" + ep.id + "/resolv.conf",
                          {"127.0.0.11"},
                          {"example.com"},
                          {"ndots:0", "edns0"}});
    json j = api::to_json(out);
    EXPECT_EQ(j["ResolvConf"], "/run/cnetd/resolv/" + ep.id + "/resolv.conf");
    EXPECT_EQ(j["Dns"], json::parse(R"({"Nameservers":["127.0.0.11"],"Search":["example.com"],
                                        "Options":["ndots:0","edns0"]})"));
    // Nothing known (no file, no server): nothing shown.
    api::Endpoint none = daemon::to_api(ep, "web");
    daemon::add_dns(none, {});
    EXPECT_FALSE(api::to_json(none).contains("Dns"));
    EXPECT_FALSE(api::to_json(none).contains("ResolvConf"));

    core::Network n;
    n.name = "web";
    EXPECT_EQ(daemon::network_to_json(n)["EnableDNS"], true);  // user-defined: on by default
    n.dns = false;
    n.options[core::kOptEnableDns] = "false";
    json off = daemon::network_to_json(n);
    EXPECT_EQ(off["EnableDNS"], false);
    EXPECT_EQ(off["Options"][core::kOptEnableDns], "false");  // as given at create
}

TEST(Codec, PortsListHasOneRowPerBinding) {
    core::Network n;
    n.name = "bridge";
    core::Endpoint ep = endpoint_with_ports();
    core::Endpoint quiet = ep;  // no ports: no rows
    quiet.id = std::string(64, 'd');
    quiet.name = "quiet";
    quiet.ports.clear();
    n.endpoints.put(ep);
    n.endpoints.put(quiet);
    json rows = daemon::ports_to_json({n});
    ASSERT_EQ(rows.size(), 4u) << rows.dump();
    EXPECT_EQ(rows[0], json({{"Network", "bridge"},
                             {"Endpoint", "web"},
                             {"EndpointID", ep.id},
                             {"Container", "172.17.0.3"},
                             {"Proto", "tcp"},
                             {"HostIp", "0.0.0.0"},
                             {"HostPort", "8080"},
                             {"ContainerPort", "80"}}));
    EXPECT_EQ(rows[1]["Proto"], "udp");
    EXPECT_EQ(rows[1]["HostIp"], "127.0.0.1");
    EXPECT_EQ(rows[2]["HostPort"], "8000-8002");  // ranges stay ranges
    EXPECT_EQ(rows[2]["ContainerPort"], "90-92");
    EXPECT_EQ(daemon::ports_to_json({}), json::array());
}

TEST(Protocol, StatusFollowsErrorKind) {
    EXPECT_EQ(api::http_status(ErrorKind::InvalidArgument), 400);
    EXPECT_EQ(api::http_status(ErrorKind::NotFound), 404);
    EXPECT_EQ(api::http_status(ErrorKind::Conflict), 409);
    EXPECT_EQ(api::http_status(ErrorKind::Unavailable), 503);
    EXPECT_EQ(api::http_status(ErrorKind::Kernel), 500);
    EXPECT_EQ(api::http_status(ErrorKind::Internal), 500);
    EXPECT_EQ(api::kind_from_status(413), ErrorKind::InvalidArgument);
    EXPECT_EQ(api::kind_from_status(404), ErrorKind::NotFound);
    EXPECT_EQ(api::kind_from_status(502), ErrorKind::Internal);
}

TEST(Protocol, ErrorRoundTripsThroughJson) {
    Error e = Error::sys(EEXIST, "create veth vethc0ffee1");
    e.wrap("connect a to bridge");
    json body = api::error_body(e);
    EXPECT_EQ(body["kind"], "kernel");
    Error back = api::error_from_response(500, body.dump());
    EXPECT_EQ(back.kind(), ErrorKind::Kernel);
    EXPECT_EQ(back.message(), "connect a to bridge: create veth vethc0ffee1: File exists");
    EXPECT_EQ(back.error_number(), 0);  // errno is the server's business, not the client's
}

TEST(Protocol, ForeignErrorBodiesStillReadable) {
    Error e = api::error_from_response(502, "Bad Gateway\r\n");
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
    EXPECT_EQ(e.message(), "Bad Gateway");
    EXPECT_EQ(api::error_from_response(409, "").message(), "HTTP 409");
    EXPECT_EQ(api::error_from_response(409, "").kind(), ErrorKind::Conflict);
    EXPECT_EQ(api::error_from_response(400, R"({"message":"m","kind":"bogus"})").kind(),
              ErrorKind::InvalidArgument);
}

}  // namespace
}  // namespace cnetd
