#include "core/failpoint_wrappers.hpp"

#include "base/failpoint.hpp"

namespace cnetd::core {

namespace {

// before/after failpoints around one call; the names are string literals.
#define CNETD_FP_AROUND(prefix, op, call)        \
    do {                                         \
        failpoint::hit(prefix "." op ".before"); \
        auto fp_result_ = (call);                \
        failpoint::hit(prefix "." op ".after");  \
        return fp_result_;                       \
    } while (0)

class FailpointNetns final : public Netns {
public:
    explicit FailpointNetns(std::unique_ptr<Netns> ns) : ns_(std::move(ns)) {}
    Netns& inner() { return *ns_; }
    const std::string& path() const override { return ns_->path(); }
    NetnsId id() const override { return ns_->id(); }
    Result<std::string> free_ifname(const std::string& p) override { return ns_->free_ifname(p); }
    Result<void> disable_ipv6(const std::string& i) override {
        CNETD_FP_AROUND("netns", "disable_ipv6", ns_->disable_ipv6(i));
    }
    Result<void> add_address(const std::string& i, const Ipv4Cidr& a) override {
        CNETD_FP_AROUND("netns", "add_address", ns_->add_address(i, a));
    }
    Result<void> set_up(const std::string& i) override {
        CNETD_FP_AROUND("netns", "set_up", ns_->set_up(i));
    }
    Result<void> add_default_route(const std::string& i, Ipv4 gw) override {
        CNETD_FP_AROUND("netns", "add_default_route", ns_->add_default_route(i, gw));
    }
    Result<void> enable_ipv6(const std::string& i) override {
        CNETD_FP_AROUND("netns", "enable_ipv6", ns_->enable_ipv6(i));
    }
    Result<void> add_address6(const std::string& i, const Ipv6Cidr& a) override {
        CNETD_FP_AROUND("netns", "add_address6", ns_->add_address6(i, a));
    }
    Result<void> add_default_route6(const std::string& i, Ipv6 gw) override {
        CNETD_FP_AROUND("netns", "add_default_route6", ns_->add_default_route6(i, gw));
    }
    Result<std::optional<DefaultRoute>> default_route(IpFamily f) override {
        return ns_->default_route(f);
    }
    Result<void> put_default_route(IpFamily f, const DefaultRoute& r) override {
        CNETD_FP_AROUND("netns", "put_default_route", ns_->put_default_route(f, r));
    }
    Result<void> delete_default_route(IpFamily f, const std::string& i, uint32_t m) override {
        CNETD_FP_AROUND("netns", "delete_default_route", ns_->delete_default_route(f, i, m));
    }
    Result<void> announce(const std::string& i, const Mac& m, std::optional<Ipv4> v4,
                          std::optional<Ipv6> v6) override {
        CNETD_FP_AROUND("netns", "announce", ns_->announce(i, m, v4, v6));
    }
    Result<void> delete_link(const std::string& i) override {
        CNETD_FP_AROUND("netns", "delete_link", ns_->delete_link(i));
    }

private:
    std::unique_ptr<Netns> ns_;
};

// The real kernel wants its own Netns objects back (it reads their fd).
Netns& unwrap(Netns& ns) {
    if (auto* w = dynamic_cast<FailpointNetns*>(&ns)) return w->inner();
    return ns;
}

}  // namespace

Result<std::unique_ptr<Netns>> FailpointKernel::open_netns(const std::string& path) {
    CNETD_TRY_ASSIGN(auto ns, k_.open_netns(path));
    return std::unique_ptr<Netns>(new FailpointNetns(std::move(ns)));
}
Result<void> FailpointKernel::create_netns(const std::string& path) {
    CNETD_FP_AROUND("kernel", "create_netns", k_.create_netns(path));
}
Result<void> FailpointKernel::delete_netns(const std::string& path) {
    CNETD_FP_AROUND("kernel", "delete_netns", k_.delete_netns(path));
}
Result<bool> FailpointKernel::ensure_bridge(const BridgeSpec& spec) {
    CNETD_FP_AROUND("kernel", "ensure_bridge", k_.ensure_bridge(spec));
}
Result<void> FailpointKernel::create_veth(const VethSpec& spec, Netns& ns) {
    CNETD_FP_AROUND("kernel", "create_veth", k_.create_veth(spec, unwrap(ns)));
}
Result<void> FailpointKernel::set_up(const std::string& ifname) {
    CNETD_FP_AROUND("kernel", "set_up", k_.set_up(ifname));
}
Result<void> FailpointKernel::delete_link(const std::string& ifname) {
    CNETD_FP_AROUND("kernel", "delete_link", k_.delete_link(ifname));
}
Result<void> FailpointKernel::retire_veth(const std::string& host_ifname, Netns* ns,
                                          const std::string& peer_ifname) {
    CNETD_FP_AROUND("kernel", "delete_link",
                    k_.retire_veth(host_ifname, ns ? &unwrap(*ns) : nullptr, peer_ifname));
}
Result<void> FailpointKernel::write_sysctl(const std::string& key, const std::string& value) {
    CNETD_FP_AROUND("kernel", "write_sysctl", k_.write_sysctl(key, value));
}
Result<std::unique_ptr<PortHold>> FailpointKernel::hold_ports(int proto, std::optional<Ipv4> addr,
                                                              uint16_t first, uint16_t last) {
    CNETD_FP_AROUND("kernel", "hold_ports", k_.hold_ports(proto, addr, first, last));
}
Result<std::unique_ptr<PortHold>> FailpointKernel::hold_ports6(int proto, std::optional<Ipv6> addr,
                                                               uint16_t first, uint16_t last) {
    CNETD_FP_AROUND("kernel", "hold_ports6", k_.hold_ports6(proto, addr, first, last));
}
Result<std::optional<PeerStatus>> FailpointKernel::peer_status(Netns& ns,
                                                               const std::string& ifname) {
    return k_.peer_status(unwrap(ns), ifname);
}
Result<void> FailpointKernel::set_master(const std::string& ifname, const std::string& bridge) {
    CNETD_FP_AROUND("kernel", "set_master", k_.set_master(ifname, bridge));
}

Result<void> FailpointKernel::forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                                std::optional<Ipv6> v6) {
    CNETD_FP_AROUND("kernel", "forget_neighbours", k_.forget_neighbours(dev, v4, v6));
}

Result<void> FailpointFirewall::ensure_base() {
    CNETD_FP_AROUND("fw", "ensure_base", fw_.ensure_base());
}
Result<void> FailpointFirewall::add_network(const firewall::NetworkRules& n) {
    CNETD_FP_AROUND("fw", "add_network", fw_.add_network(n));
}
Result<void> FailpointFirewall::remove_network(const firewall::NetworkRules& n) {
    CNETD_FP_AROUND("fw", "remove_network", fw_.remove_network(n));
}
Result<void> FailpointFirewall::sync(const std::vector<firewall::NetworkRules>& nets,
                                     const std::vector<firewall::PortForward>& ports) {
    CNETD_FP_AROUND("fw", "sync", fw_.sync(nets, ports));
}
Result<void> FailpointFirewall::add_ports(const std::vector<firewall::PortForward>& ports) {
    CNETD_FP_AROUND("fw", "add_ports", fw_.add_ports(ports));
}
Result<void> FailpointFirewall::remove_ports(const std::vector<firewall::PortForward>& ports) {
    CNETD_FP_AROUND("fw", "remove_ports", fw_.remove_ports(ports));
}

}  // namespace cnetd::core
