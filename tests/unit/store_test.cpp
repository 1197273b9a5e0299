#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/file_store.hpp"

using namespace cnetd;

namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cnetd-store-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir = std::string(tmpl) + "/state";
    }
    void TearDown() override { std::filesystem::remove_all(std::filesystem::path(dir).parent_path()); }
    std::string dir;
};

core::Network sample() {
    core::Network n;
    n.id = std::string(64, 'a');
    n.name = "web";
    n.bridge = "br-aaaaaaaaaaaa";
    n.subnet = *Ipv4Cidr::parse("10.10.0.0/24");
    n.gateway = *Ipv4::parse("10.10.0.1");
    n.ip_range = *Ipv4Cidr::parse("10.10.0.128/25");
    n.mtu = 1450;
    n.created = "2026-11-28T00:00:00Z";
    n.options[core::kOptBridgeName] = n.bridge;
    core::Endpoint e;
    e.id = std::string(64, 'b');
    e.name = "a";
    e.netns_path = "/run/netns/a";
    e.netns_id = {4, 4026532000};
    e.host_ifname = "veth1234567";
    e.ifname = "eth0";
    e.mac = *Mac::parse("02:11:22:33:44:55");
    e.address = *Ipv4Cidr::parse("10.10.0.130/24");
    e.ports = {{core::Proto::Tcp, std::nullopt, {8080, 8080}, {80, 80}},
               {core::Proto::Udp, *Ipv4::parse("127.0.0.1"), {9000, 9002}, {53, 55}}};
    n.endpoints[e.id] = e;
    return n;
}

}  // namespace

TEST_F(StoreTest, RoundTripAndPermissions) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    struct stat st {};
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(s.load()->empty());  // nothing saved yet
    ASSERT_TRUE(s.save({sample()}).ok());
    EXPECT_FALSE(std::filesystem::exists(s.path() + ".tmp"));
    auto loaded = s.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_EQ(loaded->size(), 1u);
    const auto& n = (*loaded)[0];
    EXPECT_EQ(n.name, "web");
    EXPECT_EQ(n.ip_range->str(), "10.10.0.128/25");
    EXPECT_EQ(n.mtu, 1450u);
    const auto& e = n.endpoints.begin()->second;
    EXPECT_EQ(e.address.str(), "10.10.0.130/24");
    EXPECT_EQ(e.mac.str(), "02:11:22:33:44:55");
    EXPECT_EQ(e.netns_id.ino, 4026532000u);
    EXPECT_EQ(e.ports, sample().endpoints.begin()->second.ports);
}

TEST_F(StoreTest, CorruptFileIsReportedNotDropped) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.save({sample()}).ok());
    std::filesystem::resize_file(s.path(), 100);  // a torn write
    auto r = s.load();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(s.path() + " is corrupt"), std::string::npos) << r.error().message();
    EXPECT_EQ(std::filesystem::file_size(s.path()), 100u);  // left as it was for inspection
    std::ofstream(s.path()) << R"({"version": 1, "networks": [{"id": "x"}]})";
    EXPECT_FALSE(s.load().ok());
    std::ofstream(s.path()) << R"({"version": 9, "networks": []})";
    EXPECT_NE(s.load().error().message().find("format version 9 is not supported"), std::string::npos);
}

TEST_F(StoreTest, InitRejectsAFile) {
    std::ofstream(dir) << "x";
    store::FileStateStore s(dir);
    auto r = s.init();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "state dir " + dir + " is not a directory");
}
