// GET /v1/events and `netctl events` against the real daemon (issue 19, "Events"): the exact
// event sequence of a container's life, filters, since replay, until, the subscriber cap, a stuck
// subscriber that neither slows attaches nor survives an overflow, and shutdown ending streams.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <regex>
#include <thread>

#include "api/client.hpp"
#include "fixture.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int64_t now_nano() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
std::string unix_time(int64_t nano) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(nano / 1000000000),
                  static_cast<long long>(nano % 1000000000));
    return buf;
}
std::string url(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
            out += static_cast<char>(c);
        } else {
            char b[4];
            std::snprintf(b, sizeof b, "%%%02X", c);
            out += b;
        }
    }
    return out;
}

// An event stream read raw off the socket: the test decides when (and whether) to read, so it
// can play a stuck subscriber. The body's chunks are decoded into lines.
class RawStream {
public:
    RawStream(const std::string& socket, const std::string& target) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::strncpy(sa.sun_path, socket.c_str(), sizeof sa.sun_path - 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return;
        std::string req = "GET " + target + " HTTP/1.1\r\nHost: cnetd\r\n\r\n";
        connected_ = ::write(fd_, req.data(), req.size()) == static_cast<ssize_t>(req.size());
    }
    ~RawStream() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool connected() const { return connected_; }
    // Reads until the status line and headers are in (the daemon subscribed it by then).
    bool read_head(std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        char buf[4096];
        while (raw_.find("\r\n\r\n") == std::string::npos && Clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n <= 0) return false;
            raw_.append(buf, static_cast<size_t>(n));
        }
        return raw_.find("\r\n\r\n") != std::string::npos;
    }
    // Reads until the stream ends (EOF) or `timeout`; true at EOF.
    bool read_to_end(std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        char buf[65536];
        while (Clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n <= 0) return true;
            raw_.append(buf, static_cast<size_t>(n));
        }
        return false;
    }
    // The status line and headers.
    std::string head() const { return raw_.substr(0, raw_.find("\r\n\r\n")); }
    // The body's lines (chunked decoding); `complete` says whether the last chunk came.
    std::vector<std::string> lines(bool* complete = nullptr) const {
        std::string body;
        size_t pos = raw_.find("\r\n\r\n");
        bool done = false;
        if (pos != std::string::npos) {
            pos += 4;
            for (;;) {
                size_t eol = raw_.find("\r\n", pos);
                if (eol == std::string::npos) break;
                size_t n = std::stoul(raw_.substr(pos, eol - pos), nullptr, 16);
                if (n == 0) {
                    done = true;
                    break;
                }
                if (eol + 2 + n + 2 > raw_.size()) break;
                body += raw_.substr(eol + 2, n);
                pos = eol + 2 + n + 2;
            }
        }
        if (complete) *complete = done;
        std::vector<std::string> out;
        size_t start = 0;
        for (size_t nl; (nl = body.find('\n', start)) != std::string::npos; start = nl + 1)
            out.push_back(body.substr(start, nl - start));
        return out;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string raw_;
};

// "network create <id> name=web,type=bridge": the parts of an event the sequence test compares.
std::string brief(const json& e) {
    std::string attrs;
    for (const auto& [k, v] : e["Actor"]["Attributes"].items())
        if (k != "path") attrs += (attrs.empty() ? "" : ",") + k + "=" + v.get<std::string>();
    return e["Type"].get<std::string>() + " " + e["Action"].get<std::string>() + " " +
           e["Actor"]["ID"].get<std::string>() + " " + attrs;
}

class EventsTest : public DaemonTest {
protected:
    cnetd::api::Client client() const { return cnetd::api::Client(d.socket(), 10s); }

    // Streams `target` on a thread until `stop_after` lines or the stream's end. The thread is
    // detached (it holds only copies): a test that fails while it waits is not held by it; it
    // ends when the daemon does.
    class Listener {
    public:
        explicit Listener(std::future<std::vector<std::string>> f) : f_(std::move(f)) {}
        std::vector<std::string> get() {
            if (f_.wait_for(20s) != std::future_status::ready) {
                ADD_FAILURE() << "the event stream gave no result within 20 s";
                return {};
            }
            return f_.get();
        }

    private:
        std::future<std::vector<std::string>> f_;
    };
    Listener listen(const std::string& target, size_t stop_after) {
        std::packaged_task<std::vector<std::string>()> task([c = client(), target, stop_after] {
            std::vector<std::string> got;
            auto r = c.stream(target, [&](std::string_view line) {
                got.emplace_back(line);
                return got.size() < stop_after;
            });
            if (!r) got.push_back("ERROR " + r.error().message());
            return got;
        });
        Listener l(task.get_future());
        std::thread(std::move(task)).detach();
        return l;
    }
    // Waits until the daemon has `n` subscribers... seen from outside: a marker event echoes.
    // Listeners pass since=<a time before the action>: however late their subscription lands,
    // the ring replays what they missed, without gap or double (replay and subscription are one
    // step). This short wait only makes it likely that the events come live.
    void wait_subscribed() { std::this_thread::sleep_for(200ms); }

    // The lifecycle of the sequence test; returns the network's id.
    std::string lifecycle() {
        ok({"network", "create", "web", "--subnet", "10.77.0.0/24"});
        ok({"netns", "create", "c1"});
        ok({"network", "connect", "web", "c1", "-p", "8080:80"});
        ok({"network", "disconnect", "web", "c1"});
        const std::string id = d.netctl_json({"network", "inspect", "web"})[0]["Id"];
        ok({"network", "rm", "web"});
        ok({"netns", "rm", "c1"});
        return id;
    }
    static std::vector<std::string> expected(const std::string& id) {
        return {
            "network create " + id + " name=web,type=bridge",
            "netns create c1 name=c1",
            "network connect " + id + " container=c1,name=web,type=bridge",
            "port publish " + id + " container=c1,name=web,port=0.0.0.0:8080->80/tcp,type=bridge",
            "port unpublish " + id + " container=c1,name=web,port=0.0.0.0:8080->80/tcp,type=bridge",
            "network disconnect " + id + " container=c1,name=web,type=bridge",
            "network destroy " + id + " name=web,type=bridge",
            "netns remove c1 name=c1"};
    }
};

TEST_F(EventsTest, LifecycleSequenceLiveAndReplayedWithFiltersAndUntil) {
    start();
    const int64_t t0 = now_nano();
    auto all = listen("/v1/events?since=" + unix_time(t0), 8);
    auto ports =
        listen("/v1/events?since=" + unix_time(t0) + "&filters=" + url(R"({"type":["port"]})"), 2);
    wait_subscribed();
    const std::string id = lifecycle();
    auto got = all.get();
    ASSERT_EQ(got.size(), 8u) << (got.empty() ? "" : got.back());
    std::vector<std::string> briefs;
    int64_t last = 0;
    for (const auto& line : got) {
        json e = json::parse(line);
        briefs.push_back(brief(e));
        EXPECT_EQ(e["scope"], "local");
        EXPECT_EQ(e["time"].get<int64_t>(), e["timeNano"].get<int64_t>() / 1000000000);
        EXPECT_GE(e["timeNano"].get<int64_t>(), std::max(t0, last));
        last = e["timeNano"];
    }
    EXPECT_EQ(briefs, expected(id));
    EXPECT_EQ(json::parse(got[1])["Actor"]["Attributes"]["path"], ns("c1"));
    auto p = ports.get();
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(json::parse(p[0])["Action"], "publish");
    EXPECT_EQ(json::parse(p[1])["Action"], "unpublish");

    // since: the same events replayed from the ring; until (now, past): the stream then ends.
    const std::string until = unix_time(now_nano());
    auto replay = listen("/v1/events?since=" + unix_time(t0) + "&until=" + until, 100).get();
    ASSERT_EQ(replay, got);
    // A network filter (name) with an event filter, replayed.
    auto conn = listen("/v1/events?since=" + unix_time(t0) + "&until=" + until + "&filters=" +
                           url(R"({"network":["web"],"event":["connect","disconnect"]})"),
                       100)
                    .get();
    ASSERT_EQ(conn.size(), 2u);
    EXPECT_EQ(brief(json::parse(conn[0])), expected(id)[2]);
    EXPECT_EQ(brief(json::parse(conn[1])), expected(id)[5]);
    // until in the future (since now: no replay): live events until then, then the end.
    const auto started = Clock::now();
    auto future_until = listen("/v1/events?since=" + unix_time(now_nano()) +
                                   "&until=" + unix_time(now_nano() + 1'500'000'000),
                               100);
    wait_subscribed();
    ok({"netns", "create", "late"});
    auto late = future_until.get();
    const auto took = Clock::now() - started;
    ASSERT_EQ(late.size(), 1u);
    EXPECT_EQ(json::parse(late[0])["Actor"]["ID"], "late");
    EXPECT_GE(took, 1400ms);
    EXPECT_LT(took, 5s);
    // Bad queries are 400s naming the parameter.
    auto bad = client().raw("GET", "/v1/events?filters=" + url(R"({"bogus":["x"]})"), "");
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->status, 400);
    EXPECT_NE(bad->body.find("filters: unknown key \\\"bogus\\\""), std::string::npos) << bad->body;
}

TEST_F(EventsTest, NetctlEventsPrintsDockersFormat) {
    start();
    const int64_t t0 = now_nano();
    const std::string id = lifecycle();
    const std::string until = unix_time(now_nano());
    CmdResult r = d.netctl({"events", "--since", unix_time(t0), "--until", until});
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string ts = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) )";
    const std::vector<std::string> want = {
        "network create " + id + R"( \(name=web, type=bridge\))",
        "netns create c1 \\(name=c1, path=" + ns("c1") + "\\)",
        "network connect " + id + R"( \(container=c1, name=web, type=bridge\))",
        "port publish " + id +
            R"( \(container=c1, name=web, port=0\.0\.0\.0:8080->80/tcp, type=bridge\))",
        "port unpublish " + id +
            R"( \(container=c1, name=web, port=0\.0\.0\.0:8080->80/tcp, type=bridge\))",
        "network disconnect " + id + R"( \(container=c1, name=web, type=bridge\))",
        "network destroy " + id + R"( \(name=web, type=bridge\))",
        "netns remove c1 \\(name=c1, path=" + ns("c1") + "\\)"};
    std::vector<std::string> lines;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ASSERT_EQ(lines.size(), want.size()) << r.out;
    for (size_t i = 0; i < want.size(); ++i)
        EXPECT_TRUE(std::regex_match(lines[i], std::regex(ts + want[i]))) << lines[i];
    // --filter (repeatable, keys ANDed) and --json (the lines as they came).
    r = d.netctl({"--json", "events", "--filter", "type=netns", "--filter", "event=remove",
                  "--since", unix_time(t0), "--until", until});
    ASSERT_EQ(r.status, 0) << r.err;
    json e = json::parse(r.out);
    EXPECT_EQ(e["Type"], "netns");
    EXPECT_EQ(e["Action"], "remove");
    // A duration for --since (10m ago) replays everything kept.
    r = d.netctl({"events", "--since", "10m", "--until", until, "--filter", "type=network"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << r.out;
    // Go's compound durations too (1h30m, 0.5h, 1500ms); "10x" is no duration: it goes to the
    // daemon as given, which names the parameter.
    for (const char* since : {"1h30m", "0.5h", "2m30s"}) {
        r = d.netctl({"events", "--since", since, "--until", until, "--filter", "type=network"});
        ASSERT_EQ(r.status, 0) << since << ": " << r.err;
        EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << since << ": " << r.out;
    }
    r = d.netctl({"events", "--since", "10x", "--until", until});
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.err.find("since"), std::string::npos) << r.err;
    // Usage and daemon errors.
    r = d.netctl({"events", "--filter", "nokey"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "netctl: --filter: \"nokey\" is not KEY=VALUE (e.g. type=network)\n");
    r = d.netctl({"events", "--filter", "type=volume"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("filters: type: unknown event type \"volume\""), std::string::npos)
        << r.err;
}

// Attach (connect) latency p50 over `n` connect/disconnect rounds, in ms.
double attach_p50(const cnetd::api::Client& c, int n) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
        const auto t = Clock::now();
        auto r = c.request("POST", "/v1/networks/web/connect", json{{"Target", "c1"}});
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
        EXPECT_TRUE(r.ok()) << r.error().message();
        auto d = c.request("POST", "/v1/networks/web/disconnect", json{{"Target", "c1"}});
        EXPECT_TRUE(d.ok()) << d.error().message();
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

TEST_F(EventsTest, StuckSubscriberDoesNotSlowAttachAndIsDroppedAfterOverflow) {
    start();
    ok({"network", "create", "web", "--subnet", "10.78.0.0/24"});
    ok({"netns", "create", "c1"});
    auto c = client();
    attach_p50(c, 3);  // warm-up
    const double base = attach_p50(c, 15);
    RawStream stuck(d.socket(), "/v1/events");  // opens the stream, then never reads its events
    ASSERT_TRUE(stuck.connected());
    ASSERT_TRUE(stuck.read_head(5s));
    const double with = attach_p50(c, 15);
    std::printf("attach p50: %.2f ms without a subscriber, %.2f ms with a stuck one\n", base, with);
    EXPECT_LE(with, 2 * base + 2.0) << "base " << base << " ms";

    // Thousands of port events (800 mappings a connect): the stuck subscriber's socket fills,
    // then its queue; it is dropped, never waited for.
    json publish = json::array();
    for (int i = 0; i < 800; ++i)
        publish.push_back(std::to_string(20000 + i) + ":" + std::to_string(1000 + i));
    const auto t = Clock::now();
    for (int round = 0; round < 3; ++round) {
        auto r = c.request("POST", "/v1/networks/web/connect",
                           json{{"Target", "c1"}, {"Publish", publish}});
        ASSERT_TRUE(r.ok()) << r.error().message();
        ASSERT_TRUE(c.request("POST", "/v1/networks/web/disconnect", json{{"Target", "c1"}}).ok());
    }
    std::printf("4800 port events published in %.0f ms\n",
                std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    // Now read: what was buffered, the error line, the end.
    ASSERT_TRUE(stuck.read_to_end(10s));
    bool complete = false;
    auto lines = stuck.lines(&complete);
    EXPECT_TRUE(complete);
    EXPECT_NE(stuck.head().find("Content-Type: application/jsonl"), std::string::npos)
        << stuck.head();
    ASSERT_GE(lines.size(), 2u);
    const std::string err = json::parse(lines.back()).value("error", "");
    EXPECT_EQ(err.rfind("subscriber too slow: 1024 events queued and not read", 0), 0u)
        << lines.back();
    EXPECT_LT(lines.size(), 4800u + 61u);  // it did not get them all
    for (size_t i = 0; i + 1 < lines.size(); ++i)
        ASSERT_TRUE(json::parse(lines[i]).contains("Type")) << lines[i];
    // The daemon goes on serving new subscribers.
    auto fresh = listen("/v1/events?since=" + unix_time(now_nano()), 1);
    wait_subscribed();
    ok({"netns", "create", "after"});
    auto got = fresh.get();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(json::parse(got[0])["Actor"]["ID"], "after");
}

// The daemon's own housekeeping: the netns GC (a namespace dies behind its back), a firewall
// repair (someone deletes the table), a reload (SIGHUP), and a reload of a broken config.
TEST_F(EventsTest, GcFirewallRepairAndReloadAreEvents) {
    start();
    ok({"netns", "create", "a"});
    ok({"network", "connect", "bridge", "a", "-p", "8080:80"});
    const std::string t1 = unix_time(now_nano());
    auto gc = listen("/v1/events?since=" + t1, 3);
    auto repair =
        listen("/v1/events?since=" + t1 + "&filters=" + url(R"({"type":["firewall"]})"), 1);
    auto reload = listen("/v1/events?since=" + t1 + "&filters=" + url(R"({"type":["reload"]})"), 2);
    wait_subscribed();
    ASSERT_NO_FATAL_FAILURE(drop_netns("a"));
    auto got = gc.get();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(brief(json::parse(got[0])), "gc collect a container=a,network=bridge");
    EXPECT_EQ(json::parse(got[1])["Action"], "unpublish");
    EXPECT_EQ(json::parse(got[2])["Action"], "disconnect");

    ASSERT_EQ(run({"nft", "delete", "table", "inet", "cnetd"}).status, 0);
    got = repair.get();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(brief(json::parse(got[0])), "firewall repair inet cnetd repairs=1,table=inet cnetd");

    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    std::this_thread::sleep_for(300ms);
    d.write_config("bip: [not, a, cidr\n");
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    got = reload.get();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(brief(json::parse(got[0])), "reload reload " + d.config() + " config=" + d.config());
    json fail = json::parse(got[1]);
    EXPECT_EQ(fail["Action"], "fail");
    EXPECT_NE(fail["Actor"]["Attributes"].value("error", ""), "") << got[1];
}

TEST_F(EventsTest, SubscriberCapIs64AndShutdownEndsStreams) {
    start();
    std::vector<std::unique_ptr<RawStream>> streams;
    for (int i = 0; i < 64; ++i) {
        streams.push_back(std::make_unique<RawStream>(d.socket(), "/v1/events"));
        ASSERT_TRUE(streams.back()->connected());
    }
    for (auto& s : streams) ASSERT_TRUE(s->read_head(5s));
    auto over = client().raw("GET", "/v1/events", "");
    ASSERT_TRUE(over.ok()) << over.error().message();
    EXPECT_EQ(over->status, 503);
    EXPECT_NE(over->body.find("too many event subscribers: cnetd serves at most 64"),
              std::string::npos)
        << over->body;
    // Other requests still get through (the streams hold slots, not the io thread).
    EXPECT_TRUE(client().request("GET", "/v1/ping").ok());
    // SIGTERM: every stream ends with its last chunk, and the daemon exits promptly.
    const auto t = Clock::now();
    d.kill(SIGTERM);
    EXPECT_LT(Clock::now() - t, 3s);
    for (auto& s : streams) {
        ASSERT_TRUE(s->read_to_end(2s));
        bool complete = false;
        EXPECT_TRUE(s->lines(&complete).empty());
        EXPECT_TRUE(complete) << s->head();
    }
}

}  // namespace
