// The shipped, annotated config must load and must say exactly what the defaults are.
#include <gtest/gtest.h>

#include "config/config.hpp"

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
