// Network, port and firewall events from the worker's snapshots (docs/observability.md,
// "Events"): what changed between two consecutive publications, in the order the contract of
// daemon/events.hpp fixes per publication (network create, connect, port publish; port unpublish,
// disconnect, network destroy; then firewall repairs).
//
// Cost: per publication O(networks) plus O(endpoints) of the networks whose endpoint map changed;
// a network whose core::EndpointMap is shared with the previous snapshot is skipped with one
// pointer comparison (EndpointMap::shares_with), an unchanged endpoint with another.
// Threading: pure functions; SnapshotEvents is used by one thread (the worker's snapshot hook).
#pragma once

#include <memory>
#include <vector>

#include "daemon/events.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

// The events that lead from `before` to `after` (time_nano and seq left 0: publish() sets them).
// Networks are matched by id, endpoints by id within their network, ports by their binding.
// Attributes: network events {name, type (the driver)} plus {container} for connect/disconnect;
// port events {name, type, container, port ("0.0.0.0:8080->80/tcp")}, Actor.ID the network id;
// firewall repair {table, repairs} (one event per repair counted since `before`). Overlay
// networks have scope "global".
std::vector<Event> diff_snapshots(const Snapshot& before, const Snapshot& after);

// The snapshot hook's side: remembers the last snapshot and publishes the diff to each next one.
// The first snapshot seen is the baseline (the state restored at start-up is no event).
class SnapshotEvents {
public:
    explicit SnapshotEvents(EventLog& log) : log_(log) {}
    void on_publish(std::shared_ptr<const Snapshot> snap);

private:
    EventLog& log_;
    std::shared_ptr<const Snapshot> prev_;
};

// The "container" attribute of an endpoint: its container id (CNI) if it has one, else its name.
std::string container_of(const core::Endpoint& ep);

}  // namespace cnetd::daemon
