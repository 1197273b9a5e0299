// lib/obs and daemon/metrics.cpp without a daemon: the exposition's shape, count_event (the
// event log's tap, fed synthetic events), the snapshot port counts, and the config keys.
#include <gtest/gtest.h>

#include "base/opstats.hpp"
#include "config/config.hpp"
#include "daemon/metrics.hpp"
#include "obs/metrics.hpp"

namespace cnetd::daemon {
namespace {

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(ObsMetrics, RecordsAndReadingsInOneExposition) {
    obs::Metrics m;
    m.api_request("POST", "/v1/networks/{name}/connect", 201);
    m.operation(obs::Op::Attach, "api", 0.003, true);
    m.operation(obs::Op::Detach, "cni", 0.02, false);
    obs::Readings r;
    r.networks = 2;
    r.kernel_errors = {{"kernel.create_veth", 3}};
    r.rejected = {{"per_uid", 4}};
    const std::string text = m.scrape(r);
    EXPECT_TRUE(has_line(text,
                         "cnetd_api_requests_total{code=\"201\",method=\"POST\",route=\"/v1/"
                         "networks/{name}/connect\"} 1"))
        << text;
    EXPECT_TRUE(
        has_line(text, "cnetd_operations_total{op=\"attach\",result=\"ok\",via=\"api\"} 1"));
    EXPECT_TRUE(
        has_line(text, "cnetd_operations_total{op=\"detach\",result=\"error\",via=\"cni\"} 1"));
    EXPECT_TRUE(has_line(
        text, "cnetd_operation_duration_seconds_bucket{op=\"attach\",via=\"api\",le=\"0.005\"} 1"));
    EXPECT_TRUE(has_line(text, "cnetd_networks 2"));
    EXPECT_TRUE(has_line(text, "cnetd_kernel_operation_errors_total{op=\"kernel.create_veth\"} 3"));
    EXPECT_TRUE(has_line(text, "cnetd_connections_rejected_total{reason=\"per_uid\"} 4"));
    EXPECT_EQ(text.find("cnetd_dns_"), std::string::npos);  // no resolver: no DNS families
}

TEST(DaemonMetrics, CountEventCountsGcAndReloadsOnly) {
    obs::Metrics m;
    count_event(m, Event{"gc", "collect", "", {{"endpoints", "3"}}});
    count_event(m, Event{"gc", "collect", "", {}});  // one endpoint per event
    count_event(m, Event{"reload", "reload", "", {}});
    count_event(m, Event{"reload", "fail", "", {}});
    count_event(m, Event{"network", "connect", "n1", {{"name", "a"}}});
    const std::string text = m.scrape({});
    EXPECT_TRUE(has_line(text, "cnetd_gc_endpoints_total 4")) << text;
    EXPECT_TRUE(has_line(text, "cnetd_reloads_total{result=\"ok\"} 1"));
    EXPECT_TRUE(has_line(text, "cnetd_reloads_total{result=\"failed\"} 1"));
}

TEST(DaemonMetrics, FsyncObserverFeedsTheHistogram) {
    Worker w;  // never started: no snapshot
    DaemonMetrics dm(w);
    opstats::observe("journal_fsync", 0.0004);
    EXPECT_TRUE(has_line(dm.scrape(), "cnetd_journal_fsync_duration_seconds_count 1"));
}

TEST(DaemonMetrics, UnixSecondsOfRfc3339) {
    EXPECT_DOUBLE_EQ(unix_seconds("1970-01-01T00:00:10.500000000Z"), 10.5);
    EXPECT_EQ(unix_seconds(""), 0);
    EXPECT_EQ(unix_seconds("yesterday"), 0);
}

Result<config::Config> parse(const std::string& yaml) {
    return config::parse(yaml, "cnetd.yaml");
}

TEST(MetricsConfig, AddressForms) {
    EXPECT_EQ(parse("metrics-address: 9323\n")->metrics_address, "127.0.0.1:9323");
    EXPECT_EQ(parse("metrics-addr: \":9323\"\n")->metrics_address, "127.0.0.1:9323");
    EXPECT_EQ(parse("metrics-address: 0.0.0.0:9100\n")->metrics_address, "0.0.0.0:9100");
    EXPECT_EQ(parse("metrics-address: \"[::1]:9323\"\n")->metrics_address, "[::1]:9323");
    EXPECT_EQ(parse("")->metrics_address, "");
}

TEST(MetricsConfig, BadValuesNameTheKey) {
    auto r = parse("metrics-address: 127.0.0.1:70000\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("metrics-address: \"127.0.0.1:70000\""), std::string::npos)
        << r.error().message();
    r = parse("metrics-addr: localhost:9323\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("metrics-addr"), std::string::npos);
    r = parse("metrics-addr: 9323\nmetrics-address: 9324\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("given together with metrics-addr"), std::string::npos)
        << r.error().message();
}

}  // namespace
}  // namespace cnetd::daemon
