// Pure planning of a connect: the request's text (ConnectRequest) checked against the network and
// turned into an AttachPlan, with no Kernel, no namespace and no allocation. Every check that
// needs nothing but the request and the network lives here (addresses, MAC, interface name,
// container id, endpoint name, -p specs and structured ports, their families against the
// network's), so a request that can be refused this way is refused before the kernel is asked
// anything. What needs state comes after, in Engine::attach: the namespace's identity
// (check_namespace() here, given it), address allocation, and the host ports
// (Publisher::reserve, core/publish.hpp).
//
// Errors: InvalidArgument naming the field and the value ("ip: \"10.0.0.x\" is not an IPv4
// address", "publish[1]: port spec \"80:80/xtp\": ..."); Conflict for check_namespace().
// Threading: pure functions, callable from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "core/engine.hpp"
#include "core/model.hpp"
#include "core/publish.hpp"

namespace cnetd::core {

// Everything about a connect that is decided before the kernel is asked anything.
struct AttachPlan {
    std::string path;             // the namespace file (resolve_netns_target)
    std::string name;             // the endpoint's name: the request's, else the netns file name
    std::optional<Ipv4> ipv4;     // static addresses (else allocated)
    std::optional<Ipv6> ipv6;     // only on dual-stack networks
    std::optional<Mac> mac;       // static MAC, unicast (else random)
    std::vector<PortPlan> ports;  // req.ports, then the mappings of req.publish, in order
    std::vector<std::string> aliases;  // req.aliases, checked, duplicates (any case) removed
};

// Most mappings one request may ask for: "1-65535" expands to 65,535 of them (docs/security.md).
inline constexpr size_t kMaxMappings = 65535;

// The namespace file a connect or disconnect target names: an absolute path as it is, a bare
// name inside `netns_dir`. Errors: empty, a relative path, a name Docker would refuse.
Result<std::string> resolve_netns_target(const std::string& netns_dir, const std::string& target);

// A name the embedded resolver may answer: labels of [A-Za-z0-9_-], 1..63 bytes each, 255 in
// all. InvalidArgument naming `field` and the value otherwise.
Result<void> validate_dns_name(std::string_view field, const std::string& name);
// --alias values checked (errors name "Aliases[i]" and the value), duplicates removed
// case-insensitively (the first spelling is kept), order kept.
Result<std::vector<std::string>> plan_aliases(const std::vector<std::string>& aliases);

// `req` checked and decided for network `net` (req.network is not looked at; the caller found
// `net` by it). Ports: req.ports, then req.publish parsed, each checked (a valid range; an IPv6
// host address needs a dual-stack network; sctp cannot go on [::1]; none on an internal
// network) and given the network's default host address (Network::host_binding) when it names
// none.
Result<AttachPlan> plan_attach(const Network& net, const ConnectRequest& req,
                               const std::string& netns_dir);

// The namespace `id` (opened from p.path) may join `net`: it is none of the host's own
// namespaces (`host_ids`; InvalidArgument), is not connected to `net` yet and p.name is free
// there (Conflict naming the endpoint).
Result<void> check_namespace(const Network& net, const NetnsId& id,
                             const std::vector<NetnsId>& host_ids, const AttachPlan& p);

}  // namespace cnetd::core
