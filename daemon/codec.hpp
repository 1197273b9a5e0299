// JSON ⇄ core types for the control API (shapes documented in docs/api.md).
//
// Output mirrors `docker network inspect`. Input parsing is strict and precise, because the message
// is all a user sees: malformed JSON names the position, a wrong type names the field
// (`"Subnet": expected a string`), unknown fields are listed by name, missing required fields are
// named. All errors are ErrorKind::InvalidArgument and nothing is changed by a bad request.
// Semantic checks (is the subnet a CIDR?) are the engine's; this layer checks shape only.
// Threading: pure functions. Nothing throws: bodies are parsed by api::parse_json (a number beyond
// a double's range is `"MTU": number 1e999 is out of range ...`, not an exception) and every
// value's type is checked before it is read.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "core/engine.hpp"
#include "core/model.hpp"

namespace cnetd::daemon {

using json = nlohmann::json;

// `roles` (core::gateway_roles() of every network): each endpoint also shows "DefaultRoute", the
// families of its namespace's default route it carries.
json network_to_json(const core::Network& n,
                     const std::map<std::string, core::GatewayRole>* roles = nullptr);
// The Containers entry for an endpoint; with `network` non-empty also "Network": network.
// "Ports" is Docker's NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort":
// "8080"}]}; a 1:1 range gives one key per container port; {} when nothing is published.
json endpoint_to_json(const core::Endpoint& e, const std::string& network = {},
                      const core::GatewayRole* role = nullptr);
// GET /v1/ports: one row per binding, networks in the given order, endpoints by name:
// {"Network","Endpoint","EndpointID","Container": "<ip>","Proto","HostIp","HostPort",
//  "ContainerPort"}, ports as "8080" or "8000-8010", HostIp "0.0.0.0" for every address.
json ports_to_json(const std::vector<core::Network>& networks);

// The request body as a JSON object: "invalid JSON body: parse error at line 1, column 9: ...".
Result<json> parse_object(std::string_view body);

// {"Name","Subnet","Gateway"?,"IPRange"?,"Options"?,"Internal"?}. Options are passed through as
// given; the engine knows which keys exist and validates their values.
Result<core::CreateNetworkRequest> parse_create_network(std::string_view body);
// {"Target","Name"?,"IPv4Address"?,"Publish"?,"PortBindings"?}; `network` comes from the path.
// "Publish" is an array of Docker -p strings, passed through (the engine parses them and names
// `publish[i]` in its errors). "PortBindings" is an array of {"Proto"? ("tcp"|"udp"|"sctp",
// default tcp), "HostIp"? ("" or "0.0.0.0": every address), "HostPort"? ("" ephemeral, "8080",
// "8000-8010"), "ContainerPort" ("80" or "80-90")}, checked here, field by field
// (`"PortBindings"[0]."HostPort": "80x" is not a port (1-65535) or a port range like
// 8000-8010`), into core::PortRequest.
Result<core::ConnectRequest> parse_connect(std::string_view body, const std::string& network);
// {"Target"}: returns the target.
Result<std::string> parse_disconnect(std::string_view body);
// {"Name"}: returns the name.
Result<std::string> parse_create_netns(std::string_view body);

}  // namespace cnetd::daemon
