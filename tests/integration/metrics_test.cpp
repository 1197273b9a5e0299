// Prometheus metrics end to end (docs/observability.md, "Metrics"): the real cnetd, scraped on its
// control socket and on its TCP listener, every exposition parsed by the reference parser
// (python3-prometheus-client's text_string_to_metric_families, tests/integration/metrics_parse.py),
// and counters compared before and after a known sequence of requests: exact deltas.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

class Metrics : public DaemonTest {
protected:
    void TearDown() override {
        unsetenv("CNETD_FAILPOINTS_FILE");
        DaemonTest::TearDown();
    }

    // One request on the control socket with curl; the HTTP status.
    int api(const std::string& method, const std::string& path, const std::string& body = "") {
        std::vector<std::string> argv{
            "curl",          "-s",       "-o", "/dev/null", "-w", "%{http_code}",
            "--unix-socket", d.socket(), "-X", method};
        if (!body.empty())
            argv.insert(argv.end(), {"-H", "Content-Type: application/json", "-d", body});
        argv.push_back("http://localhost" + path);
        CmdResult r = run(argv);
        EXPECT_EQ(r.status, 0) << r.err;
        return std::atoi(r.out.c_str());
    }
    // GET `url` (over the control socket when `unix`), parsed: {"types", "samples"}.
    json scrape(const std::string& url = "http://localhost/metrics", bool unix = true) {
        std::vector<std::string> argv{"curl", "-s", "-f"};
        if (unix) argv.insert(argv.end(), {"--unix-socket", d.socket()});
        argv.push_back(url);
        CmdResult r = run(argv);
        EXPECT_EQ(r.status, 0) << url << ": " << r.err;
        return parse(r.out);
    }
    json parse(const std::string& text) {
        const std::string file = d.dir() + "/scrape.txt";
        std::ofstream(file) << text;
        const char* src = std::getenv("CNETD_SRC_DIR");
        // Debian's interpreter, where python3-prometheus-client lives (not a pyenv shim on PATH).
        CmdResult r =
            run({"/usr/bin/python3",
                 std::string(src ? src : ".") + "/tests/integration/metrics_parse.py", file});
        EXPECT_EQ(r.status, 0) << r.err << "\n--- exposition ---\n" << text;
        if (r.status != 0) return json{{"types", json::object()}, {"samples", json::object()}};
        return json::parse(r.out);
    }
    static double val(const json& m, const std::string& key) {
        auto s = m["samples"];
        return s.contains(key) ? s[key].get<double>() : 0.0;
    }
    static double delta(const json& a, const json& b, const std::string& key) {
        return val(b, key) - val(a, key);
    }
    static std::string req(const std::string& code, const std::string& method,
                           const std::string& route) {
        return "cnetd_api_requests_total{code=\"" + code + "\",method=\"" + method + "\",route=\"" +
               route + "\"}";
    }
    static std::string ops(const std::string& op, const std::string& result) {
        return "cnetd_operations_total{op=\"" + op + "\",result=\"" + result + "\",via=\"api\"}";
    }
    void arm(const std::string& rules) { std::ofstream(d.dir() + "/failpoints") << rules << "\n"; }
};

TEST_F(Metrics, CountersMoveByExactlyTheKnownSequence) {
    setenv("CNETD_FAILPOINTS_FILE", (d.dir() + "/failpoints").c_str(), 1);
    arm("");
    start();
    // The exposition's type, as Prometheus negotiates it.
    CmdResult ct = run({"curl", "-s", "-o", "/dev/null", "-w", "%{content_type}", "--unix-socket",
                        d.socket(), "http://localhost/metrics"});
    EXPECT_EQ(ct.out, "text/plain; version=0.0.4; charset=utf-8");
    const json a = scrape();
    EXPECT_EQ(a["types"].value("cnetd_api_requests", ""), "counter");
    EXPECT_EQ(a["types"].value("cnetd_operation_duration_seconds", ""), "histogram");
    EXPECT_EQ(a["types"].value("cnetd_networks", ""), "gauge");

    ASSERT_EQ(api("POST", "/v1/networks", R"({"Name":"m1","Subnet":"10.77.0.0/24"})"), 201);
    ASSERT_EQ(api("POST", "/v1/netns", R"({"Name":"c1"})"), 201);
    ASSERT_EQ(api("POST", "/v1/networks/m1/connect", R"({"Target":"c1","Publish":["8080:80"]})"),
              201);
    const json mid = scrape();
    EXPECT_EQ(delta(a, mid, "cnetd_networks"), 1);
    EXPECT_EQ(delta(a, mid, "cnetd_endpoints"), 1);
    EXPECT_EQ(val(mid, "cnetd_published_ports"), 1);
    EXPECT_EQ(val(mid, "cnetd_held_host_sockets"), 1);
    EXPECT_EQ(api("POST", "/v1/networks/nope/connect", R"({"Target":"c1"})"), 404);
    EXPECT_EQ(api("POST", "/v1/networks/m1/connect", R"({"Target":5})"), 400);  // never a job
    // A kernel refusal: the veth creation fails (failpoint), the connect is a 500.
    ASSERT_EQ(api("POST", "/v1/netns", R"({"Name":"c2"})"), 201);
    arm("kernel.create_veth.before=error");
    EXPECT_EQ(api("POST", "/v1/networks/m1/connect", R"({"Target":"c2"})"), 500);
    arm("");
    ASSERT_EQ(api("POST", "/v1/networks/m1/disconnect", R"({"Target":"c1"})"), 204);
    ASSERT_EQ(api("DELETE", "/v1/networks/m1"), 204);
    ASSERT_EQ(api("DELETE", "/v1/netns/c1"), 204);
    ASSERT_EQ(api("DELETE", "/v1/netns/c2"), 204);
    EXPECT_EQ(api("GET", "/v1/no/such/thing"), 404);
    EXPECT_EQ(api("DELETE", "/v1/ping"), 405);
    const json b = scrape();

    // Requests by route PATTERN and status (the scrapes a and mid are counted too, b not yet).
    EXPECT_EQ(delta(a, b, req("201", "POST", "/v1/networks")), 1);
    EXPECT_EQ(delta(a, b, req("201", "POST", "/v1/netns")), 2);
    EXPECT_EQ(delta(a, b, req("201", "POST", "/v1/networks/{name}/connect")), 1);
    EXPECT_EQ(delta(a, b, req("404", "POST", "/v1/networks/{name}/connect")), 1);
    EXPECT_EQ(delta(a, b, req("400", "POST", "/v1/networks/{name}/connect")), 1);
    EXPECT_EQ(delta(a, b, req("500", "POST", "/v1/networks/{name}/connect")), 1);
    EXPECT_EQ(delta(a, b, req("204", "POST", "/v1/networks/{name}/disconnect")), 1);
    EXPECT_EQ(delta(a, b, req("204", "DELETE", "/v1/networks/{name}")), 1);
    EXPECT_EQ(delta(a, b, req("204", "DELETE", "/v1/netns/{name}")), 2);
    EXPECT_EQ(delta(a, b, req("404", "GET", "unmatched")), 1);
    EXPECT_EQ(delta(a, b, req("405", "DELETE", "/v1/ping")), 1);
    EXPECT_EQ(delta(a, b, req("200", "GET", "/metrics")), 2);
    // Operations: the 400 never reached the engine; "nope" and the failpoint are errors.
    EXPECT_EQ(delta(a, b, ops("create_network", "ok")), 1);
    EXPECT_EQ(delta(a, b, ops("attach", "ok")), 1);
    EXPECT_EQ(delta(a, b, ops("attach", "error")), 2);
    EXPECT_EQ(delta(a, b, ops("detach", "ok")), 1);
    EXPECT_EQ(delta(a, b, ops("remove_network", "ok")), 1);
    EXPECT_EQ(delta(a, b, "cnetd_operation_duration_seconds_count{op=\"attach\",via=\"api\"}"), 3);
    EXPECT_EQ(delta(a, b, "cnetd_kernel_operation_errors_total{op=\"kernel.create_veth\"}"), 1);
    // Every saved change is one journal fsync: network create, connect, disconnect, rm at least.
    EXPECT_GE(delta(a, b, "cnetd_journal_fsync_duration_seconds_count"), 4);
    // Back where it started.
    EXPECT_EQ(delta(a, b, "cnetd_networks"), 0);
    EXPECT_EQ(delta(a, b, "cnetd_endpoints"), 0);
    EXPECT_EQ(val(b, "cnetd_published_ports"), 0);
    EXPECT_EQ(val(b, "cnetd_held_host_sockets"), 0);
    EXPECT_EQ(val(b, "cnetd_connections"), 1);  // the scrape's own
    EXPECT_EQ(val(b, "cnetd_worker_queue_depth{priority=\"mutation\"}"), 0);
}

// The daemon's housekeeping, counted from its event log (tap_events in daemon/daemon.cpp) and its
// snapshot: an endpoint collected after its namespace died, a firewall repair after someone
// deleted the table, a reload and a failed reload (SIGHUP).
TEST_F(Metrics, GcRepairsAndReloadsAreCounted) {
    start();
    container("a");
    container("b");
    const json a = scrape();
    // Polls until `key` moved by `want` (the GC and the repair happen asynchronously).
    auto await = [&](const std::string& key, double want) {
        json now;
        for (int i = 0; i < 100; ++i) {
            now = scrape();
            if (delta(a, now, key) >= want) break;
            std::this_thread::sleep_for(50ms);
        }
        EXPECT_EQ(delta(a, now, key), want) << key;
        return now;
    };
    ASSERT_NO_FATAL_FAILURE(drop_netns("a"));
    ASSERT_NO_FATAL_FAILURE(drop_netns("b"));
    json b = await("cnetd_gc_endpoints_total", 2);
    EXPECT_EQ(delta(a, b, "cnetd_endpoints"), -2);

    ASSERT_EQ(run({"nft", "delete", "table", "inet", "cnetd"}).status, 0);
    b = await("cnetd_firewall_repairs_total", 1);
    EXPECT_GT(val(b, "cnetd_firewall_last_repair_timestamp_seconds"), 0);

    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    b = await("cnetd_reloads_total{result=\"ok\"}", 1);
    d.write_config("bip: [not, a, cidr\n");
    ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
    b = await("cnetd_reloads_total{result=\"failed\"}", 1);
    EXPECT_EQ(delta(a, b, "cnetd_reloads_total{result=\"ok\"}"), 1);
    EXPECT_EQ(delta(a, b, "cnetd_gc_endpoints_total"), 2);
}

// Start-up's reconciliation by outcome: of two persisted endpoints, one's namespace survived the
// restart (kept), the other's was removed while cnetd was down (removed).
TEST_F(Metrics, ReconcileOutcomesAtStart) {
    start();
    container("a");
    container("b");
    const json before = scrape();
    EXPECT_EQ(val(before, "cnetd_reconcile_endpoints{outcome=\"kept\"}"), 0);  // none persisted
    d.kill(SIGTERM);
    ASSERT_NO_FATAL_FAILURE(drop_netns("b"));
    start();
    const json m = scrape();
    EXPECT_EQ(val(m, "cnetd_reconcile_endpoints{outcome=\"kept\"}"), 1);
    EXPECT_EQ(val(m, "cnetd_reconcile_endpoints{outcome=\"removed\"}"), 1);
    EXPECT_EQ(val(m, "cnetd_reconcile_endpoints{outcome=\"repair_failed\"}"), 0);
    EXPECT_EQ(val(m, "cnetd_reconcile_endpoints{outcome=\"unchecked\"}"), 0);
    EXPECT_EQ(m["types"].value("cnetd_reconcile_endpoints", ""), "gauge");
    EXPECT_EQ(val(m, "cnetd_endpoints"), 1);
}

// Connections turned away count by reason.
TEST_F(Metrics, RefusedConnectionsCountByReason) {
    start("max-connections: 3\nreserved-write-connections: 1\n");
    const json a = scrape();
    std::vector<int> fds;
    for (int i = 0; i < 4; ++i) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", d.socket().c_str());
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        fds.push_back(fd);
        std::this_thread::sleep_for(200ms);  // accepted (and counted) before the next
    }
    char buf[64] = {};
    timeval tv{2, 0};
    ::setsockopt(fds[3], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ASSERT_GT(::read(fds[3], buf, sizeof buf - 1), 0);
    EXPECT_STREQ(std::string(buf).substr(0, 12).c_str(), "HTTP/1.1 503");
    for (int fd : fds) ::close(fd);
    std::this_thread::sleep_for(200ms);
    const json b = scrape();
    EXPECT_EQ(delta(a, b, "cnetd_connections_rejected_total{reason=\"max_connections\"}"), 1);
    EXPECT_EQ(delta(a, b, "cnetd_connections_rejected_total{reason=\"per_uid\"}"), 0);
}

// metrics-address: the same exposition over TCP, GET /metrics only.
TEST_F(Metrics, TcpListenerServesMetricsOnly) {
    start("metrics-address: 127.0.0.1:9323\n");
    const json m = scrape("http://127.0.0.1:9323/metrics", false);
    EXPECT_EQ(val(m, "cnetd_networks"), 1);  // the default network
    CmdResult r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                       "http://127.0.0.1:9323/v1/networks"});
    EXPECT_EQ(r.out, "404");
    r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
             "http://127.0.0.1:9323/metrics"});
    EXPECT_EQ(r.out, "405");
}

// Docker's key, with a bare port: loopback only.
TEST_F(Metrics, DockerKeyWithBarePortBindsLoopback) {
    start("metrics-addr: \":9324\"\n");
    EXPECT_EQ(val(scrape("http://127.0.0.1:9324/metrics", false), "cnetd_networks"), 1);
    CmdResult ss = run({"ss", "-Hltn", "sport = :9324"});
    EXPECT_NE(ss.out.find("127.0.0.1:9324"), std::string::npos) << ss.out;
}

TEST_F(Metrics, BothKeysAreAnErrorNamingThem) {
    d.write_config("metrics-addr: 9323\nmetrics-address: 127.0.0.1:9323\n");
    CmdResult r = d.start_failing();
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("metrics-address"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("metrics-addr"), std::string::npos) << r.err;
}

}  // namespace
