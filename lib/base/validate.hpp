// Validators for identifiers that arrive from outside (CNI runtimes, API clients) and end up in
// file names, interface names or log lines. Each returns an InvalidArgument error that names the
// field and quotes the value (control characters escaped), and accepts exactly what the relevant
// specification accepts. Interface names: validate_ifname() in base/net.hpp.
// Threading: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "base/error.hpp"

namespace cnetd {

// CNI container IDs (CNI spec, libcni ValidateContainerID): ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$.
// `field` names it in the error ("CNI_CONTAINERID").
Result<void> validate_container_id(std::string_view id, std::string_view field = "container id");

// CNI network names (libcni ValidateNetworkName): the same character rule as container IDs.
Result<void> validate_cni_network_name(std::string_view name, std::string_view field = "name");

// `text` quoted for an error message: printable ASCII as is, everything else as \xNN, cut after
// 64 bytes with "..." (an attacker-chosen megabyte must not end up in the log).
std::string quote_for_error(std::string_view text);

// The value of one hex digit (0-15), -1 for anything else: %XX escapes in request targets and
// query values.
constexpr int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace cnetd
