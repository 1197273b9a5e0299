// netctl dns: the embedded resolver's state and counters (GET /v1/dns, docs/dns.md).
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// The facts first ("upstreams: 192.0.2.53, 198.51.100.53 (from /etc/resolv.conf)"), then one
// row per counter, so a counter that moves between two runs is easy to spot.
void print_dns(const json& answer) {
    const auto s = api::read<api::DnsStatus>(answer);
    std::string ups;
    for (const auto& u : s.upstreams) ups += (ups.empty() ? "" : ", ") + u;
    if (ups.empty()) ups = "(none: forwarded names get SERVFAIL)";
    if (!s.upstreams_file.empty()) ups += " (from " + s.upstreams_file + ")";
    print_table({"FIELD", "VALUE"}, {{"upstreams", ups},
                                     {"sandboxes", std::to_string(s.sandboxes)},
                                     {"names", std::to_string(s.names)},
                                     {"in-flight", std::to_string(s.in_flight)}});
    std::cout << '\n';
    const api::DnsCounters& c = s.counters;
    auto row = [](const char* name, uint64_t v) {
        return std::vector<std::string>{name, std::to_string(v)};
    };
    print_table({"COUNTER", "VALUE"},
                {row("queries-udp", c.queries_udp), row("queries-tcp", c.queries_tcp),
                 row("answered-local", c.answered_local), row("forwarded", c.forwarded),
                 row("upstream-failures", c.upstream_failures), row("servfail", c.servfail),
                 row("refused", c.refused), row("malformed", c.malformed),
                 row("tcp-rejected", c.tcp_rejected)});
}

}  // namespace

void add_dns_command(CLI::App& app, Context& ctx, int& rc) {
    auto* dns = app.add_subcommand("dns", summary("dns"));
    dns->fallthrough();
    dns->callback([&] { rc = show(ctx, "/v1/dns", print_dns); });
}

}  // namespace cnetd::netctl
