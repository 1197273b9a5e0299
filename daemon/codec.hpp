// JSON ⇄ core types for the control API (shapes documented in docs/api.md).
//
// Output mirrors `docker network inspect`. Input parsing is strict and precise, because the message
// is all a user sees: malformed JSON names the position, a wrong type names the field
// (`"Subnet": expected a string`), unknown fields are listed by name, missing required fields are
// named. All errors are ErrorKind::InvalidArgument and nothing is changed by a bad request.
// Semantic checks (is the subnet a CIDR?) are the engine's; this layer checks shape only.
// Threading: pure functions. No exception escapes (nlohmann's are caught here).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "core/engine.hpp"
#include "core/model.hpp"

namespace cnetd::daemon {

using json = nlohmann::json;

json network_to_json(const core::Network& n);
// The Containers entry for an endpoint; with `network` non-empty also "Network": network.
json endpoint_to_json(const core::Endpoint& e, const std::string& network = {});

// The request body as a JSON object: "invalid JSON body: parse error at line 1, column 9: ...".
Result<json> parse_object(std::string_view body);

// {"Name","Subnet","Gateway"?,"IPRange"?,"Options"?,"Internal"?}. Options are passed through as
// given; the engine knows which keys exist and validates their values.
Result<core::CreateNetworkRequest> parse_create_network(std::string_view body);
// {"Target","Name"?,"IPv4Address"?}; `network` comes from the path.
Result<core::ConnectRequest> parse_connect(std::string_view body, const std::string& network);
// {"Target"}: returns the target.
Result<std::string> parse_disconnect(std::string_view body);
// {"Name"}: returns the name.
Result<std::string> parse_create_netns(std::string_view body);

}  // namespace cnetd::daemon
