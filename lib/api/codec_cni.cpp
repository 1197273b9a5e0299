// The CNI routes' messages (codec.hpp): cnetd-cni ↔ /v1/cni/... (docs/api.md "CNI attachments").
#include <set>

#include "api/codec.hpp"
#include "api/fields.hpp"
#include "base/net.hpp"

namespace cnetd::api {
namespace {

using namespace lenient;

// A strict reader of one JSON object in the CNI routes' wording: get_*() record the fields they
// read, finish() rejects the rest by name. The first error wins; later calls are no-ops.
class CniFields {
public:
    CniFields(const json& j, std::string prefix) : j_(j), prefix_(std::move(prefix)) {}
    std::string str(const char* k, bool required = false) {
        const json* v = find(k, required);
        if (!v) return {};
        if (!v->is_string()) return fail(k, "expected a string"), std::string();
        return v->get<std::string>();
    }
    bool boolean(const char* k, bool dflt) {
        const json* v = find(k, false);
        if (!v) return dflt;
        if (!v->is_boolean()) return fail(k, "expected true or false"), dflt;
        return v->get<bool>();
    }
    unsigned number(const char* k, unsigned max, bool required = false) {
        const json* v = find(k, required);
        if (!v) return 0;
        if (!v->is_number_unsigned() || v->get<uint64_t>() > max)
            return fail(k, fmt::format("expected a whole number 0-{}", max)), 0u;
        return v->get<unsigned>();
    }
    const json* array(const char* k) {
        const json* v = find(k, false);
        if (v && !v->is_array()) return fail(k, "expected an array"), nullptr;
        return v;
    }
    const json* object(const char* k, bool required) {
        const json* v = find(k, required);
        if (v && !v->is_object()) return fail(k, "expected an object"), nullptr;
        return v;
    }
    Result<void> finish() {
        if (err_) return *err_;
        for (const auto& [k, v] : j_.items()) {
            if (!seen_.count(k))
                return Error::invalid(fmt::format("{}unknown field \"{}\"", prefix_, k));
        }
        return ok();
    }

private:
    const json* find(const char* k, bool required) {
        seen_.insert(k);
        if (err_) return nullptr;
        if (!j_.is_object() || !j_.contains(k)) {
            if (required) fail(k, "required");
            return nullptr;
        }
        return &j_[k];
    }
    void fail(const char* k, std::string why) {
        if (!err_) err_ = Error::invalid(fmt::format("{}\"{}\": {}", prefix_, k, why));
    }
    const json& j_;
    std::string prefix_;
    std::set<std::string> seen_;
    std::optional<Error> err_;
};

Result<CniNetwork> parse_network(const json& n) {
    CniFields nf(n, "\"Network\".");
    CniNetwork net;
    net.name = nf.str("Name", true);
    net.subnet = nf.str("Subnet", true);
    net.gateway = nf.str("Gateway");
    net.ip_range = nf.str("IPRange");
    net.bridge = nf.str("Bridge");
    net.mtu = nf.number("Mtu", 65535);
    net.ip_masq = nf.boolean("IpMasq", false);
    net.icc = nf.boolean("Icc", true);
    CNETD_TRY(nf.finish());
    return net;
}

// One "PortMappings" element, `pre` being `"PortMappings"[i].`.
Result<CniPortMapping> parse_mapping(const std::string& pre, const json& e) {
    if (!e.is_object()) return Error::invalid(pre + ": expected an object");
    CniFields pf(e, pre);
    CniPortMapping m;
    m.host_port = pf.number("HostPort", 65535, true);
    m.container_port = pf.number("ContainerPort", 65535, true);
    m.protocol = pf.str("Protocol");
    m.host_ip = pf.str("HostIP");
    CNETD_TRY(pf.finish());
    if (m.host_port == 0 || m.container_port == 0)
        return Error::invalid(pre + " ports must be 1-65535");
    if (!m.protocol.empty() && m.protocol != "tcp" && m.protocol != "udp" && m.protocol != "sctp")
        return Error::invalid(fmt::format(
            "{}\"Protocol\": protocol \"{}\" is not one of tcp, udp, sctp", pre, m.protocol));
    if (!m.host_ip.empty()) {
        auto a = Ipv4::parse(m.host_ip);
        if (!a) return std::move(a).error().wrap(pre + "\"HostIP\"");
    }
    return m;
}

}  // namespace

json to_json(const CniAddRequest& r) {
    json pm = json::array();
    for (const auto& m : r.port_mappings) {
        pm.push_back({{"HostPort", m.host_port},
                      {"ContainerPort", m.container_port},
                      {"Protocol", m.protocol},
                      {"HostIP", m.host_ip}});
    }
    const CniNetwork& n = r.network;
    json net = {{"Name", n.name},        {"Subnet", n.subnet}, {"Gateway", n.gateway},
                {"IPRange", n.ip_range}, {"Bridge", n.bridge}, {"IpMasq", n.ip_masq},
                {"Icc", n.icc}};
    if (n.mtu) net["Mtu"] = n.mtu;
    return {{"Network", net},    {"ContainerID", r.container_id}, {"IfName", r.ifname},
            {"Netns", r.netns},  {"IPv4Address", r.ipv4_address}, {"MacAddress", r.mac_address},
            {"PortMappings", pm}};
}

json to_json(const CniKeyRequest& r) {
    json j = {{"Network", r.network}, {"ContainerID", r.container_id}, {"IfName", r.ifname}};
    if (!r.netns.empty()) j["Netns"] = r.netns;
    return j;
}

json to_json(const CniGcRequest& r) {
    json valid = json::array();
    for (const auto& [cid, ifname] : r.valid)
        valid.push_back({{"ContainerID", cid}, {"IfName", ifname}});
    return {{"Network", r.network}, {"Valid", valid}};
}

json to_json(const CniAttachment& a) {
    json out = {{"Endpoint", to_json(a.endpoint)}};
    // An attachment whose network is gone (never in practice) has only its endpoint.
    if (a.network.empty()) return out;
    out["Network"] = a.network;
    out["Bridge"] = a.bridge;
    out["Subnet"] = a.subnet;
    out["Gateway"] = a.gateway;
    out["Internal"] = a.internal;
    out["Mtu"] = a.mtu;
    return out;
}

json to_json(const CniDelResult& r) {
    return {{"Removed", r.removed}};
}

json to_json(const CniGcResult& r) {
    return {{"Removed", r.removed}};
}

json to_json(const CniStatus& s) {
    return {{"Ready", s.ready}, {"Problems", s.problems}};
}

Result<CniAddRequest> parse_cni_add(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    CniAddRequest r;
    CniFields f(j, "");
    if (const json* n = f.object("Network", true)) {
        CNETD_TRY_ASSIGN(r.network, parse_network(*n));
    }
    r.container_id = f.str("ContainerID", true);
    r.ifname = f.str("IfName", true);
    r.netns = f.str("Netns", true);
    r.ipv4_address = f.str("IPv4Address");
    r.mac_address = f.str("MacAddress");
    if (const json* pm = f.array("PortMappings")) {
        for (size_t i = 0; i < pm->size(); ++i) {
            CNETD_TRY_ASSIGN(CniPortMapping m,
                             parse_mapping(fmt::format("\"PortMappings\"[{}].", i), (*pm)[i]));
            r.port_mappings.push_back(std::move(m));
        }
    }
    CNETD_TRY(f.finish());
    return r;
}

Result<CniKeyRequest> parse_cni_key(std::string_view body, bool need_netns) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    CniKeyRequest r;
    CniFields f(j, "");
    r.network = f.str("Network", true);
    r.container_id = f.str("ContainerID", true);
    r.ifname = f.str("IfName", true);
    r.netns = f.str("Netns", need_netns);
    CNETD_TRY(f.finish());
    return r;
}

Result<CniGcRequest> parse_cni_gc(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    CniGcRequest r;
    CniFields f(j, "");
    r.network = f.str("Network", true);
    if (const json* v = f.array("Valid")) {
        for (size_t i = 0; i < v->size(); ++i) {
            std::string pre = fmt::format("\"Valid\"[{}].", i);
            if (!(*v)[i].is_object()) return Error::invalid(pre + ": expected an object");
            CniFields af((*v)[i], pre);
            std::string cid = af.str("ContainerID", true), ifname = af.str("IfName", true);
            CNETD_TRY(af.finish());
            r.valid.emplace_back(std::move(cid), std::move(ifname));
        }
    }
    CNETD_TRY(f.finish());
    return r;
}

void from_json(const json& j, CniAttachment& a) {
    from_json(member(j, "Endpoint"), a.endpoint);
    a.network = str(j, "Network");
    a.bridge = str(j, "Bridge");
    a.subnet = str(j, "Subnet");
    a.gateway = str(j, "Gateway");
    a.internal = boolean(j, "Internal");
    a.mtu = static_cast<unsigned>(number(j, "Mtu"));
}

void from_json(const json& j, CniStatus& s) {
    s.ready = member(j, "Ready").is_boolean() ? boolean(j, "Ready") : true;
    s.problems = strings(j, "Problems");
}

}  // namespace cnetd::api
