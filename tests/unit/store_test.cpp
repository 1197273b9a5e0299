// lib/store: snapshot + journal round trips, migration from the v1 file, torn and corrupt files,
// the daemon ID, the cost of a save (flat in the size of the state), read-only mode after a failed
// truncate, and malformed values on load.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/failpoint.hpp"
#include "store/file_store.hpp"

namespace store_test {  // file-local names and using-directives: see "unity" in tests/meson.build

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
    n.driver = "testdriver";
    n.dns = false;  // not the default: the round trip must keep it
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
    e.aliases = {"db", "primary.db"};
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
    EXPECT_EQ(a.driver, b.driver);
    EXPECT_EQ(a.dns, b.dns);
    EXPECT_EQ(a.overlay, b.overlay);
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
        EXPECT_EQ(e.aliases, f.aliases);
    }
}

core::OverlayPeer overlay_peer(int i) {
    return {fmt::format("n{}", i), Ipv4(0xC0000200u + i),
            Ipv4Cidr(Ipv4(0x0AC80000u + (i << 8)), 24),
            *Mac::parse(fmt::format("02:00:00:00:00:{:02x}", i))};
}

// An overlay network as this node has it: its block as the subnet, the cluster facts and peers.
core::Network overlay_sample() {
    core::Network n;
    n.id = std::string(64, 'd');
    n.name = "mesh";
    n.driver = "overlay";
    n.bridge = "br-dddddddddddd";
    n.subnet = *Ipv4Cidr::parse("10.200.1.0/24");
    n.gateway = *Ipv4::parse("10.200.1.1");
    n.mtu = 1450;
    n.created = "2026-12-04T08:00:00.000000000Z";
    core::Overlay o;
    o.subnet = *Ipv4Cidr::parse("10.200.0.0/16");
    o.block_prefix = 24;
    o.vni = 4097;
    o.vxlan = "vx-dddddddddddd";
    o.mac = *Mac::parse("02:ab:cd:ef:01:23");
    o.node = "n1";
    o.local = *Ipv4::parse("192.0.2.1");
    o.port = 8472;
    o.peers = {overlay_peer(2), overlay_peer(3)};
    n.overlay = o;
    n.endpoints.put(endpoint(7));
    return n;
}

}  // namespace

TEST_F(StoreTest, OverlayNetworksRoundTripWithTheirPeersAndPeerChangesAreJournaled) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    core::Network n = overlay_sample();
    ASSERT_TRUE(s.save({sample(), n}).ok());
    auto loaded = store::FileStateStore(dir).load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    ASSERT_EQ(loaded->size(), 2u);
    expect_same(sample(), (*loaded)[0]);
    EXPECT_FALSE((*loaded)[0].overlay);  // bridge networks have none
    expect_same(n, (*loaded)[1]);
    // A change of peers only (set_overlay_peers) reaches the file too.
    n.overlay->peers = {overlay_peer(3), overlay_peer(4)};
    ASSERT_TRUE(s.save({sample(), n}).ok());
    loaded = store::FileStateStore(dir).load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    expect_same(n, (*loaded)[1]);
    // A malformed overlay value names the field.
    nlohmann::json j = nlohmann::json::parse(read(dir + "/state.json"));
    for (auto& net : j["networks"])
        if (net.contains("overlay")) net["overlay"]["vni"] = "many";
    std::ofstream(dir + "/state.journal", std::ios::trunc);
    std::ofstream(dir + "/state.json", std::ios::trunc) << j.dump();
    auto bad = store::FileStateStore(dir).load();
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("overlay.vni: expected an integer"), std::string::npos)
        << bad.error().message();
}

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
    EXPECT_EQ(n.driver, "bridge");  // written before drivers existed
    EXPECT_EQ(n.mode4, firewall::GatewayMode::Nat);
    ASSERT_EQ(n.endpoints.size(), 1u);
    EXPECT_EQ(n.endpoints.at("bbbb").ports.size(), 1u);
    EXPECT_FALSE(n.dns) << "the default network never had the resolver";
    EXPECT_TRUE(n.endpoints.at("bbbb").aliases.empty());
    ASSERT_TRUE(s.save(*loaded).ok());  // the first save writes the v2 snapshot
    EXPECT_NE(read(s.path()).find("\"version\": 2"), std::string::npos);
    store::FileStateStore s2(dir);
    auto again = s2.load();
    ASSERT_TRUE(again.ok());
    expect_same(n, (*again)[0]);
}

TEST_F(StoreTest, UserNetworksWrittenBeforeTheResolverLoadWithIt) {
    ASSERT_TRUE(store::FileStateStore(dir).init().ok());
    std::ofstream(dir + "/state.json") << R"({"version": 1, "networks": [{
        "id": "cccc", "name": "web", "bridge": "br-cccc", "subnet": "10.1.0.0/24",
        "gateway": "10.1.0.1", "mtu": 1500, "is_default": false, "bridge_adopted": false,
        "created": "2026-01-01T00:00:00Z", "options": {}, "endpoints": []}]})";
    store::FileStateStore s(dir);
    auto loaded = s.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_TRUE((*loaded)[0].dns);
    EXPECT_FALSE((*loaded)[0].overlay);  // written before overlay networks existed
}

TEST_F(StoreTest, AnAliasChangeIsJournaled) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    core::Network n = sample();
    ASSERT_TRUE(s.save({n}).ok());
    core::Endpoint e = n.endpoints.begin()->second;
    e.aliases.push_back("cache");
    n.endpoints.put(e);
    ASSERT_TRUE(s.save({n}).ok());
    store::FileStateStore s2(dir);
    auto loaded = s2.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    expect_same(n, (*loaded)[0]);
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
    EXPECT_NE(r.error().message().find(s.path() + " is corrupt"), std::string::npos)
        << r.error().message();
    EXPECT_FALSE(s2.save({sample()}).ok());
    EXPECT_EQ(fs::file_size(s.path()), 100u);  // left as it was for inspection
    std::ofstream(s.path()) << R"({"version": 2, "networks": [{"id": "x"}]})";
    EXPECT_FALSE(store::FileStateStore(dir).load().ok());
    std::ofstream(s.path()) << R"({"version": 9, "networks": []})";
    EXPECT_NE(store::FileStateStore(dir).load().error().message().find(
                  "format version 9 is not supported"),
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
        ASSERT_TRUE(s.save(state).ok());      // the baseline snapshot
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
        auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                      .count();
        double per_save_bytes = double(s.journal_bytes() - before) / (2 * rounds);
        EXPECT_EQ(s.compactions(), 1u);  // only the baseline snapshot: no rewrite of the state
        bytes.push_back(per_save_bytes);
        std::printf("[ save cost ] %-22s %8.0f us/save  %6.0f bytes/save (state %ju bytes)\n",
                    c.what, us / (2 * rounds), per_save_bytes, uintmax_t(fs::file_size(s.path())));
    }
    for (double b : bytes) EXPECT_LT(b, bytes[0] * 1.2) << "bytes per save grew with the state";
}

// ---- Issue 15 item 12: crash-safety gaps; item 16: no JSON exception escapes load() ----

namespace {

// CRC-32 (IEEE), as the journal's records carry it.
uint32_t crc32_of(const std::string& s) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char ch : s) {
        c ^= ch;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

std::string record(const std::string& payload) {
    return fmt::format("J {} {:08x} {}\n", payload.size(), crc32_of(payload), payload);
}

// Failpoints for one scope (CNETD_FAILPOINTS, re-read).
struct Failpoints {
    explicit Failpoints(const char* rules) {
        setenv("CNETD_FAILPOINTS", rules, 1);
        failpoint::reload_for_test();
    }
    ~Failpoints() {
        unsetenv("CNETD_FAILPOINTS");
        failpoint::reload_for_test();
    }
};

}  // namespace

TEST_F(StoreTest, FailedAppendAndFailedTruncateMakeTheStoreReadOnly) {
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.init().ok());
    ASSERT_TRUE(s.load().ok());
    core::Network n = sample();
    ASSERT_TRUE(s.save({n}).ok());
    n.endpoints.put(endpoint(1));
    ASSERT_TRUE(s.save({n}).ok());  // the last acknowledged state
    const core::Network acknowledged = n;
    const auto good = fs::file_size(s.journal_path());
    EXPECT_EQ(s.read_only(), "");
    {
        // Half a record reaches the file, the append fails, and so does the truncate back.
        Failpoints fp("store.journal.torn=error,store.journal.truncate.error=error");
        n.endpoints.put(endpoint(2));
        EXPECT_FALSE(s.save({n}).ok());
    }
    const auto garbage = fs::file_size(s.journal_path());
    ASSERT_GT(garbage, good);
    EXPECT_NE(s.read_only().find("truncate " + s.journal_path()), std::string::npos)
        << s.read_only();
    EXPECT_EQ(store::read_only_reason(), s.read_only());
    // Every later mutation is refused; nothing is written after the garbage.
    n.endpoints.put(endpoint(3));
    auto r = s.save({n});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
    EXPECT_NE(r.error().message().find("read-only"), std::string::npos) << r.error().message();
    EXPECT_EQ(fs::file_size(s.journal_path()), garbage);
    // A restart loads the last acknowledged state (the garbage is a torn tail, cut off).
    store::FileStateStore s2(dir);
    auto loaded = s2.load();
    ASSERT_TRUE(loaded.ok()) << loaded.error().message();
    EXPECT_TRUE(s2.torn_tail());
    ASSERT_EQ(loaded->size(), 1u);
    expect_same(acknowledged, (*loaded)[0]);
    EXPECT_EQ(store::read_only_reason(), "");
    EXPECT_TRUE(s2.save({n}).ok());
}

TEST_F(StoreTest, ANewJournalNextToASnapshotIsMadeDurable) {
    {
        store::FileStateStore s(dir);
        ASSERT_TRUE(s.init().ok());
        ASSERT_TRUE(s.load().ok());
        ASSERT_TRUE(s.save({sample()}).ok());  // snapshot written
    }
    fs::remove(dir + "/state.journal");  // a snapshot without a journal (e.g. after migration)
    store::FileStateStore s(dir);
    ASSERT_TRUE(s.load().ok());
    core::Network n = sample();
    n.endpoints.put(endpoint(1));
    {
        // The directory fsync after creating the journal is part of the save: its failure is.
        Failpoints fp("store.dir.fsync.error=error");
        auto r = s.save({n});
        ASSERT_FALSE(r.ok()) << "the new journal's directory entry was never fsync'd";
        EXPECT_NE(r.error().message().find("store.dir.fsync.error"), std::string::npos)
            << r.error().message();
    }
    EXPECT_TRUE(s.save({n}).ok());
}

// Every malformed value in the snapshot or a (checksum-valid) journal record: InvalidArgument
// naming the file and the field, never an exception, never a silently wrapped number.
TEST_F(StoreTest, MalformedValuesAreInvalidArgumentNamingTheField) {
    {
        store::FileStateStore s(dir);
        ASSERT_TRUE(s.init().ok());
        ASSERT_TRUE(s.load().ok());
        ASSERT_TRUE(s.save({sample()}).ok());
    }
    const std::string snap = read(dir + "/state.json");
    auto expect_invalid = [&](const std::string& what, const std::vector<std::string>& needles) {
        SCOPED_TRACE(what);
        auto r = store::FileStateStore(dir).load();
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
        for (const auto& s : needles)
            EXPECT_NE(r.error().message().find(s), std::string::npos) << r.error().message();
    };
    auto with_snapshot = [&](auto edit) {
        nlohmann::json j = nlohmann::json::parse(snap);
        edit(j);
        std::ofstream(dir + "/state.json", std::ios::trunc) << j.dump();
    };
    with_snapshot([](nlohmann::json& j) { j["networks"][0]["mtu"] = "1500"; });
    expect_invalid("type_error", {"state.json is corrupt", "networks[0]", "mtu", "\"1500\""});
    with_snapshot([](nlohmann::json& j) { j["networks"][0]["mtu"] = 99999999999ull; });
    expect_invalid("wraps in an unsigned", {"networks[0]", "mtu", "99999999999"});
    with_snapshot(
        [](nlohmann::json& j) { j["networks"][0]["endpoints"][0]["ports"][0]["host"][1] = 70000; });
    expect_invalid("port out of range", {"host", "70000"});
    with_snapshot([](nlohmann::json& j) { j["networks"][0]["labels"]["team"] = 7; });
    expect_invalid("map of strings", {"labels.team"});
    with_snapshot([](nlohmann::json& j) { j["networks"][0].erase("bridge"); });
    expect_invalid("missing", {"bridge: missing"});
    std::string overflow = snap;
    overflow.replace(overflow.find("\"netns_dev\": 4"), 14, "\"netns_dev\": 1e999");
    std::ofstream(dir + "/state.json", std::ios::trunc) << overflow;
    expect_invalid("number overflow", {"state.json is corrupt", "1e999"});

    // The journal: records with a valid checksum and a bad value.
    std::ofstream(dir + "/state.json", std::ios::trunc) << snap;
    ASSERT_TRUE(store::FileStateStore(dir).load().ok());
    const uint64_t seq = nlohmann::json::parse(snap)["seq"].get<uint64_t>() + 1;
    nlohmann::json ep = nlohmann::json::parse(snap)["networks"][0]["endpoints"][0];
    ep["ports"][0]["container"] = {65536, 65536};
    const std::string net = std::string(64, 'a');
    std::ofstream(dir + "/state.journal", std::ios::trunc) << record(nlohmann::json{
        {"seq", seq},
        {"ops", {{{"op", "put_ep"}, {"net", net}, {"ep", ep}}}}}.dump());
    expect_invalid("journal port",
                   {"state.journal is corrupt: record at offset 0", "container", "65536"});
    // A number nlohmann cannot even parse, in a record whose length and checksum are right: not a
    // torn write (that never checksums), so corruption, not silently cut off.
    std::ofstream(dir + "/state.journal", std::ios::trunc) << record(fmt::format(
        R"({{"seq": {}, "ops": [{{"op": "del_ep", "net": "{}", "id": 1e999}}]}})", seq, net));
    expect_invalid("journal overflow", {"state.journal is corrupt: record at offset 0", "1e999"});
    std::ofstream(dir + "/state.journal", std::ios::trunc)
        << record(fmt::format(R"({{"seq": "{}", "ops": []}})", seq));
    expect_invalid("journal seq type", {"seq", "expected an integer"});
}

}  // namespace store_test
