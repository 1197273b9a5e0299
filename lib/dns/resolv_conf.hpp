// resolv.conf: reading the host's, choosing which file is the host's, and writing the one a
// container gets (docs/dns.md "The resolv.conf file").
//
// Why hand-written: resolv.conf is a line format of four keywords (resolv.conf(5)); glibc's own
// parser is not exposed. Fuzzed by tests/fuzz/fuzz_resolv_conf.cpp.
// Threading: plain functions on values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/net.hpp"

namespace cnetd::dns {

inline constexpr const char* kResolverAddress = "127.0.0.11";  // Docker's embedded resolver
inline constexpr const char* kHostResolvConf = "/etc/resolv.conf";
inline constexpr const char* kSystemdResolvConf = "/run/systemd/resolve/resolv.conf";
inline constexpr size_t kMaxUpstreams = 3;  // moby's maxExtDNS

struct ResolvConf {
    std::vector<std::string> nameservers;  // as written ("192.0.2.53", "fe80::1%eth0")
    std::vector<std::string> search;       // domains, in order (the last search/domain line wins)
    std::vector<std::string> options;      // "ndots:2", "edns0", ... in order
};

// Parses resolv.conf text: "nameserver X", "search A B", "domain A" (same as a one-domain
// search), "options O P"; '#' and ';' start comments; unknown keywords and malformed lines are
// ignored (as glibc does). Never fails.
ResolvConf parse_resolv_conf(std::string_view text);

// Docker's choice of the host file (resolvconf_path.go): when /etc/resolv.conf's only nameserver
// is 127.0.0.53 (systemd-resolved's stub), the servers behind it are read from
// kSystemdResolvConf instead.
bool use_systemd_file(const ResolvConf& etc);

// An upstream server: address, port 53, and for a link-local IPv6 address with "%zone" the zone
// name (the server resolves it to an interface index; an unknown zone drops that server with a
// warning, never a crash: podman#24451).
struct Upstream {
    std::variant<Ipv4, Ipv6> addr;
    std::string zone;  // "" when none
    std::string text;  // as written, for logs and status
};
// The first kMaxUpstreams parseable nameservers, in order; unparseable ones are skipped.
std::vector<Upstream> upstreams(const ResolvConf& host);

// A container's file on a network with the embedded resolver (Docker's TransformForIntNS):
// "nameserver 127.0.0.11", the host's search and options lines, "options ndots:0" unless the host
// sets ndots, and a trailing comment naming the upstream servers.
std::string render_resolver_file(const ResolvConf& host);
// A container's file on a network without it (the default bridge, or enable_dns=false): the host's
// servers without loopback ones (127.0.0.0/8, ::1), IPv6 servers only when `ipv6`; with none
// left, Docker's fallback 8.8.8.8, 8.8.4.4 (and 2001:4860:4860::8888/8844 when `ipv6`).
std::string render_plain_file(const ResolvConf& host, bool ipv6);

// Where cnetd writes an endpoint's file: "<dir>/<endpoint id>/resolv.conf".
std::string endpoint_file(std::string_view dir, std::string_view endpoint_id);

}  // namespace cnetd::dns
