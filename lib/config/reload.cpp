#include "config/reload.hpp"

#include <functional>

namespace cnetd::config {

namespace {

constexpr size_t kMaxValueText = 160;

std::string b(bool v) {
    return v ? "true" : "false";
}

template <class T>
std::string opt(const std::optional<T>& v) {
    return v ? v->str() : "(unset)";
}

std::string pools_text(const Config& c) {
    if (c.address_pools == core::default_address_pools() && c.address_pools6.empty())
        return "default";
    std::string s;
    for (const auto& p : c.address_pools) s += (s.empty() ? "" : ", ") + p.str();
    for (const auto& p : c.address_pools6) s += (s.empty() ? "" : ", ") + p.str();
    return s.empty() ? "(none)" : s;
}

// `cluster:` as one value: any change of it waits for a restart (the agent's lease, watch and
// VXLAN devices are made from it at start).
std::string cluster_text(const Config& c) {
    if (!c.cluster) return "(unset)";
    const ClusterConfig& k = *c.cluster;
    std::string etcd;
    for (const auto& e : k.etcd) etcd += (etcd.empty() ? "" : ",") + e;
    return fmt::format(
        "{{etcd: [{}], node-name: {}, advertise-address: {}, vxlan-port: {}, tls: {}, "
        "lease-ttl: {}, lease-renew-margin: {}}}",
        etcd, k.node_name, k.advertise_address.str(), k.vxlan_port,
        k.tls_ca.empty()
            ? std::string("none")
            : fmt::format("{{ca: {}, cert: {}, key: {}}}", k.tls_ca, k.tls_cert, k.tls_key),
        k.lease_ttl, k.lease_renew_margin);
}

std::string cut(std::string s) {
    if (s.size() > kMaxValueText) {
        s.resize(kMaxValueText - 3);
        s += "...";
    }
    return s;
}

struct Key {
    const char* name;
    bool live;
    const char* note;
    std::function<std::string(const Config&)> text;
    std::function<void(Config& dst, const Config& src)> copy;  // live keys only
};

const std::vector<Key>& keys() {
    static const std::vector<Key> table = {
        // --- live ---
        {"log-level", true, "applied at once", [](const Config& c) { return c.log_level; },
         [](Config& d, const Config& s) { d.log_level = s.log_level; }},
        {"icc", true, "default network's firewall rules replaced in one transaction",
         [](const Config& c) { return b(c.icc); },
         [](Config& d, const Config& s) { d.icc = s.icc; }},
        {"ip-masq", true, "default network's firewall rules replaced in one transaction",
         [](const Config& c) { return b(c.ip_masq); },
         [](Config& d, const Config& s) { d.ip_masq = s.ip_masq; }},
        {"mtu", true,
         "for networks and endpoints created from now on; existing interfaces keep theirs",
         // 0: not set, the MTU of the host's default-route interface.
         [](const Config& c) { return c.mtu ? std::to_string(c.mtu) : std::string("auto"); },
         [](Config& d, const Config& s) {
             d.mtu = s.mtu;
             d.default_net.mtu = s.default_net.mtu;
         }},
        {"ip", true, "default host address for port mappings created from now on",
         [](const Config& c) { return c.default_host_ip ? c.default_host_ip->str() : "0.0.0.0"; },
         [](Config& d, const Config& s) { d.default_host_ip = s.default_host_ip; }},
        {"ip-forward", true,
         "true writes net.ipv4.ip_forward=1 at once; false never turns forwarding off under "
         "running "
         "containers",
         [](const Config& c) { return b(c.ip_forward); },
         [](Config& d, const Config& s) { d.ip_forward = s.ip_forward; }},
        {"default-address-pools", true,
         "used for networks created without a subnet from now on; existing networks keep theirs",
         [](const Config& c) { return pools_text(c); },
         [](Config& d, const Config& s) {
             d.address_pools = s.address_pools;
             d.address_pools6 = s.address_pools6;
         }},
        // --- restart ---
        {"bridge", false,
         "the default network's bridge is chosen at start; moving it re-creates every container's "
         "veth",
         [](const Config& c) {
             return c.default_network ? c.default_net.bridge : std::string("none");
         },
         nullptr},
        {"bip", false,
         "re-addressing the default bridge renumbers its containers; start() checks it has none",
         [](const Config& c) { return c.default_net.bip.str(); }, nullptr},
        {"fixed-cidr", false,
         "the default network's address pool is rebuilt from its allocations at start",
         [](const Config& c) { return opt(c.default_net.fixed_cidr); }, nullptr},
        {"ipv6", false,
         "IPv6 on the default bridge and every container on it is set up by start()'s "
         "reconciliation",
         [](const Config& c) { return b(c.ipv6); }, nullptr},
        {"fixed-cidr-v6", false,
         "the default network's IPv6 subnet is assigned at start (bridge and containers "
         "renumbered)",
         [](const Config& c) { return opt(c.fixed_cidr_v6); }, nullptr},
        {"firewall", false,
         "switching owner creates or deletes the whole inet cnetd table, done at start in one "
         "transaction",
         [](const Config& c) { return c.firewall; }, nullptr},
        {"socket", false, "the control socket is bound at start",
         [](const Config& c) { return c.socket; }, nullptr},
        {"state-dir", false, "the persisted state lives in the old directory",
         [](const Config& c) { return c.state_dir; }, nullptr},
        {"netns-dir", false, "running containers' netns files live in the old directory",
         [](const Config& c) { return c.netns_dir; }, nullptr},
        {"group", false, "the socket file's group is set when it is created",
         [](const Config& c) { return c.group.empty() ? std::string("\"\"") : c.group; }, nullptr},
        {"read-group", false, "the socket file's mode is set when it is created",
         [](const Config& c) { return c.read_group.empty() ? std::string("\"\"") : c.read_group; },
         nullptr},
        {"cluster", false,
         "the cluster agent (etcd lease, watch, VXLAN devices) is made from it at start",
         [](const Config& c) { return cluster_text(c); }, nullptr},
        {"metrics-address", false, "the metrics listener is bound at start",
         [](const Config& c) {
             return c.metrics_address.empty() ? std::string("\"\"") : c.metrics_address;
         },
         nullptr},
        {"max-connections", false, "the control server's limit is fixed when it starts listening",
         [](const Config& c) { return std::to_string(c.max_connections); }, nullptr},
        {"max-connections-per-uid", false,
         "the control server's limit is fixed when it starts listening",
         [](const Config& c) { return std::to_string(c.max_connections_per_uid); }, nullptr},
        {"reserved-write-connections", false,
         "the control server's limit is fixed when it starts listening",
         [](const Config& c) { return std::to_string(c.reserved_write_connections); }, nullptr},
    };
    return table;
}

}  // namespace

std::string KeyChange::str() const {
    return fmt::format("{}: {} -> {}", key, old_value, new_value);
}

std::string ReloadPlan::summary() const {
    if (empty()) return "no changes";
    std::string s;
    if (!live.empty()) {
        s += "applied: ";
        for (size_t i = 0; i < live.size(); ++i) s += (i ? ", " : "") + live[i].str();
    }
    if (!restart.empty()) {
        if (!s.empty()) s += "; ";
        s += "pending restart: ";
        for (size_t i = 0; i < restart.size(); ++i) {
            s += fmt::format("{}{} ({})", i ? ", " : "", restart[i].str(), restart[i].note);
        }
    }
    return s;
}

ReloadPlan diff(const Config& old, const Config& now) {
    ReloadPlan plan;
    for (const auto& k : keys()) {
        std::string a = k.text(old);
        std::string z = k.text(now);
        if (a == z) continue;
        KeyChange ch{k.name, cut(std::move(a)), cut(std::move(z)), k.note};
        (k.live ? plan.live : plan.restart).push_back(std::move(ch));
    }
    return plan;
}

Config apply_live(const Config& running, const Config& now) {
    Config out = running;
    for (const auto& k : keys()) {
        if (k.live) k.copy(out, now);
    }
    out.warnings = now.warnings;
    return out;
}

bool is_live_key(std::string_view key) {
    for (const auto& k : keys()) {
        if (k.name == key) return k.live;
    }
    return false;
}

}  // namespace cnetd::config
