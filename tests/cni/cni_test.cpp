// lib/cni unit tests: every verb's parse, the error codes and the messages naming the field,
// result encoding in every version, prevResult decoding and chaining.
#include <gtest/gtest.h>

#include "cni/cni.hpp"

namespace cnetd::cni {
namespace {

using Env = std::map<std::string, std::string>;

Env env(const std::string& cmd) {
    return {{"CNI_COMMAND", cmd},
            {"CNI_CONTAINERID", "c0ffee"},
            {"CNI_NETNS", "/run/netns/a"},
            {"CNI_IFNAME", "eth0"},
            {"CNI_PATH", "/usr/lib/cni"}};
}

json conf(const std::string& version = "1.1.0") {
    return {{"cniVersion", version},
            {"name", "pods"},
            {"type", "cnetd-cni"},
            {"bridge", "cni0"},
            {"isGateway", true},
            {"ipMasq", true},
            {"ipam",
             {{"type", "host-local"},
              {"ranges", {{{{"subnet", "10.88.0.0/16"}, {"gateway", "10.88.0.1"}}}}},
              {"routes", {{{"dst", "0.0.0.0/0"}}}}}}};
}

// Parses, expecting failure; returns {code, message}.
std::pair<int, std::string> fails(const Env& e, const std::string& in) {
    auto r = parse_cni(e, in);
    EXPECT_FALSE(r.ok()) << in;
    if (r.ok()) return {0, ""};
    return {cni_code(r.error()), r.error().message()};
}

TEST(CniParse, AddWithReferenceBridgeKeys) {
    json c = conf();
    c["mtu"] = 1400;
    c["hairpinMode"] = true;
    c["promiscMode"] = false;
    c["forceAddress"] = false;
    c["isDefaultGateway"] = true;
    auto r = parse_cni(env("ADD"), c.dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->command, Command::Add);
    EXPECT_EQ(r->container_id, "c0ffee");
    EXPECT_EQ(r->netns, "/run/netns/a");
    EXPECT_EQ(r->ifname, "eth0");
    EXPECT_EQ(r->conf.name, "pods");
    EXPECT_EQ(r->conf.bridge, "cni0");
    EXPECT_EQ(r->conf.subnet, "10.88.0.0/16");
    EXPECT_EQ(r->conf.gateway, "10.88.0.1");
    EXPECT_EQ(r->conf.mtu, 1400u);
    EXPECT_TRUE(r->conf.ip_masq);
    EXPECT_TRUE(r->conf.is_default_gateway);
    EXPECT_EQ(r->conf.routes, std::vector<std::string>{"0.0.0.0/0"});
    EXPECT_EQ(r->conf.timeout_ms, 30000u);
}

TEST(CniParse, EveryVerb) {
    for (auto [cmd, want] : {std::pair{"ADD", Command::Add},
                             {"DEL", Command::Del},
                             {"CHECK", Command::Check},
                             {"STATUS", Command::Status},
                             {"GC", Command::Gc},
                             {"VERSION", Command::Version}}) {
        auto r = parse_cni(env(cmd), conf().dump());
        ASSERT_TRUE(r.ok()) << cmd << ": " << r.error().message();
        EXPECT_EQ(r->command, want);
        EXPECT_EQ(to_string(r->command), cmd);
    }
}

TEST(CniParse, DelToleratesEmptyNetnsAndNoIpam) {
    Env e = env("DEL");
    e["CNI_NETNS"] = "";
    json c = conf();
    c.erase("ipam");
    auto r = parse_cni(e, c.dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->netns, "");
}

TEST(CniParse, StatusAndGcNeedNoContainer) {
    Env e = {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/x"}};
    json c = conf();
    c["cni.dev/valid-attachments"] = {{{"containerID", "a"}, {"ifname", "eth0"}},
                                      {{"containerID", "b"}, {"ifname", "net1"}}};
    auto r = parse_cni(e, c.dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->valid_attachments.size(), 2u);
    EXPECT_EQ(r->valid_attachments[1].container_id, "b");
    EXPECT_EQ(r->valid_attachments[1].ifname, "net1");
    e["CNI_COMMAND"] = "STATUS";
    EXPECT_TRUE(parse_cni(e, conf().dump()).ok());
}

TEST(CniParse, GcAcceptsOlderAttachmentsKey) {
    json c = conf();
    c["cni.dev/attachments"] = {{{"containerID", "a"}, {"ifname", "eth0"}}};
    auto r = parse_cni({{"CNI_COMMAND", "GC"}}, c.dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->valid_attachments.size(), 1u);
    c["cni.dev/attachments"] = {{{"containerID", "a"}}};
    auto [code, msg] = fails({{"CNI_COMMAND", "GC"}}, c.dump());
    EXPECT_EQ(code, kInvalidConfig);
    EXPECT_EQ(msg, "cni.dev/attachments[0].ifname: required");
}

TEST(CniParse, GcAndStatusNeed110) {
    auto [code, msg] = fails({{"CNI_COMMAND", "STATUS"}}, conf("1.0.0").dump());
    EXPECT_EQ(code, kIncompatibleVersion);
    EXPECT_EQ(msg, "STATUS needs cniVersion 1.1.0, the config says 1.0.0");
    auto [c2, m2] = fails(env("CHECK"), conf("0.3.1").dump());
    EXPECT_EQ(c2, kIncompatibleVersion);
    EXPECT_EQ(m2, "CHECK needs cniVersion 0.4.0 or later, the config says 0.3.1");
}

TEST(CniParse, VersionWithAndWithoutStdin) {
    auto r = parse_cni({{"CNI_COMMAND", "VERSION"}}, "");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->conf.cni_version, "1.1.0");
    r = parse_cni({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"0.4.0"})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->conf.cni_version, "0.4.0");
    json v = version_reply("0.4.0");
    EXPECT_EQ(v["cniVersion"], "0.4.0");
    EXPECT_EQ(v["supportedVersions"],
              json({"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}

// Environment values are bytes, not UTF-8: a non-ASCII interface name is refused (the daemon takes
// printable ASCII only, so the name could not reach it unchanged through JSON), in every verb that
// carries one (found by fuzz_cni: a DEL accepted "et\xb50"), and the error still encodes as JSON.
TEST(CniParse, NonAsciiAndInvalidUtf8EnvValuesAreRefusedAndTheErrorEncodes) {
    for (const char* cmd : {"ADD", "DEL", "CHECK"}) {
        Env e = env(cmd);
        e["CNI_IFNAME"] =
            "et\xb5"
            "0";
        auto [code, msg] = fails(e, conf().dump());
        EXPECT_EQ(code, kInvalidEnv) << cmd;
        EXPECT_NE(msg.find("CNI_IFNAME: "), std::string::npos) << msg;
        std::string out;
        EXPECT_NO_THROW(out = encode_error("1.1.0", code, msg, "")
                                  .dump(-1, ' ', false, json::error_handler_t::replace));
        EXPECT_FALSE(out.empty());
    }
    Env e = env("ADD");
    e["CNI_CONTAINERID"] = "ab\xff";
    EXPECT_EQ(fails(e, conf().dump()).first, kInvalidEnv);
}

TEST(CniParse, EnvErrorsAreCode4) {
    Env e = env("ADD");
    e.erase("CNI_COMMAND");
    EXPECT_EQ(fails(e, conf().dump()),
              std::make_pair(kInvalidEnv, std::string("CNI_COMMAND: required")));
    e = env("FROB");
    EXPECT_EQ(fails(e, conf().dump()).second,
              "CNI_COMMAND: \"FROB\" is not ADD, DEL, CHECK, STATUS, GC or VERSION");
    e = env("ADD");
    e["CNI_CONTAINERID"] = "-bad id";
    auto [code, msg] = fails(e, conf().dump());
    EXPECT_EQ(code, kInvalidEnv);
    EXPECT_NE(msg.find("CNI_CONTAINERID: \"-bad id\" is invalid"), std::string::npos) << msg;
    e = env("ADD");
    e["CNI_IFNAME"] = "a/b";
    EXPECT_EQ(fails(e, conf().dump()).first, kInvalidEnv);
    e["CNI_IFNAME"] = "abcdefghijklmnop";  // 16 bytes
    EXPECT_EQ(fails(e, conf().dump()).first, kInvalidEnv);
    e = env("ADD");
    e["CNI_NETNS"] = "";
    EXPECT_EQ(fails(e, conf().dump()),
              std::make_pair(kInvalidEnv, std::string("CNI_NETNS: required")));
    e["CNI_NETNS"] = "relative/ns";
    EXPECT_EQ(fails(e, conf().dump()).second, "CNI_NETNS: \"relative/ns\" is not an absolute path");
}

TEST(CniParse, DecodeErrorsAreCode6) {
    auto [code, msg] = fails(env("ADD"), "{\"cniVersion\": ");
    EXPECT_EQ(code, kDecodeFailure);
    EXPECT_EQ(msg.rfind("stdin: network config: ", 0), 0u) << msg;
    EXPECT_EQ(
        fails(env("ADD"), "[1,2]"),
        std::make_pair(kDecodeFailure,
                       std::string("stdin: network config must be a JSON object, got array")));
}

// A number beyond a double makes nlohmann throw out_of_range 406, not parse_error: the message
// used to be "[json.exception.out_of_range.406] number overflow parsing '1e999'" naming no key.
TEST(CniParse, NumberOutOfRangeIsCode6NamingTheKey) {
    const std::string tail = " is out of range (magnitude above 1.8e308)";
    std::string text = conf().dump();
    text.insert(text.size() - 1, R"(,"cnetdTimeout":1e999)");
    EXPECT_EQ(
        fails(env("DEL"), text),
        std::make_pair(kDecodeFailure, "stdin: network config: cnetdTimeout: number 1e999" + tail));
    EXPECT_EQ(
        fails(env("ADD"),
              R"({"cniVersion":"1.1.0","name":"p","ipam":{"ranges":[[{"subnet":"10.0.0.0/8"},
                        {"gateway":-7e777}]]}})"),
        std::make_pair(kDecodeFailure,
                       "stdin: network config: ipam.ranges[0][1].gateway: number -7e777" + tail));
    EXPECT_EQ(fails({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"1.1.0","x":[1e400]})"),
              std::make_pair(kDecodeFailure, "stdin: x[0]: number 1e400" + tail));
}

TEST(CniParse, VersionErrorsAreCode1) {
    auto [code, msg] = fails(env("ADD"), conf("0.9.9").dump());
    EXPECT_EQ(code, kIncompatibleVersion);
    EXPECT_EQ(msg.rfind("cniVersion: \"0.9.9\" is not supported", 0), 0u) << msg;
    json c = conf();
    c.erase("cniVersion");
    EXPECT_EQ(fails(env("ADD"), c.dump()),
              std::make_pair(kInvalidConfig, std::string("cniVersion: required")));
}

TEST(CniParse, ConfigErrorsNameTheField) {
    json c = conf();
    c["mtu"] = "1500";
    EXPECT_EQ(
        fails(env("ADD"), c.dump()),
        std::make_pair(kInvalidConfig, std::string("mtu: expected a whole number, got \"1500\"")));
    c = conf();
    c["ipam"]["ranges"][0][0]["subnet"] = "10.88.0.1/16";
    auto [code, msg] = fails(env("ADD"), c.dump());
    EXPECT_EQ(code, kInvalidConfig);
    EXPECT_EQ(msg.rfind("ipam.ranges[0][0].subnet: ", 0), 0u) << msg;
    c = conf();
    c["ipam"]["ranges"][0][0]["gateway"] = "10.99.0.1";
    EXPECT_EQ(fails(env("ADD"), c.dump()).second,
              "ipam.ranges[0][0].gateway: 10.99.0.1 is not in subnet 10.88.0.0/16");
    c = conf();
    c["name"] = "bad name";
    EXPECT_EQ(fails(env("ADD"), c.dump()).first, kInvalidConfig);
    c = conf();
    c.erase("ipam");
    auto [c3, m3] = fails(env("ADD"), c.dump());
    EXPECT_EQ(c3, kInvalidConfig);
    EXPECT_EQ(m3.rfind("ipam.ranges: required", 0), 0u) << m3;
    c = conf();
    c["runtimeConfig"] = {{"portMappings", {{{"hostPort", 70000}, {"containerPort", 80}}}}};
    EXPECT_EQ(fails(env("ADD"), c.dump()).second,
              "runtimeConfig.portMappings[0].hostPort: 70000 is larger than 65535");
    c["runtimeConfig"] = {
        {"portMappings", {{{"hostPort", 8080}, {"containerPort", 80}, {"protocol", "icmp"}}}}};
    EXPECT_EQ(fails(env("ADD"), c.dump()).second,
              "runtimeConfig.portMappings[0].protocol: \"icmp\" is not tcp, udp or sctp");
}

TEST(CniParse, UnsupportedKeysAreCode2NamingKeyAndValue) {
    struct Case {
        const char* key;
        json value;
        const char* start;
    };
    for (const auto& [key, value, start] :
         std::vector<Case>{{"vlan", 100, "vlan: 100: "},
                           {"vlanTrunk", json::array({{{"id", 5}}}), "vlanTrunk: [{\"id\":5}]: "},
                           {"isGateway", false, "isGateway: false: "},
                           {"macspoofchk", true, "macspoofchk: true: "},
                           {"disableContainerInterface", true, "disableContainerInterface: true: "},
                           {"frobnicate", "yes", "frobnicate: \"yes\": unknown key"}}) {
        json c = conf();
        c[key] = value;
        auto [code, msg] = fails(env("ADD"), c.dump());
        EXPECT_EQ(code, kUnsupportedField) << key;
        EXPECT_EQ(msg.rfind(start, 0), 0u) << msg;
    }
    json c = conf();
    c["ipam"]["type"] = "dhcp";
    auto [code, msg] = fails(env("ADD"), c.dump());
    EXPECT_EQ(code, kUnsupportedField);
    EXPECT_EQ(msg.rfind("ipam.type: \"dhcp\": ", 0), 0u) << msg;
    c = conf();
    c["ipam"]["routes"] = {{{"dst", "10.0.0.0/8"}}};
    EXPECT_EQ(fails(env("ADD"), c.dump()).second.rfind("ipam.routes[0].dst: \"10.0.0.0/8\": ", 0),
              0u);
    c = conf();
    c["ipam"]["ranges"][0].push_back({{"subnet", "10.89.0.0/16"}});
    EXPECT_EQ(fails(env("ADD"), c.dump()).first, kUnsupportedField);
    c = conf();
    c["runtimeConfig"] = {{"bandwidth", {{"ingressRate", 1000}}}};
    EXPECT_EQ(fails(env("ADD"), c.dump()).first, kUnsupportedField);
}

TEST(CniParse, CniArgs) {
    Env e = env("ADD");
    e["CNI_ARGS"] = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;IgnoreUnknown=1;FOO=bar";
    auto r = parse_cni(e, conf().dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->args.at("K8S_POD_NAME"), "web");
    e["CNI_ARGS"] = "FOO=bar";
    EXPECT_EQ(fails(e, conf().dump()),
              std::make_pair(kUnsupportedField,
                             std::string("CNI_ARGS: unknown argument FOO=bar (add IgnoreUnknown=1 "
                                         "to ignore it)")));
    e["CNI_ARGS"] = "IP=10.88.0.50;MAC=02:00:00:00:00:50";
    r = parse_cni(e, conf().dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->ip, "10.88.0.50");
    EXPECT_EQ(r->mac, "02:00:00:00:00:50");
    e["CNI_ARGS"] = "IP=10.88.0.300";
    EXPECT_EQ(fails(e, conf().dump()).second.rfind("CNI_ARGS IP: ", 0), 0u);
    e["CNI_ARGS"] = "novalue";
    EXPECT_EQ(fails(e, conf().dump()).first, kInvalidEnv);
}

TEST(CniParse, CapabilitiesAndPrecedence) {
    Env e = env("ADD");
    e["CNI_ARGS"] = "IP=10.88.0.9";
    json c = conf();
    c["runtimeConfig"] = {{"ips", {"10.88.0.7/16"}},
                          {"mac", "02:AA:00:00:00:01"},
                          {"portMappings",
                           {{{"hostPort", 8080}, {"containerPort", 80}, {"protocol", "TCP"}},
                            {{"hostPort", 5353},
                             {"containerPort", 53},
                             {"protocol", "udp"},
                             {"hostIP", "127.0.0.1"}}}}};
    c["args"] = {{"cni", {{"ips", {"10.88.0.8"}}}}};
    auto r = parse_cni(e, c.dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->ip, "10.88.0.7");  // runtimeConfig wins over args and CNI_ARGS
    EXPECT_EQ(r->mac, "02:aa:00:00:00:01");
    ASSERT_EQ(r->port_mappings.size(), 2u);
    EXPECT_EQ(r->port_mappings[0], (PortMapping{8080, 80, "tcp", ""}));
    EXPECT_EQ(r->port_mappings[1], (PortMapping{5353, 53, "udp", "127.0.0.1"}));
    c.erase("runtimeConfig");
    r = parse_cni(e, c.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->ip, "10.88.0.8");  // args.cni.ips over CNI_ARGS
}

TEST(CniParse, CnetdKeys) {
    json c = conf();
    c["cnetdSocket"] = "/tmp/x.sock";
    c["cnetdTimeout"] = 0.5;
    auto r = parse_cni(env("ADD"), c.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->conf.socket, "/tmp/x.sock");
    EXPECT_EQ(r->conf.timeout_ms, 500u);
    c["cnetdTimeout"] = -1;
    EXPECT_EQ(fails(env("ADD"), c.dump()).first, kInvalidConfig);
}

TEST(CniParse, LegacyIpamSubnetAndRanges) {
    json c = conf();
    c["ipam"] = {{"type", "host-local"},
                 {"subnet", "10.22.0.0/16"},
                 {"rangeStart", "10.22.1.0"},
                 {"rangeEnd", "10.22.1.255"},
                 {"dataDir", "/var/lib/cni"}};
    auto r = parse_cni(env("ADD"), c.dump());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->conf.subnet, "10.22.0.0/16");
    EXPECT_EQ(*ip_range_of(r->conf), "10.22.1.0/24");
    r->conf.range_start = "10.22.1.1";
    r->conf.range_end = "10.22.1.254";
    EXPECT_EQ(*ip_range_of(r->conf), "10.22.1.0/24");
    r->conf.range_start = "10.22.0.1";
    r->conf.range_end = "10.22.255.254";
    EXPECT_EQ(*ip_range_of(r->conf), "");  // the whole subnet
    r->conf.range_start = "10.22.1.3";
    r->conf.range_end = "10.22.1.9";
    auto bad = ip_range_of(r->conf);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(cni_code(bad.error()), kUnsupportedField);
    EXPECT_EQ(bad.error().message().rfind("ipam.rangeStart/rangeEnd: 10.22.1.3-10.22.1.9: ", 0),
              0u);
}

CniResult sample() {
    CniResult r;
    r.interfaces = {{"cni0", "", "", 0},
                    {"veth1234567", "", "", 0},
                    {"eth0", "02:00:00:00:00:01", "/run/netns/a", 0}};
    r.ips = {{"10.88.0.2/16", "10.88.0.1", 2}};
    r.routes = {{"0.0.0.0/0", "10.88.0.1"}};
    return r;
}

TEST(CniResultTest, Encode1x) {
    json j = encode_result(sample(), "1.1.0");
    EXPECT_EQ(j["cniVersion"], "1.1.0");
    EXPECT_EQ(j["interfaces"][2],
              json({{"name", "eth0"}, {"mac", "02:00:00:00:00:01"}, {"sandbox", "/run/netns/a"}}));
    EXPECT_EQ(j["ips"][0],
              json({{"address", "10.88.0.2/16"}, {"gateway", "10.88.0.1"}, {"interface", 2}}));
    EXPECT_EQ(j["routes"][0], json({{"dst", "0.0.0.0/0"}, {"gw", "10.88.0.1"}}));
    EXPECT_FALSE(j["ips"][0].contains("version"));
}

TEST(CniResultTest, EncodePre1HasVersion) {
    for (const char* v : {"0.3.0", "0.3.1", "0.4.0"}) {
        json j = encode_result(sample(), v);
        EXPECT_EQ(j["ips"][0]["version"], "4") << v;
        EXPECT_EQ(j["ips"][0]["interface"], 2) << v;
    }
}

TEST(CniResultTest, EncodeLegacy) {
    for (const char* v : {"0.1.0", "0.2.0"}) {
        json j = encode_result(sample(), v);
        EXPECT_EQ(j, json({{"cniVersion", v},
                           {"ip4",
                            {{"ip", "10.88.0.2/16"},
                             {"gateway", "10.88.0.1"},
                             {"routes", {{{"dst", "0.0.0.0/0"}, {"gw", "10.88.0.1"}}}}}},
                           {"dns", json::object()}}))
            << j.dump();
    }
}

TEST(CniResultTest, RoundTripEveryVersion) {
    for (const char* v : kSupportedVersions) {
        auto back = decode_result(encode_result(sample(), v), v);
        ASSERT_TRUE(back.ok()) << v << ": " << back.error().message();
        EXPECT_EQ(back->ips.size(), 1u) << v;
        EXPECT_EQ(back->ips[0].address, "10.88.0.2/16") << v;
        EXPECT_EQ(back->routes, sample().routes) << v;
        if (compare_versions(v, "0.3.0") >= 0) {
            EXPECT_EQ(back->interfaces, sample().interfaces) << v;
            EXPECT_EQ(back->ips, sample().ips) << v;
        }
    }
}

TEST(CniResultTest, DecodeErrorsNameTheField) {
    json j = encode_result(sample(), "1.0.0");
    j["ips"][0]["interface"] = 7;
    auto r = decode_result(j, "1.0.0");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(cni_code(r.error()), kInvalidConfig);
    EXPECT_EQ(r.error().message(),
              "prevResult.ips[0].interface: 7 is not an index of interfaces (there are 3)");
    j = encode_result(sample(), "1.0.0");
    j["routes"][0].erase("dst");
    EXPECT_EQ(decode_result(j, "1.0.0").error().message(), "prevResult.routes[0].dst: required");
}

TEST(CniResultTest, ChainingShiftsInterfaceIndexes) {
    CniResult prev;
    prev.interfaces = {{"lo", "", "/run/netns/a", 0}};
    prev.ips = {{"127.0.0.1/8", "", 0}};
    prev.dns = {{"nameservers", {"10.0.0.10"}}};
    CniResult all = append_result(prev, sample());
    ASSERT_EQ(all.interfaces.size(), 4u);
    EXPECT_EQ(all.interfaces[3].name, "eth0");
    ASSERT_EQ(all.ips.size(), 2u);
    EXPECT_EQ(all.ips[0].interface, 0);
    EXPECT_EQ(all.ips[1].interface, 3);
    EXPECT_EQ(all.dns["nameservers"][0], "10.0.0.10");
}

// The result's "dns": the daemon's resolver facts (docs/dns.md), unless the conf sets "dns".
TEST(CniResultTest, DnsFromTheDaemonUnlessTheConfSetsIt) {
    json d = result_dns(json::object(), {"127.0.0.11"}, {"corp.example"}, {"ndots:0"});
    EXPECT_EQ(d, json({{"nameservers", {"127.0.0.11"}},
                       {"search", {"corp.example"}},
                       {"options", {"ndots:0"}}}));
    // Empty lists are left out (the spec's omitempty); nothing known: {} as before.
    EXPECT_EQ(result_dns(json::object(), {"127.0.0.11"}, {}, {}),
              json({{"nameservers", {"127.0.0.11"}}}));
    EXPECT_EQ(result_dns(json::object(), {}, {}, {}), json::object());
    const json conf = {{"nameservers", {"10.96.0.10"}}, {"domain", "cluster.local"}};
    EXPECT_EQ(result_dns(conf, {"127.0.0.11"}, {"corp.example"}, {}), conf);
    // In every version's shape, including the legacy one's top-level "dns".
    CniResult r = sample();
    r.dns = d;
    for (const char* v : kSupportedVersions) {
        EXPECT_EQ(encode_result(r, v)["dns"], d) << v;
        auto back = decode_result(encode_result(r, v), v);
        ASSERT_TRUE(back.ok()) << v << ": " << back.error().message();
        EXPECT_EQ(back->dns, d) << v;
    }
}

TEST(CniErrors, EncodeAndCodes) {
    json e = encode_error("0.4.0", kUnsupportedField, "vlan: 100: no", "more");
    EXPECT_EQ(
        e,
        json(
            {{"cniVersion", "0.4.0"}, {"code", 2}, {"msg", "vlan: 100: no"}, {"details", "more"}}));
    EXPECT_EQ(cni_code(Error::not_found("x")), kUnknownContainer);
    EXPECT_EQ(cni_code(Error::conflict("x")), kInvalidConfig);
    EXPECT_EQ(cni_code(Error(ErrorKind::Unavailable, "x")), kTryAgainLater);
    EXPECT_EQ(cni_code(Error(ErrorKind::Kernel, "x", EEXIST)), kDaemonFailure);
    EXPECT_EQ(cni_code(cni_error(kTryAgainLater, "x")), kTryAgainLater);
}

TEST(CniVersions, Compare) {
    EXPECT_LT(compare_versions("0.3.1", "0.4.0"), 0);
    EXPECT_LT(compare_versions("0.4.0", "1.0.0"), 0);
    EXPECT_EQ(compare_versions("1.1.0", "1.1.0"), 0);
    EXPECT_GT(compare_versions("1.1.0", "1.0.0"), 0);
    EXPECT_LT(compare_versions("garbage", "0.1.0"), 0);
    EXPECT_TRUE(version_supported("0.3.1"));
    EXPECT_FALSE(version_supported("1.2.0"));
}

}  // namespace
}  // namespace cnetd::cni

#ifdef CNETD_EXAMPLE_CONFLIST
#include <fstream>
namespace cnetd::cni {
namespace {
// The shipped example conflist's entry is valid for every verb, as a runtime would send it.
TEST(CniExample, ShippedConflistParses) {
    std::ifstream in(CNETD_EXAMPLE_CONFLIST);
    json list = json::parse(in);
    json entry = list["plugins"][0];
    entry["name"] = list["name"];
    entry["cniVersion"] = list["cniVersion"];
    for (const char* cmd : {"ADD", "DEL", "CHECK", "VERSION"}) {
        auto r = parse_cni(env(cmd), entry.dump());
        ASSERT_TRUE(r.ok()) << cmd << ": " << r.error().message();
    }
    auto r = parse_cni(env("ADD"), entry.dump());
    EXPECT_EQ(r->conf.subnet, "10.88.0.0/16");
    EXPECT_EQ(r->conf.bridge, "cni0");
}
}  // namespace
}  // namespace cnetd::cni
#endif
