#include "fakes/fake_kernel.hpp"

#include <algorithm>
#include <functional>

namespace cnetd::test {

namespace {

// Counts itself in FakeState::dns_listeners while open (the FakeKernel outlives it).
class FakeDnsListener : public core::DnsListener {
public:
    FakeDnsListener(FakeKernel& k, std::string path, uint16_t udp, uint16_t tcp)
        : k_(k), path_(std::move(path)), udp_(udp), tcp_(tcp) {}
    ~FakeDnsListener() override {
        if (--k_.state.dns_listeners[path_] <= 0) k_.state.dns_listeners.erase(path_);
    }
    uint16_t udp_port() const override { return udp_; }
    uint16_t tcp_port() const override { return tcp_; }

private:
    FakeKernel& k_;
    std::string path_;
    uint16_t udp_, tcp_;
};

class FakeNetns : public core::Netns {
public:
    FakeNetns(FakeKernel& k, std::string path, core::NetnsId id)
        : k_(k), path_(std::move(path)), id_(id) {}
    const std::string& path() const override { return path_; }
    core::NetnsId id() const override { return id_; }

    Result<std::string> free_ifname(const std::string& prefix) override {
        auto& links = k_.state.ns_links[path_];
        for (int i = 0;; ++i) {
            std::string n = prefix + std::to_string(i);
            if (!links.count(n)) return n;
        }
    }
    Result<void> disable_ipv6(const std::string& ifname) override {
        CNETD_TRY(k_.step("disable_ipv6 " + ifname));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        l->ipv6_disabled = true;
        return ok();
    }
    Result<void> add_address(const std::string& ifname, const Ipv4Cidr& a) override {
        CNETD_TRY(k_.step("add_address " + ifname + " " + a.str()));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        l->addresses.push_back(a.str());
        return ok();
    }
    Result<void> set_up(const std::string& ifname) override {
        CNETD_TRY(k_.step("ns_set_up " + ifname));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        l->up = true;
        return ok();
    }
    Result<void> add_default_route(const std::string& ifname, Ipv4 gw) override {
        CNETD_TRY(k_.step("add_default_route " + ifname + " via " + gw.str()));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        if (!l->up) return Error::sys(ENETUNREACH, "add default route via " + gw.str());
        replace_default(core::IpFamily::V4, ifname, "default via " + gw.str(), 0);
        return ok();
    }
    Result<void> enable_ipv6(const std::string& ifname) override {
        CNETD_TRY(k_.step("enable_ipv6 " + ifname));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        l->ipv6_disabled = false;
        l->ipv6_enabled = true;
        return ok();
    }
    Result<void> add_address6(const std::string& ifname, const Ipv6Cidr& a) override {
        CNETD_TRY(k_.step("add_address6 " + ifname + " " + a.str()));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        if (!l->ipv6_enabled) return Error::sys(EACCES, "add address " + a.str() + " to " + ifname);
        l->addresses.push_back(a.str());
        return ok();
    }
    Result<void> add_default_route6(const std::string& ifname, Ipv6 gw) override {
        CNETD_TRY(k_.step("add_default_route6 " + ifname + " via " + gw.str()));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        if (!l->up) return Error::sys(ENETUNREACH, "add default route via " + gw.str());
        replace_default(core::IpFamily::V6, ifname, "default via " + gw.str(), 0);
        return ok();
    }
    // Default routes: "default via GW[ metric M]" or "default dev[ metric M]" in the link's
    // routes; like the kernel, one per (family, metric) in the namespace: adding replaces.
    Result<std::optional<core::DefaultRoute>> default_route(core::IpFamily f) override {
        std::optional<core::DefaultRoute> best;
        for (const auto& [name, l] : k_.state.ns_links[path_]) {
            for (const auto& r : l.routes) {
                auto parsed = parse_default(f, name, r);
                if (parsed && (!best || parsed->metric < best->metric)) best = parsed;
            }
        }
        return best;
    }
    Result<void> put_default_route(core::IpFamily f, const core::DefaultRoute& r) override {
        CNETD_TRY(k_.step("put_default_route " + r.ifname));
        CNETD_TRY(link(r.ifname));
        std::string text = r.gateway4   ? "default via " + r.gateway4->str()
                           : r.gateway6 ? "default via " + r.gateway6->str()
                                        : std::string("default dev");
        if (f == core::IpFamily::V6 && !r.gateway6) text += " v6";
        replace_default(f, r.ifname, text, r.metric);
        return ok();
    }
    Result<void> delete_default_route(core::IpFamily f, const std::string& ifname,
                                      uint32_t metric) override {
        CNETD_TRY(k_.step("delete_default_route " + ifname));
        auto& links = k_.state.ns_links[path_];
        auto it = links.find(ifname);
        if (it == links.end()) return ok();
        std::erase_if(it->second.routes, [&](const std::string& r) {
            auto p = parse_default(f, ifname, r);
            return p && (p->metric == metric || (f == core::IpFamily::V6 && metric == 0));
        });
        return ok();
    }
    Result<void> announce(const std::string& ifname, const Mac& mac, std::optional<Ipv4> v4,
                          std::optional<Ipv6> v6) override {
        k_.announcements.push_back(fmt::format("{} {} {} {}", ifname, mac.str(),
                                               v4 ? v4->str() : "-", v6 ? v6->str() : "-"));
        if (k_.fail_announce) return Error::sys(ENETDOWN, "announce on " + ifname);
        return ok();
    }
    Result<std::unique_ptr<core::DnsListener>> open_dns_listener() override {
        CNETD_TRY(k_.step("open_dns_listener " + path_));
        const uint16_t udp = ++k_.next_dns_port, tcp = ++k_.next_dns_port;
        ++k_.state.dns_listeners[path_];
        return std::unique_ptr<core::DnsListener>(new FakeDnsListener(k_, path_, udp, tcp));
    }
    Result<void> set_dns_nat(uint16_t udp_port, uint16_t tcp_port) override {
        CNETD_TRY(k_.step(fmt::format("set_dns_nat {} {} {}", path_, udp_port, tcp_port)));
        k_.state.dns_nat[path_] = fmt::format("udp {} tcp {}", udp_port, tcp_port);
        return ok();
    }
    Result<void> remove_dns_nat() override {
        CNETD_TRY(k_.step("remove_dns_nat " + path_));
        k_.state.dns_nat.erase(path_);
        return ok();
    }
    // Routes other than default ones: "10.200.0.0/16 via 10.200.1.1" in the link's routes.
    Result<void> add_route(const std::string& ifname, const Ipv4Cidr& dst, Ipv4 gw) override {
        const std::string text = dst.str() + " via " + gw.str();
        CNETD_TRY(k_.step("add_route " + ifname + " " + text));
        CNETD_TRY_ASSIGN(FakeNsLink * l, link(ifname));
        if (!l->up) return Error::sys(ENETUNREACH, "add route " + text);
        if (std::find(l->routes.begin(), l->routes.end(), text) != l->routes.end())
            return Error::sys(EEXIST, "add route " + text);
        l->routes.push_back(text);
        return ok();
    }
    Result<bool> has_route(const std::string& ifname, const Ipv4Cidr& dst, Ipv4 gw) override {
        ++k_.reads;
        auto& links = k_.state.ns_links[path_];
        auto it = links.find(ifname);
        if (it == links.end()) return false;
        const auto& r = it->second.routes;
        return std::find(r.begin(), r.end(), dst.str() + " via " + gw.str()) != r.end();
    }
    Result<void> delete_link(const std::string& ifname) override {
        CNETD_TRY(k_.step("ns_delete_link " + ifname));
        auto& links = k_.state.ns_links[path_];
        auto it = links.find(ifname);
        if (it == links.end()) return ok();
        k_.state.links.erase(it->second.peer);
        links.erase(it);
        return ok();
    }

private:
    static std::optional<core::DefaultRoute> parse_default(core::IpFamily f,
                                                           const std::string& ifname,
                                                           const std::string& r) {
        if (r.rfind("default ", 0) != 0) return std::nullopt;
        core::DefaultRoute out;
        out.ifname = ifname;
        std::string rest = r.substr(8);
        if (auto m = rest.find(" metric "); m != std::string::npos) {
            out.metric = static_cast<uint32_t>(std::stoul(rest.substr(m + 8)));
            rest = rest.substr(0, m);
        }
        bool v6 = rest.find(':') != std::string::npos || rest == "dev v6";
        if (v6 != (f == core::IpFamily::V6)) return std::nullopt;
        if (rest.rfind("via ", 0) == 0) {
            if (v6)
                out.gateway6 = *Ipv6::parse(rest.substr(4));
            else
                out.gateway4 = *Ipv4::parse(rest.substr(4));
        }
        return out;
    }
    // Adds `text` (+ metric) on `ifname` after removing the namespace's default route of the
    // same family and metric, wherever it was (NLM_F_REPLACE).
    void replace_default(core::IpFamily f, const std::string& ifname, std::string text,
                         uint32_t metric) {
        for (auto& [name, l] : k_.state.ns_links[path_]) {
            std::erase_if(l.routes, [&](const std::string& r) {
                auto p = parse_default(f, name, r);
                return p && p->metric == metric;
            });
        }
        if (metric != 0) text += " metric " + std::to_string(metric);
        k_.state.ns_links[path_][ifname].routes.push_back(text);
    }
    Result<FakeNsLink*> link(const std::string& ifname) {
        auto& links = k_.state.ns_links[path_];
        auto it = links.find(ifname);
        if (it == links.end()) return Error::sys(ENODEV, ifname + " in " + path_);
        return &it->second;
    }
    FakeKernel& k_;
    std::string path_;
    core::NetnsId id_;
};

}  // namespace

Result<void> FakeKernel::step(const std::string& what) {
    ops.push_back(what);
    ++steps;
    if (fail_step != 0 && steps == fail_step) return Error::sys(fail_errno, what);
    if (fail_ops.count(what.substr(0, what.find(' ')))) return Error::sys(fail_errno, what);
    return ok();
}

Result<std::unique_ptr<core::Netns>> FakeKernel::open_netns(const std::string& path) {
    ++reads;
    if (regular_files.count(path)) {
        return Error::invalid(fmt::format("\"{}\" is not a network namespace", path));
    }
    if (!state.netns.count(path)) return Error::sys(ENOENT, "open netns " + path);
    // Identity: position in the sorted set is not stable; hash the path instead.
    uint64_t ino = std::hash<std::string>{}(path);
    return std::unique_ptr<core::Netns>(new FakeNetns(*this, path, {4, ino}));
}

Result<void> FakeKernel::create_netns(const std::string& path) {
    CNETD_TRY(step("create_netns " + path));
    if (!state.netns.insert(path).second) return Error::sys(EEXIST, "create netns " + path);
    return ok();
}

Result<void> FakeKernel::delete_netns(const std::string& path) {
    CNETD_TRY(step("delete_netns " + path));
    if (!state.netns.erase(path)) return Error::sys(ENOENT, "delete netns " + path);
    // Links inside die with the namespace, and so do their host-side peers.
    for (auto& [name, l] : state.ns_links[path]) state.links.erase(l.peer);
    state.ns_links.erase(path);
    state.dns_nat.erase(path);  // its nftables tables die with it (open sockets do not)
    return ok();
}

Result<core::LinkKind> FakeKernel::link_kind(const std::string& name) {
    ++reads;
    auto it = state.links.find(name);
    if (it == state.links.end()) return core::LinkKind::Absent;
    return it->second.kind == "bridge" ? core::LinkKind::Bridge : core::LinkKind::Other;
}

Result<bool> FakeKernel::ensure_bridge(const core::BridgeSpec& spec) {
    CNETD_TRY(step("ensure_bridge " + spec.name));
    auto it = state.links.find(spec.name);
    bool created = it == state.links.end();
    if (!created && it->second.kind != "bridge") {
        return Error::invalid(spec.name + " exists and is not a bridge");
    }
    FakeLink& l = state.links[spec.name];
    if (created) l.mac = (spec.mac ? *spec.mac : Mac::random_local()).str();
    l.kind = "bridge";
    l.mtu = spec.mtu;
    l.addresses.clear();
    if (!spec.no_ipv4_address) l.addresses.push_back(spec.address.str());
    if (spec.address6) l.addresses.push_back(spec.address6->str());
    l.up = true;
    return created;
}

Result<void> FakeKernel::create_veth(const core::VethSpec& spec, core::Netns& ns) {
    CNETD_TRY(step("create_veth " + spec.host_name));
    if (state.links.count(spec.host_name)) {
        return Error::sys(EEXIST, "create veth " + spec.host_name + " in " + ns.path());
    }
    auto& nsl = state.ns_links[ns.path()];
    if (nsl.count(spec.peer_name)) {
        return Error::sys(EEXIST, "create veth peer " + spec.peer_name + " in " + ns.path());
    }
    auto m = state.links.find(spec.bridge);
    if (m == state.links.end()) return Error::sys(ENODEV, "bridge " + spec.bridge);
    state.links[spec.host_name] =
        FakeLink{"veth", spec.bridge, ns.path() + ":" + spec.peer_name, false, spec.mtu, {}};
    nsl[spec.peer_name] =
        FakeNsLink{spec.host_name, spec.peer_mac.str(), false, false, false, {}, {}};
    return ok();
}

Result<void> FakeKernel::set_up(const std::string& ifname) {
    CNETD_TRY(step("set_up " + ifname));
    auto it = state.links.find(ifname);
    if (it == state.links.end()) return Error::sys(ENODEV, "set up " + ifname);
    it->second.up = true;
    return ok();
}

Result<void> FakeKernel::delete_link(const std::string& ifname) {
    CNETD_TRY(step("delete_link " + ifname));
    auto it = state.links.find(ifname);
    if (it == state.links.end()) return ok();
    if (it->second.kind == "veth") {
        auto colon = it->second.peer.rfind(':');
        state.ns_links[it->second.peer.substr(0, colon)].erase(it->second.peer.substr(colon + 1));
    }
    state.links.erase(it);
    state.vxlan_peers.erase(ifname);  // the device's FDB, neighbours and routes go with it
    return ok();
}

Result<std::string> FakeKernel::read_sysctl(const std::string& key) {
    ++reads;
    auto it = state.sysctls.find(key);
    if (it == state.sysctls.end()) return Error::sys(ENOENT, "read sysctl " + key);
    return it->second;
}

namespace {
class FakeHold : public core::PortHold {
public:
    FakeHold(std::multiset<std::string>& held, std::vector<std::string> keys)
        : held_(held), keys_(std::move(keys)) {
        for (const auto& k : keys_) held_.insert(k);
    }
    ~FakeHold() override {
        for (const auto& k : keys_) held_.erase(held_.find(k));
    }

private:
    std::multiset<std::string>& held_;
    std::vector<std::string> keys_;
};
}  // namespace

Result<std::unique_ptr<core::PortHold>> FakeKernel::hold_ports(int proto, std::optional<Ipv4> addr,
                                                               uint16_t first, uint16_t last) {
    std::vector<std::string> keys;
    for (uint32_t p = first; p <= last; ++p) {
        std::string where = fmt::format("{}:{}", addr ? addr->str() : "0.0.0.0", p);
        std::string key = fmt::format("{}/{}",
                                      proto == 17    ? "udp"
                                      : proto == 132 ? "sctp"
                                                     : "tcp",
                                      where);
        if (taken.count(key)) return Error::sys(EADDRINUSE, "Bind for " + where + " failed");
        keys.push_back(key);
    }
    return std::unique_ptr<core::PortHold>(new FakeHold(held, keys));
}

Result<std::unique_ptr<core::PortHold>> FakeKernel::hold_ports6(int proto, std::optional<Ipv6> addr,
                                                                uint16_t first, uint16_t last) {
    std::vector<std::string> keys;
    for (uint32_t p = first; p <= last; ++p) {
        std::string where = fmt::format("[{}]:{}", addr ? addr->str() : "::", p);
        std::string key = fmt::format("{}/{}",
                                      proto == 17    ? "udp"
                                      : proto == 132 ? "sctp"
                                                     : "tcp",
                                      where);
        if (taken.count(key)) return Error::sys(EADDRINUSE, "Bind for " + where + " failed");
        keys.push_back(key);
    }
    return std::unique_ptr<core::PortHold>(new FakeHold(held, keys));
}

Result<std::optional<unsigned>> FakeKernel::default_route_mtu() {
    ++reads;
    return uplink_mtu;
}

Result<std::vector<Ipv4Cidr>> FakeKernel::onlink_routes4() {
    ++reads;
    return onlink;
}

Result<unsigned> FakeKernel::bridge_port_count(const std::string& bridge) {
    ++reads;
    unsigned n = extra_ports[bridge];
    for (const auto& [name, l] : state.links) {
        if (l.master == bridge) ++n;
    }
    return n;
}

Result<void> FakeKernel::write_sysctl(const std::string& key, const std::string& value) {
    CNETD_TRY(step("write_sysctl " + key));
    state.sysctls[key] = value;
    return ok();
}

}  // namespace cnetd::test

// --- inspection and repair (persist: reconciliation and GC) ---
namespace cnetd::test {

Result<std::optional<core::LinkStatus>> FakeKernel::link_status(const std::string& name) {
    ++reads;
    auto it = state.links.find(name);
    if (it == state.links.end()) return std::optional<core::LinkStatus>{};
    core::LinkStatus st;
    st.kind = it->second.kind;
    st.master = it->second.master;
    st.up = it->second.up;
    if (auto m = Mac::parse(it->second.mac); m.ok()) st.mac = *m;
    return std::optional<core::LinkStatus>(st);
}

Result<std::optional<core::PeerStatus>> FakeKernel::peer_status(core::Netns& ns,
                                                                const std::string& ifname) {
    ++reads;
    auto nit = state.ns_links.find(ns.path());
    if (nit == state.ns_links.end() || !nit->second.count(ifname))
        return std::optional<core::PeerStatus>{};
    const FakeNsLink& l = nit->second.at(ifname);
    core::PeerStatus st;
    st.up = l.up;
    st.mac = *Mac::parse(l.mac);
    for (const auto& a : l.addresses) {
        if (auto v4 = Ipv4Cidr::parse(a); v4.ok())
            st.addresses4.push_back(*v4);
        else if (auto v6 = Ipv6Cidr::parse(a); v6.ok())
            st.addresses6.push_back(*v6);
    }
    for (const auto& r : l.routes) {
        if (r.rfind("default via ", 0) != 0) continue;
        std::string gw = r.substr(std::string("default via ").size());
        gw = gw.substr(0, gw.find(' '));
        if (auto v4 = Ipv4::parse(gw); v4.ok())
            st.default_gateway4 = *v4;
        else if (auto v6 = Ipv6::parse(gw); v6.ok())
            st.default_gateway6 = *v6;
    }
    return std::optional<core::PeerStatus>(std::move(st));
}

Result<void> FakeKernel::set_master(const std::string& ifname, const std::string& bridge) {
    CNETD_TRY(step("set_master " + ifname + " " + bridge));
    auto it = state.links.find(ifname);
    if (it == state.links.end()) return Error::sys(ENODEV, "set master of " + ifname);
    if (!state.links.count(bridge)) return Error::sys(ENODEV, "bridge " + bridge);
    it->second.master = bridge;
    return ok();
}

Result<std::vector<std::string>> FakeKernel::bridge_veths(const std::string& bridge) {
    ++reads;
    std::vector<std::string> out;
    for (const auto& [name, l] : state.links)
        if (l.master == bridge && l.kind == "veth") out.push_back(name);
    return out;
}

}  // namespace cnetd::test

// --- overlay data plane ---
namespace cnetd::test {

Result<bool> FakeKernel::ensure_vxlan(const core::VxlanSpec& spec) {
    CNETD_TRY(step("ensure_vxlan " + spec.name));
    const std::string identity = fmt::format("vni {} local {} port {} dev {}", spec.vni,
                                             spec.local.str(), spec.port, spec.underlay);
    auto it = state.links.find(spec.name);
    if (it != state.links.end() && it->second.kind != "vxlan")
        return Error::invalid("link " + spec.name + " exists and is not a vxlan device");
    bool created = it == state.links.end() || it->second.vxlan != identity;
    if (created) {  // flannel's rule: another VNI, port or local address -> made again
        state.links.erase(spec.name);
        state.vxlan_peers.erase(spec.name);
    }
    FakeLink& l = state.links[spec.name];
    l.kind = "vxlan";
    l.vxlan = identity;
    l.mtu = spec.mtu;
    l.mac = spec.mac.str();
    l.addresses = {spec.address.str()};
    l.up = true;
    return created;
}

Result<void> FakeKernel::add_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) {
    CNETD_TRY(step("add_vxlan_peer " + dev + " " + peer.block.str()));
    auto it = state.links.find(dev);
    if (it == state.links.end() || it->second.kind != "vxlan")
        return Error::sys(ENODEV, "add peer " + peer.block.str() + " on " + dev);
    state.vxlan_peers[dev][peer.block.str()] = peer;
    return ok();
}

Result<void> FakeKernel::remove_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) {
    CNETD_TRY(step("remove_vxlan_peer " + dev + " " + peer.block.str()));
    auto it = state.vxlan_peers.find(dev);
    if (it == state.vxlan_peers.end()) return ok();
    it->second.erase(peer.block.str());
    if (it->second.empty()) state.vxlan_peers.erase(it);
    return ok();
}

Result<std::vector<core::VxlanPeer>> FakeKernel::vxlan_peers(const std::string& dev) {
    ++reads;
    std::vector<core::VxlanPeer> out;
    if (auto it = state.vxlan_peers.find(dev); it != state.vxlan_peers.end())
        for (const auto& [block, p] : it->second) out.push_back(p);
    return out;
}

Result<std::pair<std::string, unsigned>> FakeKernel::link_of_address(Ipv4 a) {
    ++reads;
    auto it = host_addresses.find(a.str());
    if (it == host_addresses.end())
        return Error(ErrorKind::NotFound, "no link has address " + a.str());
    return it->second;
}

}  // namespace cnetd::test
