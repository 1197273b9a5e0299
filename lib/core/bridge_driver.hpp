// The bridge driver: Docker's bridge networks (docs/docker-bridge.md). One Linux bridge per
// network (created and owned, or adopted when it existed before and then never deleted), one veth
// pair per endpoint ("veth" + 7 hex on the host, enslaved to the bridge; iface_prefix + N in the
// container's namespace), and the bridge's firewall intent (icc, masquerade, gateway modes).
// The contract is NetworkDriver's (core/driver.hpp); this header adds only what is bridge-specific.
#pragma once

#include "core/driver.hpp"

namespace cnetd::core {

inline constexpr const char* kOptMtu = "com.docker.network.driver.mtu";
inline constexpr const char* kOptIfacePrefix = "com.docker.network.container_iface_prefix";
inline constexpr const char* kOptGatewayMode4 = "com.docker.network.bridge.gateway_mode_ipv4";
inline constexpr const char* kOptGatewayMode6 = "com.docker.network.bridge.gateway_mode_ipv6";
inline constexpr const char* kOptInhibitIpv4 = "com.docker.network.bridge.inhibit_ipv4";

class BridgeDriver final : public NetworkDriver {
public:
    explicit BridgeDriver(Kernel& kernel) : kernel_(kernel) {}

    std::string_view name() const override { return "bridge"; }
    // Options: kOptBridgeName (default "br-" + the id's first 12 hex), kOptEnableIcc,
    // kOptEnableMasquerade, kOptInhibitIpv4 (Go booleans), kOptHostIpv4, kOptHostBinding (IPv4;
    // 0.0.0.0 = every address; absent: in.host_binding), kOptMtu (68-65535; absent: n.mtu 0,
    // the daemon's default), kOptIfacePrefix (1-11 characters), kOptGatewayMode4/6 (nat,
    // nat-unprotected, routed, isolated).
    Result<void> parse_options(const std::map<std::string, std::string>& options,
                               const PlanInputs& in, Network& n) const override;
    // Conflict when another network uses the bridge name.
    Result<void> check_against(const Network& n,
                               const std::vector<const Network*>& existing) const override;
    // The bridge network's firewall intent (kernel words only).
    firewall::NetworkRules rules(const Network& n) const override;

    // InvalidArgument when the bridge name is an interface that is not a bridge; an existing
    // bridge is adopted (n.bridge_adopted).
    Result<void> probe(Network& n) override;
    Result<std::optional<std::string>> missing(const Network& n) override;
    // The bridge's port limit (kMaxPorts), asked of the kernel only near it.
    Result<void> check_capacity(const Network& n) override;
    Result<void> create(const Network& n, detail::Rollback& undo) override;
    Result<bool> ensure(const Network& n) override;
    // Deletes an owned bridge (the undo makes it again with its MAC); an adopted one stays.
    Result<void> remove(const Network& n, detail::Rollback& undo) override;

    // A veth pair (a fresh random host name on a clash), IPv6 off on IPv4-only endpoints,
    // addresses, both ends up. Conflict when the bridge has no free port (Linux: 1023).
    Result<void> link(const Network& n, Endpoint& ep, Netns& ns, detail::Rollback& undo) override;
    // Gratuitous ARP/NA from the container, and the bridge's neighbour entries forgotten.
    void announce(const Network& n, const Endpoint& ep, Netns& ns) override;
    // Kernel::retire_veth: out of service now, deleted in a batch soon after.
    Result<void> unlink(const Network& n, const Endpoint& ep, Netns* ns) override;
    Result<void> repair(const Network& n, const Endpoint& ep, Netns& ns, RouteRoles roles) override;
    // The host veth on the bridge, the container side with the MAC and addresses.
    Result<std::optional<std::string>> endpoint_defect(const Network& n, const Endpoint& ep,
                                                       Netns& ns) override;
    // Deletes veths on the bridge named like ours that no endpoint owns.
    void sweep(const Network& n) override;

    // Linux numbers bridge ports 1..1023 (BR_MAX_PORTS 1024, port 0 reserved).
    static constexpr unsigned kMaxPorts = 1023;
    static Error full_error(const Network& n, unsigned ports);

private:
    // repair's two cases: the pair made again from the record, or drift fixed in place.
    Result<void> recreate(const Network& n, const Endpoint& ep, Netns& ns, RouteRoles roles);
    Result<void> fix_drift(const Network& n, const Endpoint& ep, Netns& ns, RouteRoles roles,
                           const LinkStatus& host, const PeerStatus& peer);
    Result<void> fix_addresses(const Endpoint& ep, Netns& ns, const PeerStatus& peer);
    // Addresses, IPv6 switch and link state of both ends of a pair just made.
    Result<void> configure_pair(const Endpoint& ep, Netns& ns);

    Kernel& kernel_;
};

}  // namespace cnetd::core
