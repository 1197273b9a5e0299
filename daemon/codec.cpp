#include "daemon/codec.hpp"

#include <initializer_list>
#include <map>
#include <vector>

namespace cnetd::daemon {
namespace {

// Reads fields of one request object, remembering which were consumed so leftovers can be named.
class Fields {
public:
    explicit Fields(const json& obj) : obj_(obj) {}

    Result<std::string> required_string(const char* key) {
        if (!obj_.contains(key)) return Error::invalid(fmt::format("\"{}\": required", key));
        return optional_string(key);
    }

    Result<std::string> optional_string(const char* key) {
        seen_.push_back(key);
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return std::string();
        if (!it->is_string())
            return Error::invalid(
                fmt::format("\"{}\": expected a string, got {}", key, it->type_name()));
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
    std::vector<const char*> seen_;
};

Result<json> parse_fields(std::string_view body, std::string_view what) {
    auto r = parse_object(body);
    if (!r) return std::move(r).error().wrap(what);
    return r;
}

}  // namespace

json endpoint_to_json(const core::Endpoint& e, const std::string& network) {
    json j = {
        {"Name", e.name},
        {"EndpointID", e.id},
        {"MacAddress", e.mac.str()},
        {"IPv4Address", e.address.str()},
        {"IPv6Address", ""},
        {"SandboxKey", e.netns_path},
        {"Interface", e.ifname},
        {"HostInterface", e.host_ifname},
    };
    if (!network.empty()) j["Network"] = network;
    return j;
}

json network_to_json(const core::Network& n) {
    json ipam_cfg = {{"Subnet", n.subnet.str()}, {"Gateway", n.gateway.str()}};
    if (n.ip_range) ipam_cfg["IPRange"] = n.ip_range->str();
    json options = json::object();
    for (const auto& [k, v] : n.options) options[k] = v;
    // Inspect always names the bridge, as Docker does, whatever the engine stored.
    options[core::kOptBridgeName] = n.bridge;
    if (n.is_default) options["com.docker.network.bridge.default_bridge"] = "true";
    json containers = json::object();
    for (const auto& [id, ep] : n.endpoints) containers[id] = endpoint_to_json(ep);
    return {
        {"Name", n.name},
        {"Id", n.id},
        {"Created", n.created},
        {"Scope", "local"},
        {"Driver", "bridge"},
        {"EnableIPv6", false},
        {"IPAM",
         {{"Driver", "default"}, {"Options", json::object()}, {"Config", json::array({ipam_cfg})}}},
        {"Internal", n.internal},
        {"Options", options},
        {"Containers", containers},
        {"Labels", json::object()},
    };
}

Result<json> parse_object(std::string_view body) {
    if (body.empty()) return Error::invalid("request body: expected a JSON object, got nothing");
    json j;
    try {
        j = json::parse(body);
    } catch (const json::parse_error& e) {
        // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: ...";
        // the bracketed id means nothing to a user.
        std::string_view what = e.what();
        if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
        return Error::invalid(fmt::format("invalid JSON body: {}", what));
    }
    if (!j.is_object())
        return Error::invalid(
            fmt::format("request body: expected a JSON object, got {}", j.type_name()));
    return j;
}

Result<core::CreateNetworkRequest> parse_create_network(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_fields(body, "create network"));
    Fields f(j);
    core::CreateNetworkRequest req;
    CNETD_TRY_ASSIGN(req.name, f.required_string("Name"));
    CNETD_TRY_ASSIGN(req.subnet, f.required_string("Subnet"));
    CNETD_TRY_ASSIGN(req.gateway, f.optional_string("Gateway"));
    CNETD_TRY_ASSIGN(req.ip_range, f.optional_string("IPRange"));
    CNETD_TRY_ASSIGN(req.options, f.optional_string_map("Options"));
    CNETD_TRY_ASSIGN(req.internal, f.optional_bool("Internal"));
    CNETD_TRY(f.no_others());
    if (req.name.empty()) return Error::invalid("\"Name\": must not be empty");
    if (req.subnet.empty()) return Error::invalid("\"Subnet\": must not be empty");
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
