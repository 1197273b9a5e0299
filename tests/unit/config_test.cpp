#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <unistd.h>

#include "config/config.hpp"
#include "config/reload.hpp"

namespace config_test {  // file-local names and using-directives: see "unity" in tests/meson.build

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

// `cluster:` (overlay networks): defaults, every key, and path-qualified errors.
TEST(Config, ClusterKeysAndDefaults) {
    EXPECT_FALSE(config::parse("", "x")->cluster.has_value());  // absent: no cluster
    auto c = config::parse(
        "cluster:\n  etcd: [http://192.0.2.1:2379, http://192.0.2.2:2379]\n"
        "  node-name: n1\n  advertise-address: 192.0.2.1\n",
        "x");
    ASSERT_TRUE(c.ok()) << c.error().message();
    ASSERT_TRUE(c->cluster);
    const auto& k = *c->cluster;
    EXPECT_EQ(k.etcd, (std::vector<std::string>{"http://192.0.2.1:2379", "http://192.0.2.2:2379"}));
    EXPECT_EQ(k.node_name, "n1");
    EXPECT_EQ(k.advertise_address.str(), "192.0.2.1");
    EXPECT_EQ(k.vxlan_port, 4789);
    EXPECT_EQ(k.lease_ttl, 3600u);
    EXPECT_EQ(k.lease_renew_margin, 900u);
    EXPECT_TRUE(k.tls_ca.empty() && k.tls_cert.empty() && k.tls_key.empty());

    // node-name defaults to the hostname.
    char host[256] = {};
    ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
    auto d = config::parse("cluster: {etcd: [http://127.0.0.1:2379], advertise-address: 192.0.2.9}",
                           "x");
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_EQ(d->cluster->node_name, host);

    auto all = config::parse(
        "cluster:\n  etcd: [https://etcd.example:2379]\n  node-name: a.b_c-1\n"
        "  advertise-address: 198.51.100.7\n  vxlan-port: 8472\n"
        "  tls: {ca: /dev/null, cert: /dev/null, key: /dev/null}\n"
        "  lease-ttl: 60\n  lease-renew-margin: 20\n",
        "x");
    ASSERT_TRUE(all.ok()) << all.error().message();
    EXPECT_EQ(all->cluster->vxlan_port, 8472);
    EXPECT_EQ(all->cluster->tls_ca, "/dev/null");
    EXPECT_EQ(all->cluster->lease_ttl, 60u);
    EXPECT_EQ(all->cluster->lease_renew_margin, 20u);
}

TEST(Config, ClusterErrorsNameTheKey) {
    const std::string ok_base =
        "cluster:\n  etcd: [http://192.0.2.1:2379]\n  advertise-address: 192.0.2.1\n";
    EXPECT_EQ(err("cluster:\n  etcd: [http://192.0.2.1:2379]\n  advertise-address: x\n"),
              "cnetd.yaml: cluster.advertise-address: \"x\" is not an IPv4 address");
    EXPECT_EQ(err("cluster:\n  etcd: [http://192.0.2.1:2379]\n  advertise-address: 127.0.0.1\n"),
              "cnetd.yaml: cluster.advertise-address: \"127.0.0.1\": not a unicast address other "
              "nodes can reach");
    EXPECT_EQ(err("cluster:\n  etcd: [http://192.0.2.1:2379]\n"),
              "cnetd.yaml: cluster.advertise-address: missing (this node's underlay IPv4 address, "
              "which the others reach)");
    EXPECT_EQ(err("cluster:\n  advertise-address: 192.0.2.1\n"),
              "cnetd.yaml: cluster.etcd: missing (a list of etcd endpoints)");
    EXPECT_EQ(err("cluster:\n  etcd: []\n  advertise-address: 192.0.2.1\n"),
              "cnetd.yaml: cluster.etcd: the list is empty (at least one endpoint)");
    EXPECT_EQ(
        err("cluster:\n  etcd: http://192.0.2.1:2379\n  advertise-address: 192.0.2.1\n"),
        "cnetd.yaml: cluster.etcd: expected a list of endpoints, got \"http://192.0.2.1:2379\"");
    EXPECT_EQ(err("cluster:\n  etcd: [http://192.0.2.1:2379, 192.0.2.2:2379]\n  advertise-address: "
                  "192.0.2.1\n"),
              "cnetd.yaml: cluster.etcd[1]: \"192.0.2.2:2379\" is not an etcd endpoint "
              "(http://host:port or https://host:port)");
    EXPECT_EQ(err("cluster:\n  etcd: [http://192.0.2.1:99999]\n  advertise-address: 192.0.2.1\n"),
              "cnetd.yaml: cluster.etcd[0]: \"http://192.0.2.1:99999\" is not an etcd endpoint "
              "(http://host:port or https://host:port)");
    EXPECT_EQ(
        err(ok_base + "  node-name: a/b\n"),
        "cnetd.yaml: cluster.node-name: \"a/b\" is not a node name (1 to 63 of A-Z a-z 0-9 . _ -)");
    EXPECT_EQ(err(ok_base + "  node-name: " + std::string(64, 'n') + "\n"),
              "cnetd.yaml: cluster.node-name: \"" + std::string(64, 'n') +
                  "\" is not a node name (1 to 63 of A-Z a-z 0-9 . _ -)");
    EXPECT_EQ(err(ok_base + "  vxlan-port: 0\n"),
              "cnetd.yaml: cluster.vxlan-port: expected a whole number from 1 to 65535, got \"0\"");
    EXPECT_EQ(err(ok_base + "  vxlan-port: 99999999999999999999\n"),
              "cnetd.yaml: cluster.vxlan-port: expected a whole number from 1 to 65535, got "
              "\"99999999999999999999\"");
    EXPECT_EQ(
        err(ok_base + "  lease-ttl: 9\n"),
        "cnetd.yaml: cluster.lease-ttl: expected a whole number from 10 to 604800, got \"9\"");
    EXPECT_EQ(err(ok_base + "  lease-ttl: 60\n  lease-renew-margin: 60\n"),
              "cnetd.yaml: cluster.lease-renew-margin: 60 must be less than lease-ttl (60)");
    EXPECT_EQ(err(ok_base + "  lease-renew-margin: 0\n"),
              "cnetd.yaml: cluster.lease-renew-margin: expected a whole number from 1 to 604800, "
              "got \"0\"");
    EXPECT_EQ(err(ok_base + "  tls: {ca: /dev/null}\n"),
              "cnetd.yaml: cluster.tls: needs all three of ca, cert and key");
    EXPECT_EQ(err(ok_base + "  tls: {ca: /dev/null, cert: /dev/null, key: /nonexistent/k.pem}\n"),
              "cnetd.yaml: cluster.tls.key: \"/nonexistent/k.pem\": No such file or directory");
    EXPECT_EQ(err(ok_base + "  tls: {ca: rel.pem, cert: /dev/null, key: /dev/null}\n"),
              "cnetd.yaml: cluster.tls.ca: \"rel.pem\" is not an absolute path");
    EXPECT_EQ(err(ok_base + "  tls: {ca: /dev/null, cert: /dev/null, key: /dev/null, pin: x}\n"),
              "cnetd.yaml: cluster.tls: unknown key \"pin\" (tls has ca, cert and key)");
    EXPECT_EQ(err("cluster:\n  etcd: [https://192.0.2.1:2379]\n  advertise-address: 192.0.2.1\n"),
              "cnetd.yaml: cluster.tls: missing: the https endpoint https://192.0.2.1:2379 needs "
              "{ca, cert, key}");
    EXPECT_EQ(err(ok_base + "  vxlan_port: 4789\n"),
              "cnetd.yaml: cluster: unknown key \"vxlan_port\" (cluster has etcd, node-name, "
              "advertise-address, vxlan-port, tls, lease-ttl, lease-renew-margin)");
    EXPECT_EQ(err("cluster: yes\n"), "cnetd.yaml: cluster: expected a mapping, got \"yes\"");
}

// A reload never applies `cluster:` (the agent, its lease and VXLAN devices are made at start):
// added, changed or removed, it is reported pending and the running config keeps the old one.
TEST(Config, ClusterIsRestartOnly) {
    auto none = config::parse("", "x");
    auto one = config::parse(
        "cluster: {etcd: [http://192.0.2.1:2379], node-name: n1, "
        "advertise-address: 192.0.2.1}",
        "x");
    auto two = config::parse(
        "cluster: {etcd: [http://192.0.2.1:2379], node-name: n1, "
        "advertise-address: 192.0.2.1, lease-ttl: 120, lease-renew-margin: 30}",
        "x");
    ASSERT_TRUE(none.ok() && one.ok() && two.ok());
    auto added = config::diff(*none, *one);
    EXPECT_TRUE(added.live.empty());
    ASSERT_EQ(added.restart.size(), 1u) << added.summary();
    EXPECT_EQ(added.restart[0].key, "cluster");
    EXPECT_EQ(added.restart[0].old_value, "(unset)");
    EXPECT_EQ(added.restart[0].new_value.rfind("{etcd: [http://192.0.2.1:2379], node-name: n1, "
                                               "advertise-address: 192.0.2.1, vxlan-port: 4789",
                                               0),
              0u)
        << added.restart[0].new_value;
    EXPECT_FALSE(config::is_live_key("cluster"));
    auto changed = config::diff(*one, *two);
    ASSERT_EQ(changed.restart.size(), 1u);
    EXPECT_NE(changed.restart[0].new_value.find("lease-ttl: 120"), std::string::npos);
    EXPECT_FALSE(config::apply_live(*one, *two).cluster->lease_ttl == 120u);
    EXPECT_FALSE(config::apply_live(*none, *one).cluster.has_value());
    EXPECT_EQ(config::diff(*one, *none).restart.at(0).new_value, "(unset)");
}

}  // namespace config_test
