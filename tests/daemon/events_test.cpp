// daemon/events.hpp (the event log: Docker's JSON shape, filters, since/until, the ring, bounded
// subscriber queues) and daemon/events_diff.hpp (network/port/firewall events from two
// snapshots). No privileges, no daemon.
#include <atomic>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/events.hpp"
#include "daemon/events_diff.hpp"

namespace cnetd::daemon {
namespace {

using nlohmann::json;

Event ev(std::string type, std::string action, std::string id,
         std::map<std::string, std::string> attrs = {}, int64_t t = 0) {
    Event e;
    e.type = std::move(type);
    e.action = std::move(action);
    e.actor_id = std::move(id);
    e.attributes = std::move(attrs);
    e.time_nano = t;
    return e;
}

// The lines of `s` ("a\nb\n" → {"a", "b"}).
std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
        out.push_back(s.substr(start, nl - start));
    return out;
}

std::string actions(const std::vector<Event>& es) {
    std::string out;
    for (const auto& e : es) {
        out += (out.empty() ? "" : ",") + e.type + " " + e.action;
        if (auto it = e.attributes.find("port"); it != e.attributes.end()) out += " " + it->second;
    }
    return out;
}

TEST(Events, JsonLineIsDockersShape) {
    Event e = ev("network", "connect", "abc",
                 {{"name", "web"}, {"type", "bridge"}, {"container", "c1"}}, 1733310000123456789);
    EXPECT_EQ(to_json_line(e),
              R"({"Type":"network","Action":"connect","Actor":{"ID":"abc","Attributes":)"
              R"({"container":"c1","name":"web","type":"bridge"}},"scope":"local",)"
              R"("time":1733310000,"timeNano":1733310000123456789})");
}

TEST(Events, QueryParsesFiltersAndTimes) {
    auto f = parse_event_query(
        "filters=%7B%22type%22%3A%5B%22network%22%2C%22port%22%5D%2C%22network%22%3A%5B%22web%22%"
        "5D%7D"
        "&since=1733310000.5&until=2026-12-04T12:00:00.25%2B01:00");
    ASSERT_TRUE(f.ok()) << f.error().message();
    EXPECT_EQ(f->filters.at("type"), (std::vector<std::string>{"network", "port"}));
    EXPECT_EQ(f->filters.at("network"), (std::vector<std::string>{"web"}));
    EXPECT_EQ(*f->since_nano, 1733310000500000000);
    EXPECT_EQ(*f->until_nano, 1796382000250000000);  // 11:00:00.25Z
    // Docker's older form {"type":{"network":true}} and RFC 3339 with Z.
    f = parse_event_query(R"(filters={"event":{"connect":true}}&since=2026-12-04T11:00:00Z)");
    ASSERT_TRUE(f.ok()) << f.error().message();
    EXPECT_EQ(f->filters.at("event"), (std::vector<std::string>{"connect"}));
    EXPECT_EQ(*f->since_nano, 1796382000000000000);
    EXPECT_TRUE(parse_event_query("").ok());
}

TEST(Events, QueryErrorsNameTheParameterAndValue) {
    auto msg = [](const std::string& q) {
        auto f = parse_event_query(q);
        return f.ok() ? std::string("ok") : f.error().message();
    };
    EXPECT_EQ(msg(R"(filters={"foo":["x"]})"),
              "filters: unknown key \"foo\" (expected type, event, network or container)");
    EXPECT_EQ(msg(R"(filters={"type":["volume"]})"),
              "filters: type: unknown event type \"volume\" (expected network, port, firewall, "
              "netns, gc or reload)");
    EXPECT_EQ(msg(R"(filters={"type":[1]})"), "filters: type: 1 is not a string");
    EXPECT_EQ(
        msg("filters=nope"),
        "filters: \"nope\" is not a JSON object of string lists (e.g. {\"type\":[\"network\"]})");
    EXPECT_EQ(msg("since=yesterday"),
              "since: \"yesterday\" is not a time: expected Unix seconds (1733310000 or "
              "1733310000.123456789) or RFC 3339 (2026-12-04T11:00:00Z)");
    EXPECT_EQ(msg("until=-5"), msg("until=-5"));
    EXPECT_NE(msg("until=-5").find("until: \"-5\" is not a time"), std::string::npos);
    EXPECT_EQ(msg("since=10&until=5"), "until: earlier than since");
    EXPECT_EQ(msg("limit=5"),
              "unknown query parameter \"limit\" (expected filters, since or until)");
    EXPECT_EQ(msg("since=1&since=2"), "since: given more than once");
    EXPECT_EQ(msg("since=%zz"), "since: bad %-escape in \"%zz\"");
}

TEST(Events, FiltersOrValuesAndAndKeys) {
    Event net = ev("network", "connect", "0123abcd", {{"name", "web"}, {"container", "c1"}}, 5);
    Event port = ev("port", "publish", "0123abcd", {{"name", "web"}, {"container", "c1"}}, 6);
    Event ns = ev("netns", "create", "n1", {{"name", "n1"}}, 7);
    Event gc = ev("gc", "collect", "c9", {{"network", "web"}, {"container", "c9"}}, 8);
    EventFilter f;
    f.filters = {{"type", {"network", "port"}}};
    EXPECT_TRUE(f.matches(net));
    EXPECT_TRUE(f.matches(port));
    EXPECT_FALSE(f.matches(ns));
    f.filters["event"] = {"publish"};
    EXPECT_FALSE(f.matches(net));
    EXPECT_TRUE(f.matches(port));
    // network: id, id prefix or name; other types by their "network" attribute.
    for (const char* key : {"0123abcd", "0123", "web"}) {
        EventFilter g;
        g.filters = {{"network", {key}}};
        EXPECT_TRUE(g.matches(net)) << key;
        EXPECT_EQ(g.matches(gc), std::string(key) == "web") << key;  // a gc event has the name
        EXPECT_FALSE(g.matches(ns)) << key;
    }
    EventFilter c;
    c.filters = {{"container", {"c9"}}};
    EXPECT_FALSE(c.matches(net));
    EXPECT_TRUE(c.matches(gc));
    EventFilter t;
    t.since_nano = 6;
    t.until_nano = 7;
    EXPECT_FALSE(t.matches(net));
    EXPECT_TRUE(t.matches(port));
    EXPECT_TRUE(t.matches(ns));
    EXPECT_FALSE(t.matches(gc));
}

TEST(EventLog, RingKeepsTheLastEventsInOrderAndStampsThem) {
    EventLog log(4, 16);
    for (int i = 0; i < 6; ++i) log.publish(ev("netns", "create", "n" + std::to_string(i)));
    EventFilter all;
    all.since_nano = 0;
    auto kept = log.replay(all);
    ASSERT_EQ(kept.size(), 4u);
    for (size_t i = 0; i < kept.size(); ++i) {
        EXPECT_EQ(kept[i].actor_id, "n" + std::to_string(i + 2));
        EXPECT_EQ(kept[i].seq, i + 3);
        EXPECT_GT(kept[i].time_nano, 0);
        if (i) {
            EXPECT_GE(kept[i].time_nano, kept[i - 1].time_nano);
        }
    }
    EventFilter f;
    f.filters = {{"event", {"remove"}}};
    EXPECT_TRUE(log.replay(f).empty());
}

TEST(EventLog, SubscriberGetsMatchingLinesAndIsWokenOncePerBatch) {
    EventLog log;
    std::atomic<int> wakes{0};
    EventFilter f;
    f.filters = {{"type", {"netns"}}};
    auto sub = log.subscribe(f, [&] { ++wakes; });
    EXPECT_EQ(log.subscribers(), 1u);
    log.publish(ev("netns", "create", "a"));
    log.publish(ev("network", "create", "x"));  // filtered out
    log.publish(ev("netns", "remove", "a"));
    EXPECT_EQ(wakes.load(), 1);  // the second line joined a queue that was not drained yet
    std::string out;
    EXPECT_FALSE(sub->take(out));
    auto got = lines(out);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(json::parse(got[0])["Action"], "create");
    EXPECT_EQ(json::parse(got[1])["Action"], "remove");
    log.publish(ev("netns", "create", "b"));
    EXPECT_EQ(wakes.load(), 2);
    sub->release();
    EXPECT_EQ(log.subscribers(), 0u);
    log.publish(ev("netns", "create", "c"));
    EXPECT_EQ(wakes.load(), 2);
}

TEST(EventLog, OverflowDropsOnlyTheSlowSubscriberWithAFinalErrorLine) {
    EventLog log(256, 3);
    int slow_wakes = 0;
    auto slow = log.subscribe({}, [&] { ++slow_wakes; });
    auto fast = log.subscribe({}, [] {});
    std::string fast_out;
    for (int i = 0; i < 5; ++i) {
        log.publish(ev("netns", "create", "n" + std::to_string(i)));
        EXPECT_FALSE(fast->take(fast_out));
    }
    EXPECT_EQ(lines(fast_out).size(), 5u);
    EXPECT_EQ(log.dropped_subscribers(), 1u);
    EXPECT_EQ(log.subscribers(), 1u);
    EXPECT_EQ(slow_wakes, 2);  // the first line, then the drop
    std::string out;
    EXPECT_TRUE(slow->take(out));  // ended
    auto got = lines(out);
    ASSERT_EQ(got.size(), 4u);  // the 3 queued lines, then the error line
    EXPECT_EQ(json::parse(got[2])["Actor"]["ID"], "n2");
    const std::string err = json::parse(got[3])["error"];
    EXPECT_EQ(err.rfind("subscriber too slow: 3 events queued and not read; stream ended at "
                        "event 4 (reconnect with since=",
                        0),
              0u)
        << err;
}

TEST(EventLog, SinceReplaysBeforeLiveAndPastUntilEndsAfterTheReplay) {
    EventLog log;
    log.publish(ev("netns", "create", "old", {}, 100));
    log.publish(ev("netns", "create", "mid", {}, 200));
    EventFilter since;
    since.since_nano = 150;
    auto sub = log.subscribe(since, [] {});
    log.publish(ev("netns", "create", "live"));
    std::string out;
    EXPECT_FALSE(sub->take(out));
    auto got = lines(out);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(json::parse(got[0])["Actor"]["ID"], "mid");
    EXPECT_EQ(json::parse(got[1])["Actor"]["ID"], "live");
    // No since/until: live only.
    auto live = log.subscribe({}, [] {});
    std::string none;
    EXPECT_FALSE(live->take(none));
    EXPECT_EQ(none, "");

    EventFilter until;
    until.until_nano = 150;
    auto past = log.subscribe(until, [] {});
    EXPECT_EQ(log.subscribers(), 2u);  // not registered
    std::string replay;
    EXPECT_TRUE(past->take(replay));
    got = lines(replay);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(json::parse(got[0])["Actor"]["ID"], "old");
    EXPECT_EQ(*past->until_nano(), 150);
}

TEST(EventLog, CloseEndsEverySubscriptionAndTapSeesEveryEvent) {
    EventLog log;
    std::vector<std::string> tapped;
    log.set_tap([&](const Event& e) { tapped.push_back(e.type + " " + std::to_string(e.seq)); });
    bool woken = false;
    auto sub = log.subscribe({}, [&] { woken = true; });
    log.publish(ev("gc", "collect", "c"));
    log.publish(ev("reload", "reload", "/etc/cnetd/cnetd.yaml"));
    EXPECT_EQ(tapped, (std::vector<std::string>{"gc 1", "reload 2"}));
    woken = false;
    log.close();
    EXPECT_TRUE(woken);
    std::string out;
    EXPECT_TRUE(sub->take(out));
    EXPECT_EQ(lines(out).size(), 2u);  // the queued lines, no error line
    EXPECT_EQ(log.subscribers(), 0u);
    std::string after;
    EXPECT_TRUE(log.subscribe({}, [] {})->take(after));  // closed: ended at once
}

// ---- snapshot diff ----

core::Network network(const std::string& id, const std::string& name) {
    core::Network n;
    n.id = id;
    n.name = name;
    return n;
}

core::Endpoint endpoint(const std::string& id, const std::string& name,
                        std::vector<uint16_t> host_ports) {
    core::Endpoint ep;
    ep.id = id;
    ep.name = name;
    for (uint16_t p : host_ports) {
        core::PortBinding b;
        b.host = {p, p};
        b.container = {80, 80};
        ep.ports.push_back(b);
    }
    return ep;
}

TEST(EventsDiff, CreateConnectPublishThenUnpublishDisconnectDestroy) {
    Snapshot s0, s1, s2, s3, s4;
    s1.networks = {network("n1", "web")};
    s2 = s1;
    s2.networks[0].endpoints.put(endpoint("e1", "c1", {8080}));
    auto ev1 = diff_snapshots(s0, s1);
    EXPECT_EQ(actions(ev1), "network create");
    EXPECT_EQ(ev1[0].actor_id, "n1");
    EXPECT_EQ(ev1[0].attributes,
              (std::map<std::string, std::string>{{"name", "web"}, {"type", "bridge"}}));
    EXPECT_EQ(ev1[0].scope, "local");
    auto ev2 = diff_snapshots(s1, s2);
    EXPECT_EQ(actions(ev2), "network connect,port publish 0.0.0.0:8080->80/tcp");
    EXPECT_EQ(ev2[0].attributes.at("container"), "c1");
    EXPECT_EQ(ev2[1].actor_id, "n1");
    // A network and its endpoint at once (both ways).
    EXPECT_EQ(actions(diff_snapshots(s0, s2)),
              "network create,network connect,port publish 0.0.0.0:8080->80/tcp");
    EXPECT_EQ(actions(diff_snapshots(s2, s0)),
              "port unpublish 0.0.0.0:8080->80/tcp,network disconnect,network destroy");
    s3 = s2;
    s3.networks[0].endpoints.erase("e1");
    EXPECT_EQ(actions(diff_snapshots(s2, s3)),
              "port unpublish 0.0.0.0:8080->80/tcp,network disconnect");
    EXPECT_EQ(actions(diff_snapshots(s3, s4)), "network destroy");
}

TEST(EventsDiff, UnchangedIsNothingPortsChangedInPlaceAndRepairs) {
    Snapshot a;
    a.networks = {network("n1", "web")};
    a.networks[0].endpoints.put(endpoint("e1", "c1", {8080, 8081}));
    Snapshot b = a;  // shares the endpoint map: nothing to look at
    EXPECT_TRUE(diff_snapshots(a, b).empty());
    b.networks[0].endpoints.put(endpoint("e1", "c1", {8081, 9090}));
    EXPECT_EQ(actions(diff_snapshots(a, b)),
              "port publish 0.0.0.0:9090->80/tcp,port unpublish 0.0.0.0:8080->80/tcp");
    b.firewall.table = "inet cnetd";
    b.firewall.repairs = a.firewall.repairs + 2;
    auto evs = diff_snapshots(b, b);
    EXPECT_TRUE(evs.empty());
    Snapshot c = b;
    c.firewall.repairs = b.firewall.repairs + 1;
    evs = diff_snapshots(b, c);
    ASSERT_EQ(actions(evs), "firewall repair");
    EXPECT_EQ(evs[0].attributes.at("repairs"), "3");
    EXPECT_EQ(evs[0].actor_id, "inet cnetd");
}

TEST(EventsDiff, OverlayIsGlobalAndCniEndpointsNameTheirContainerId) {
    Snapshot a, b;
    core::Network n = network("o1", "ov");
    n.driver = "overlay";
    n.overlay = core::Overlay{};
    core::Endpoint ep = endpoint("e1", "pod", {});
    ep.container_id = "cafe01";
    n.endpoints.put(ep);
    b.networks = {n};
    auto evs = diff_snapshots(a, b);
    ASSERT_EQ(actions(evs), "network create,network connect");
    EXPECT_EQ(evs[0].scope, "global");
    EXPECT_EQ(evs[0].attributes.at("type"), "overlay");
    EXPECT_EQ(evs[1].attributes.at("container"), "cafe01");
}

TEST(EventsDiff, SnapshotEventsTakesTheFirstSnapshotAsItsBaseline) {
    EventLog log;
    SnapshotEvents se(log);
    auto s1 = std::make_shared<Snapshot>();
    s1->networks = {network("n1", "web")};
    se.on_publish(s1);
    se.on_publish(s1);  // the same publication again: nothing
    EventFilter all;
    all.since_nano = 0;
    EXPECT_TRUE(log.replay(all).empty());
    se.on_publish(std::make_shared<Snapshot>());
    auto got = log.replay(all);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].action, "destroy");
}

}  // namespace
}  // namespace cnetd::daemon
