// Failpoint decorators (owner: persist): a core::Kernel, its Netns and a firewall::Backend that
// forward every call to the real ones, with two failpoints around each mutating call
// ("kernel.create_veth.before"/".after", "netns.add_address.before", "fw.add_ports.after", ...):
//   - the crash tests (tests/fault/fault_test.cpp) SIGKILL the daemon at any of them ("*=kill@N");
//   - the rollback tests (tests/fault/rollback_test.cpp) make the ".before" point fail the call
//     ("*=error@N": the real call is then not made and the injected error is returned), so every
//     kernel step of a request fails in turn and the request must leave everything as it was.
//     The firewall's best-effort removals (remove_network, remove_ports) forget their intent
//     whatever happens: those are made anyway and return the injected error.
// Read-only calls pass straight through. When no failpoint is configured a failpoint costs one
// flag load (base/failpoint.hpp), so the daemon always runs with these in place.
//
// Adding a mutating method to Kernel, Netns or firewall::Backend: one line here, e.g.
//   Result<void> foo(const std::string& i) override { CNETD_FP_STEP("netns", "foo", in_.foo(i)); }
// (a read-only one: `{ return in_.foo(i); }`). A FailpointNetns is passed on to the real kernel as
// it is: a Kernel finds its own state of a Netns through the interface (LinuxKernel: by id()).
// Ownership: borrows the wrapped kernel and firewall, which must outlive the wrappers.
// Threading: as the wrapped objects (the kernel worker).
#pragma once

#include <memory>

#include "base/failpoint.hpp"
#include "base/opstats.hpp"
#include "core/kernel.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

namespace fp_detail {
// One mutating call between two failpoints: an error rule on `before` fails it without making
// the call; `after` may kill or stall once it is made. A failed call (injected or not) counts
// one error of `op` ("kernel.create_veth") in base/opstats.hpp: the metrics' kernel errors.
template <class F>
auto step(const char* op, const char* before, const char* after, F&& call) -> decltype(call()) {
    if (failpoint::enabled()) {
        if (auto e = failpoint::hit_error(before); !e.ok()) {
            opstats::count_error(op);
            return std::move(e).error();
        }
    }
    auto result = call();
    if (!result.ok()) opstats::count_error(op);
    failpoint::hit(after);
    return result;
}
// A best-effort call whose contract is to take effect in any case (firewall::Backend's
// remove_network and remove_ports forget the intent even when the kernel refuses): it is always
// made, and an error rule on `before` then replaces its result, as a kernel refusal would.
template <class F>
auto best_effort_step(const char* op, const char* before, const char* after, F&& call)
    -> decltype(call()) {
    auto injected = failpoint::enabled() ? failpoint::hit_error(before) : ok();
    auto result = call();
    failpoint::hit(after);
    if (!injected.ok() || !result.ok()) opstats::count_error(op);
    if (!injected.ok()) return std::move(injected).error();
    return result;
}
}  // namespace fp_detail

// `return`s `call` wrapped in the failpoints "<layer>.<op>.before" and "<layer>.<op>.after".
// Their errors count under "<layer>.<op>" (base/opstats.hpp).
#define CNETD_FP_STEP(layer, op, call)                                          \
    return ::cnetd::core::fp_detail::step(layer "." op, layer "." op ".before", \
                                          layer "." op ".after", [&] { return call; })
#define CNETD_FP_BEST_EFFORT_STEP(layer, op, call)                                          \
    return ::cnetd::core::fp_detail::best_effort_step(layer "." op, layer "." op ".before", \
                                                      layer "." op ".after", [&] { return call; })

class FailpointNetns final : public Netns {
public:
    explicit FailpointNetns(std::unique_ptr<Netns> ns) : own_(std::move(ns)), in_(*own_) {}
    const std::string& path() const override { return in_.path(); }
    NetnsId id() const override { return in_.id(); }
    Result<std::string> free_ifname(const std::string& p) override { return in_.free_ifname(p); }
    Result<void> disable_ipv6(const std::string& i) override {
        CNETD_FP_STEP("netns", "disable_ipv6", in_.disable_ipv6(i));
    }
    Result<void> add_address(const std::string& i, const Ipv4Cidr& a) override {
        CNETD_FP_STEP("netns", "add_address", in_.add_address(i, a));
    }
    Result<void> set_up(const std::string& i) override {
        CNETD_FP_STEP("netns", "set_up", in_.set_up(i));
    }
    Result<void> add_default_route(const std::string& i, Ipv4 gw) override {
        CNETD_FP_STEP("netns", "add_default_route", in_.add_default_route(i, gw));
    }
    Result<void> enable_ipv6(const std::string& i) override {
        CNETD_FP_STEP("netns", "enable_ipv6", in_.enable_ipv6(i));
    }
    Result<void> add_address6(const std::string& i, const Ipv6Cidr& a) override {
        CNETD_FP_STEP("netns", "add_address6", in_.add_address6(i, a));
    }
    Result<void> add_default_route6(const std::string& i, Ipv6 gw) override {
        CNETD_FP_STEP("netns", "add_default_route6", in_.add_default_route6(i, gw));
    }
    Result<std::optional<DefaultRoute>> default_route(IpFamily f) override {
        return in_.default_route(f);
    }
    Result<void> put_default_route(IpFamily f, const DefaultRoute& r) override {
        CNETD_FP_STEP("netns", "put_default_route", in_.put_default_route(f, r));
    }
    Result<void> delete_default_route(IpFamily f, const std::string& i, uint32_t m) override {
        CNETD_FP_STEP("netns", "delete_default_route", in_.delete_default_route(f, i, m));
    }
    Result<void> announce(const std::string& i, const Mac& m, std::optional<Ipv4> v4,
                          std::optional<Ipv6> v6) override {
        CNETD_FP_STEP("netns", "announce", in_.announce(i, m, v4, v6));
    }
    Result<void> delete_link(const std::string& i) override {
        CNETD_FP_STEP("netns", "delete_link", in_.delete_link(i));
    }
    Result<std::unique_ptr<DnsListener>> open_dns_listener() override {
        CNETD_FP_STEP("netns", "open_dns_listener", in_.open_dns_listener());
    }
    Result<void> set_dns_nat(uint16_t udp, uint16_t tcp) override {
        CNETD_FP_STEP("netns", "set_dns_nat", in_.set_dns_nat(udp, tcp));
    }
    Result<void> remove_dns_nat() override {
        CNETD_FP_STEP("netns", "remove_dns_nat", in_.remove_dns_nat());
    }
    Result<void> add_route(const std::string& i, const Ipv4Cidr& dst, Ipv4 gw) override {
        CNETD_FP_STEP("netns", "add_route", in_.add_route(i, dst, gw));
    }
    Result<bool> has_route(const std::string& i, const Ipv4Cidr& dst, Ipv4 gw) override {
        return in_.has_route(i, dst, gw);
    }

private:
    std::unique_ptr<Netns> own_;
    Netns& in_;
};

class FailpointKernel final : public Kernel {
public:
    explicit FailpointKernel(Kernel& k) : in_(k) {}

    Result<std::unique_ptr<Netns>> open_netns(const std::string& path) override;
    Result<void> create_netns(const std::string& path) override {
        CNETD_FP_STEP("kernel", "create_netns", in_.create_netns(path));
    }
    Result<void> delete_netns(const std::string& path) override {
        CNETD_FP_STEP("kernel", "delete_netns", in_.delete_netns(path));
    }
    Result<void> restore_netns(const std::string& path, Netns& ns) override {
        CNETD_FP_STEP("kernel", "restore_netns", in_.restore_netns(path, ns));
    }
    Result<LinkKind> link_kind(const std::string& name) override { return in_.link_kind(name); }
    Result<bool> ensure_bridge(const BridgeSpec& spec) override {
        CNETD_FP_STEP("kernel", "ensure_bridge", in_.ensure_bridge(spec));
    }
    Result<void> create_veth(const VethSpec& spec, Netns& ns) override {
        CNETD_FP_STEP("kernel", "create_veth", in_.create_veth(spec, ns));
    }
    Result<void> set_up(const std::string& i) override {
        CNETD_FP_STEP("kernel", "set_up", in_.set_up(i));
    }
    Result<void> delete_link(const std::string& i) override {
        CNETD_FP_STEP("kernel", "delete_link", in_.delete_link(i));
    }
    // Failpoints "kernel.delete_link.*": a retirement is the detach's deletion.
    Result<void> retire_veth(const std::string& host, Netns* ns, const std::string& peer) override {
        CNETD_FP_STEP("kernel", "delete_link", in_.retire_veth(host, ns, peer));
    }
    Result<void> flush_retired() override { return in_.flush_retired(); }
    Result<void> write_sysctl(const std::string& key, const std::string& value) override {
        CNETD_FP_STEP("kernel", "write_sysctl", in_.write_sysctl(key, value));
    }
    Result<std::string> read_sysctl(const std::string& key) override {
        return in_.read_sysctl(key);
    }
    Result<std::unique_ptr<PortHold>> hold_ports(int proto, std::optional<Ipv4> addr,
                                                 uint16_t first, uint16_t last) override {
        CNETD_FP_STEP("kernel", "hold_ports", in_.hold_ports(proto, addr, first, last));
    }
    Result<std::unique_ptr<PortHold>> hold_ports6(int proto, std::optional<Ipv6> addr,
                                                  uint16_t first, uint16_t last) override {
        CNETD_FP_STEP("kernel", "hold_ports6", in_.hold_ports6(proto, addr, first, last));
    }
    Result<std::optional<unsigned>> default_route_mtu() override { return in_.default_route_mtu(); }
    Result<std::vector<Ipv4Cidr>> onlink_routes4() override { return in_.onlink_routes4(); }
    std::vector<NetnsId> host_netns_ids() override { return in_.host_netns_ids(); }
    Result<unsigned> bridge_port_count(const std::string& b) override {
        return in_.bridge_port_count(b);
    }
    Result<std::optional<LinkStatus>> link_status(const std::string& name) override {
        return in_.link_status(name);
    }
    Result<std::optional<PeerStatus>> peer_status(Netns& ns, const std::string& i) override {
        return in_.peer_status(ns, i);
    }
    Result<void> set_master(const std::string& i, const std::string& bridge) override {
        CNETD_FP_STEP("kernel", "set_master", in_.set_master(i, bridge));
    }
    Result<std::vector<std::string>> bridge_veths(const std::string& b) override {
        return in_.bridge_veths(b);
    }
    Result<void> forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                   std::optional<Ipv6> v6) override {
        CNETD_FP_STEP("kernel", "forget_neighbours", in_.forget_neighbours(dev, v4, v6));
    }
    Result<bool> ensure_vxlan(const VxlanSpec& s) override {
        CNETD_FP_STEP("kernel", "ensure_vxlan", in_.ensure_vxlan(s));
    }
    Result<void> add_vxlan_peer(const std::string& dev, const VxlanPeer& p) override {
        CNETD_FP_STEP("kernel", "add_vxlan_peer", in_.add_vxlan_peer(dev, p));
    }
    Result<void> remove_vxlan_peer(const std::string& dev, const VxlanPeer& p) override {
        CNETD_FP_STEP("kernel", "remove_vxlan_peer", in_.remove_vxlan_peer(dev, p));
    }
    Result<std::vector<VxlanPeer>> vxlan_peers(const std::string& dev) override {
        return in_.vxlan_peers(dev);
    }
    Result<std::pair<std::string, unsigned>> link_of_address(Ipv4 a) override {
        return in_.link_of_address(a);
    }

private:
    Kernel& in_;
};

class FailpointFirewall final : public firewall::Backend {
public:
    explicit FailpointFirewall(firewall::Backend& fw) : in_(fw) {}
    Result<void> ensure_base() override { CNETD_FP_STEP("fw", "ensure_base", in_.ensure_base()); }
    Result<void> add_network(const firewall::NetworkRules& n) override {
        CNETD_FP_STEP("fw", "add_network", in_.add_network(n));
    }
    Result<void> remove_network(const firewall::NetworkRules& n) override {
        CNETD_FP_BEST_EFFORT_STEP("fw", "remove_network", in_.remove_network(n));
    }
    Result<void> sync(const std::vector<firewall::NetworkRules>& nets,
                      const std::vector<firewall::PortForward>& ports) override {
        CNETD_FP_STEP("fw", "sync", in_.sync(nets, ports));
    }
    Result<void> add_ports(const std::vector<firewall::PortForward>& ports) override {
        CNETD_FP_STEP("fw", "add_ports", in_.add_ports(ports));
    }
    Result<void> remove_ports(const std::vector<firewall::PortForward>& ports) override {
        CNETD_FP_BEST_EFFORT_STEP("fw", "remove_ports", in_.remove_ports(ports));
    }
    Result<void> check_ports(const std::vector<firewall::PortForward>& ports) override {
        return in_.check_ports(ports);
    }
    Result<std::string> show() override { return in_.show(); }
    int monitor_fd() override { return in_.monitor_fd(); }
    Result<bool> handle_events() override { return in_.handle_events(); }
    uint64_t repairs() const override { return in_.repairs(); }
    std::string name() const override { return in_.name(); }

private:
    firewall::Backend& in_;
};

}  // namespace cnetd::core
