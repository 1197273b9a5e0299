// /proc/sys access. Network sysctls are resolved in the namespace of the thread that *opens* the
// file, so callers that need another namespace's value hold a ScopedNetns around the call.
// Errors: Kernel kind, "write sysctl <key>=<value>: <strerror>" (ENOENT is passed through so
// callers can ignore a missing key, e.g. IPv6 settings when IPv6 is disabled).
#pragma once

#include <string>

#include "base/error.hpp"

namespace cnetd::netlink {

// `key` is relative to /proc/sys, e.g. "net/ipv4/ip_forward".
Result<void> write_sysctl(const std::string& key, const std::string& value);
// The value without its trailing newline.
Result<std::string> read_sysctl(const std::string& key);

}  // namespace cnetd::netlink
