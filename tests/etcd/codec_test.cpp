// lib/etcd's codec without a server: request JSON shapes, answer decoding, malformed answers
// (Internal naming the field), the watch stream framing under any split of its bytes.
#include "etcd/codec.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cnetd::etcd::codec {
namespace {

using json = nlohmann::json;

TEST(Base64, RoundTripsEveryLength) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n < 20; ++n) {
        auto d = base64_decode(base64_encode(all.substr(250 - n, n)));
        ASSERT_TRUE(d.ok());
        EXPECT_EQ(*d, all.substr(250 - n, n));
    }
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(*base64_decode("Zm8="), "fo");
    EXPECT_FALSE(base64_decode("Zm8").ok());
    EXPECT_FALSE(base64_decode("Zm*=").ok());
    EXPECT_FALSE(base64_decode("=m8=").ok());
}

TEST(Requests, Shapes) {
    EXPECT_EQ(json::parse(range_request("/a", "/b", true)),
              json({{"key", "L2E="}, {"range_end", "L2I="}, {"count_only", true}}));
    EXPECT_EQ(json::parse(range_request("/a", "", false)), json({{"key", "L2E="}}));
    EXPECT_EQ(json::parse(put_request("k", "v", 42)),
              json({{"key", "aw=="}, {"value", "dg=="}, {"lease", "42"}}));
    EXPECT_EQ(json::parse(put_request("k", "", 0)), json({{"key", "aw=="}, {"value", ""}}));
    EXPECT_EQ(json::parse(grant_request(30)), json({{"TTL", "30"}}));
    EXPECT_EQ(json::parse(lease_id_request(7587)), json({{"ID", "7587"}}));
    EXPECT_EQ(json::parse(watch_request("k", "l", 5)), json({{"create_request",
                                                              {{"key", "aw=="},
                                                               {"range_end", "bA=="},
                                                               {"start_revision", "5"},
                                                               {"progress_notify", true}}}}));
}

TEST(Requests, TxnShape) {
    auto j = json::parse(txn_request(
        {{"k", Compare::Target::Version, Compare::Result::Equal, 0, ""},
         {"k", Compare::Target::Value, Compare::Result::NotEqual, 0, "v"},
         {"k", Compare::Target::Mod, Compare::Result::Less, 9, ""},
         {"k", Compare::Target::Create, Compare::Result::Greater, 3, ""},
         {"k", Compare::Target::Lease, Compare::Result::Equal, 77, ""}},
        {{TxnOp::Kind::Put, "k", "v", 5, ""}},
        {{TxnOp::Kind::Range, "k", "", 0, ""}, {TxnOp::Kind::Delete, "a", "", 0, "b"}}));
    EXPECT_EQ(
        j["compare"][0],
        json({{"key", "aw=="}, {"target", "VERSION"}, {"result", "EQUAL"}, {"version", "0"}}));
    EXPECT_EQ(j["compare"][1]["value"], "dg==");
    EXPECT_EQ(j["compare"][1]["result"], "NOT_EQUAL");
    EXPECT_EQ(j["compare"][2]["mod_revision"], "9");
    EXPECT_EQ(j["compare"][2]["result"], "LESS");
    EXPECT_EQ(j["compare"][3]["create_revision"], "3");
    EXPECT_EQ(j["compare"][3]["target"], "CREATE");
    EXPECT_EQ(j["compare"][4]["lease"], "77");
    EXPECT_EQ(j["success"][0],
              json({{"request_put", {{"key", "aw=="}, {"value", "dg=="}, {"lease", "5"}}}}));
    EXPECT_EQ(j["failure"][0], json({{"request_range", {{"key", "aw=="}}}}));
    EXPECT_EQ(j["failure"][1],
              json({{"request_delete_range", {{"key", "YQ=="}, {"range_end", "Yg=="}}}}));
    EXPECT_EQ(json::parse(txn_request({}, {}, {})), json::object());
}

TEST(Answers, Range) {
    auto r = parse_range(R"({"header":{"revision":"7"},"kvs":[{"key":"Zm9v",
        "create_revision":"2","mod_revision":"3","version":"2","value":"YmFy","lease":"9"}],
        "count":"1"})");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->revision, 7);
    EXPECT_EQ(r->count, 1);
    ASSERT_EQ(r->kvs.size(), 1u);
    EXPECT_EQ(r->kvs[0], (KeyValue{"foo", "bar", 2, 3, 2, 9}));
    auto empty = parse_range(R"({"header":{"revision":"2"}})");
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->count, 0);
    EXPECT_TRUE(empty->kvs.empty());
}

TEST(Answers, TxnPutDeleteLease) {
    auto t = parse_txn(R"({"header":{"revision":"2"},"responses":[{"response_range":
        {"header":{"revision":"2"},"kvs":[{"key":"Zm9v","value":"YmFy"}],"count":"1"}},
        {"response_delete_range":{"header":{"revision":"2"}}}]})");
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_FALSE(t->succeeded);
    ASSERT_EQ(t->ranges.size(), 1u);
    EXPECT_EQ(t->ranges[0].kvs[0].value, "bar");
    EXPECT_TRUE(parse_txn(R"({"header":{"revision":"3"},"succeeded":true})")->succeeded);
    EXPECT_EQ(*parse_put(R"({"header":{"revision":"12"}})"), 12);
    EXPECT_EQ(*parse_delete(R"({"header":{"revision":"4"},"deleted":"3"})"), 3);
    auto g = parse_grant(R"({"header":{},"ID":"2324035803634612234","TTL":"2"})");
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->id, 2324035803634612234);
    EXPECT_EQ(g->ttl, 2);
    EXPECT_EQ(*parse_keepalive(R"({"result":{"header":{},"ID":"5","TTL":"30"}})", 5), 30);
    auto gone = parse_keepalive(R"({"result":{"header":{},"ID":"5"}})", 5);
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(*parse_time_to_live(R"({"ID":"5","TTL":"4","grantedTTL":"5"})", 5), 4);
    auto ttl_gone = parse_time_to_live(R"({"ID":"5","TTL":"-1"})", 5);
    ASSERT_FALSE(ttl_gone.ok());
    EXPECT_EQ(ttl_gone.error().kind(), ErrorKind::NotFound);
}

TEST(Answers, MalformedIsInternalNamingTheField) {
    auto msg = [](auto r) {
        EXPECT_FALSE(r.ok());
        if (r.ok()) return std::string();
        EXPECT_EQ(r.error().kind(), ErrorKind::Internal);
        return r.error().message();
    };
    EXPECT_EQ(msg(parse_range(R"({"kvs":[{"key":"Zm9v","version":"x"}]})")),
              "kvs[0].version: \"x\" is not an int64");
    EXPECT_EQ(msg(parse_range(R"({"kvs":[{"key":"Zm9"}]})")),
              "kvs[0].key: not base64: length 3 is not a multiple of 4");
    EXPECT_EQ(msg(parse_range(R"({"kvs":{}})")), "kvs: expected an array, got object");
    EXPECT_EQ(msg(parse_range(R"({"header":{"revision":true}})")),
              "header.revision: expected an int64 as a string, got boolean");
    EXPECT_EQ(msg(parse_range(R"([])")), "not a JSON object but array");
    EXPECT_EQ(msg(parse_range(R"({"count":"99999999999999999999"})")),
              "count: \"99999999999999999999\" is not an int64");
    EXPECT_NE(msg(parse_range("{")).find("not JSON: "), std::string::npos);
    EXPECT_NE(msg(parse_range("1e999")).find("not JSON: "), std::string::npos);
    EXPECT_EQ(msg(parse_txn(R"({"succeeded":"yes"})")),
              "succeeded: expected a boolean, got string");
    EXPECT_EQ(msg(parse_txn(R"({"responses":[{"response_range":{"kvs":[1]}}]})")),
              "responses[0].response_range.kvs[0]: expected an object, got number");
    EXPECT_EQ(msg(parse_grant(R"({"TTL":"5"})")), "ID: missing (no lease was granted)");
}

TEST(Answers, EtcdErrors) {
    const char* body =
        R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})";
    Error e = error_from_answer(404, body);
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_EQ(e.message(), "etcdserver: requested lease not found");
    EXPECT_FALSE(is_member_error(404, body));
    const char* noleader = R"({"error":"etcdserver: no leader","code":14})";
    EXPECT_EQ(error_from_answer(503, noleader).kind(), ErrorKind::Unavailable);
    EXPECT_EQ(error_from_answer(503, noleader).message(), "etcdserver: no leader");
    EXPECT_TRUE(is_member_error(503, noleader));
    EXPECT_EQ(error_from_answer(400, R"({"message":"mvcc: compacted","code":11})").kind(),
              ErrorKind::Conflict);
    Error junk = error_from_answer(502, "<html>bad gateway</html>");
    EXPECT_EQ(junk.kind(), ErrorKind::Internal);
    EXPECT_EQ(junk.message(),
              "HTTP status 502 with a body that is not an etcd error: <html>bad gateway</html>");
    EXPECT_TRUE(is_member_error(502, "<html>"));
}

TEST(Endpoints, Parse) {
    auto e = parse_endpoint("https://[fd00::1]:2400/", "f");
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(e->tls);
    EXPECT_EQ(e->host, "fd00::1");
    EXPECT_EQ(e->port, "2400");
    EXPECT_EQ(parse_endpoint("http://h", "f")->port, "2379");
    EXPECT_EQ(parse_endpoint("http://h/v3", "cluster.etcd[2]").error().message(),
              "cluster.etcd[2]: \"http://h/v3\" is not an etcd endpoint URL (only a host and a "
              "port may follow the scheme; expected http://HOST:PORT or https://HOST:PORT)");
    EXPECT_FALSE(parse_endpoint("http://h:0", "f").ok());
    EXPECT_FALSE(parse_endpoint("http://[::1", "f").ok());
    EXPECT_EQ(prefix_end("/a/"), "/a0");
    EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
}

const std::string kCreated = R"({"result":{"header":{"revision":"3"},"created":true}})";
const std::string kEvents =
    R"({"result":{"header":{"revision":"4"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"e30="}},{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]}})";
const std::string kProgress = R"({"result":{"header":{"revision":"9"}}})";
const std::string kCompacted =
    R"({"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"3"}})";

TEST(WatchStreamTest, EveryByteSplitGivesTheSameBatches) {
    const std::string all = kCreated + "\n" + kEvents + "\n" + kProgress + "\n" + kCompacted;
    for (std::size_t cut = 0; cut <= all.size(); ++cut) {
        WatchStream ws;
        auto a = ws.feed(all.substr(0, cut));
        ASSERT_TRUE(a.ok()) << cut << ": " << a.error().message();
        auto b = ws.feed(all.substr(cut));
        ASSERT_TRUE(b.ok()) << cut << ": " << b.error().message();
        a->insert(a->end(), b->begin(), b->end());
        ASSERT_EQ(a->size(), 3u) << "created is not delivered";
        EXPECT_EQ((*a)[0].revision, 4);
        ASSERT_EQ((*a)[0].events.size(), 2u);
        EXPECT_EQ((*a)[0].events[0].kv.value, "{}");  // braces inside a value are not framing
        EXPECT_EQ((*a)[0].events[1].type, WatchEvent::Type::Delete);
        EXPECT_EQ((*a)[0].events[1].kv.mod_revision, 4);
        EXPECT_TRUE((*a)[1].events.empty());
        EXPECT_EQ((*a)[1].revision, 9);
        EXPECT_TRUE((*a)[2].compacted);
        EXPECT_EQ((*a)[2].compact_revision, 3);
        EXPECT_EQ(ws.pending(), 0u);
    }
}

TEST(WatchStreamTest, StringsWithBracesAndEscapes) {
    WatchStream ws;
    auto r = ws.feed(R"({"result":{"header":{"revision":"1"},"cancel_reason":"}\"{","x":"\\"}})");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->size(), 1u);
}

TEST(WatchStreamTest, Errors) {
    {
        WatchStream ws;
        auto r = ws.feed("x{}");
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind(), ErrorKind::Internal);
        EXPECT_EQ(r.error().message(),
                  "watch stream message 0: unexpected byte 0x78 between messages");
    }
    {
        WatchStream ws;
        auto r = ws.feed(kCreated + R"({"result":{"events":[{"type":"BOOM","kv":{}}]}})");
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().message(),
                  "watch stream message 1: result.events[0].type: unknown event type \"BOOM\"");
    }
    {
        WatchStream ws;
        auto r = ws.feed(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})");
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
        EXPECT_NE(r.error().message().find("etcdserver: no leader"), std::string::npos);
    }
    {
        WatchStream ws;
        auto r = ws.feed(R"({"result":{"canceled":true,"cancel_reason":"permission denied"}})");
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error().message().find("etcd canceled the watch: permission denied"),
                  std::string::npos);
    }
}

}  // namespace
}  // namespace cnetd::etcd::codec
