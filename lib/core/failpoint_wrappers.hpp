// Failpoint decorators (owner: persist): a core::Kernel and a firewall::Backend that forward every
// call to the real one, with a failpoint before and after each mutating call
// ("kernel.create_veth.before", "netns.add_address.after", "fw.add_ports.before", ...), so the
// crash tests (tests/fault) can SIGKILL the daemon between any two kernel steps. Read-only calls
// pass straight through. When CNETD_FAILPOINTS is unset a failpoint costs one flag load, so the
// daemon always runs with these in place.
// Ownership: borrows the wrapped objects, which must outlive the wrappers. Threading: as the
// wrapped objects (the kernel worker).
#pragma once

#include "core/kernel.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

class FailpointKernel final : public Kernel {
public:
    explicit FailpointKernel(Kernel& k) : k_(k) {}

    Result<std::unique_ptr<Netns>> open_netns(const std::string& path) override;
    Result<void> create_netns(const std::string& path) override;
    Result<void> delete_netns(const std::string& path) override;
    Result<LinkKind> link_kind(const std::string& name) override { return k_.link_kind(name); }
    Result<bool> ensure_bridge(const BridgeSpec& spec) override;
    Result<void> create_veth(const VethSpec& spec, Netns& ns) override;
    Result<void> set_up(const std::string& ifname) override;
    Result<void> delete_link(const std::string& ifname) override;
    // Failpoints "kernel.delete_link.*": a retirement is the detach's deletion.
    Result<void> retire_veth(const std::string& host_ifname, Netns* ns,
                             const std::string& peer_ifname) override;
    Result<void> flush_retired() override { return k_.flush_retired(); }
    Result<void> write_sysctl(const std::string& key, const std::string& value) override;
    Result<std::string> read_sysctl(const std::string& key) override { return k_.read_sysctl(key); }
    Result<std::unique_ptr<PortHold>> hold_ports(int proto, std::optional<Ipv4> addr,
                                                 uint16_t first, uint16_t last) override;
    Result<std::unique_ptr<PortHold>> hold_ports6(int proto, std::optional<Ipv6> addr,
                                                  uint16_t first, uint16_t last) override;
    Result<std::optional<unsigned>> default_route_mtu() override { return k_.default_route_mtu(); }
    Result<std::vector<Ipv4Cidr>> onlink_routes4() override { return k_.onlink_routes4(); }
    std::vector<NetnsId> host_netns_ids() override { return k_.host_netns_ids(); }
    Result<unsigned> bridge_port_count(const std::string& b) override {
        return k_.bridge_port_count(b);
    }
    Result<std::optional<LinkStatus>> link_status(const std::string& name) override {
        return k_.link_status(name);
    }
    Result<std::optional<PeerStatus>> peer_status(Netns& ns, const std::string& ifname) override;
    Result<void> set_master(const std::string& ifname, const std::string& bridge) override;
    Result<std::vector<std::string>> bridge_veths(const std::string& b) override {
        return k_.bridge_veths(b);
    }
    Result<void> forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                   std::optional<Ipv6> v6) override;

private:
    Kernel& k_;
};

class FailpointFirewall final : public firewall::Backend {
public:
    explicit FailpointFirewall(firewall::Backend& fw) : fw_(fw) {}
    Result<void> ensure_base() override;
    Result<void> add_network(const firewall::NetworkRules& n) override;
    Result<void> remove_network(const firewall::NetworkRules& n) override;
    Result<void> sync(const std::vector<firewall::NetworkRules>& nets,
                      const std::vector<firewall::PortForward>& ports) override;
    Result<void> add_ports(const std::vector<firewall::PortForward>& ports) override;
    Result<void> remove_ports(const std::vector<firewall::PortForward>& ports) override;
    Result<std::string> show() override { return fw_.show(); }
    int monitor_fd() override { return fw_.monitor_fd(); }
    Result<bool> handle_events() override { return fw_.handle_events(); }
    uint64_t repairs() const override { return fw_.repairs(); }
    std::string name() const override { return fw_.name(); }

private:
    firewall::Backend& fw_;
};

}  // namespace cnetd::core
