// The names the embedded resolver answers locally, for every DNS-enabled network (docs/dns.md).
//
// A Zone is built from the networks' endpoints (by daemon/dns_server.cpp, after every change) and
// is immutable afterwards: the server's threads read it while the next one is being built, and the
// swap is one shared_ptr store. Lookups cost a hash probe per network in scope, whatever the
// number of names (the benchmark's "flat from 10 to 1,000 names").
//
// Names of one endpoint (Docker's buildEndpointDNSNames): its name, each alias, the first 12 hex
// characters of its endpoint id and, when set, of its container id. All lower-cased (lookups are
// case-insensitive). Several endpoints of a network may share a name (an alias): the name then has
// all their addresses.
// Resolution (moby sandbox.ResolveName), over the asker's networks only (`scope`):
//   - the whole name in each network of scope;
//   - else, for "a.b.c" where "c" (then "b.c") is the name of a network in scope, "a.b" (then "a")
//     in that network only.
// The result is the union over the networks in scope (Docker returns the first network's; a
// container on two networks can reach a peer on either, so both addresses are right answers).
// Reverse (PTR): an address of an endpoint on a network in scope → "<endpoint name>.<network
// name>" (Docker's answer), the first match in scope order.
// Threading: build on one thread, then read from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/net.hpp"

namespace cnetd::dns {

inline constexpr uint32_t kLocalTtl = 600;  // Docker's TTL for local answers

struct HostEntry {
    std::string name;                  // endpoint (container) name, as given
    std::vector<std::string> aliases;  // netctl network connect --alias, as given
    std::string endpoint_id;           // 64 hex
    std::string container_id;          // optional (CNI); its 12-character prefix is a name too
    std::optional<Ipv4> v4;
    std::optional<Ipv6> v6;
};

struct NetworkEntry {
    std::string id;
    std::string name;
    bool internal = false;  // --internal: names of this network are never forwarded upstream
    std::vector<HostEntry> hosts;
};

// The addresses a name has in the scope asked (empty vectors with found=true: the name exists but
// has no address of that family → empty NOERROR, never forwarded).
struct Found {
    bool found = false;
    std::vector<Ipv4> v4;
    std::vector<Ipv6> v6;
};

class Zone {
public:
    Zone() = default;
    explicit Zone(std::vector<NetworkEntry> networks);

    // Index of the network with this id (for building scopes once per sandbox), nullopt if absent.
    std::optional<uint32_t> network_index(std::string_view id) const;
    // The network's id, name and `internal`; its `hosts` are empty: they are indexed, then
    // dropped (a zone of 1,000 endpoints keeps only what lookups read).
    const NetworkEntry& network(uint32_t index) const;
    size_t networks() const;
    size_t names() const;  // distinct (network, name) keys, for status

    // `name` lower-cased, no trailing dot (dns::Query::name). Allocates only for the result.
    Found lookup(std::span<const uint32_t> scope, std::string_view name) const;
    // "<endpoint>.<network>" for an address in scope, nullopt if none.
    std::optional<std::string> reverse(std::span<const uint32_t> scope, const Ipv4& a) const;
    std::optional<std::string> reverse(std::span<const uint32_t> scope, const Ipv6& a) const;

private:
    struct Index;  // zone.cpp
    std::vector<NetworkEntry> nets_;
    std::shared_ptr<const Index> index_;
};

}  // namespace cnetd::dns
