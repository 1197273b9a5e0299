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
    "exec-opts", "experimental", "features", "group", "hosts", "insecure-registries", "init",
    "ip6tables", "ipv6", "fixed-cidr-v6", "labels", "live-restore", "log-driver",
    "log-opts", "max-concurrent-downloads", "max-concurrent-uploads", "metrics-addr",
    "registry-mirrors", "runtimes", "selinux-enabled", "storage-driver", "storage-opts", "tls",
    "tlscacert", "tlscert", "tlskey", "tlsverify", "userland-proxy", "userns-remap",
    "default-address-pools", "shutdown-timeout", "no-new-privileges", "seccomp-profile"};

const std::set<std::string> kKnownKeys = {"bip",       "fixed-cidr", "mtu",       "icc",
                                          "ip-masq",   "ip-forward", "bridge",    "socket",
                                          "state-dir", "netns-dir",  "log-level", "firewall", "iptables", "ip"};

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
        if (digits && s.size() <= 6) v = std::stoul(s, &used);
        if (digits && used == s.size() && s.size() <= 6) {
            // 68 is the IPv4 minimum; 65535 the largest an Ethernet-like link takes.
            if (v < 68 || v > 65535) {
                return field_error(src, key, fmt::format("{} is out of range (68..65535)", v));
            }
            return static_cast<unsigned>(v);
        }
    }
    return field_error(src, key, "expected a whole number, got " + describe(n));
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
    try {
        std::optional<Ipv4Cidr> bip;
        std::optional<Ipv4Cidr> fixed;
        for (const auto& kv : root) {
            if (!kv.first.IsScalar()) return Error::invalid(fmt::format("{}: a key is not a string", source));
            const std::string key = kv.first.Scalar();
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
    } catch (const YAML::Exception& e) {
        return Error::invalid(fmt::format("{}: {}", source, e.what()));
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
