// What the API handlers need of this node's cluster membership (overlay networks,
// docs/overlay.md): an interface, so the handlers are tested with a fake (tests/api) and the
// daemon hands them its ClusterAgent (daemon/cluster_agent.hpp, the one implementation).
//
// Threading: every method may be called from any thread (the handlers call create_network and
// remove_network from a thread of their own, nodes() and status() on the io thread); the
// mutations block their caller at most `timeout`, nodes() and status() not at all.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "core/model.hpp"
#include "core/network_spec.hpp"

namespace cnetd::daemon {

// One row of `netctl node ls` (GET /v1/nodes).
struct NodeStatus {
    std::string name;
    std::string address;              // advertise-address
    std::vector<std::string> blocks;  // "mesh 10.200.1.0/24", one per overlay network
    int64_t ttl_left = -1;            // seconds left on its etcd lease; -1 unknown
    std::string last_seen;            // RFC 3339 UTC of its last renewal (its node record)
    bool self = false;
};

// `netctl info` (GET /v1/info "Cluster").
struct ClusterStatus {
    std::string node;
    std::string advertise_address;
    std::vector<std::string> etcd;  // endpoints as configured
    bool etcd_reachable = false;
    std::string etcd_error;         // the last error while unreachable
    std::string unreachable_since;  // RFC 3339, "" while reachable
    int64_t lease_id = 0;
    int64_t lease_ttl_left = -1;
    std::size_t pending = 0;   // publications/deletions waiting for etcd
    std::size_t networks = 0;  // overlay networks known
    std::size_t peers = 0;     // remote nodes programmed (sum over networks)
};

class Cluster {
public:
    virtual ~Cluster() = default;
    // `network create --driver overlay` (req.driver == "overlay"): the network as this node made
    // it. Conflict for a name or subnet in use in the cluster; Unavailable when etcd cannot be
    // reached; InvalidArgument for a request the engine refuses.
    virtual Result<core::Network> create_network(const core::CreateNetworkRequest& req,
                                                 std::chrono::milliseconds timeout) = 0;
    // `network rm` of an overlay network (scope global), from any node. Conflict naming the
    // nodes while any has endpoints on it.
    virtual Result<void> remove_network(const std::string& name_or_id,
                                        std::chrono::milliseconds timeout) = 0;
    virtual std::vector<NodeStatus> nodes() const = 0;  // no etcd round trip
    virtual ClusterStatus status() const = 0;
};

}  // namespace cnetd::daemon
