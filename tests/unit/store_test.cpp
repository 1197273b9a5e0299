// lib/store: snapshot + journal round trips, migration from the v1 file, torn and corrupt files,
// the daemon ID, and the cost of a save (flat in the size of the state).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "store/file_store.hpp"

using namespace cnetd;
namespace fs = std::filesystem;

namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cnetd-store-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir = std::string(tmpl) + "/state";
    }
    void TearDown() override { fs::remove_all(fs::path(dir).parent_path()); }
    std::string read(const std::string& p) {
        std::ifstream in(p);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    std::string dir;
};

core::Endpoint endpoint(int i) {
    core::Endpoint e;
    e.id = fmt::format("{:064x}", i + 1);
    e.name = fmt::format("c{}", i);
    e.netns_path = fmt::format("/run/netns/c{}", i);
    e.netns_id = {4, 4026532000u + i};
    e.host_ifname = fmt::format("veth{:07x}", i);
    e.ifname = "eth0";
    e.mac = *Mac::parse("02:11:22:33:44:55");
    e.address = Ipv4Cidr(Ipv4(0x0A0A0000u + 2 + i), 16);
    return e;
}

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
    n.host_ipv4 = *Ipv4::parse("192.0.2.7");
    n.host_binding = *Ipv4::parse("127.0.0.1");
    n.internal = true;
    n.icc = false;
    n.subnet6 = *Ipv6Cidr::parse("fd12:3456:789a:1::/64");
    n.gateway6 = *Ipv6::parse("fd12:3456:789a:1::1");
    n.ip_range6 = *Ipv6Cidr::parse("fd12:3456:789a:1:8000::/65");
    n.labels = {{"team", "a"}, {"env", "prod"}};
    n.aux_addresses = {{"router", "10.10.0.5"}};
    n.mode4 = firewall::GatewayMode::Routed;
    n.mode6 = firewall::GatewayMode::NatUnprotected;
    n.inhibit_ipv4 = true;
    n.iface_prefix = "net";
    core::Endpoint e;
    e.id = std::string(64, 'b');
    e.name = "a";
    e.netns_path = "/run/netns/a";
    e.netns_id = {4, 4026532000};
    e.host_ifname = "veth1234567";
    e.ifname = "eth0";
    e.mac = *Mac::parse("02:11:22:33:44:55");
    e.address = *Ipv4Cidr::parse("10.10.0.130/24");
    e.address6 = *Ipv6Cidr::parse("fd12:3456:789a:1::2/64");
    e.container_id = "c0ffee";
    e.ports = {{core::Proto::Tcp, std::nullopt, {8080, 8080}, {80, 80}},
               {core::Proto::Udp, *Ipv4::parse("127.0.0.1"), {9000, 9002}, {53, 55}}};
    core::PortBinding v6;
    v6.proto = core::Proto::Tcp;
    v6.host = {8443, 8443};
    v6.container = {443, 443};
    v6.ipv6 = true;
    v6.host_ip6 = *Ipv6::parse("::1");
    e.ports.push_back(v6);
    n.endpoints.put(e);
    return n;
}

void expect_same(const core::Network& a, const core::Network& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.bridge, b.bridge);
    EXPECT_EQ(a.subnet, b.subnet);
    EXPECT_EQ(a.gateway, b.gateway);
    EXPECT_EQ(a.ip_range, b.ip_range);
    EXPECT_EQ(a.mtu, b.mtu);
    EXPECT_EQ(a.is_default, b.is_default);
    EXPECT_EQ(a.internal, b.internal);
    EXPECT_EQ(a.icc, b.icc);
    EXPECT_EQ(a.masquerade, b.masquerade);
    EXPECT_EQ(a.host_ipv4, b.host_ipv4);
    EXPECT_EQ(a.host_binding, b.host_binding);
    EXPECT_EQ(a.bridge_adopted, b.bridge_adopted);
    EXPECT_EQ(a.created, b.created);
    EXPECT_EQ(a.options, b.options);
    EXPECT_EQ(a.subnet6, b.subnet6);
    EXPECT_EQ(a.gateway6, b.gateway6);
    EXPECT_EQ(a.ip_range6, b.ip_range6);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.aux_addresses, b.aux_addresses);
    EXPECT_EQ(a.mode4, b.mode4);
    EXPECT_EQ(a.mode6, b.mode6);
    EXPECT_EQ(a.inhibit_ipv4, b.inhibit_ipv4);
    EXPECT_EQ(a.iface_prefix, b.iface_prefix);
    ASSERT_EQ(a.endpoints.size(), b.endpoints.size());
    for (const auto& [id, e] : a.endpoints) {
        ASSERT_TRUE(b.endpoints.count(id)) << id;
        const auto& f = b.endpoints.at(id);
        EXPECT_EQ(e.name, f.name);
        EXPECT_EQ(e.netns_path, f.netns_path);
        EXPECT_EQ(e.netns_id, f.netns_id);
        EXPECT_EQ(e.host_ifname, f.host_ifname);
        EXPECT_EQ(e.ifname, f.ifname);
        EXPECT_EQ(e.mac, f.mac);
        EXPECT_EQ(e.address, f.address);
        EXPECT_EQ(e.address6, f.address6);
        EXPECT_EQ(e.container_id, f.container_id);
        EXPECT_EQ(e.ports, f.ports);
    }
}

}  // namespace

TEST_F(StoreTest, RoundTripEveryFieldAndPermissions) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    struct stat st {};
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_TRUE(s.load()->empty());  // nothing saved yet
    ASSERT_TRUE(s.save({sample()}).ok());
    EXPECT_FALSE(fs::exists(s.path() + ".tmp"));
    // A fresh store (a restarted daemon) reads it back, field by field.
    store::FileStateStore s2(dir);
    auto loaded = s2.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_EQ(loaded->size(), 1u);
    expect_same(sample(), (*loaded)[0]);
}

TEST_F(StoreTest, JournalRecordsOnlyTheChangeAndReplays) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    core::Network n = sample();
    ASSERT_TRUE(s.save({n}).ok());  // first save: a snapshot
    const std::string snap = read(s.path());
    // Add an endpoint, change a network field, remove the first endpoint: journal only.
    core::Endpoint e2 = endpoint(7);
    n.endpoints.put(e2);
    ASSERT_TRUE(s.save({n}).ok());
    std::string j1 = read(s.journal_path());
    EXPECT_NE(j1.find("put_ep"), std::string::npos);
    EXPECT_EQ(j1.find("put_net"), std::string::npos) << j1;  // the network did not change
    EXPECT_EQ(j1.find(sample().endpoints.begin()->second.host_ifname), std::string::npos) << j1;
    n.labels["new"] = "yes";
    n.endpoints.erase(std::string(64, 'b'));
    ASSERT_TRUE(s.save({n}).ok());
    EXPECT_TRUE(s.save({n}).ok());  // no change: nothing appended
    std::string j2 = read(s.journal_path());
    EXPECT_EQ(std::count(j2.begin(), j2.end(), '\n'), 2);
    EXPECT_EQ(read(s.path()), snap);  // the snapshot was not rewritten
    store::FileStateStore s2(dir);
    auto loaded = s2.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_EQ(loaded->size(), 1u);
    expect_same(n, (*loaded)[0]);
    // Removing the network.
    ASSERT_TRUE(s2.save({}).ok());
    store::FileStateStore s3(dir);
    EXPECT_TRUE(s3.load()->empty());
}

TEST_F(StoreTest, CompactionKeepsEverythingAndTruncatesTheJournal) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    s.set_compact_floor(4096);
    core::Network n = sample();
    for (int i = 0; i < 200; ++i) {
        core::Endpoint e = endpoint(i);
        n.endpoints.put(e);
        ASSERT_TRUE(s.save({n}).ok());
        if (i % 3 == 0) {
            n.endpoints.erase(e.id);
            ASSERT_TRUE(s.save({n}).ok());
        }
    }
    EXPECT_GE(s.compactions(), 2u);
    EXPECT_LT(fs::file_size(s.journal_path()), 64u * 1024);
    store::FileStateStore s2(dir);
    auto loaded = s2.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    expect_same(n, (*loaded)[0]);
}

TEST_F(StoreTest, MigratesTheV1File) {
    ASSERT_TRUE(store::FileStateStore(dir).init().ok());
    // The format written by the previous store (no seq, no v2 fields).
    std::ofstream(dir + "/state.json") << R"({"version": 1, "networks": [{
        "id": "aaaa", "name": "bridge", "bridge": "docker0", "subnet": "172.17.0.0/16",
        "gateway": "172.17.0.1", "mtu": 1500, "is_default": true, "internal": false, "icc": true,
        "masquerade": true, "bridge_adopted": false, "created": "2026-01-01T00:00:00Z",
        "options": {}, "endpoints": [{"id": "bbbb", "name": "a", "netns_path": "/run/netns/a",
        "netns_dev": 4, "netns_ino": 99, "host_ifname": "veth0000001", "ifname": "eth0",
        "mac": "02:00:00:00:00:01", "address": "172.17.0.2/16",
        "ports": [{"proto": "tcp", "host": [8080, 8080], "container": [80, 80]}]}]}]})";
    store::FileStateStore s(dir);
    auto loaded = s.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_EQ(loaded->size(), 1u);
    const auto& n = (*loaded)[0];
    EXPECT_EQ(n.iface_prefix, "eth");
    EXPECT_EQ(n.mode4, firewall::GatewayMode::Nat);
    ASSERT_EQ(n.endpoints.size(), 1u);
    EXPECT_EQ(n.endpoints.at("bbbb").ports.size(), 1u);
    ASSERT_TRUE(s.save(*loaded).ok());  // the first save writes the v2 snapshot
    EXPECT_NE(read(s.path()).find("\"version\": 2"), std::string::npos);
    store::FileStateStore s2(dir);
    auto again = s2.load();
    ASSERT_TRUE(again.ok());
    expect_same(n, (*again)[0]);
}

TEST_F(StoreTest, TornJournalTailIsReportedCutAndKept) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    core::Network n = sample();
    ASSERT_TRUE(s.save({n}).ok());
    core::Endpoint e = endpoint(1);
    n.endpoints.put(e);
    ASSERT_TRUE(s.save({n}).ok());
    const auto good = fs::file_size(s.journal_path());
    core::Endpoint e2 = endpoint(2);
    n.endpoints.put(e2);
    ASSERT_TRUE(s.save({n}).ok());
    fs::resize_file(s.journal_path(), good + 20);  // the last record torn mid-write
    store::FileStateStore s2(dir);
    auto loaded = s2.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_TRUE(s2.torn_tail());
    EXPECT_EQ((*loaded)[0].endpoints.size(), 2u);  // sample's + endpoint 1, not endpoint 2
    EXPECT_EQ(fs::file_size(s2.journal_path()), good);
    int kept = 0;
    for (const auto& f : fs::directory_iterator(dir))
        if (f.path().filename().string().rfind("state.journal.torn-", 0) == 0) ++kept;
    EXPECT_EQ(kept, 1);
    // A checksum mismatch on the last record is a torn write too.
    ASSERT_TRUE(s2.save({n}).ok());
    std::string j = read(s2.journal_path());
    j[j.size() - 5] ^= 1;
    std::ofstream(s2.journal_path(), std::ios::trunc) << j;
    store::FileStateStore s3(dir);
    ASSERT_TRUE(s3.load().ok());
    EXPECT_TRUE(s3.torn_tail());
}

TEST_F(StoreTest, CorruptJournalMiddleIsAnErrorAndNothingIsTouched) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    core::Network n = sample();
    ASSERT_TRUE(s.save({n}).ok());
    for (int i = 0; i < 3; ++i) {
        core::Endpoint e = endpoint(i);
        n.endpoints.put(e);
        ASSERT_TRUE(s.save({n}).ok());
    }
    std::string j = read(s.journal_path());
    j[j.find('\n') - 3] ^= 1;  // flip a bit in the FIRST record
    std::ofstream(s.journal_path(), std::ios::trunc) << j;
    store::FileStateStore s2(dir);
    auto r = s2.load();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(s2.journal_path() + " is corrupt: bad record at offset 0"),
              std::string::npos)
        << r.error().message();
    EXPECT_EQ(read(s.journal_path()), j);
    // save() refuses rather than overwrite what it could not read.
    EXPECT_FALSE(s2.save({}).ok());
    EXPECT_EQ(read(s.journal_path()), j);
}

TEST_F(StoreTest, CorruptSnapshotIsReportedAndNeverOverwritten) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    ASSERT_TRUE(s.save({sample()}).ok());
    fs::resize_file(s.path(), 100);  // a torn write of an old-style store, or a disk error
    store::FileStateStore s2(dir);
    auto r = s2.load();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(s.path() + " is corrupt"), std::string::npos) << r.error().message();
    EXPECT_FALSE(s2.save({sample()}).ok());
    EXPECT_EQ(fs::file_size(s.path()), 100u);  // left as it was for inspection
    std::ofstream(s.path()) << R"({"version": 2, "networks": [{"id": "x"}]})";
    EXPECT_FALSE(store::FileStateStore(dir).load().ok());
    std::ofstream(s.path()) << R"({"version": 9, "networks": []})";
    EXPECT_NE(store::FileStateStore(dir).load().error().message().find("format version 9 is not supported"),
              std::string::npos);
}

TEST_F(StoreTest, DaemonIdIsCreatedOnceAndKept) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    auto id = s.daemon_id();
    ASSERT_TRUE(id.ok()) << id.error().message();
    EXPECT_EQ(id->size(), 64u);
    EXPECT_EQ(*store::FileStateStore(dir).daemon_id(), *id);
    std::ofstream(dir + "/daemon-id") << "nothex";
    auto bad = store::FileStateStore(dir).daemon_id();
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("daemon-id is corrupt"), std::string::npos);
}

TEST_F(StoreTest, InitRejectsAFile) {
    std::ofstream(dir) << "x";
    store::FileStateStore s(dir);
    auto r = s.init();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "state dir " + dir + " is not a directory");
}

// The cost of one connect's save with 1, 100 and 1,000 endpoints and with 10,000 published ports:
// bytes appended (exact) and time (printed). Bytes must not grow with the state.
TEST_F(StoreTest, SaveCostIsFlat) {
    struct Case {
        const char* what;
        int endpoints;
        int ports_per_endpoint;
    };
    const Case cases[] = {{"1 endpoint", 1, 0},
                          {"100 endpoints", 100, 0},
                          {"1000 endpoints", 1000, 0},
                          {"10000 published ports", 1000, 10}};
    std::vector<double> bytes;
    for (const auto& c : cases) {
        fs::remove_all(dir);
        store::FileStateStore s(dir);
        ASSERT_TRUE(s.init().ok());
        ASSERT_TRUE(s.load().ok());
        core::Network n = sample();
        n.endpoints.clear();
        for (int i = 0; i < c.endpoints; ++i) {
            core::Endpoint e = endpoint(i);
            for (int p = 0; p < c.ports_per_endpoint; ++p) {
                uint16_t hp = static_cast<uint16_t>(10000 + i * c.ports_per_endpoint + p);
                e.ports.push_back({core::Proto::Tcp, std::nullopt, {hp, hp}, {80, 80}});
            }
            n.endpoints.put(e);
        }
        std::vector<core::Network> state{n};  // saved by reference: only the store is timed
        ASSERT_TRUE(s.save(state).ok());  // the baseline snapshot
        const int rounds = 50;
        const uint64_t before = s.journal_bytes();
        auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < rounds; ++r) {  // connect + disconnect of one endpoint with one port
            core::Endpoint e = endpoint(50000 + r);
            e.ports.push_back({core::Proto::Tcp, std::nullopt, {40000, 40000}, {80, 80}});
            state[0].endpoints.put(e);
            ASSERT_TRUE(s.save(state).ok());
            state[0].endpoints.erase(e.id);
            ASSERT_TRUE(s.save(state).ok());
        }
        auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        double per_save_bytes = double(s.journal_bytes() - before) / (2 * rounds);
        EXPECT_EQ(s.compactions(), 1u);  // only the baseline snapshot: no rewrite of the state
        bytes.push_back(per_save_bytes);
        std::printf("[ save cost ] %-22s %8.0f us/save  %6.0f bytes/save (state %ju bytes)\n",
                    c.what, us / (2 * rounds), per_save_bytes, uintmax_t(fs::file_size(s.path())));
    }
    for (double b : bytes) EXPECT_LT(b, bytes[0] * 1.2) << "bytes per save grew with the state";
}
