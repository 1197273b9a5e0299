// The shipped, annotated config must load and must say exactly what the defaults are.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "config/config.hpp"

namespace example_config_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;

TEST(ExampleConfig, LoadsAndEqualsTheDefaults) {
    auto c = config::load(CNETD_EXAMPLE_CONFIG, true);
    ASSERT_TRUE(c.ok()) << c.error().message();
    config::Config d;
    EXPECT_TRUE(c->warnings.empty());
    EXPECT_EQ(c->default_net.bridge, d.default_net.bridge);
    EXPECT_EQ(c->default_net.bip, d.default_net.bip);
    EXPECT_EQ(c->default_net.fixed_cidr, d.default_net.fixed_cidr);
    EXPECT_EQ(c->mtu, d.mtu);
    EXPECT_EQ(c->ip_forward, d.ip_forward);
    EXPECT_EQ(c->icc, d.icc);
    EXPECT_EQ(c->ip_masq, d.ip_masq);
    EXPECT_EQ(c->socket, d.socket);
    EXPECT_EQ(c->state_dir, d.state_dir);
    EXPECT_EQ(c->netns_dir, d.netns_dir);
    EXPECT_EQ(c->log_level, d.log_level);
    EXPECT_EQ(c->firewall, d.firewall);
    EXPECT_EQ(c->default_host_ip, d.default_host_ip);
    EXPECT_EQ(c->group, d.group);
    EXPECT_EQ(c->read_group, d.read_group);
    EXPECT_EQ(c->max_connections, d.max_connections);
}

// The commented `cluster:` example: absent as shipped; uncommented (without its tls line, whose
// files do not exist here) it parses and its lease/port values are the defaults.
TEST(ExampleConfig, ClusterExampleParsesAndShowsTheDefaults) {
    auto shipped = config::load(CNETD_EXAMPLE_CONFIG, true);
    ASSERT_TRUE(shipped.ok());
    EXPECT_FALSE(shipped->cluster.has_value());
    std::ifstream in(CNETD_EXAMPLE_CONFIG);
    std::string line, text;
    bool in_cluster = false;
    while (std::getline(in, line)) {
        if (line == "#cluster:") in_cluster = true;
        if (!in_cluster || line.rfind("#", 0) != 0) continue;
        line = line.substr(1);
        if (line.find("tls:") != std::string::npos && line.find("  #") != 0) continue;
        text += line + "\n";
    }
    ASSERT_FALSE(text.empty());
    auto c = config::parse(text, "example cluster:");
    ASSERT_TRUE(c.ok()) << c.error().message() << "\n" << text;
    ASSERT_TRUE(c->cluster);
    config::ClusterConfig d;
    EXPECT_EQ(c->cluster->vxlan_port, d.vxlan_port);
    EXPECT_EQ(c->cluster->lease_ttl, d.lease_ttl);
    EXPECT_EQ(c->cluster->lease_renew_margin, d.lease_renew_margin);
    EXPECT_EQ(c->cluster->etcd.size(), 3u);
    EXPECT_EQ(c->cluster->advertise_address.str(), "192.0.2.1");
}

}  // namespace example_config_test
