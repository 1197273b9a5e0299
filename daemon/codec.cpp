#include "daemon/codec.hpp"

#include <cstdint>

#include <algorithm>
#include <initializer_list>
#include <map>
#include <vector>

#include "api/json_parse.hpp"
#include "core/ports.hpp"

namespace cnetd::daemon {
namespace {

// Reads fields of one request object, remembering which were consumed so leftovers can be named.
class Fields {
public:
    // `where` prefixes field names in messages: `"PortBindings"[0].` gives
    // `"PortBindings"[0]."HostPort": expected a string, got number`.
    explicit Fields(const json& obj, std::string where = {})
        : obj_(obj), where_(std::move(where)) {}

    Result<std::string> required_string(const char* key) {
        if (!obj_.contains(key))
            return Error::invalid(fmt::format("{}\"{}\": required", where_, key));
        return optional_string(key);
    }

    Result<std::string> optional_string(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return std::string();
        if (!it->is_string())
            return Error::invalid(
                fmt::format("{}\"{}\": expected a string, got {}", where_, key, it->type_name()));
        return it->get<std::string>();
    }

    Result<bool> optional_bool(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return false;
        if (!it->is_boolean())
            return Error::invalid(
                fmt::format("\"{}\": expected a boolean, got {}", key, it->type_name()));
        return it->get<bool>();
    }

    // A JSON integer within `int` (0 when absent).
    Result<int> optional_int(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return 0;
        if (!it->is_number_integer())
            return Error::invalid(
                fmt::format("{}\"{}\": expected an integer, got {}", where_, key, it->type_name()));
        if (it->is_number_unsigned() ? it->get<uint64_t>() > uint64_t(INT32_MAX)
                                     : (it->get<int64_t>() < INT32_MIN || it->get<int64_t>() > INT32_MAX))
            return Error::invalid(fmt::format("{}\"{}\": {} is out of range ({} to {})", where_,
                                              key, it->dump(), INT32_MIN, INT32_MAX));
        return static_cast<int>(it->get<int64_t>());
    }

    Result<std::map<std::string, std::string>> optional_string_map(const char* key) {
        seen_.push_back(key);
        std::map<std::string, std::string> out;
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return out;
        if (!it->is_object())
            return Error::invalid(
                fmt::format("\"{}\": expected an object of strings, got {}", key, it->type_name()));
        for (const auto& [k, v] : it->items()) {
            if (!v.is_string())
                return Error::invalid(
                    fmt::format("\"{}\".\"{}\": expected a string, got {}", key, k, v.type_name()));
            out.emplace(k, v.get<std::string>());
        }
        return out;
    }

    Result<std::vector<std::string>> optional_string_array(const char* key) {
        seen_.push_back(key);
        std::vector<std::string> out;
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return out;
        if (!it->is_array())
            return Error::invalid(
                fmt::format("\"{}\": expected an array of strings, got {}", key, it->type_name()));
        for (size_t i = 0; i < it->size(); ++i) {
            const json& v = (*it)[i];
            if (!v.is_string())
                return Error::invalid(
                    fmt::format("\"{}\"[{}]: expected a string, got {}", key, i, v.type_name()));
            out.push_back(v.get<std::string>());
        }
        return out;
    }

    // The array at `key` (null/absent: an empty array); each element is the caller's to check.
    Result<json> optional_array(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return json::array();
        if (!it->is_array())
            return Error::invalid(
                fmt::format("\"{}\": expected an array, got {}", key, it->type_name()));
        return *it;
    }

    // Every field not read so far, in one message: `unknown fields "Foo", "bar"`.
    Result<void> no_others() const {
        std::vector<std::string> unknown;
        for (const auto& [k, v] : obj_.items()) {
            bool known = false;
            for (const char* s : seen_) known = known || k == s;
            if (!known) unknown.push_back(fmt::format("\"{}\"", k));
        }
        if (unknown.empty()) return ok();
        std::string list;
        for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
        return Error::invalid(
            fmt::format("unknown field{} {}", unknown.size() == 1 ? "" : "s", list));
    }

private:
    const json& obj_;
    std::string where_;
    std::vector<const char*> seen_;
};

Result<json> parse_fields(std::string_view body, std::string_view what) {
    auto r = parse_object(body);
    if (!r) return std::move(r).error().wrap(what);
    return r;
}

// "80" or "80-90" (ports 1-65535); "" is ephemeral ({0,0}) when `allow_empty`.
Result<core::PortRange> parse_range_field(const std::string& where, const std::string& text,
                                          bool allow_empty) {
    if (text.empty()) {
        if (allow_empty) return core::PortRange{};
        return Error::invalid(fmt::format("{}: must not be empty", where));
    }
    auto number = [&](std::string_view s, uint16_t& out) {
        if (s.empty() || s.size() > 5) return false;
        uint32_t v = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + uint32_t(c - '0');
        }
        if (v < 1 || v > 65535) return false;
        out = static_cast<uint16_t>(v);
        return true;
    };
    std::string_view t = text;
    const size_t dash = t.find('-');
    core::PortRange r;
    bool good = dash == std::string_view::npos
                    ? number(t, r.first)
                    : number(t.substr(0, dash), r.first) && number(t.substr(dash + 1), r.last);
    if (!good)
        return Error::invalid(fmt::format(
            "{}: \"{}\" is not a port (1-65535) or a port range like 8000-8010", where, text));
    if (dash == std::string_view::npos) r.last = r.first;
    if (r.last < r.first)
        return Error::invalid(fmt::format("{}: range \"{}\" ends before it starts", where, text));
    return r;
}

// One "PortBindings" element, `where` being `"PortBindings"[i]`.
Result<core::PortRequest> parse_binding(const std::string& where, const json& j) {
    if (!j.is_object())
        return Error::invalid(fmt::format("{}: expected an object, got {}", where, j.type_name()));
    Fields f(j, where + ".");
    auto field = [&](const char* key) { return fmt::format("{}.\"{}\"", where, key); };
    core::PortRequest req;
    CNETD_TRY_ASSIGN(std::string proto, f.optional_string("Proto"));
    if (!proto.empty()) {
        auto p = core::parse_proto(proto);
        if (!p) return Error::invalid(fmt::format("{}: {}", field("Proto"), p.error().message()));
        req.proto = *p;
    }
    CNETD_TRY_ASSIGN(std::string host_ip, f.optional_string("HostIp"));
    // "" leaves the address to the network's/daemon's default; "0.0.0.0" asks for every IPv4
    // address, "::" for every IPv6 address.
    if (!host_ip.empty()) {
        if (host_ip.find(':') != std::string::npos) {
            auto ip6 = Ipv6::parse(host_ip);
            if (!ip6)
                return Error::invalid(
                    fmt::format("{}: \"{}\" is not an IP address", field("HostIp"), host_ip));
            req.ipv6 = true;
            if (!ip6->is_unspecified()) req.host_ip6 = *ip6;
        } else {
            auto ip = Ipv4::parse(host_ip);
            if (!ip)
                return Error::invalid(
                    fmt::format("{}: \"{}\" is not an IP address", field("HostIp"), host_ip));
            req.host_ip = *ip;
        }
    }
    CNETD_TRY_ASSIGN(std::string host_port, f.optional_string("HostPort"));
    CNETD_TRY_ASSIGN(req.host, parse_range_field(field("HostPort"), host_port, true));
    CNETD_TRY_ASSIGN(std::string cont_port, f.required_string("ContainerPort"));
    CNETD_TRY_ASSIGN(req.container, parse_range_field(field("ContainerPort"), cont_port, false));
    if (auto others = f.no_others(); !others) return std::move(others).error().wrap(where);
    // Docker's rule: a container range maps 1:1; only a single container port may take one free
    // host port out of a bigger host range.
    if (req.container.size() > 1 && req.host.first != 0 && req.host.size() != req.container.size())
        return Error::invalid(fmt::format(
            "{}: host ports \"{}\" and container ports \"{}\" are ranges of different sizes", where,
            host_port, cont_port));
    return req;
}

std::string range_text(const core::PortRange& r) {
    return r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
}

const char* mode_text(firewall::GatewayMode m) {
    switch (m) {
        case firewall::GatewayMode::Nat: return "nat";
        case firewall::GatewayMode::NatUnprotected: return "nat-unprotected";
        case firewall::GatewayMode::Routed: return "routed";
        case firewall::GatewayMode::Isolated: return "isolated";
    }
    return "nat";
}

}  // namespace

json endpoint_to_json(const core::Endpoint& e, const std::string& network,
                      const core::GatewayRole* role) {
    json j = {
        {"Name", e.name},
        {"EndpointID", e.id},
        {"MacAddress", e.mac.str()},
        {"IPv4Address", e.address.str()},
        {"IPv6Address", e.address6 ? e.address6->str() : ""},
        {"SandboxKey", e.netns_path},
        {"Interface", e.ifname},
        {"HostInterface", e.host_ifname},
        {"GwPriority", e.gw_priority},
    };
    if (role) {
        // The families whose default route of the namespace this endpoint carries.
        json fams = json::array();
        if (role->v4) fams.push_back("IPv4");
        if (role->v6) fams.push_back("IPv6");
        j["DefaultRoute"] = std::move(fams);
    }
    json ports = json::object();
    for (const auto& b : e.ports) {
        // After allocation host.size() == container.size(): container port i ↔ host port i.
        for (uint32_t i = 0; i < b.container.size(); ++i) {
            const std::string key =
                fmt::format("{}/{}", b.container.first + i, core::to_string(b.proto));
            ports[key].push_back({{"HostIp", b.host_ip_text()},
                                  {"HostPort", std::to_string(b.host.first + i)}});
        }
    }
    j["Ports"] = std::move(ports);
    if (!network.empty()) j["Network"] = network;
    return j;
}

json ports_to_json(const std::vector<core::Network>& networks) {
    json out = json::array();
    for (const auto& n : networks) {
        std::vector<const core::Endpoint*> eps;
        for (const auto& [id, ep] : n.endpoints) eps.push_back(&ep);
        std::sort(eps.begin(), eps.end(),
                  [](const auto* a, const auto* b) { return a->name < b->name; });
        for (const auto* ep : eps) {
            for (const auto& b : ep->ports) {
                out.push_back({{"Network", n.name},
                               {"Endpoint", ep->name},
                               {"EndpointID", ep->id},
                               {"Container", ep->address.addr().str()},
                               {"Proto", core::to_string(b.proto)},
                               {"HostIp", b.host_ip_text()},
                               {"HostPort", range_text(b.host)},
                               {"ContainerPort", range_text(b.container)}});
            }
        }
    }
    return out;
}

json network_to_json(const core::Network& n,
                     const std::map<std::string, core::GatewayRole>* roles) {
    json ipam_cfg = {{"Subnet", n.subnet.str()}, {"Gateway", n.gateway.str()}};
    if (n.ip_range) ipam_cfg["IPRange"] = n.ip_range->str();
    json config = json::array({ipam_cfg});
    if (n.subnet6) {
        json v6 = {{"Subnet", n.subnet6->str()}, {"Gateway", n.gateway6.str()}};
        if (n.ip_range6) v6["IPRange"] = n.ip_range6->str();
        config.push_back(std::move(v6));
    }
    // Docker lists auxiliary addresses with the config of their family.
    for (const auto& [name, ip] : n.aux_addresses) {
        json& c = config[ip.find(':') != std::string::npos && config.size() > 1 ? 1 : 0];
        c["AuxiliaryAddresses"][name] = ip;
    }
    json options = json::object();
    for (const auto& [k, v] : n.options) options[k] = v;
    // Inspect always names the bridge, as Docker does, whatever the engine stored.
    options[core::kOptBridgeName] = n.bridge;
    if (n.is_default) options["com.docker.network.bridge.default_bridge"] = "true";
    options["com.docker.network.driver.mtu"] = std::to_string(n.mtu);
    options["com.docker.network.bridge.gateway_mode_ipv4"] = mode_text(n.mode4);
    if (n.subnet6) options["com.docker.network.bridge.gateway_mode_ipv6"] = mode_text(n.mode6);
    json containers = json::object();
    for (const auto& [id, ep] : n.endpoints) {
        const core::GatewayRole* role = nullptr;
        if (roles) {
            if (auto it = roles->find(id); it != roles->end()) role = &it->second;
        }
        containers[id] = endpoint_to_json(ep, {}, role);
    }
    json labels = json::object();
    for (const auto& [k, v] : n.labels) labels[k] = v;
    return {
        {"Name", n.name},
        {"Id", n.id},
        {"Created", n.created},
        {"Scope", "local"},
        {"Driver", "bridge"},
        {"EnableIPv4", true},
        {"EnableIPv6", n.subnet6.has_value()},
        {"IPAM", {{"Driver", "default"}, {"Options", json::object()}, {"Config", config}}},
        {"Internal", n.internal},
        {"Options", options},
        {"Containers", containers},
        {"Labels", labels},
    };
}

Result<json> parse_object(std::string_view body) {
    if (body.empty()) return Error::invalid("request body: expected a JSON object, got nothing");
    // api::parse_json throws nothing: a number beyond a double's range is an error naming its
    // field, not nlohmann's out_of_range escaping as a 500.
    auto j = api::parse_json(body);
    if (!j) return std::move(j).error().wrap("invalid JSON body");
    if (!j->is_object())
        return Error::invalid(
            fmt::format("request body: expected a JSON object, got {}", j->type_name()));
    return j;
}

Result<core::CreateNetworkRequest> parse_create_network(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_fields(body, "create network"));
    Fields f(j);
    core::CreateNetworkRequest req;
    CNETD_TRY_ASSIGN(req.name, f.required_string("Name"));
    CNETD_TRY_ASSIGN(req.subnet, f.optional_string("Subnet"));
    CNETD_TRY_ASSIGN(req.gateway, f.optional_string("Gateway"));
    CNETD_TRY_ASSIGN(req.ip_range, f.optional_string("IPRange"));
    CNETD_TRY_ASSIGN(req.ipv6, f.optional_bool("EnableIPv6"));
    CNETD_TRY_ASSIGN(req.subnet6, f.optional_string("Subnet6"));
    CNETD_TRY_ASSIGN(req.gateway6, f.optional_string("Gateway6"));
    CNETD_TRY_ASSIGN(req.ip_range6, f.optional_string("IPRange6"));
    CNETD_TRY_ASSIGN(req.aux_addresses, f.optional_string_map("AuxAddresses"));
    CNETD_TRY_ASSIGN(req.labels, f.optional_string_map("Labels"));
    CNETD_TRY_ASSIGN(req.options, f.optional_string_map("Options"));
    CNETD_TRY_ASSIGN(req.internal, f.optional_bool("Internal"));
    CNETD_TRY(f.no_others());
    if (req.name.empty()) return Error::invalid("\"Name\": must not be empty");
    return req;
}

Result<core::ConnectRequest> parse_connect(std::string_view body, const std::string& network) {
    CNETD_TRY_ASSIGN(json j, parse_fields(body, "connect"));
    Fields f(j);
    core::ConnectRequest req;
    req.network = network;
    CNETD_TRY_ASSIGN(req.target, f.required_string("Target"));
    CNETD_TRY_ASSIGN(req.name, f.optional_string("Name"));
    CNETD_TRY_ASSIGN(req.ipv4, f.optional_string("IPv4Address"));
    CNETD_TRY_ASSIGN(req.ipv6, f.optional_string("IPv6Address"));
    CNETD_TRY_ASSIGN(req.mac, f.optional_string("MacAddress"));
    CNETD_TRY_ASSIGN(req.publish, f.optional_string_array("Publish"));
    CNETD_TRY_ASSIGN(req.gw_priority, f.optional_int("GwPriority"));
    CNETD_TRY_ASSIGN(json bindings, f.optional_array("PortBindings"));
    for (size_t i = 0; i < bindings.size(); ++i) {
        CNETD_TRY_ASSIGN(core::PortRequest pr,
                         parse_binding(fmt::format("\"PortBindings\"[{}]", i), bindings[i]));
        req.ports.push_back(pr);
    }
    CNETD_TRY(f.no_others());
    if (req.target.empty()) return Error::invalid("\"Target\": must not be empty");
    return req;
}

Result<std::string> parse_disconnect(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_fields(body, "disconnect"));
    Fields f(j);
    CNETD_TRY_ASSIGN(std::string target, f.required_string("Target"));
    CNETD_TRY(f.no_others());
    if (target.empty()) return Error::invalid("\"Target\": must not be empty");
    return target;
}

Result<std::string> parse_create_netns(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_fields(body, "create netns"));
    Fields f(j);
    CNETD_TRY_ASSIGN(std::string name, f.required_string("Name"));
    CNETD_TRY(f.no_others());
    if (name.empty()) return Error::invalid("\"Name\": must not be empty");
    return name;
}

}  // namespace cnetd::daemon
