#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "config/config.hpp"

using namespace cnetd;

namespace {
std::string err(std::string_view yaml) {
    auto r = config::parse(yaml, "cnetd.yaml");
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? "" : r.error().message();
}
}  // namespace

TEST(Config, DefaultsWhenEmpty) {
    auto c = config::parse("", "x");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->default_net.bridge, "docker0");
    EXPECT_EQ(c->default_net.bip.str(), "172.17.0.1/16");
    EXPECT_EQ(c->netns_dir, "/var/run/docker/netns");
    EXPECT_EQ(c->socket, "/run/cnetd/cnetd.sock");
    EXPECT_EQ(c->state_dir, "/var/lib/cnetd");
    EXPECT_TRUE(c->ip_forward && c->icc && c->ip_masq && c->default_network);
    EXPECT_EQ(c->mtu, 0u);  // not set: the default route interface's MTU
}

TEST(Config, DockerDaemonJsonParses) {
    auto c = config::parse(R"({"bip": "10.200.0.1/24", "fixed-cidr": "10.200.0.128/25", "mtu": 1450,
        "icc": false, "ip-masq": false, "ip-forward": false, "log-driver": "json-file",
        "storage-driver": "overlay2"})", "daemon.json");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->default_net.bip.str(), "10.200.0.1/24");
    EXPECT_EQ(c->default_net.fixed_cidr->str(), "10.200.0.128/25");
    EXPECT_EQ(c->mtu, 1450u);
    EXPECT_EQ(c->default_net.mtu, 1450u);
    EXPECT_FALSE(c->icc || c->ip_masq || c->ip_forward);
    ASSERT_EQ(c->warnings.size(), 2u);
    EXPECT_EQ(c->warnings[0], "daemon.json: log-driver: Docker key not used by cnetd, ignored");
}

TEST(Config, CnetdKeysAndBridgeNone) {
    auto c = config::parse("socket: /tmp/s.sock\nstate-dir: /tmp/st\nnetns-dir: /tmp/ns\nbridge: none\n"
                           "log-level: debug\n", "x");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->socket, "/tmp/s.sock");
    EXPECT_EQ(c->state_dir, "/tmp/st");
    EXPECT_EQ(c->netns_dir, "/tmp/ns");
    EXPECT_FALSE(c->default_network);
    EXPECT_EQ(c->log_level, "debug");
    EXPECT_EQ(config::parse("bridge: br0\n", "x")->default_net.bridge, "br0");
    EXPECT_EQ(config::parse("", "x")->firewall, "nftables");
    EXPECT_EQ(config::parse("firewall: none\n", "x")->firewall, "none");
    EXPECT_EQ(config::parse("ip: 127.0.0.1\n", "x")->default_host_ip->str(), "127.0.0.1");
    EXPECT_FALSE(config::parse("ip: 0.0.0.0\n", "x")->default_host_ip.has_value());
    EXPECT_EQ(err("ip: \"::1\"\n"), "cnetd.yaml: ip: \"::1\": IPv6 host addresses are not supported yet");
    EXPECT_EQ(err("ip: 1.2.3\n"), "cnetd.yaml: ip: \"1.2.3\" is not an IPv4 address");
    EXPECT_EQ(config::parse("{\"iptables\": false}", "x")->firewall, "none");  // Docker's switch
    EXPECT_EQ(config::parse("{\"iptables\": true}", "x")->firewall, "nftables");
    EXPECT_EQ(err("firewall: iptables\n"), "cnetd.yaml: firewall: \"iptables\" is not one of nftables, none");
}

TEST(Config, PreciseErrors) {
    EXPECT_EQ(err("bip: 10.0.0.1/33\n"), "cnetd.yaml: bip: \"10.0.0.1/33\": prefix length 33 > 32");
    EXPECT_EQ(err("bip: 10.0.0.0/24\n"),
              "cnetd.yaml: bip: \"10.0.0.0/24\" is the network or broadcast address, not a gateway "
              "address (e.g. 10.0.0.1/24)");
    EXPECT_EQ(err("fixed-cidr: 10.9.0.0/24\n"),
              "cnetd.yaml: fixed-cidr: 10.9.0.0/24 is not inside the bridge subnet 172.17.0.0/16");
    EXPECT_EQ(err("fixed-cidr: 172.17.0.1/24\n"),
              "cnetd.yaml: fixed-cidr: \"172.17.0.1/24\" has host bits set (did you mean 172.17.0.0/24?)");
    EXPECT_EQ(err("mtu: 12\n"), "cnetd.yaml: mtu: 12 is out of range (68..65535)");
    EXPECT_EQ(err("mtu: big\n"), "cnetd.yaml: mtu: expected a whole number, got \"big\"");
    EXPECT_EQ(err("icc: maybe\n"), "cnetd.yaml: icc: expected true or false, got \"maybe\"");
    EXPECT_EQ(err("bridg: docker0\n"), "cnetd.yaml: bridg: unknown key");
    EXPECT_EQ(err("bridge: averyveryverylongname\n"),
              "cnetd.yaml: bridge: interface name \"averyveryverylongname\" is 21 characters long (the "
              "limit is 15)");
    EXPECT_EQ(err("socket: relative.sock\n"), "cnetd.yaml: socket: \"relative.sock\" is not an absolute path");
    EXPECT_EQ(err("bip: [1, 2]\n"), "cnetd.yaml: bip: expected a string, got a list");
    EXPECT_EQ(err("- a\n- b\n"), "cnetd.yaml: expected a mapping of keys, got a list");
    EXPECT_EQ(err("log-level: loud\n"), "cnetd.yaml: log-level: \"loud\" is not one of debug, info, warning, error");
    std::string syntax = err("bip: [unclosed\n");
    EXPECT_EQ(syntax.rfind("cnetd.yaml: line ", 0), 0u) << syntax;  // YAML syntax error with position
}

// Numbers far beyond any range, in YAML and in daemon.json form: every one is an error naming the
// key (none may reach std::stoul, which throws out_of_range).
TEST(Config, HugeNumbersNameTheKey) {
    EXPECT_EQ(err("mtu: 99999999999999999999999\n"),
              "cnetd.yaml: mtu: \"99999999999999999999999\" is out of range (68..65535)");
    EXPECT_EQ(err("mtu: 1500000\n"), "cnetd.yaml: mtu: \"1500000\" is out of range (68..65535)");
    EXPECT_EQ(err(R"({"mtu": 1e999})"), "cnetd.yaml: mtu: expected a whole number, got \"1e999\"");
    EXPECT_EQ(err("mtu: " + std::string(400, '9') + "\n"),
              "cnetd.yaml: mtu: \"" + std::string(37, '9') + "...\" is out of range (68..65535)");
    EXPECT_EQ(err(R"({"max-connections": 1e999})"),
              "cnetd.yaml: max-connections: expected a whole number from 1 to 65536, got "
              "\"1e999\"");
    EXPECT_EQ(err("max-connections: 18446744073709551617\n"),
              "cnetd.yaml: max-connections: expected a whole number from 1 to 65536, got "
              "\"18446744073709551617\"");
    EXPECT_EQ(err(R"({"default-address-pools": [{"base": "10.0.0.0/8", "size": 1e999}]})"),
              "cnetd.yaml: default-address-pools[0].size: expected a prefix length (a whole number "
              "up to 128), got \"1e999\"");
    EXPECT_EQ(err("default-address-pools: [{base: 10.0.0.0/8, size: 99999999999}]\n"),
              "cnetd.yaml: default-address-pools[0].size: expected a prefix length (a whole number "
              "up to 128), got \"99999999999\"");
}

TEST(Config, LoadFile) {
    auto missing = config::load("/nonexistent/cnetd.yaml", false);
    ASSERT_TRUE(missing.ok());
    EXPECT_EQ(missing->default_net.bridge, "docker0");
    auto must = config::load("/nonexistent/cnetd.yaml", true);
    ASSERT_FALSE(must.ok());
    EXPECT_EQ(must.error().message(), "read config /nonexistent/cnetd.yaml: No such file or directory");
    char path[] = "/tmp/cnetd-config-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    std::ofstream(path) << "bip: 10.200.0.1/24\n";
    auto c = config::load(path, true);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->default_net.bip.str(), "10.200.0.1/24");
    std::remove(path);
}
