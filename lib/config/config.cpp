#include "config/config.hpp"

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include <yaml-cpp/yaml.h>

namespace cnetd::config {

namespace {

// daemon.json keys that have nothing to do with bridge networking: accepted so a Docker
// daemon.json loads, and reported as ignored.
const std::set<std::string> kIgnoredDockerKeys = {
    "authorization-plugins", "builder", "cgroup-parent", "containerd", "data-root", "debug",
    "default-cgroupns-mode", "default-runtime", "default-ulimits", "dns", "dns-opts", "dns-search",
    "exec-opts", "experimental", "features", "hosts", "insecure-registries", "init",
    "ip6tables", "labels", "live-restore", "log-driver",
    "log-opts", "max-concurrent-downloads", "max-concurrent-uploads",
    "registry-mirrors", "runtimes", "selinux-enabled", "storage-driver", "storage-opts", "tls",
    "tlscacert", "tlscert", "tlskey", "tlsverify", "userland-proxy", "userns-remap",
    "shutdown-timeout", "no-new-privileges", "seccomp-profile"};

std::string describe(const YAML::Node& n) {
    if (n.IsScalar()) return fmt::format("\"{}\"", n.Scalar());
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a mapping";
    return "null";
}

Error field_error(const std::string& source, const std::string& key, const std::string& what) {
    return Error::invalid(fmt::format("{}: {}: {}", source, key, what));
}

Result<std::string> get_string(const std::string& src, const std::string& key, const YAML::Node& n) {
    if (!n.IsScalar()) return field_error(src, key, "expected a string, got " + describe(n));
    return n.Scalar();
}

Result<bool> get_bool(const std::string& src, const std::string& key, const YAML::Node& n) {
    if (n.IsScalar()) {
        const std::string& s = n.Scalar();
        if (s == "true" || s == "True" || s == "TRUE" || s == "yes") return true;
        if (s == "false" || s == "False" || s == "FALSE" || s == "no") return false;
    }
    return field_error(src, key, "expected true or false, got " + describe(n));
}

Result<unsigned> get_mtu(const std::string& src, const std::string& key, const YAML::Node& n) {
    if (n.IsScalar()) {
        const std::string& s = n.Scalar();
        unsigned long v = 0;
        size_t used = 0;
        bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
        // Never std::stoul on more digits than fit: it would throw out_of_range.
        if (digits && s.size() > 6) {
            return field_error(src, key,
                               fmt::format("\"{}\" is out of range (68..65535)",
                                           s.size() > 40 ? s.substr(0, 37) + "..." : s));
        }
        if (digits) v = std::stoul(s, &used);
        if (digits && used == s.size()) {
            // 68 is the IPv4 minimum; 65535 the largest an Ethernet-like link takes.
            if (v < 68 || v > 65535) {
                return field_error(src, key, fmt::format("{} is out of range (68..65535)", v));
            }
            return static_cast<unsigned>(v);
        }
    }
    return field_error(src, key, "expected a whole number, got " + describe(n));
}

// One `default-address-pools` entry (at `at`) of the family of Cidr, checked, appended to `out`.
template <class Cidr, class Pool>
Result<void> add_pool(const std::string& src, const std::string& at, const std::string& base,
                      int size, std::vector<Pool>& out) {
    auto c = Cidr::parse(base);
    if (!c) return field_error(src, at + ".base", c.error().message());
    Pool p{*c, size};
    auto valid = core::validate_pool(p);
    if (!valid) return field_error(src, at, valid.error().message());
    out.push_back(p);
    return ok();
}

// `default-address-pools`: Docker's daemon.json list of {base: CIDR, size: N}; IPv4 and IPv6
// entries may be mixed. Errors name the entry: `default-address-pools[1]: size 33 ...`.
Result<void> get_pools(const std::string& src, const YAML::Node& n, Config& cfg) {
    const std::string key = "default-address-pools";
    if (!n.IsSequence()) {
        return field_error(src, key, "expected a list of {base: CIDR, size: N}, got " + describe(n));
    }
    if (n.size() == 0) {
        return field_error(src, key, "the list is empty (remove the key to use Docker's default pools)");
    }
    std::vector<core::AddressPool> v4;
    std::vector<core::AddressPool6> v6;
    size_t i = 0;
    for (const auto& e : n) {
        const std::string at = fmt::format("{}[{}]", key, i++);
        if (!e.IsMap()) return field_error(src, at, "expected {base: CIDR, size: N}, got " + describe(e));
        std::optional<std::string> base;
        std::optional<int> size;
        for (const auto& kv : e) {
            const std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
            if (k == "base") {
                CNETD_TRY_ASSIGN(base, get_string(src, at + ".base", kv.second));
            } else if (k == "size") {
                const std::string t = kv.second.IsScalar() ? kv.second.Scalar() : std::string();
                bool digits = !t.empty() && t.size() <= 3 && t.find_first_not_of("0123456789") == std::string::npos;
                if (!digits || std::stoi(t) > 128) {
                    return field_error(src, at + ".size",
                                       "expected a prefix length (a whole number up to 128), got " +
                                           describe(kv.second));
                }
                size = std::stoi(t);
            } else {
                return field_error(src, at, fmt::format("unknown key \"{}\" (an entry has base and size)", k));
            }
        }
        if (!base) return field_error(src, at, "base is missing (expected {base: CIDR, size: N})");
        if (!size) return field_error(src, at, fmt::format("size is missing for base {}", *base));
        if (base->find(':') != std::string::npos) {
            CNETD_TRY((add_pool<Ipv6Cidr>(src, at, *base, *size, v6)));
        } else {
            CNETD_TRY((add_pool<Ipv4Cidr>(src, at, *base, *size, v4)));
        }
    }
    if (v4.empty()) {
        cfg.warnings.push_back(fmt::format("{}: {}: no IPv4 pool given: networks created without an "
                                           "IPv4 subnet will fail",
                                           src, key));
    }
    cfg.address_pools = std::move(v4);
    cfg.address_pools6 = std::move(v6);
    return ok();
}

// parse()'s state while it reads the keys: the config so far, and bip/fixed-cidr, which are
// checked against each other once every key is read.
struct State {
    Config cfg;
    std::optional<Ipv4Cidr> bip;
    std::optional<Ipv4Cidr> fixed;
    std::string metrics_key;  // which of metrics-address / metrics-addr was given
};

// Reads the value `v` of `key` (in file `src`) into `st`; errors name src and key.
using Reader = std::function<Result<void>(const std::string& src, const std::string& key,
                                          const YAML::Node& v, State& st)>;

Reader bool_key(bool Config::*field) {
    return [field](const std::string& src, const std::string& key, const YAML::Node& v,
                   State& st) -> Result<void> {
        CNETD_TRY_ASSIGN(st.cfg.*field, get_bool(src, key, v));
        return ok();
    };
}

// A whole number min..65536 (connection limits).
Reader count_key(unsigned Config::*field, unsigned min) {
    return [field, min](const std::string& src, const std::string& key, const YAML::Node& v,
                        State& st) -> Result<void> {
        const std::string s = v.IsScalar() ? v.Scalar() : std::string();
        bool digits =
            !s.empty() && s.size() <= 6 && s.find_first_not_of("0123456789") == std::string::npos;
        unsigned long n = digits ? std::stoul(s) : 0;
        if (!digits || n < min || n > 65536) {
            return field_error(
                src, key,
                fmt::format("expected a whole number from {} to 65536, got {}", min, describe(v)));
        }
        st.cfg.*field = static_cast<unsigned>(n);
        return ok();
    };
}

// A string `check` accepts (it returns the complaint, "" if none).
Reader string_key(std::string Config::*field, std::string (*check)(const std::string&)) {
    return [field, check](const std::string& src, const std::string& key, const YAML::Node& v,
                          State& st) -> Result<void> {
        CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
        if (std::string why = check(s); !why.empty()) return field_error(src, key, why);
        st.cfg.*field = s;
        return ok();
    };
}

std::string check_group(const std::string& s) {
    if (s.size() > 256 || s.find_first_of(" \t\r\n:/,") != std::string::npos)
        return fmt::format("\"{}\" is not a group name or numeric gid", s);
    return "";
}

std::string check_path(const std::string& s) {
    if (s.empty() || s[0] != '/') return fmt::format("\"{}\" is not an absolute path", s);
    return "";
}

std::string check_firewall(const std::string& s) {
    if (s != "nftables" && s != "none")
        return fmt::format("\"{}\" is not one of nftables, none", s);
    return "";
}

std::string check_log_level(const std::string& s) {
    if (s != "debug" && s != "info" && s != "warning" && s != "error")
        return fmt::format("\"{}\" is not one of debug, info, warning, error", s);
    return "";
}

// bip (a gateway address with its prefix) and fixed-cidr (a network).
Result<void> read_cidr4(const std::string& src, const std::string& key, const YAML::Node& v,
                        State& st) {
    CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
    auto c = key == "bip" ? Ipv4Cidr::parse(s) : Ipv4Cidr::parse_network(s);
    if (!c) return field_error(src, key, c.error().message());
    (key == "bip" ? st.bip : st.fixed) = *c;
    return ok();
}

Result<void> read_mtu(const std::string& src, const std::string& key, const YAML::Node& v,
                      State& st) {
    CNETD_TRY_ASSIGN(st.cfg.mtu, get_mtu(src, key, v));
    return ok();
}

Result<void> read_bridge(const std::string& src, const std::string& key, const YAML::Node& v,
                         State& st) {
    CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
    if (s == "none") {
        st.cfg.default_network = false;
    } else if (!s.empty()) {
        auto r = validate_ifname(s);
        if (!r) return field_error(src, key, r.error().message());
        st.cfg.default_net.bridge = s;
    }
    return ok();
}

Result<void> read_ip(const std::string& src, const std::string& key, const YAML::Node& v,
                     State& st) {
    CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
    if (s.find(':') != std::string::npos) {
        return field_error(src, key,
                           fmt::format("\"{}\": IPv6 host addresses are not supported yet", s));
    }
    auto a = Ipv4::parse(s);
    if (!a) return field_error(src, key, a.error().message());
    if (a->value() != 0) st.cfg.default_host_ip = *a;
    return ok();
}

Result<void> read_pools(const std::string& src, const std::string&, const YAML::Node& v,
                        State& st) {
    return get_pools(src, v, st.cfg);
}

Result<void> read_fixed_cidr_v6(const std::string& src, const std::string& key, const YAML::Node& v,
                                State& st) {
    CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
    auto c = Ipv6Cidr::parse_network(s);
    if (!c) return field_error(src, key, c.error().message());
    const Ipv6 a = c->addr();
    if (a.is_multicast() || a.is_link_local() || a.is_loopback() || a.is_unspecified() ||
        c->prefix() > 126) {
        return field_error(src, key,
                           fmt::format("\"{}\" is not a unicast subnet with room for a gateway and "
                                       "containers (e.g. fd00:1::/64)",
                                       s));
    }
    st.cfg.fixed_cidr_v6 = *c;
    return ok();
}

// Docker's `iptables: false` is `firewall: none`.
Result<void> read_iptables(const std::string& src, const std::string& key, const YAML::Node& v,
                           State& st) {
    CNETD_TRY_ASSIGN(bool on, get_bool(src, key, v));
    if (!on) st.cfg.firewall = "none";
    return ok();
}

// --- `cluster:` (overlay networks; docs/overlay.md) -------------------------------------------

// A whole number min..max at `key` (cluster's seconds and port).
Result<unsigned long> get_number(const std::string& src, const std::string& key,
                                 const YAML::Node& v, unsigned long min, unsigned long max) {
    const std::string s = v.IsScalar() ? v.Scalar() : std::string();
    bool digits =
        !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
    unsigned long n = digits ? std::stoul(s) : 0;
    if (!digits || n < min || n > max) {
        return field_error(
            src, key,
            fmt::format("expected a whole number from {} to {}, got {}", min, max, describe(v)));
    }
    return n;
}

// The node name goes into etcd keys (/cnetd/nodes/<name>, /cnetd/endpoints/<id>/<name>/...):
// no '/', nothing a key or a log line could misread.
std::string check_node_name(const std::string& s) {
    if (s.empty() || s.size() > 63 ||
        s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            std::string::npos ||
        s == "." || s == "..") {
        return fmt::format("\"{}\" is not a node name (1 to 63 of A-Z a-z 0-9 . _ -)", s);
    }
    return "";
}

// An etcd endpoint: http(s)://host:port, nothing after the port (the client adds /v3/...).
std::string check_endpoint(const std::string& s) {
    const std::string bad =
        fmt::format("\"{}\" is not an etcd endpoint (http://host:port or https://host:port)", s);
    std::string rest;
    if (s.rfind("http://", 0) == 0) {
        rest = s.substr(7);
    } else if (s.rfind("https://", 0) == 0) {
        rest = s.substr(8);
    } else {
        return bad;
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad;
    const std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
    if (host.find_first_of("/?#@ \t") != std::string::npos) return bad;
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) == 0 ||
        std::stoul(port) > 65535) {
        return bad;
    }
    return "";
}

Result<void> read_cluster_etcd(const std::string& src, const std::string& key, const YAML::Node& v,
                               ClusterConfig& c) {
    if (!v.IsSequence())
        return field_error(src, key, "expected a list of endpoints, got " + describe(v));
    if (v.size() == 0) return field_error(src, key, "the list is empty (at least one endpoint)");
    size_t i = 0;
    for (const auto& e : v) {
        const std::string at = fmt::format("{}[{}]", key, i++);
        CNETD_TRY_ASSIGN(std::string s, get_string(src, at, e));
        if (std::string why = check_endpoint(s); !why.empty()) return field_error(src, at, why);
        c.etcd.push_back(s);
    }
    return ok();
}

// `tls: {ca, cert, key}`: client certificates for etcd; all three or none, absolute and readable
// (a typo is reported at start, not as a TLS failure at the first etcd request).
Result<void> read_cluster_tls(const std::string& src, const std::string& key, const YAML::Node& v,
                              ClusterConfig& c) {
    if (!v.IsMap()) return field_error(src, key, "expected {ca, cert, key}, got " + describe(v));
    for (const auto& kv : v) {
        const std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
        std::string* dst = k == "ca"     ? &c.tls_ca
                           : k == "cert" ? &c.tls_cert
                           : k == "key"  ? &c.tls_key
                                         : nullptr;
        if (!dst)
            return field_error(src, key,
                               fmt::format("unknown key \"{}\" (tls has ca, cert and key)", k));
        const std::string at = key + "." + k;
        CNETD_TRY_ASSIGN(*dst, get_string(src, at, kv.second));
        if (std::string why = check_path(*dst); !why.empty()) return field_error(src, at, why);
        if (::access(dst->c_str(), R_OK) != 0) {
            return field_error(src, at, fmt::format("\"{}\": {}", *dst, std::strerror(errno)));
        }
    }
    if (c.tls_ca.empty() || c.tls_cert.empty() || c.tls_key.empty()) {
        return field_error(src, key, "needs all three of ca, cert and key");
    }
    return ok();
}

// One key of `cluster:`; `key` is path-qualified ("cluster.vxlan-port").
Result<void> read_cluster_key(const std::string& src, const std::string& k, const YAML::Node& v,
                              ClusterConfig& c, bool& have_address) {
    const std::string key = "cluster." + k;
    if (k == "etcd") return read_cluster_etcd(src, key, v, c);
    if (k == "tls") return read_cluster_tls(src, key, v, c);
    if (k == "node-name") {
        CNETD_TRY_ASSIGN(c.node_name, get_string(src, key, v));
        if (std::string why = check_node_name(c.node_name); !why.empty())
            return field_error(src, key, why);
    } else if (k == "advertise-address") {
        CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
        auto a = Ipv4::parse(s);
        if (!a) return field_error(src, key, a.error().message());
        if (a->value() == 0 || (a->value() >> 24) == 127 || (a->value() >> 28) == 14 ||
            a->value() == 0xffffffffu) {
            return field_error(
                src, key, fmt::format("\"{}\": not a unicast address other nodes can reach", s));
        }
        c.advertise_address = *a;
        have_address = true;
    } else if (k == "vxlan-port") {
        CNETD_TRY_ASSIGN(unsigned long n, get_number(src, key, v, 1, 65535));
        c.vxlan_port = static_cast<uint16_t>(n);
    } else if (k == "lease-ttl") {
        // Up to a week: etcd's own lease TTL limit is far larger, a week is already absurd.
        CNETD_TRY_ASSIGN(c.lease_ttl, get_number(src, key, v, 10, 604800));
    } else if (k == "lease-renew-margin") {
        CNETD_TRY_ASSIGN(c.lease_renew_margin, get_number(src, key, v, 1, 604800));
    } else {
        return field_error(src, "cluster",
                           fmt::format("unknown key \"{}\" (cluster has etcd, node-name, "
                                       "advertise-address, vxlan-port, tls, lease-ttl, "
                                       "lease-renew-margin)",
                                       k));
    }
    return ok();
}

// The hostname, the default node name.
std::string hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "";
    return buf;
}

// `cluster:`: all keys read, then the checks across them (required keys, https needs tls, margin
// below the TTL).
Result<void> read_cluster(const std::string& src, const std::string&, const YAML::Node& v,
                          State& st) {
    if (!v.IsMap()) return field_error(src, "cluster", "expected a mapping, got " + describe(v));
    ClusterConfig c;
    bool have_address = false;
    for (const auto& kv : v) {
        if (!kv.first.IsScalar()) return field_error(src, "cluster", "a key is not a string");
        CNETD_TRY(read_cluster_key(src, kv.first.Scalar(), kv.second, c, have_address));
    }
    if (c.etcd.empty())
        return field_error(src, "cluster.etcd", "missing (a list of etcd endpoints)");
    if (!have_address) {
        return field_error(src, "cluster.advertise-address",
                           "missing (this node's underlay IPv4 address, which the others reach)");
    }
    if (c.node_name.empty()) {
        c.node_name = hostname();
        if (std::string why = check_node_name(c.node_name); !why.empty()) {
            return field_error(src, "cluster.node-name", "not set, and the hostname " + why);
        }
    }
    for (const auto& e : c.etcd) {
        if (e.rfind("https://", 0) == 0 && c.tls_ca.empty()) {
            return field_error(
                src, "cluster.tls",
                fmt::format("missing: the https endpoint {} needs {{ca, cert, key}}", e));
        }
    }
    if (c.lease_renew_margin >= c.lease_ttl) {
        return field_error(
            src, "cluster.lease-renew-margin",
            fmt::format("{} must be less than lease-ttl ({})", c.lease_renew_margin, c.lease_ttl));
    }
    st.cfg.cluster = std::move(c);
    return ok();
}

// `metrics-address` (Docker's `metrics-addr`): "host:port" with an IP literal host ("[::1]:9323"
// for IPv6); a bare "9323" or ":9323" binds loopback only (127.0.0.1), so the metrics are never
// exposed beyond the host unless an address says so. Both keys at once: an error.
Result<void> read_metrics_address(const std::string& src, const std::string& key,
                                  const YAML::Node& v, State& st) {
    CNETD_TRY_ASSIGN(std::string s, get_string(src, key, v));
    if (!st.metrics_key.empty()) {
        return field_error(src, key,
                           fmt::format("given together with {}: they are one setting (Docker's "
                                       "name and cnetd's), keep one",
                                       st.metrics_key));
    }
    st.metrics_key = key;
    if (s.empty()) return ok();  // off, as when absent
    std::string host = "127.0.0.1", port = s;
    if (auto colon = s.rfind(':'); colon != std::string::npos) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.empty()) host = "127.0.0.1";
    }
    const bool v6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
    const bool host_ok = v6 ? Ipv6::parse(host.substr(1, host.size() - 2)).ok()
                            : Ipv4::parse(host).ok();
    if (!host_ok) {
        return field_error(src, key,
                           fmt::format("\"{}\": the host must be an IPv4 address or [IPv6] "
                                       "(e.g. 127.0.0.1:9323)",
                                       s));
    }
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoul(port) < 1 || std::stoul(port) > 65535) {
        return field_error(src, key,
                           fmt::format("\"{}\": the port must be a number from 1 to 65535", s));
    }
    st.cfg.metrics_address = host + ":" + port;
    return ok();
}

// Every key cnetd reads, with its reader (a declarative table: any other key is ignored if it is
// one of kIgnoredDockerKeys, else an error).
const std::map<std::string, Reader>& readers() {
    static const std::map<std::string, Reader> table = {
        {"bip", read_cidr4},
        {"fixed-cidr", read_cidr4},
        {"mtu", read_mtu},
        {"icc", bool_key(&Config::icc)},
        {"ip-masq", bool_key(&Config::ip_masq)},
        {"ip-forward", bool_key(&Config::ip_forward)},
        {"ipv6", bool_key(&Config::ipv6)},
        {"bridge", read_bridge},
        {"firewall", string_key(&Config::firewall, check_firewall)},
        {"iptables", read_iptables},
        {"ip", read_ip},
        {"group", string_key(&Config::group, check_group)},
        {"read-group", string_key(&Config::read_group, check_group)},
        {"max-connections", count_key(&Config::max_connections, 1)},
        {"max-connections-per-uid", count_key(&Config::max_connections_per_uid, 1)},
        {"reserved-write-connections", count_key(&Config::reserved_write_connections, 0)},
        {"default-address-pools", read_pools},
        {"fixed-cidr-v6", read_fixed_cidr_v6},
        {"log-level", string_key(&Config::log_level, check_log_level)},
        {"socket", string_key(&Config::socket, check_path)},
        {"state-dir", string_key(&Config::state_dir, check_path)},
        {"netns-dir", string_key(&Config::netns_dir, check_path)},
        {"cluster", read_cluster},
        {"metrics-address", read_metrics_address},
        {"metrics-addr", read_metrics_address},  // Docker's name
    };
    return table;
}

// The checks across keys, once all are read: bip and fixed-cidr, the connection slots.
Result<void> finish(const std::string& src, State& st) {
    Config& cfg = st.cfg;
    if (st.bip) {
        Ipv4Cidr subnet = st.bip->masked();
        if (st.bip->addr() == subnet.network() || st.bip->addr() == subnet.broadcast()) {
            return field_error(src, "bip",
                               fmt::format("\"{}\" is the network or broadcast address, not a "
                                           "gateway address (e.g. {}/{})",
                                           st.bip->str(), Ipv4(subnet.network().value() + 1).str(),
                                           subnet.prefix()));
        }
        cfg.default_net.bip = *st.bip;
    }
    if (st.fixed) {
        Ipv4Cidr subnet = cfg.default_net.bip.masked();
        if (st.fixed->prefix() < subnet.prefix() || !subnet.contains(st.fixed->network())) {
            return field_error(src, "fixed-cidr",
                               fmt::format("{} is not inside the bridge subnet {}", st.fixed->str(),
                                           subnet.str()));
        }
        cfg.default_net.fixed_cidr = *st.fixed;
    }
    cfg.default_net.mtu = cfg.mtu;
    if (cfg.fixed_cidr_v6 && !cfg.ipv6) {
        cfg.warnings.push_back(
            fmt::format("{}: fixed-cidr-v6: ignored while ipv6 is false (set ipv6: true for a "
                        "dual-stack default network)",
                        src));
    }
    if (cfg.reserved_write_connections >= cfg.max_connections) {
        return field_error(src, "reserved-write-connections",
                           fmt::format("{} must be less than max-connections ({}): peers "
                                       "without write access need at least one slot",
                                       cfg.reserved_write_connections, cfg.max_connections));
    }
    return ok();
}

// Reads every key of the mapping `root` into `st`; `at` follows the key being read, so that an
// exception no check foresaw can name it.
Result<void> read_keys(const std::string& src, const YAML::Node& root, State& st, std::string& at) {
    for (const auto& kv : root) {
        if (!kv.first.IsScalar())
            return Error::invalid(fmt::format("{}: a key is not a string", src));
        const std::string key = kv.first.Scalar();
        at = key;
        if (kIgnoredDockerKeys.count(key)) {
            st.cfg.warnings.push_back(
                fmt::format("{}: {}: Docker key not used by cnetd, ignored", src, key));
            continue;
        }
        auto it = readers().find(key);
        if (it == readers().end()) return field_error(src, key, "unknown key");
        CNETD_TRY(it->second(src, key, kv.second, st));
    }
    return ok();
}

}  // namespace

Result<Config> parse(std::string_view text, std::string_view source_sv) {
    const std::string source(source_sv);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        return Error::invalid(fmt::format("{}: line {}, column {}: {}", source, e.mark.line + 1,
                                          e.mark.column + 1, e.msg));
    }
    State st;
    if (root.IsNull()) return std::move(st.cfg);  // empty file: defaults
    if (!root.IsMap()) {
        return Error::invalid(fmt::format("{}: expected a mapping of keys, got {}", source,
                                          describe(root)));
    }
    std::string at;  // the key being read, for an exception no check foresaw
    try {
        CNETD_TRY(read_keys(source, root, st, at));
        CNETD_TRY(finish(source, st));
    } catch (const YAML::Exception& e) {
        return Error::invalid(fmt::format("{}: {}", source, e.what()));
    } catch (const std::exception& e) {
        // Every number is range-checked before conversion; this is the net under that rule.
        return at.empty() ? Error::invalid(fmt::format("{}: {}", source, e.what()))
                          : field_error(source, at, e.what());
    }
    return std::move(st.cfg);
}

Result<Config> load(const std::string& path, bool must_exist) {
    std::ifstream in(path);
    if (!in) {
        int err = errno;
        // A missing file means defaults, as an empty one does. (Parsing "" rather than returning
        // Config{}: GCC 12 at -O3 reports a false -Wmaybe-uninitialized on that temporary.)
        if (err == ENOENT && !must_exist) return parse("", path);
        return Error::sys(err, fmt::format("read config {}", path));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

}  // namespace cnetd::config
