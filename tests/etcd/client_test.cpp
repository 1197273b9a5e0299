// lib/etcd's client against real etcd 3.4 servers started by the tests (etcd_server.hpp), inside
// the binary's private namespaces.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "base/fd.hpp"
#include "etcd/client.hpp"
#include "etcd_server.hpp"

namespace cnetd::etcd {
namespace {

using namespace std::chrono_literals;
using testing::EtcdServer;
using SteadyClock = std::chrono::steady_clock;

ClientOptions opts_for(const std::vector<std::string>& endpoints,
                       std::chrono::milliseconds timeout = 3000ms) {
    ClientOptions o;
    o.endpoints = endpoints;
    o.timeout = timeout;
    return o;
}

long long ms_since(SteadyClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t).count();
}

// Raw calls for what the client does not offer (compaction).
void compact(Client&, const std::string& url, int64_t revision) {
    const std::string cmd = "curl -sf -X POST " + url + "/v3/kv/compaction -d '{\"revision\":\"" +
                            std::to_string(revision) + "\",\"physical\":true}' >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class EtcdTest : public ::testing::Test {
protected:
    void SetUp() override {
        server_ = std::make_unique<EtcdServer>(
            next_port_,
            std::vector<std::string>{"--experimental-watch-progress-notify-interval=1h"});
        next_port_ += 2;
        ASSERT_TRUE(server_->wait_ready()) << "etcd did not start on " << server_->url() << ":\n"
                                           << server_->log();
        client_ = std::make_unique<Client>(opts_for({server_->url()}));
    }
    std::unique_ptr<EtcdServer> server_;
    std::unique_ptr<Client> client_;
    static inline int next_port_ = 22379;
};

TEST_F(EtcdTest, PutRangeCountDelete) {
    auto r1 = client_->put("/t/a", "1");
    ASSERT_TRUE(r1.ok()) << r1.error().message();
    auto r2 = client_->put("/t/b", std::string("\0\xff bin", 6));
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(*r2, *r1 + 1);
    ASSERT_TRUE(client_->put("/u", "x").ok());

    auto one = client_->range("/t/a");
    ASSERT_TRUE(one.ok()) << one.error().message();
    ASSERT_EQ(one->kvs.size(), 1u);
    EXPECT_EQ(one->kvs[0].key, "/t/a");
    EXPECT_EQ(one->kvs[0].value, "1");
    EXPECT_EQ(one->kvs[0].version, 1);
    EXPECT_EQ(one->kvs[0].create_revision, *r1);
    EXPECT_EQ(one->count, 1);

    auto all = client_->range_prefix("/t/");
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->kvs.size(), 2u);
    EXPECT_EQ(all->kvs[1].value, std::string("\0\xff bin", 6));
    EXPECT_EQ(all->revision, *r2 + 1);

    auto count = client_->range_prefix("/t/", true);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(count->count, 2);
    EXPECT_TRUE(count->kvs.empty());

    auto none = client_->range("/nothing");
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->kvs.empty());
    EXPECT_EQ(none->count, 0);

    auto del = client_->delete_range("/t/", prefix_end("/t/"));
    ASSERT_TRUE(del.ok());
    EXPECT_EQ(*del, 2);
    EXPECT_EQ(client_->range_prefix("/t/")->count, 0);
    EXPECT_EQ(client_->current_endpoint(), server_->url());
}

TEST_F(EtcdTest, TxnBranches) {
    const Compare absent{"/k", Compare::Target::Version, Compare::Result::Equal, 0, ""};
    auto created = client_->txn({absent}, {TxnOp{TxnOp::Kind::Put, "/k", "mine", 0, ""}},
                                {TxnOp{TxnOp::Kind::Range, "/k", "", 0, ""}});
    ASSERT_TRUE(created.ok()) << created.error().message();
    EXPECT_TRUE(created->succeeded);
    EXPECT_TRUE(created->ranges.empty());

    // Second time: the failure branch, whose Range answers who holds the key.
    auto again = client_->txn({absent}, {TxnOp{TxnOp::Kind::Put, "/k", "theirs", 0, ""}},
                              {TxnOp{TxnOp::Kind::Range, "/k", "", 0, ""},
                               TxnOp{TxnOp::Kind::Delete, "/none", "", 0, ""}});
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->succeeded);
    ASSERT_EQ(again->ranges.size(), 1u);
    ASSERT_EQ(again->ranges[0].kvs.size(), 1u);
    EXPECT_EQ(again->ranges[0].kvs[0].value, "mine");
    EXPECT_EQ(again->revision, created->revision);

    // Value, Mod, Create, Lease compares with each result kind.
    const int64_t mod = again->ranges[0].kvs[0].mod_revision;
    auto check = [&](Compare c) {
        auto r = client_->txn({c}, {}, {});
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() && r->succeeded;
    };
    EXPECT_TRUE(check({"/k", Compare::Target::Value, Compare::Result::Equal, 0, "mine"}));
    EXPECT_FALSE(check({"/k", Compare::Target::Value, Compare::Result::Equal, 0, "other"}));
    EXPECT_TRUE(check({"/k", Compare::Target::Value, Compare::Result::NotEqual, 0, "other"}));
    EXPECT_TRUE(check({"/k", Compare::Target::Mod, Compare::Result::Equal, mod, ""}));
    EXPECT_TRUE(check({"/k", Compare::Target::Mod, Compare::Result::Less, mod + 1, ""}));
    EXPECT_FALSE(check({"/k", Compare::Target::Create, Compare::Result::Greater, mod, ""}));
    EXPECT_TRUE(check({"/k", Compare::Target::Version, Compare::Result::Greater, 0, ""}));
    EXPECT_TRUE(check({"/k", Compare::Target::Lease, Compare::Result::Equal, 0, ""}));

    // Both branches' deletes: success deletes the prefix.
    auto del = client_->txn({{"/k", Compare::Target::Value, Compare::Result::Equal, 0, "mine"}},
                            {TxnOp{TxnOp::Kind::Delete, "/k", "", 0, prefix_end("/k")},
                             TxnOp{TxnOp::Kind::Range, "/k", "", 0, ""}});
    ASSERT_TRUE(del.ok());
    EXPECT_TRUE(del->succeeded);
    ASSERT_EQ(del->ranges.size(), 1u);
    EXPECT_TRUE(del->ranges[0].kvs.empty());
}

TEST_F(EtcdTest, EtcdErrorsKeepTheirText) {
    auto r = client_->put("/k", "v", 0x1234);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::NotFound);
    EXPECT_NE(r.error().message().find("etcdserver: requested lease not found"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find(server_->url()), std::string::npos);

    auto rev = client_->revoke(0x1234);
    ASSERT_FALSE(rev.ok());
    EXPECT_EQ(rev.error().kind(), ErrorKind::NotFound);
}

TEST_F(EtcdTest, LeaseExpiryDeletesKeys) {
    // etcd enforces a minimum TTL (1.5 election timeouts rounded up: 2 s with the defaults).
    auto lease = client_->grant(1);
    ASSERT_TRUE(lease.ok()) << lease.error().message();
    EXPECT_EQ(lease->ttl, 2);
    ASSERT_TRUE(client_->put("/leased", "v", lease->id).ok());
    auto got = client_->range("/leased");
    ASSERT_EQ(got->kvs.size(), 1u);
    EXPECT_EQ(got->kvs[0].lease, lease->id);
    auto left = client_->time_to_live(lease->id);
    ASSERT_TRUE(left.ok());
    EXPECT_LE(*left, 2);

    const auto start = SteadyClock::now();
    while (client_->range("/leased")->count == 1 && ms_since(start) < 10000) {
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(client_->range("/leased")->count, 0) << "the key outlived its lease";
    EXPECT_GE(ms_since(start), 1000);
    auto ka = client_->keepalive(lease->id);
    ASSERT_FALSE(ka.ok());
    EXPECT_EQ(ka.error().kind(), ErrorKind::NotFound) << ka.error().message();
    auto ttl = client_->time_to_live(lease->id);
    ASSERT_FALSE(ttl.ok());
    EXPECT_EQ(ttl.error().kind(), ErrorKind::NotFound);
}

TEST_F(EtcdTest, KeepaliveExtendsAndRevokeDeletes) {
    auto lease = client_->grant(3);
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(client_->put("/kept", "v", lease->id).ok());
    for (int i = 0; i < 4; ++i) {  // 4 s in all: past the TTL only thanks to the keepalives
        std::this_thread::sleep_for(1000ms);
        auto ka = client_->keepalive(lease->id);
        ASSERT_TRUE(ka.ok()) << ka.error().message();
        EXPECT_EQ(*ka, 3);
    }
    EXPECT_EQ(client_->range("/kept")->count, 1);
    EXPECT_GE(*client_->time_to_live(lease->id), 2);
    ASSERT_TRUE(client_->revoke(lease->id).ok());
    EXPECT_EQ(client_->range("/kept")->count, 0);
}

TEST_F(EtcdTest, WatchSeesPutDeleteExpiryInOrder) {
    const int64_t start = *client_->put("/w/a", "1");
    ASSERT_TRUE(client_->put("/w/a", "2").ok());
    ASSERT_TRUE(client_->put("/other", "x").ok());
    ASSERT_TRUE(client_->delete_range("/w/a").ok());
    auto lease = client_->grant(2);
    ASSERT_TRUE(client_->put("/w/b", "leased", lease->id).ok());

    std::vector<WatchEvent> events;
    Client watcher(opts_for({server_->url()}));
    auto r = watcher.watch("/w/", start, [&](const WatchBatch& b) {
        EXPECT_FALSE(b.compacted);
        events.insert(events.end(), b.events.begin(), b.events.end());
        return events.size() < 5;  // put, put, delete, put, expiry
    });
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(events.size(), 5u);
    EXPECT_EQ(events[0].type, WatchEvent::Type::Put);
    EXPECT_EQ(events[0].kv.value, "1");
    EXPECT_EQ(events[0].kv.mod_revision, start);
    EXPECT_EQ(events[1].kv.value, "2");
    EXPECT_EQ(events[2].type, WatchEvent::Type::Delete);
    EXPECT_EQ(events[2].kv.key, "/w/a");
    EXPECT_EQ(events[3].type, WatchEvent::Type::Put);
    EXPECT_EQ(events[3].kv.lease, lease->id);
    EXPECT_EQ(events[4].type, WatchEvent::Type::Delete) << "lease expiry is a delete";
    EXPECT_EQ(events[4].kv.key, "/w/b");
    for (std::size_t i = 1; i < events.size(); ++i) {
        EXPECT_GT(events[i].kv.mod_revision, events[i - 1].kv.mod_revision);
    }
}

TEST_F(EtcdTest, WatchReportsCompaction) {
    const int64_t first = *client_->put("/c/a", "1");
    ASSERT_TRUE(client_->put("/c/a", "2").ok());
    const int64_t last = *client_->put("/c/a", "3");
    compact(*client_, server_->url(), last);
    int batches = 0;
    WatchBatch seen;
    auto r = client_->watch("/c/", first, [&](const WatchBatch& b) {
        ++batches;
        seen = b;
        return true;
    });
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(batches, 1);
    EXPECT_TRUE(seen.compacted);
    EXPECT_EQ(seen.compact_revision, last);
    EXPECT_TRUE(seen.events.empty());
}

TEST_F(EtcdTest, CancelEndsABlockedWatchPromptly) {
    const int64_t rev = client_->range("/x")->revision;
    Client watcher(opts_for({server_->url()}));
    std::atomic<bool> started{false};
    SteadyClock::time_point cancelled_at;
    std::thread canceller([&] {
        std::this_thread::sleep_for(500ms);
        cancelled_at = SteadyClock::now();
        watcher.cancel();
    });
    const auto t0 = SteadyClock::now();
    auto r = watcher.watch(
        "/x/", rev + 1, [&](const WatchBatch&) { return true; }, 60000ms);
    const auto ended = SteadyClock::now();
    canceller.join();
    EXPECT_TRUE(r.ok()) << r.error().message();
    EXPECT_GE(ms_since(t0), 400);
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(ended - cancelled_at).count(),
              200);
    // Later calls fail until reset_cancel().
    auto after = watcher.range("/x");
    ASSERT_FALSE(after.ok());
    EXPECT_EQ(after.error().kind(), ErrorKind::Unavailable);
    watcher.reset_cancel();
    EXPECT_TRUE(watcher.range("/x").ok());
    (void)started;
}

TEST_F(EtcdTest, SilentWatchStaysWhileTheMemberAnswers) {
    const int64_t rev = client_->range("/s")->revision;
    std::thread writer([&] {
        std::this_thread::sleep_for(1500ms);  // three idle periods of silence first
        Client c(opts_for({server_->url()}));
        (void)c.put("/s/late", "v");
    });
    std::vector<WatchEvent> events;
    Client watcher(opts_for({server_->url()}));
    auto r = watcher.watch(
        "/s/", rev + 1,
        [&](const WatchBatch& b) {
            events.insert(events.end(), b.events.begin(), b.events.end());
            return events.empty();
        },
        400ms);
    writer.join();
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kv.key, "/s/late");
}

TEST_F(EtcdTest, FailoverSkipsADeadEndpoint) {
    Client c(opts_for({"http://127.0.0.1:1", server_->url()}));
    auto r = c.put("/f", "v");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(c.current_endpoint(), server_->url());
    EXPECT_TRUE(c.range("/f").ok());

    // Watch fails over too.
    int got = 0;
    auto w = c.watch("/f", *r, [&](const WatchBatch& b) {
        got += static_cast<int>(b.events.size());
        return false;
    });
    ASSERT_TRUE(w.ok()) << w.error().message();
    EXPECT_EQ(got, 1);

    server_->stop();
    auto down = c.range("/f");
    ASSERT_FALSE(down.ok());
    EXPECT_EQ(down.error().kind(), ErrorKind::Unavailable);
    const auto& m = down.error().message();
    EXPECT_NE(m.find("no endpoint answered"), std::string::npos) << m;
    EXPECT_NE(m.find("http://127.0.0.1:1: connect: Connection refused"), std::string::npos) << m;
    EXPECT_NE(m.find(server_->url() + ": "), std::string::npos) << m;
}

// A socket that listens but never accepts: connects succeed (the kernel's backlog), nothing
// ever answers.
struct BlackHole {
    UniqueFd fd;
    int port = 0;
    BlackHole() : fd(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd.get(), 16), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

TEST_F(EtcdTest, BlackHoledEndpointCostsTheTimeout) {
    BlackHole hole;
    Client alone(opts_for({hole.url()}, 500ms));
    auto t0 = SteadyClock::now();
    auto r = alone.range("/b");
    ASSERT_FALSE(r.ok());
    EXPECT_GE(ms_since(t0), 450);
    EXPECT_LT(ms_since(t0), 1500);
    EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
    EXPECT_NE(r.error().message().find(hole.url() + ": /v3/kv/range: no answer within"),
              std::string::npos)
        << r.error().message();

    Client both(opts_for({hole.url(), server_->url()}, 500ms));
    t0 = SteadyClock::now();
    ASSERT_TRUE(both.put("/b", "v").ok());
    EXPECT_LT(ms_since(t0), 1500);
    EXPECT_EQ(both.current_endpoint(), server_->url());
    t0 = SteadyClock::now();
    ASSERT_TRUE(both.range("/b").ok());
    EXPECT_LT(ms_since(t0), 300) << "the last good endpoint is asked first";

    // A watch on the black hole alone ends after the timeout too.
    t0 = SteadyClock::now();
    auto w = alone.watch("/b", 1, [](const WatchBatch&) { return true; });
    ASSERT_FALSE(w.ok());
    EXPECT_LT(ms_since(t0), 1500);
}

TEST(EtcdValidate, ErrorsNameTheField) {
    auto bad = [](ClientOptions o) {
        auto r = validate(o);
        EXPECT_FALSE(r.ok());
        return r.ok() ? std::string() : r.error().message();
    };
    EXPECT_EQ(bad(opts_for({})), "cluster.etcd: at least one endpoint is needed");
    EXPECT_NE(bad(opts_for({"http://a:1", "ftp://x"})).find("cluster.etcd[1]: \"ftp://x\""),
              std::string::npos);
    EXPECT_NE(bad(opts_for({"http://a:99999"})).find("port \"99999\""), std::string::npos);
    EXPECT_NE(bad(opts_for({"http://:2379"})).find("no host"), std::string::npos);
    EXPECT_NE(bad(opts_for({"https://a:2379"}))
                  .find("cluster.tls: required by the https "
                        "endpoint cluster.etcd[0]"),
              std::string::npos);
    auto o = opts_for({"https://a:2379"});
    o.tls = TlsFiles{"/nonexistent/ca.pem", "/x", "/y"};
    EXPECT_NE(bad(o).find("cluster.tls.ca: \"/nonexistent/ca.pem\" is not readable"),
              std::string::npos);
    EXPECT_TRUE(validate(opts_for({"http://[::1]:2379", "https://h/"})).ok() == false);
    EXPECT_TRUE(validate(opts_for({"http://[::1]:2379", "http://etcd.example/"})).ok());

    Client c(opts_for({"bogus"}));
    auto r = c.range("/k");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument);
}

}  // namespace
}  // namespace cnetd::etcd
