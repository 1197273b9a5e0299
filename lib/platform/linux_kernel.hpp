// core::Kernel on a real Linux kernel: libnl-route for links/addresses/routes, /proc/sys for
// sysctls, nsfs files for network namespaces.
//
// Threading: every call must come from the same thread (the daemon's kernel worker): calls on a
// Netns switch that thread into the namespace with setns() and back before returning.
// Ownership: holds a netlink route socket bound to the namespace the object was created in (the
// daemon's "host" namespace) for its whole life.
#pragma once

#include <memory>

#include "base/error.hpp"
#include "core/kernel.hpp"

namespace cnetd::netlink {
class RouteSocket;
}

namespace cnetd::platform {

class LinuxKernel final : public core::Kernel {
public:
    // Opens the route socket in the calling thread's current network namespace. `netns_dir`: where
    // netns files are made; decides in which mount namespace (netns::host_mount_namespace()).
    static Result<std::unique_ptr<LinuxKernel>> create(const std::string& netns_dir = "");
    ~LinuxKernel() override;

    Result<std::unique_ptr<core::Netns>> open_netns(const std::string& path) override;
    Result<void> create_netns(const std::string& path) override;
    Result<void> delete_netns(const std::string& path) override;
    Result<void> restore_netns(const std::string& path, core::Netns& ns) override;
    Result<core::LinkKind> link_kind(const std::string& name) override;
    Result<bool> ensure_bridge(const core::BridgeSpec& spec) override;
    Result<void> create_veth(const core::VethSpec& spec, core::Netns& ns) override;
    Result<void> set_up(const std::string& ifname) override;
    Result<void> delete_link(const std::string& ifname) override;
    // Retired pairs are deleted by a reaper thread with its own socket in this namespace
    // (netlink/reap.hpp); the destructor deletes what is still queued.
    Result<void> retire_veth(const std::string& host_ifname, core::Netns* ns,
                             const std::string& peer_ifname) override;
    Result<void> flush_retired() override;
    Result<void> write_sysctl(const std::string& key, const std::string& value) override;
    Result<std::string> read_sysctl(const std::string& key) override;
    Result<std::unique_ptr<core::PortHold>> hold_ports(int proto, std::optional<Ipv4> addr,
                                                       uint16_t first, uint16_t last) override;
    Result<std::unique_ptr<core::PortHold>> hold_ports6(int proto, std::optional<Ipv6> addr,
                                                        uint16_t first, uint16_t last) override;
    Result<std::optional<unsigned>> default_route_mtu() override;
    std::vector<core::NetnsId> host_netns_ids() override;
    Result<std::vector<Ipv4Cidr>> onlink_routes4() override;
    Result<unsigned> bridge_port_count(const std::string& bridge) override;
    // Inspection and repair for reconciliation (owner: persist; lib/platform/inspect.cpp).
    Result<std::optional<core::LinkStatus>> link_status(const std::string& name) override;
    Result<std::optional<core::PeerStatus>> peer_status(core::Netns& ns,
                                                        const std::string& ifname) override;
    Result<void> set_master(const std::string& ifname, const std::string& bridge) override;
    Result<std::vector<std::string>> bridge_veths(const std::string& bridge) override;
    Result<void> forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                   std::optional<Ipv6> v6) override;

    // Overlay data plane (lib/platform/overlay.cpp over netlink/vxlan.hpp), on host_socket().
    Result<bool> ensure_vxlan(const core::VxlanSpec& spec) override;
    Result<void> add_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) override;
    Result<void> remove_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) override;
    Result<std::vector<core::VxlanPeer>> vxlan_peers(const std::string& dev) override;
    Result<std::pair<std::string, unsigned>> link_of_address(Ipv4 a) override;

private:
    // The route socket of the namespace this object was created in (the daemon's).
    netlink::RouteSocket& host_socket();

    struct Impl;
    explicit LinuxKernel(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace cnetd::platform
