// The cluster agent: this node's member of an overlay cluster (config `cluster:`; docs/overlay.md).
//
// What it does, on its own thread (never on the kernel worker, never on an attach path):
// - holds ONE etcd lease for the node (TTL `cluster.lease-ttl`, renewed by keepalive when less
//   than `cluster.lease-renew-margin` is left, retried every second on error) under which every
//   key the node owns lives: its node record, its blocks, its endpoint records. A restart reuses
//   the lease id it saved (state dir `cluster.json`) while etcd still has it, so nothing moves.
// - lists `/cnetd/` once, then watches it from the list's revision + 1 (a second thread runs the
//   watch on its own connection; compaction or a broken stream: list again, diff, watch again).
// - for every overlay network record: leases a block (its own lease record, or the block the
//   node's state already has for that network id, else one of the first free blocks at random:
//   etcd txn "version == 0" put under the node lease, up to 10 tries, flannel's acquire), then asks
//   the engine (through the worker) to make the network here (Engine::add_overlay_network);
//   record deleted -> Engine::remove_network (refused while local endpoints exist: kept, logged).
// - for every block record of a network it has: the peers of that network (every other node's
//   block) -> Engine::set_overlay_peers. A lease that expires deletes its keys: peers drop it.
// - publishes this node's endpoints on overlay networks (from the worker's snapshots) under
//   `/cnetd/endpoints/<net id>/<node>/<endpoint id>` asynchronously, and hands the other nodes'
//   endpoints to the DNS server (names resolve from every node).
// - etcd unreachable: the kernel and the engine keep what they have (nothing flushed); local
//   attach/detach go on inside the node's blocks; pending publications and deletions are retried
//   when etcd answers again (status() says so meanwhile).
//
// Keys (all JSON values; lib/cluster/records.hpp has the codecs):
//   /cnetd/networks/<name>                          OverlayNetworkDef (no lease)
//   /cnetd/vni/<vni>                                network id (uniqueness of the VNI; no lease)
//   /cnetd/nodes/<node>                             NodeRecord (node lease)
//   /cnetd/blocks/<net id>/<a.b.c.d>-<prefix>       BlockRecord (node lease)
//   /cnetd/endpoints/<net id>/<node>/<endpoint id>  EndpointRecord (node lease)
//
// Threading: the public methods are called from any thread (handlers on the io thread) and block
// the caller at most `timeout`; notify() from the worker's snapshot hook (cheap: sets a flag).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "config/config.hpp"
#include "core/model.hpp"
#include "core/network_spec.hpp"
#include "daemon/cluster.hpp"

namespace cnetd::daemon {

class Worker;
class DnsServer;

class ClusterAgent final : public Cluster {
public:
    ClusterAgent(config::ClusterConfig cfg, std::string state_dir, Worker& worker,
                 DnsServer* dns);
    ~ClusterAgent();  // stop()
    ClusterAgent(const ClusterAgent&) = delete;
    ClusterAgent& operator=(const ClusterAgent&) = delete;

    // Starts the threads; never waits for etcd (a node starts with etcd down).
    void start();
    // Joins the threads. The lease is NOT revoked (a restart must find its blocks; a node gone
    // for good is dropped by the TTL). Kernel state is left as it is.
    void stop();

    // `network create --driver overlay`: validates through the engine (plan_overlay_network),
    // allocates the VNI and writes the record (txn: name and VNI unused), then waits until this
    // node has made the network (or `timeout`) and returns it. Conflict for a name or subnet in
    // use in the cluster; Unavailable naming etcd's error when etcd cannot be reached (a network
    // cannot be created without the cluster).
    Result<core::Network> create_network(const core::CreateNetworkRequest& req,
                                         std::chrono::milliseconds timeout) override;
    // `network rm` of an overlay network, from any node: Conflict naming the nodes while any
    // node has endpoints on it (etcd's endpoint records and this node's own state); else deletes
    // the record, its VNI and blocks, and waits until this node removed it.
    Result<void> remove_network(const std::string& name_or_id,
                                std::chrono::milliseconds timeout) override;

    std::vector<NodeStatus> nodes() const override;  // the agent's view (no etcd round trip)
    ClusterStatus status() const override;
    // The worker published a snapshot (called from its snapshot hook: must be quick).
    void notify();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cnetd::daemon
