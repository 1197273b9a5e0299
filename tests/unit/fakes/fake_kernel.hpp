// In-memory core::Kernel and core::StateStore for engine tests.
//
// The fake models just enough kernel state to check that the engine leaves it exactly as it found
// it after a failure: host links (kind, master, up), per-namespace links (addresses, up, routes,
// disable_ipv6) and sysctls. `fail_step` makes the N-th mutating call (counting from 1) fail with
// an errno, so a test can walk a failure through every step of an operation.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/kernel.hpp"

namespace cnetd::test {

struct FakeLink {
    std::string kind;    // "bridge", "veth", "dummy"
    std::string master;  // host side of a veth
    std::string peer;    // "<netns path>:<ifname>" for veths
    bool up = false;
    unsigned mtu = 0;
    std::vector<std::string> addresses;
    std::string mac = {};  // bridges: given, or random when created
    // VXLAN devices: "vni 4096 local 192.0.2.1 port 4789 dev eth0" (what ensure_vxlan compares).
    std::string vxlan = {};
    auto operator<=>(const FakeLink&) const = default;
};

struct FakeNsLink {
    std::string peer;  // host ifname
    std::string mac;
    bool up = false;
    bool ipv6_disabled = false;
    bool ipv6_enabled = false;
    std::vector<std::string> addresses;
    std::vector<std::string> routes;
    auto operator<=>(const FakeNsLink&) const = default;
};

struct FakeState {
    std::map<std::string, FakeLink> links;                              // host namespace
    std::map<std::string, std::map<std::string, FakeNsLink>> ns_links;  // by netns path
    std::set<std::string> netns;                                        // netns files
    std::map<std::string, std::string> sysctls;
    // The embedded resolver, by netns path: open DnsListeners (entry gone at 0) and the DNAT of
    // 127.0.0.11:53 ("udp 40001 tcp 40002"; entry gone when removed or with the namespace).
    std::map<std::string, int> dns_listeners;
    std::map<std::string, std::string> dns_nat;
    // Remote nodes programmed on VXLAN devices: device -> block -> peer (neighbour, FDB entry and
    // route as one; gone with the device).
    std::map<std::string, std::map<std::string, core::VxlanPeer>> vxlan_peers;
    auto operator<=>(const FakeState&) const = default;
    // The same state without empty per-namespace link maps (so "never touched" == "emptied").
    FakeState normalized() const {
        FakeState s = *this;
        std::erase_if(s.ns_links, [](const auto& kv) { return kv.second.empty(); });
        return s;
    }
};

class FakeKernel : public core::Kernel {
public:
    FakeState state;
    std::vector<std::string> ops;  // every mutating call, in order ("create_veth vethx" ...)
    int fail_step = 0;             // 0: never fail; N: the N-th mutating call fails
    // Mutating calls that fail whenever made, by the op's first word ("set_dns_nat").
    std::set<std::string> fail_ops;
    uint16_t next_dns_port = 40000;  // fake listeners' ports, counting up
    int fail_errno = EIO;
    int steps = 0;  // mutating calls so far
    int reads = 0;  // reading calls so far (links, routes, sysctls, namespaces opened)
    std::set<std::string> regular_files;  // paths that exist but are not namespaces

    // Returns an error when this call is the one chosen to fail.
    Result<void> step(const std::string& what);

    Result<std::unique_ptr<core::Netns>> open_netns(const std::string& path) override;
    Result<void> create_netns(const std::string& path) override;
    Result<void> delete_netns(const std::string& path) override;
    // The fake's namespaces die with their file (links gone): this only brings the file back.
    Result<void> restore_netns(const std::string& path, core::Netns&) override {
        CNETD_TRY(step("restore_netns " + path));
        state.netns.insert(path);
        return ok();
    }
    Result<core::LinkKind> link_kind(const std::string& name) override;
    Result<bool> ensure_bridge(const core::BridgeSpec& spec) override;
    Result<void> create_veth(const core::VethSpec& spec, core::Netns& ns) override;
    Result<void> set_up(const std::string& ifname) override;
    Result<void> delete_link(const std::string& ifname) override;
    Result<void> write_sysctl(const std::string& key, const std::string& value) override;
    Result<std::string> read_sysctl(const std::string& key) override;
    // Held host ports, as "tcp/0.0.0.0:8080"; `taken` ones fail like a foreign listener.
    std::multiset<std::string> held;
    std::set<std::string> taken;
    Result<std::unique_ptr<core::PortHold>> hold_ports(int proto, std::optional<Ipv4> addr,
                                                       uint16_t first, uint16_t last) override;
    Result<std::unique_ptr<core::PortHold>> hold_ports6(int proto, std::optional<Ipv6> addr,
                                                        uint16_t first, uint16_t last) override;
    // Host facts the tests set.
    std::optional<unsigned> uplink_mtu;           // default_route_mtu()
    std::vector<Ipv4Cidr> onlink;                 // onlink_routes4()
    std::map<std::string, unsigned> extra_ports;  // bridge -> ports beyond the fake's own veths
    Result<std::optional<unsigned>> default_route_mtu() override;
    Result<std::vector<Ipv4Cidr>> onlink_routes4() override;
    Result<unsigned> bridge_port_count(const std::string& bridge) override;
    // The host's namespaces (host_netns_ids()): tests put a fake namespace's id here.
    std::vector<core::NetnsId> host_ids;
    std::vector<core::NetnsId> host_netns_ids() override { return host_ids; }
    // announce() calls ("eth0 02:.. 172.17.0.2 -"); not a step (best effort, never rolled back).
    std::vector<std::string> announcements;
    bool fail_announce = false;

    // --- inspection and repair (persist: reconciliation and GC) ---
    Result<std::optional<core::LinkStatus>> link_status(const std::string& name) override;
    Result<std::optional<core::PeerStatus>> peer_status(core::Netns& ns,
                                                        const std::string& ifname) override;
    Result<void> set_master(const std::string& ifname, const std::string& bridge) override;
    Result<std::vector<std::string>> bridge_veths(const std::string& bridge) override;
    // --- overlay data plane ---
    // Our namespace's addresses for link_of_address(): address -> (link, MTU).
    std::map<std::string, std::pair<std::string, unsigned>> host_addresses;
    Result<bool> ensure_vxlan(const core::VxlanSpec& spec) override;
    Result<void> add_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) override;
    Result<void> remove_vxlan_peer(const std::string& dev, const core::VxlanPeer& peer) override;
    Result<std::vector<core::VxlanPeer>> vxlan_peers(const std::string& dev) override;
    Result<std::pair<std::string, unsigned>> link_of_address(Ipv4 a) override;

    // Our namespace's neighbour table, "<dev> <ip>" -> MAC (tests fill it as traffic would);
    // forget_neighbours() erases entries and is not a step (best effort, never rolled back).
    std::map<std::string, std::string> neighbours;
    Result<void> forget_neighbours(const std::string& dev, std::optional<Ipv4> v4,
                                   std::optional<Ipv6> v6) override {
        if (v4) neighbours.erase(dev + " " + v4->str());
        if (v6) neighbours.erase(dev + " " + v6->str());
        return ok();
    }
};

class FakeStore : public core::StateStore {
public:
    std::vector<core::Network> saved;
    bool has_saved = false;
    bool fail_save = false;
    int saves = 0;
    Result<std::vector<core::Network>> load() override { return saved; }
    Result<void> save(const std::vector<core::Network>& n) override {
        if (fail_save) return Error::sys(ENOSPC, "write state.json");
        saved = n;
        has_saved = true;
        ++saves;
        return ok();
    }
};

}  // namespace cnetd::test

#include "firewall/firewall.hpp"

namespace cnetd::test {

// Remembers the firewall intent the engine hands it; can be told to fail.
class FakeFirewall : public firewall::Backend {
public:
    std::map<std::string, firewall::NetworkRules> nets;  // by network id
    bool fail_add = false;
    int syncs = 0;
    Result<void> ensure_base() override { return ok(); }
    Result<void> add_network(const firewall::NetworkRules& n) override {
        if (fail_add) return Error::sys(EPERM, "add element inet cnetd nets { " + n.bridge + " }");
        nets[n.id] = n;
        return ok();
    }
    Result<void> remove_network(const firewall::NetworkRules& n) override {
        nets.erase(n.id);
        return ok();
    }
    std::vector<firewall::PortForward> ports;
    bool fail_ports = false;
    Result<void> sync(const std::vector<firewall::NetworkRules>& all,
                      const std::vector<firewall::PortForward>& p) override {
        ++syncs;
        nets.clear();
        for (const auto& n : all) nets[n.id] = n;
        ports = p;
        return ok();
    }
    Result<void> add_ports(const std::vector<firewall::PortForward>& p) override {
        if (fail_ports) return Error::sys(EEXIST, "add element inet cnetd published");
        ports.insert(ports.end(), p.begin(), p.end());
        return ok();
    }
    Result<void> remove_ports(const std::vector<firewall::PortForward>& p) override {
        for (const auto& x : p) std::erase(ports, x);
        return ok();
    }
    // check_ports() refuses with this error when set (a conflict only the firewall sees).
    std::optional<Error> refuse_ports;
    int port_checks = 0;
    Result<void> check_ports(const std::vector<firewall::PortForward>&) override {
        ++port_checks;
        if (refuse_ports) return *refuse_ports;
        return ok();
    }
    Result<std::string> show() override { return std::string("fake"); }
    int monitor_fd() override { return -1; }
    Result<bool> handle_events() override { return false; }
    uint64_t repairs() const override { return 0; }
    std::string name() const override { return "fake"; }
};

}  // namespace cnetd::test
