// The wire JSON of every API message (messages.hpp), both ways. The one place the keys are spelled.
//
// Encoding (to_json) gives exactly the JSON the daemon and the clients exchange (Docker-shaped
// keys, docs/api.md); optional request fields left empty are not sent.
//
// Requests are parsed strictly, as the daemon must (parse_*): the body is parsed by parse_json (a
// number beyond a double's range names its field, nothing throws), a wrong type names the field
// (`"Subnet": expected a string, got number`), unknown fields are listed by name, missing required
// fields are named, and every error is ErrorKind::InvalidArgument framed by the call ("create
// network: ...", "connect: ..."). The CNI requests use the CNI routes' wording
// (`"Network"."Mtu": expected a whole number 0-65535`, `unknown field "x"`), not framed: the
// daemon frames them ("CNI ADD: ...").
// Semantic checks (is the subnet a CIDR?) are the engine's; the parsers check shape, plus the
// port fields whose syntax is the API's own (PortBindings, PortMappings).
//
// Answers are read leniently, as clients do (from_json): a missing or mistyped field keeps its
// default; nothing throws.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/messages.hpp"
#include "base/error.hpp"

namespace cnetd::api {

using json = nlohmann::json;

// --- encoding -----------------------------------------------------------------------------------
json to_json(const CreateNetworkRequest& r);
json to_json(const ConnectRequest& r);
json to_json(const DisconnectRequest& r);
json to_json(const Endpoint& e);
json to_json(const Network& n);
json to_json(const PortRow& p);
json to_json(const CreateNetnsRequest& r);
json to_json(const Netns& n);
json to_json(const Info& i);  // "Cluster" only when i.cluster is set
json to_json(const NodeStatus& n);
json to_json(const ClusterStatus& c);
json to_json(const FirewallShow& f);
json to_json(const Ping& p);
json to_json(const Disconnected& d);
json to_json(const DnsStatus& s);
json to_json(const CniAddRequest& r);
json to_json(const CniKeyRequest& r);  // "Netns" only when not empty
json to_json(const CniGcRequest& r);
json to_json(const CniAttachment& a);
json to_json(const CniDelResult& r);
json to_json(const CniGcResult& r);
json to_json(const CniStatus& s);
json to_json(const ErrorBody& e);

// An array of each element's to_json.
template <class T>
json to_json(const std::vector<T>& items) {
    json out = json::array();
    for (const auto& i : items) out.push_back(to_json(i));
    return out;
}

// --- strict request parsing (the daemon) ---------------------------------------------------------

// The body as a JSON object: "invalid JSON body: parse error at line 1, column 9: ...",
// "request body: expected a JSON object, got array".
Result<json> parse_object(std::string_view body);

// {"Name","Driver"?,"Subnet"?,"Gateway"?,"IPRange"?,"EnableIPv6"?,"Subnet6"?,"Gateway6"?,"IPRange6"?,
//  "AuxAddresses"?,"Labels"?,"Options"?,"Internal"?}; "Name" must not be empty.
Result<CreateNetworkRequest> parse_create_network(std::string_view body);
// {"Target","Name"?,"IPv4Address"?,"IPv6Address"?,"MacAddress"?,"Publish"?,"GwPriority"?,
//  "PortBindings"?,"Aliases"?}. Each binding is checked field by field (`"PortBindings"[0].
// "HostPort": "80x" is not a port (1-65535) or a port range like 8000-8010`): Proto one of
// tcp/udp/sctp, HostIp an address, ports "N" or "N-M", a container range only with a host range of
// its size (or none). "Aliases" is an array of strings (`"Aliases"[1]: expected a string, got
// number`); whether each is a DNS name is the engine's to judge.
Result<ConnectRequest> parse_connect(std::string_view body);
Result<DisconnectRequest> parse_disconnect(std::string_view body);     // "Target" not empty
Result<CreateNetnsRequest> parse_create_netns(std::string_view body);  // "Name" not empty

// A port or range as PortBindings write it: "80" → {80,80}, "80-90"; "" → {0,0} (ephemeral)
// when `allow_empty`. `where` starts the error message (`"PortBindings"[0]."HostPort"`).
struct PortRange {
    uint16_t first = 0, last = 0;
};
Result<PortRange> parse_port_range(const std::string& where, const std::string& text,
                                   bool allow_empty);

// The CNI routes. cni_add: Network.Name, Network.Subnet, ContainerID, IfName, Netns required;
// PortMappings ports 1-65535, Protocol tcp/udp/sctp, HostIP an IPv4 address.
Result<CniAddRequest> parse_cni_add(std::string_view body);
// del/check: Network, ContainerID, IfName required; Netns too when `need_netns` (check).
Result<CniKeyRequest> parse_cni_key(std::string_view body, bool need_netns);
Result<CniGcRequest> parse_cni_gc(std::string_view body);

// --- lenient answer reading (clients) ------------------------------------------------------------
void from_json(const json& j, Endpoint& e);
void from_json(const json& j, Network& n);
void from_json(const json& j, PortRow& p);
void from_json(const json& j, Netns& n);
void from_json(const json& j, Info& i);  // cluster set iff "Cluster" is an object
void from_json(const json& j, NodeStatus& n);
void from_json(const json& j, ClusterStatus& c);
void from_json(const json& j, FirewallShow& f);
void from_json(const json& j, CniAttachment& a);
void from_json(const json& j, CniStatus& s);
void from_json(const json& j, DnsStatus& s);
void from_json(const json& j, ErrorBody& e);

// from_json into a fresh T; an array of them for std::vector<T> (non-objects skipped).
template <class T>
T read(const json& j) {
    T t;
    from_json(j, t);
    return t;
}
template <class T>
std::vector<T> read_list(const json& j) {
    std::vector<T> out;
    if (!j.is_array()) return out;
    for (const auto& e : j)
        if (e.is_object()) out.push_back(read<T>(e));
    return out;
}

}  // namespace cnetd::api
