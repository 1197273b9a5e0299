#include "config/config.hpp"

#include <fstream>
#include <set>
#include <sstream>

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
    "log-opts", "max-concurrent-downloads", "max-concurrent-uploads", "metrics-addr",
    "registry-mirrors", "runtimes", "selinux-enabled", "storage-driver", "storage-opts", "tls",
    "tlscacert", "tlscert", "tlskey", "tlsverify", "userland-proxy", "userns-remap",
    "shutdown-timeout", "no-new-privileges", "seccomp-profile"};

const std::set<std::string> kKnownKeys = {"bip",       "fixed-cidr", "mtu",       "icc",
                                          "ip-masq",   "ip-forward", "bridge",    "socket",
                                          "state-dir", "netns-dir",  "log-level", "firewall", "iptables", "ip",
                                          "group", "read-group", "max-connections",
                                          "max-connections-per-uid", "reserved-write-connections",
                                          "default-address-pools", "ipv6", "fixed-cidr-v6"};

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
            auto c = Ipv6Cidr::parse(*base);
            if (!c) return field_error(src, at + ".base", c.error().message());
            core::AddressPool6 p{*c, *size};
            auto ok6 = core::validate_pool(p);
            if (!ok6) return field_error(src, at, ok6.error().message());
            v6.push_back(p);
        } else {
            auto c = Ipv4Cidr::parse(*base);
            if (!c) return field_error(src, at + ".base", c.error().message());
            core::AddressPool p{*c, *size};
            auto ok4 = core::validate_pool(p);
            if (!ok4) return field_error(src, at, ok4.error().message());
            v4.push_back(p);
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
    Config cfg;
    if (root.IsNull()) return cfg;  // empty file: defaults
    if (!root.IsMap()) {
        return Error::invalid(fmt::format("{}: expected a mapping of keys, got {}", source,
                                          describe(root)));
    }
    std::string at;  // the key being read, for an exception no check foresaw
    try {
        std::optional<Ipv4Cidr> bip;
        std::optional<Ipv4Cidr> fixed;
        for (const auto& kv : root) {
            if (!kv.first.IsScalar()) return Error::invalid(fmt::format("{}: a key is not a string", source));
            const std::string key = kv.first.Scalar();
            at = key;
            const YAML::Node& v = kv.second;
            if (kIgnoredDockerKeys.count(key)) {
                cfg.warnings.push_back(
                    fmt::format("{}: {}: Docker key not used by cnetd, ignored", source, key));
                continue;
            }
            if (!kKnownKeys.count(key)) {
                return field_error(source, key, "unknown key");
            }
            if (key == "bip" || key == "fixed-cidr") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                auto c = key == "bip" ? Ipv4Cidr::parse(s) : Ipv4Cidr::parse_network(s);
                if (!c) return field_error(source, key, c.error().message());
                (key == "bip" ? bip : fixed) = *c;
            } else if (key == "mtu") {
                CNETD_TRY_ASSIGN(cfg.mtu, get_mtu(source, key, v));
            } else if (key == "icc") {
                CNETD_TRY_ASSIGN(cfg.icc, get_bool(source, key, v));
            } else if (key == "ip-masq") {
                CNETD_TRY_ASSIGN(cfg.ip_masq, get_bool(source, key, v));
            } else if (key == "ip-forward") {
                CNETD_TRY_ASSIGN(cfg.ip_forward, get_bool(source, key, v));
            } else if (key == "bridge") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                if (s == "none") {
                    cfg.default_network = false;
                } else if (!s.empty()) {
                    auto r = validate_ifname(s);
                    if (!r) return field_error(source, key, r.error().message());
                    cfg.default_net.bridge = s;
                }
            } else if (key == "firewall") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                if (s != "nftables" && s != "none") {
                    return field_error(source, key,
                                       fmt::format("\"{}\" is not one of nftables, none", s));
                }
                cfg.firewall = s;
            } else if (key == "ip") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                if (s.find(':') != std::string::npos) {
                    return field_error(source, key,
                                       fmt::format("\"{}\": IPv6 host addresses are not supported yet", s));
                }
                auto a = Ipv4::parse(s);
                if (!a) return field_error(source, key, a.error().message());
                if (a->value() != 0) cfg.default_host_ip = *a;
            } else if (key == "group" || key == "read-group") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                if (s.size() > 256 || s.find_first_of(" \t\r\n:/,") != std::string::npos) {
                    return field_error(source, key,
                                       fmt::format("\"{}\" is not a group name or numeric gid", s));
                }
                (key == "group" ? cfg.group : cfg.read_group) = s;
            } else if (key == "max-connections" || key == "max-connections-per-uid" ||
                       key == "reserved-write-connections") {
                const unsigned min = key == "reserved-write-connections" ? 0 : 1;
                const std::string s = v.IsScalar() ? v.Scalar() : std::string();
                bool digits = !s.empty() && s.size() <= 6 &&
                              s.find_first_not_of("0123456789") == std::string::npos;
                unsigned long n = digits ? std::stoul(s) : 0;
                if (!digits || n < min || n > 65536) {
                    return field_error(source, key,
                                       fmt::format("expected a whole number from {} to 65536, got {}",
                                                   min, describe(v)));
                }
                (key == "max-connections"           ? cfg.max_connections
                 : key == "max-connections-per-uid" ? cfg.max_connections_per_uid
                                                    : cfg.reserved_write_connections) =
                    static_cast<unsigned>(n);
            } else if (key == "default-address-pools") {
                CNETD_TRY(get_pools(source, v, cfg));
            } else if (key == "ipv6") {
                CNETD_TRY_ASSIGN(cfg.ipv6, get_bool(source, key, v));
            } else if (key == "fixed-cidr-v6") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                auto c = Ipv6Cidr::parse_network(s);
                if (!c) return field_error(source, key, c.error().message());
                const Ipv6 a = c->addr();
                if (a.is_multicast() || a.is_link_local() || a.is_loopback() || a.is_unspecified() ||
                    c->prefix() > 126) {
                    return field_error(source, key,
                                       fmt::format("\"{}\" is not a unicast subnet with room for a "
                                                   "gateway and containers (e.g. fd00:1::/64)",
                                                   s));
                }
                cfg.fixed_cidr_v6 = *c;
            } else if (key == "iptables") {
                CNETD_TRY_ASSIGN(bool b, get_bool(source, key, v));
                if (!b) cfg.firewall = "none";
            } else if (key == "log-level") {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                if (s != "debug" && s != "info" && s != "warning" && s != "error") {
                    return field_error(source, key,
                                       fmt::format("\"{}\" is not one of debug, info, warning, error", s));
                }
                cfg.log_level = s;
            } else {
                CNETD_TRY_ASSIGN(std::string s, get_string(source, key, v));
                if (s.empty() || s[0] != '/') {
                    return field_error(source, key, fmt::format("\"{}\" is not an absolute path", s));
                }
                (key == "socket" ? cfg.socket : key == "state-dir" ? cfg.state_dir : cfg.netns_dir) = s;
            }
        }
        if (bip) {
            Ipv4Cidr subnet = bip->masked();
            if (bip->addr() == subnet.network() || bip->addr() == subnet.broadcast()) {
                return field_error(source, "bip",
                                   fmt::format("\"{}\" is the network or broadcast address, not a "
                                               "gateway address (e.g. {}/{})",
                                               bip->str(), Ipv4(subnet.network().value() + 1).str(),
                                               subnet.prefix()));
            }
            cfg.default_net.bip = *bip;
        }
        if (fixed) {
            Ipv4Cidr subnet = cfg.default_net.bip.masked();
            if (fixed->prefix() < subnet.prefix() || !subnet.contains(fixed->network())) {
                return field_error(source, "fixed-cidr",
                                   fmt::format("{} is not inside the bridge subnet {}",
                                               fixed->str(), subnet.str()));
            }
            cfg.default_net.fixed_cidr = *fixed;
        }
        cfg.default_net.mtu = cfg.mtu;
        if (cfg.fixed_cidr_v6 && !cfg.ipv6) {
            cfg.warnings.push_back(fmt::format(
                "{}: fixed-cidr-v6: ignored while ipv6 is false (set ipv6: true for a dual-stack "
                "default network)",
                source));
        }
        if (cfg.reserved_write_connections >= cfg.max_connections) {
            return field_error(source, "reserved-write-connections",
                               fmt::format("{} must be less than max-connections ({}): peers "
                                           "without write access need at least one slot",
                                           cfg.reserved_write_connections, cfg.max_connections));
        }
    } catch (const YAML::Exception& e) {
        return Error::invalid(fmt::format("{}: {}", source, e.what()));
    } catch (const std::exception& e) {
        // Every number is range-checked before conversion; this is the net under that rule.
        return at.empty() ? Error::invalid(fmt::format("{}: {}", source, e.what()))
                          : field_error(source, at, e.what());
    }
    return cfg;
}

Result<Config> load(const std::string& path, bool must_exist) {
    std::ifstream in(path);
    if (!in) {
        int err = errno;
        if (err == ENOENT && !must_exist) return Config{};
        return Error::sys(err, fmt::format("read config {}", path));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

}  // namespace cnetd::config
