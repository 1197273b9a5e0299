#include "api/codec.hpp"

#include <cstdint>

#include "api/fields.hpp"
#include "api/json_parse.hpp"
#include "base/net.hpp"

namespace cnetd::api {
namespace {

using namespace lenient;

void put_if(json& j, const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
}

json string_map(const std::map<std::string, std::string>& m) {
    json o = json::object();
    for (const auto& [k, v] : m) o[k] = v;
    return o;
}

Result<json> parse_framed(std::string_view body, std::string_view what) {
    auto r = parse_object(body);
    if (!r) return std::move(r).error().wrap(what);
    return r;
}

// Checks one "PortBindings" element, `where` being `"PortBindings"[i]`; fields in wire order.
Result<PortBinding> parse_binding(const std::string& where, const json& j) {
    if (!j.is_object())
        return Error::invalid(fmt::format("{}: expected an object, got {}", where, j.type_name()));
    Fields f(j, where + ".");
    auto field = [&](const char* key) { return fmt::format("{}.\"{}\"", where, key); };
    PortBinding b;
    CNETD_TRY_ASSIGN(b.proto, f.optional_string("Proto"));
    if (!b.proto.empty() && b.proto != "tcp" && b.proto != "udp" && b.proto != "sctp")
        return Error::invalid(fmt::format("{}: protocol \"{}\" is not one of tcp, udp, sctp",
                                          field("Proto"), b.proto));
    CNETD_TRY_ASSIGN(b.host_ip, f.optional_string("HostIp"));
    if (!b.host_ip.empty()) {
        const bool v6 = b.host_ip.find(':') != std::string::npos;
        if (v6 ? !Ipv6::parse(b.host_ip).ok() : !Ipv4::parse(b.host_ip).ok())
            return Error::invalid(
                fmt::format("{}: \"{}\" is not an IP address", field("HostIp"), b.host_ip));
    }
    CNETD_TRY_ASSIGN(b.host_port, f.optional_string("HostPort"));
    CNETD_TRY_ASSIGN(PortRange host, parse_port_range(field("HostPort"), b.host_port, true));
    CNETD_TRY_ASSIGN(b.container_port, f.required_string("ContainerPort"));
    CNETD_TRY_ASSIGN(PortRange cont,
                     parse_port_range(field("ContainerPort"), b.container_port, false));
    if (auto others = f.no_others(); !others) return std::move(others).error().wrap(where);
    // Docker's rule: a container range maps 1:1; only a single container port may take one free
    // host port out of a bigger host range.
    auto size = [](PortRange r) { return uint32_t(r.last) - r.first + 1; };
    if (size(cont) > 1 && host.first != 0 && size(host) != size(cont))
        return Error::invalid(fmt::format(
            "{}: host ports \"{}\" and container ports \"{}\" are ranges of different sizes", where,
            b.host_port, b.container_port));
    return b;
}

}  // namespace

// --- encoding -----------------------------------------------------------------------------------

json to_json(const CreateNetworkRequest& r) {
    json body = {{"Name", r.name}};
    put_if(body, "Driver", r.driver);
    put_if(body, "Subnet", r.subnet);
    put_if(body, "Gateway", r.gateway);
    put_if(body, "IPRange", r.ip_range);
    put_if(body, "Subnet6", r.subnet6);
    put_if(body, "Gateway6", r.gateway6);
    put_if(body, "IPRange6", r.ip_range6);
    if (r.internal) body["Internal"] = true;
    if (r.enable_ipv6) body["EnableIPv6"] = true;
    if (!r.options.empty()) body["Options"] = string_map(r.options);
    if (!r.aux_addresses.empty()) body["AuxAddresses"] = string_map(r.aux_addresses);
    if (!r.labels.empty()) body["Labels"] = string_map(r.labels);
    return body;
}

json to_json(const ConnectRequest& r) {
    json body = {{"Target", r.target}};
    put_if(body, "Name", r.name);
    put_if(body, "IPv4Address", r.ipv4);
    put_if(body, "IPv6Address", r.ipv6);
    if (r.gw_priority) body["GwPriority"] = *r.gw_priority;
    put_if(body, "MacAddress", r.mac);
    if (!r.publish.empty()) body["Publish"] = r.publish;
    if (!r.port_bindings.empty()) {
        json pb = json::array();
        for (const auto& b : r.port_bindings) {
            json e = {{"ContainerPort", b.container_port}};
            put_if(e, "Proto", b.proto);
            put_if(e, "HostIp", b.host_ip);
            put_if(e, "HostPort", b.host_port);
            pb.push_back(std::move(e));
        }
        body["PortBindings"] = std::move(pb);
    }
    if (!r.aliases.empty()) body["Aliases"] = r.aliases;
    return body;
}

json to_json(const DisconnectRequest& r) {
    return {{"Target", r.target}};
}

json to_json(const Endpoint& e) {
    json j = {
        {"Name", e.name},
        {"EndpointID", e.endpoint_id},
        {"MacAddress", e.mac_address},
        {"IPv4Address", e.ipv4_address},
        {"IPv6Address", e.ipv6_address},
        {"SandboxKey", e.sandbox_key},
        {"Interface", e.interface},
        {"HostInterface", e.host_interface},
        {"GwPriority", e.gw_priority},
    };
    if (e.default_route) j["DefaultRoute"] = *e.default_route;
    json ports = json::object();
    for (const auto& [key, bindings] : e.ports) {
        json& list = ports[key];
        for (const auto& b : bindings)
            list.push_back({{"HostIp", b.host_ip}, {"HostPort", b.host_port}});
    }
    j["Ports"] = std::move(ports);
    if (!e.network.empty()) j["Network"] = e.network;
    j["Aliases"] = e.aliases;
    put_if(j, "ResolvConf", e.resolv_conf);
    if (e.dns)
        j["Dns"] = {{"Nameservers", e.dns->nameservers},
                    {"Search", e.dns->search},
                    {"Options", e.dns->options}};
    return j;
}

json to_json(const Network& n) {
    json config = json::array();
    for (const auto& c : n.ipam) {
        json e = {{"Subnet", c.subnet}, {"Gateway", c.gateway}};
        put_if(e, "IPRange", c.ip_range);
        if (!c.aux_addresses.empty()) e["AuxiliaryAddresses"] = string_map(c.aux_addresses);
        config.push_back(std::move(e));
    }
    json containers = json::object();
    for (const auto& [id, ep] : n.containers) containers[id] = to_json(ep);
    return {
        {"Name", n.name},
        {"Id", n.id},
        {"Created", n.created},
        {"Scope", "local"},
        {"Driver", n.driver},
        {"EnableIPv4", true},
        {"EnableIPv6", n.enable_ipv6},
        {"EnableDNS", n.enable_dns},
        {"IPAM", {{"Driver", "default"}, {"Options", json::object()}, {"Config", config}}},
        {"Internal", n.internal},
        {"Options", string_map(n.options)},
        {"Containers", containers},
        {"Labels", string_map(n.labels)},
    };
}

json to_json(const PortRow& p) {
    return {{"Network", p.network},
            {"Endpoint", p.endpoint},
            {"EndpointID", p.endpoint_id},
            {"Container", p.container},
            {"Proto", p.proto},
            {"HostIp", p.host_ip},
            {"HostPort", p.host_port},
            {"ContainerPort", p.container_port}};
}

json to_json(const CreateNetnsRequest& r) {
    return {{"Name", r.name}};
}

json to_json(const Netns& n) {
    return {{"Name", n.name}, {"Path", n.path}};
}

json to_json(const NodeStatus& n) {
    return {{"Name", n.name}, {"Address", n.address},    {"Blocks", n.blocks},
            {"TTL", n.ttl},   {"LastSeen", n.last_seen}, {"Self", n.self}};
}

json to_json(const ClusterStatus& c) {
    return {{"Node", c.node},
            {"AdvertiseAddress", c.advertise_address},
            {"Etcd", c.etcd},
            {"EtcdReachable", c.etcd_reachable},
            {"EtcdError", c.etcd_error},
            {"UnreachableSince", c.unreachable_since},
            {"LeaseID", c.lease_id},
            {"LeaseTTL", c.lease_ttl},
            {"Pending", c.pending},
            {"Networks", c.networks},
            {"Peers", c.peers}};
}

json to_json(const Info& i) {
    json j = {{"Version", i.version},
              {"NetnsDir", i.netns_dir},
              {"StateDir", i.state_dir},
              {"Socket", i.socket},
              {"Networks", i.networks},
              {"Endpoints", i.endpoints},
              {"StartedAt", i.started_at},
              {"LastReload", i.last_reload},
              {"PendingRestart", i.pending_restart},
              {"StateReadOnly", i.state_read_only},
              {"Firewall",
               {{"Backend", i.firewall.backend},
                {"Repairs", i.firewall.repairs},
                {"LastRepair", i.firewall.last_repair},
                {"Warnings", i.firewall.warnings}}}};
    if (i.cluster) j["Cluster"] = to_json(*i.cluster);
    return j;
}

json to_json(const FirewallShow& f) {
    return {{"Backend", f.backend},
            {"Table", f.table},
            {"InSync", f.in_sync},
            {"Repairs", f.repairs},
            {"LastRepair", f.last_repair},
            {"Warnings", f.warnings},
            {"Text", f.text}};
}

json to_json(const Ping& p) {
    return {{"ok", p.ok}};
}

json to_json(const DnsStatus& s) {
    const DnsCounters& c = s.counters;
    return {{"Upstreams", s.upstreams},
            {"UpstreamsFile", s.upstreams_file},
            {"Sandboxes", s.sandboxes},
            {"Names", s.names},
            {"InFlight", s.in_flight},
            {"Counters",
             {{"QueriesUdp", c.queries_udp},
              {"QueriesTcp", c.queries_tcp},
              {"AnsweredLocal", c.answered_local},
              {"Forwarded", c.forwarded},
              {"UpstreamFailures", c.upstream_failures},
              {"Servfail", c.servfail},
              {"Refused", c.refused},
              {"Malformed", c.malformed},
              {"TcpRejected", c.tcp_rejected}}}};
}

json to_json(const Disconnected& d) {
    return {{"Network", d.network}, {"Target", d.target}};
}

json to_json(const ErrorBody& e) {
    json j = {{"message", e.message}, {"kind", e.kind}};
    if (e.cni_code) j["CniCode"] = *e.cni_code;
    return j;
}

// --- strict request parsing ----------------------------------------------------------------------

Result<json> parse_object(std::string_view body) {
    if (body.empty()) return Error::invalid("request body: expected a JSON object, got nothing");
    // parse_json throws nothing: a number beyond a double's range is an error naming its field,
    // not nlohmann's out_of_range escaping as a 500.
    auto j = parse_json(body);
    if (!j) return std::move(j).error().wrap("invalid JSON body");
    if (!j->is_object())
        return Error::invalid(
            fmt::format("request body: expected a JSON object, got {}", j->type_name()));
    return j;
}

Result<CreateNetworkRequest> parse_create_network(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_framed(body, "create network"));
    Fields f(j);
    CreateNetworkRequest req;
    CNETD_TRY_ASSIGN(req.name, f.required_string("Name"));
    CNETD_TRY_ASSIGN(req.driver, f.optional_string("Driver"));
    CNETD_TRY_ASSIGN(req.subnet, f.optional_string("Subnet"));
    CNETD_TRY_ASSIGN(req.gateway, f.optional_string("Gateway"));
    CNETD_TRY_ASSIGN(req.ip_range, f.optional_string("IPRange"));
    CNETD_TRY_ASSIGN(req.enable_ipv6, f.optional_bool("EnableIPv6"));
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

Result<ConnectRequest> parse_connect(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_framed(body, "connect"));
    Fields f(j);
    ConnectRequest req;
    CNETD_TRY_ASSIGN(req.target, f.required_string("Target"));
    CNETD_TRY_ASSIGN(req.name, f.optional_string("Name"));
    CNETD_TRY_ASSIGN(req.ipv4, f.optional_string("IPv4Address"));
    CNETD_TRY_ASSIGN(req.ipv6, f.optional_string("IPv6Address"));
    CNETD_TRY_ASSIGN(req.mac, f.optional_string("MacAddress"));
    CNETD_TRY_ASSIGN(req.publish, f.optional_string_array("Publish"));
    CNETD_TRY_ASSIGN(int prio, f.optional_int("GwPriority"));
    if (j.contains("GwPriority") && !j["GwPriority"].is_null()) req.gw_priority = prio;
    CNETD_TRY_ASSIGN(json bindings, f.optional_array("PortBindings"));
    for (size_t i = 0; i < bindings.size(); ++i) {
        CNETD_TRY_ASSIGN(PortBinding b,
                         parse_binding(fmt::format("\"PortBindings\"[{}]", i), bindings[i]));
        req.port_bindings.push_back(std::move(b));
    }
    CNETD_TRY_ASSIGN(req.aliases, f.optional_string_array("Aliases"));
    CNETD_TRY(f.no_others());
    if (req.target.empty()) return Error::invalid("\"Target\": must not be empty");
    return req;
}

Result<DisconnectRequest> parse_disconnect(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_framed(body, "disconnect"));
    Fields f(j);
    DisconnectRequest req;
    CNETD_TRY_ASSIGN(req.target, f.required_string("Target"));
    CNETD_TRY(f.no_others());
    if (req.target.empty()) return Error::invalid("\"Target\": must not be empty");
    return req;
}

Result<CreateNetnsRequest> parse_create_netns(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_framed(body, "create netns"));
    Fields f(j);
    CreateNetnsRequest req;
    CNETD_TRY_ASSIGN(req.name, f.required_string("Name"));
    CNETD_TRY(f.no_others());
    if (req.name.empty()) return Error::invalid("\"Name\": must not be empty");
    return req;
}

Result<PortRange> parse_port_range(const std::string& where, const std::string& text,
                                   bool allow_empty) {
    if (text.empty()) {
        if (allow_empty) return PortRange{};
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
    PortRange r;
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

// --- lenient answer reading ----------------------------------------------------------------------

void from_json(const json& j, Endpoint& e) {
    e.name = str(j, "Name");
    e.endpoint_id = str(j, "EndpointID");
    e.mac_address = str(j, "MacAddress");
    e.ipv4_address = str(j, "IPv4Address");
    e.ipv6_address = str(j, "IPv6Address");
    e.sandbox_key = str(j, "SandboxKey");
    e.interface = str(j, "Interface");
    e.host_interface = str(j, "HostInterface");
    const json& prio = member(j, "GwPriority");
    e.gw_priority = prio.is_number_integer() ? prio.get<int>() : 0;
    if (member(j, "DefaultRoute").is_array()) e.default_route = strings(j, "DefaultRoute");
    const json& ports = member(j, "Ports");
    if (ports.is_object()) {
        for (const auto& [key, list] : ports.items()) {
            auto& out = e.ports[key];
            if (!list.is_array()) continue;
            for (const auto& b : list) out.push_back({str(b, "HostIp"), str(b, "HostPort")});
        }
    }
    e.network = str(j, "Network");
    e.aliases = strings(j, "Aliases");
    e.resolv_conf = str(j, "ResolvConf");
    const json& dns = member(j, "Dns");
    if (dns.is_object())
        e.dns = EndpointDns{strings(dns, "Nameservers"), strings(dns, "Search"),
                            strings(dns, "Options")};
}

void from_json(const json& j, Network& n) {
    n.name = str(j, "Name");
    n.id = str(j, "Id");
    n.created = str(j, "Created");
    n.driver = str(j, "Driver");
    n.enable_ipv6 = boolean(j, "EnableIPv6");
    n.internal = boolean(j, "Internal");
    n.enable_dns = boolean(j, "EnableDNS");
    const json& config = member(member(j, "IPAM"), "Config");
    if (config.is_array()) {
        for (const auto& c : config)
            n.ipam.push_back({str(c, "Subnet"), str(c, "Gateway"), str(c, "IPRange"),
                              strmap(c, "AuxiliaryAddresses")});
    }
    n.options = strmap(j, "Options");
    n.labels = strmap(j, "Labels");
    const json& containers = member(j, "Containers");
    if (containers.is_object())
        for (const auto& [id, ep] : containers.items()) n.containers[id] = read<Endpoint>(ep);
}

void from_json(const json& j, PortRow& p) {
    p = {str(j, "Network"), str(j, "Endpoint"), str(j, "EndpointID"), str(j, "Container"),
         str(j, "Proto"),   str(j, "HostIp"),   str(j, "HostPort"),   str(j, "ContainerPort")};
}

void from_json(const json& j, Netns& n) {
    n = {str(j, "Name"), str(j, "Path")};
}

void from_json(const json& j, Info& i) {
    i.version = str(j, "Version");
    i.netns_dir = str(j, "NetnsDir");
    i.state_dir = str(j, "StateDir");
    i.socket = str(j, "Socket");
    i.networks = number(j, "Networks");
    i.endpoints = number(j, "Endpoints");
    i.started_at = str(j, "StartedAt");
    i.last_reload = str(j, "LastReload");
    i.pending_restart = strings(j, "PendingRestart");
    i.state_read_only = str(j, "StateReadOnly");
    const json& fw = member(j, "Firewall");
    i.firewall = {str(fw, "Backend"), number(fw, "Repairs"), str(fw, "LastRepair"),
                  strings(fw, "Warnings")};
    if (const json& c = member(j, "Cluster"); c.is_object()) i.cluster = read<ClusterStatus>(c);
}

namespace {
// A signed JSON integer at `key` (TTLs are -1 when unknown), else `dflt`.
int64_t signed_number(const json& j, const char* key, int64_t dflt) {
    const json& v = member(j, key);
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        return u > uint64_t(INT64_MAX) ? dflt : static_cast<int64_t>(u);
    }
    return v.is_number_integer() ? v.get<int64_t>() : dflt;
}
}  // namespace

void from_json(const json& j, NodeStatus& n) {
    n = {str(j, "Name"),     str(j, "Address"), strings(j, "Blocks"), signed_number(j, "TTL", -1),
         str(j, "LastSeen"), boolean(j, "Self")};
}

void from_json(const json& j, ClusterStatus& c) {
    c.node = str(j, "Node");
    c.advertise_address = str(j, "AdvertiseAddress");
    c.etcd = strings(j, "Etcd");
    c.etcd_reachable = boolean(j, "EtcdReachable");
    c.etcd_error = str(j, "EtcdError");
    c.unreachable_since = str(j, "UnreachableSince");
    c.lease_id = signed_number(j, "LeaseID", 0);
    c.lease_ttl = signed_number(j, "LeaseTTL", -1);
    c.pending = number(j, "Pending");
    c.networks = number(j, "Networks");
    c.peers = number(j, "Peers");
}

void from_json(const json& j, FirewallShow& f) {
    f = {str(j, "Backend"),    str(j, "Table"),        boolean(j, "InSync"), number(j, "Repairs"),
         str(j, "LastRepair"), strings(j, "Warnings"), str(j, "Text")};
}

void from_json(const json& j, DnsStatus& s) {
    s.upstreams = strings(j, "Upstreams");
    s.upstreams_file = str(j, "UpstreamsFile");
    s.sandboxes = number(j, "Sandboxes");
    s.names = number(j, "Names");
    s.in_flight = number(j, "InFlight");
    const json& c = member(j, "Counters");
    s.counters = {
        number(c, "QueriesUdp"), number(c, "QueriesTcp"),       number(c, "AnsweredLocal"),
        number(c, "Forwarded"),  number(c, "UpstreamFailures"), number(c, "Servfail"),
        number(c, "Refused"),    number(c, "Malformed"),        number(c, "TcpRejected")};
}

void from_json(const json& j, ErrorBody& e) {
    e.message = str(j, "message");
    e.kind = str(j, "kind");
    const json& code = member(j, "CniCode");
    if (code.is_number_integer()) e.cni_code = code.get<int>();
}

}  // namespace cnetd::api
