// The overlay driver: a node's side of an overlay network (docs/overlay.md). Locally an overlay
// network is a bridge network whose subnet is the node's block of the overlay subnet — the bridge,
// its veths and its firewall intent are BridgeDriver's, reused by composition — plus one VXLAN
// device per network ("vx-" + id[0..12), flannel's routed vxlan model: learning off, the block's
// network address /32 on it, MTU = underlay MTU - 50) on which every remote node (peer) is a
// neighbour + FDB entry + onlink route to its block (Kernel::add_vxlan_peer).
//
// Each endpoint gets, after the bridge's link, the route "overlay subnet via gateway" in its
// namespace, so remote blocks are reached even when another network holds the default route and
// on internal overlay networks. The contract is NetworkDriver's (core/driver.hpp); the cluster
// facts (VNI, peers, this node's block) are in Network::overlay, persisted by the engine, so a
// restarted daemon re-programs the peers without etcd.
#pragma once

#include <memory>
#include <string>

#include "core/bridge_driver.hpp"
#include "core/driver.hpp"

namespace cnetd::core {

// The refusal of an overlay network asked of a node alone (create_network, a CNI conflist).
inline constexpr const char* kOverlayThroughCluster =
    "driver overlay: overlay networks are created through the cluster (config `cluster:`)";

// VXLAN over IPv4 costs 50 bytes (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).
inline constexpr unsigned kVxlanOverhead = 50;

// The VXLAN device MAC of `node` on overlay network `net_id`: locally administered unicast,
// derived from a hash (FNV-1a 64) of both, so it is the same after every restart (remote FDB
// entries point at it) without being stored anywhere. cluster::vtep_mac forwards here.
Mac overlay_vtep_mac(const std::string& node, const std::string& net_id);

// The VXLAN device name of overlay network `net_id`: "vx-" + its first 12 hex characters.
std::string overlay_device_name(const std::string& net_id);

class OverlayDriver final : public NetworkDriver {
public:
    explicit OverlayDriver(Kernel& kernel) : kernel_(kernel), bridge_(kernel) {}

    std::string_view name() const override { return "overlay"; }
    // Overlay networks are planned by Engine::plan_overlay_network and made by
    // add_overlay_network from the cluster's record: every option here is refused (the engine
    // never plans an overlay network through this path).
    Result<void> parse_options(const std::map<std::string, std::string>& options,
                               const PlanInputs& in, Network& n) const override;
    // The bridge's check, plus Conflict when another network uses the VXLAN device name or VNI.
    Result<void> check_against(const Network& n,
                               const std::vector<const Network*>& existing) const override;
    // The bridge's intent with `tunnel` = the VXLAN device.
    firewall::NetworkRules rules(const Network& n) const override;

    // The bridge's probe.
    Result<void> probe(Network& n) override;
    // "bridge br-..." or "vxlan device vx-...".
    Result<std::optional<std::string>> missing(const Network& n) override;
    Result<void> check_capacity(const Network& n) override;
    // Bridge, then the VXLAN device, then the recorded peers (each undone).
    Result<void> create(const Network& n, detail::Rollback& undo) override;
    // Bridge and VXLAN device to their recorded state; the recorded peers re-programmed (and
    // peers on the device that are not recorded removed). A peer that cannot be programmed is
    // logged, not fatal (the cluster agent sets the peers again).
    Result<bool> ensure(const Network& n) override;
    // The VXLAN device (its peers go with it; the undo makes both again), then the bridge.
    Result<void> remove(const Network& n, detail::Rollback& undo) override;

    // The bridge's link, then the route "overlay subnet via gateway" in the container (undone
    // with the veth: deleting the link removes its routes).
    Result<void> link(const Network& n, Endpoint& ep, Netns& ns, detail::Rollback& undo) override;
    void announce(const Network& n, const Endpoint& ep, Netns& ns) override;
    Result<void> unlink(const Network& n, const Endpoint& ep, Netns* ns) override;
    // The bridge's repair, then the overlay route when missing.
    Result<void> repair(const Network& n, const Endpoint& ep, Netns& ns, RouteRoles roles) override;
    // The bridge's defects, or the overlay route missing.
    Result<std::optional<std::string>> endpoint_defect(const Network& n, const Endpoint& ep,
                                                       Netns& ns) override;
    void sweep(const Network& n) override;

    // The VXLAN device `n` needs: its lower link and MTU read from the kernel
    // (Kernel::link_of_address of the advertise-address). NotFound naming the address.
    Result<VxlanSpec> vxlan_spec(const Network& n);
    // One peer as the data plane sees it.
    static VxlanPeer vxlan_peer(const OverlayPeer& p) { return {p.block, p.underlay, p.mac}; }

private:
    // The overlay route of an endpoint: "overlay subnet via gateway dev ifname".
    static std::string route_text(const Network& n, const Endpoint& ep);
    // Programs the recorded peers missing or different on the device; removes unrecorded ones.
    void resync_peers(const Network& n);

    Kernel& kernel_;
    BridgeDriver bridge_;
};

}  // namespace cnetd::core
