// /proc/sys access: plain file I/O on /proc/sys/<key> (no sysctl(2), no C library wrapper).
//
// Network sysctls are resolved in the network namespace of the thread that *opens* the file, so
// callers that need another namespace's value call from a thread inside it (e.g. under a
// ScopedNetns). Used by lib/firewall (br_netfilter, route_localnet, ip_forward) and by
// lib/netlink/lib/platform (bridge and interface settings): the one copy below every layer.
//
// Errors: Kernel kind with the errno, "write sysctl <key>=<value>: <strerror>" / "read sysctl
// <key>: <strerror>" (ENOENT passes through, so callers can ignore a missing key, e.g. IPv6
// settings when IPv6 is disabled or br_netfilter not loaded). A key that is absolute or contains
// ".." is InvalidArgument and nothing is opened.
// Threading: stateless; safe from any thread.
#pragma once

#include <string>

#include "base/error.hpp"

namespace cnetd::sysctl {

// `key` is relative to /proc/sys, e.g. "net/ipv4/ip_forward"; `value` is written as given.
Result<void> write(const std::string& key, const std::string& value);
// The value without its trailing newline(s).
Result<std::string> read(const std::string& key);

}  // namespace cnetd::sysctl
