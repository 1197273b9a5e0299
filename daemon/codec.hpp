// The daemon's one mapping between core types and the API's messages (lib/api/messages.hpp):
// core → api for every answer, api → core for every request. The wire JSON itself is lib/api's
// (api/codec.hpp); the *_to_json and parse_* functions here are that codec composed with the
// mapping, for the handlers and tests.
//
// Output mirrors `docker network inspect`. Input parsing is strict (api/codec.hpp): malformed JSON
// names the position, a wrong type names the field, unknown fields are listed by name, missing
// required fields are named. All errors are ErrorKind::InvalidArgument and nothing is changed by a
// bad request. Semantic checks (is the subnet a CIDR?) are the engine's.
// Threading: pure functions. Nothing throws.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/messages.hpp"
#include "base/error.hpp"
#include "core/engine.hpp"
#include "core/gateway.hpp"
#include "core/model.hpp"
#include "daemon/dns_server.hpp"

namespace cnetd::daemon {

using json = nlohmann::json;

// --- core → api -------------------------------------------------------------------------------
// The Containers entry for an endpoint; with `network` non-empty also "Network". "Ports" is
// Docker's NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}; a 1:1
// range gives one key per container port. `role`: "DefaultRoute", the families of its namespace's
// default route it carries. "Aliases" always (the endpoint's, as given to connect).
api::Endpoint to_api(const core::Endpoint& e, const std::string& network = {},
                     const core::GatewayRole* role = nullptr);
// The embedded resolver's facts for the endpoint ("ResolvConf", "Dns"), set only for what `dns`
// knows (an empty path and no servers: nothing).
void add_dns(api::Endpoint& out, const EndpointDns& dns);
// `roles` (core::gateway_roles() of every network): each endpoint also shows "DefaultRoute".
// `dns` (the running embedded resolver, or null): each endpoint also shows its resolv.conf facts
// (DnsServer::endpoint_dns). "EnableDNS" is the network's dns flag either way.
api::Network to_api(const core::Network& n,
                    const std::map<std::string, core::GatewayRole>* roles = nullptr,
                    const EndpointDnsSource* dns = nullptr);
// GET /v1/dns: the resolver's status as the API shows it.
api::DnsStatus to_api(const DnsStatus& s);
// GET /v1/ports: one row per binding, networks in the given order, endpoints by name; ports as
// "8080" or "8000-8010", HostIp "0.0.0.0" for every address.
std::vector<api::PortRow> port_rows(const std::vector<core::Network>& networks);
// The CNI ADD/CHECK answer: the endpoint with the network that holds it (and, with `dns`, the
// endpoint's resolv.conf facts, which cnetd-cni returns as the CNI result's "dns").
api::CniAttachment attachment_of(const core::Endpoint& ep, const std::vector<core::Network>& nets,
                                 const EndpointDnsSource* dns = nullptr);

// --- api → core -------------------------------------------------------------------------------
core::CreateNetworkRequest to_core(const api::CreateNetworkRequest& r);
// `network` comes from the path.
core::ConnectRequest to_core(const api::ConnectRequest& r, const std::string& network);
// A CNI ADD: the network to create when missing, and the attachment (its network is net.name).
struct CniAdd {
    core::CreateNetworkRequest net;
    core::ConnectRequest att;
};
CniAdd to_core(const api::CniAddRequest& r);

// --- the same composed with lib/api's JSON codec ----------------------------------------------
json network_to_json(const core::Network& n,
                     const std::map<std::string, core::GatewayRole>* roles = nullptr,
                     const EndpointDnsSource* dns = nullptr);
json endpoint_to_json(const core::Endpoint& e, const std::string& network = {},
                      const core::GatewayRole* role = nullptr);
// The connect answer: the endpoint of `net`, named by the network's name, with its resolv.conf
// facts when `dns` is given.
json connected_to_json(const core::Endpoint& e, const core::Network& net,
                       const EndpointDnsSource* dns);
json ports_to_json(const std::vector<core::Network>& networks);

// The request body as a JSON object: "invalid JSON body: parse error at line 1, column 9: ...".
Result<json> parse_object(std::string_view body);
// api::parse_create_network → core ("create network: ..." errors).
Result<core::CreateNetworkRequest> parse_create_network(std::string_view body);
// api::parse_connect → core; "Publish" strings are passed through (the engine parses them and
// names `publish[i]` in its errors), "PortBindings" become core::PortRequest, "Aliases" are
// passed through (the engine checks them as DNS names).
Result<core::ConnectRequest> parse_connect(std::string_view body, const std::string& network);
// {"Target"}: returns the target.
Result<std::string> parse_disconnect(std::string_view body);
// {"Name"}: returns the name.
Result<std::string> parse_create_netns(std::string_view body);

}  // namespace cnetd::daemon
