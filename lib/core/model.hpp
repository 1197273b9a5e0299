// The daemon's model: networks and their endpoints. Values, copied freely: the daemon keeps the
// state once in the engine, once as the last persisted state (store) and once per published
// snapshot for readers, and the endpoints are SHARED between those copies (EndpointMap below), so
// a copy costs O(networks), not O(endpoints + published ports), and a change copies only what it
// changed.
#pragma once

#include <atomic>
#include <cstddef>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/net.hpp"
#include "core/kernel.hpp"
#include "core/ports.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::core {

// Docker's option names that cnetd understands on a network (others are rejected by name).
inline constexpr const char* kOptBridgeName = "com.docker.network.bridge.name";
inline constexpr const char* kOptEnableIcc = "com.docker.network.bridge.enable_icc";
inline constexpr const char* kOptEnableMasquerade =
    "com.docker.network.bridge.enable_ip_masquerade";
inline constexpr const char* kOptHostIpv4 = "com.docker.network.host_ipv4";
inline constexpr const char* kOptHostBinding = "com.docker.network.bridge.host_binding_ipv4";
// "false" turns the embedded resolver (127.0.0.11, docs/dns.md) off on a user-defined network; the
// default network never has it.
inline constexpr const char* kOptEnableDns = "com.docker.network.enable_dns";

// Overlay networks (docs/overlay.md): the size of each node's block of the overlay subnet
// (netctl --host-subnet-size; default 24, flannel's SubnetLen).
inline constexpr const char* kOptHostSubnetSize = "cnetd.overlay.host_subnet_size";

// A remote node of an overlay network, as its lease in etcd says (lib/cluster/records.hpp).
struct OverlayPeer {
    std::string node;  // cluster node-name
    Ipv4 underlay;     // its advertise-address (VTEP)
    Ipv4Cidr block;    // its block of the overlay subnet
    Mac mac;           // its VXLAN device's MAC for this network
    auto operator<=>(const OverlayPeer&) const = default;
};

// What makes a Network an overlay network (driver "overlay", scope "global"). The cluster-wide
// facts come from the network's record in etcd; the node's own from its lease and config.
// Network::subnet/gateway are this node's BLOCK and its first host address, so IPAM, the bridge,
// the firewall and the resolver work on an overlay network exactly as on a bridge network.
struct Overlay {
    Ipv4Cidr subnet;             // the whole overlay subnet (10.200.0.0/16)
    unsigned block_prefix = 24;  // each node's block (kOptHostSubnetSize)
    uint32_t vni = 0;            // VXLAN network identifier, unique per overlay network
    std::string vxlan;           // this node's VXLAN device: "vx-" + id[0..12)
    Mac mac;                     // its MAC: stable, derived from (node, network id)
    std::string node;            // this node's name
    Ipv4 local;                  // this node's advertise-address
    uint16_t port = 4789;        // cluster vxlan-port
    // The remote nodes programmed on the device (sorted by node), persisted so a restarted daemon
    // re-programs them without etcd (nothing is flushed while etcd is away).
    std::vector<OverlayPeer> peers;
    auto operator<=>(const Overlay&) const = default;
};

struct Endpoint {
    std::string id;           // 64 hex characters
    std::string name;         // container name: --name, else the netns file's base name
    std::string netns_path;   // as given (a file in the netns dir, or e.g. /proc/PID/ns/net)
    NetnsId netns_id;         // identity of the namespace, so two paths to it are one target
    std::string host_ifname;  // "veth" + 7 hex
    std::string ifname;       // inside the namespace: "eth0"
    Mac mac;
    Ipv4Cidr address;                // container address with the network's prefix (172.17.0.2/16)
    std::vector<PortBinding> ports;  // published ports, host side chosen
    std::optional<Ipv6Cidr> address6;  // dual-stack networks: fd..::2/64
    std::string container_id;  // CNI_CONTAINERID (CNI attachments are container_id + ifname)
    // Docker 28's --gw-priority: among a namespace's endpoints the highest provides the default
    // route (core/gateway.hpp has the whole rule).
    int gw_priority = 0;
    // --alias (Docker's --network-alias): more names the embedded resolver answers for this
    // endpoint on this network, as given (lookups are case-insensitive). Persisted.
    std::vector<std::string> aliases;
};

// A network's endpoints by id: a copy-on-write map of immutable, shared endpoints.
//
// Copying an EndpointMap is O(1) (the copies share one map); the first change through a copy that
// shares its map copies the map's nodes (pointers, not endpoints: O(n) pointer copies), later
// changes through the same copy are O(log n) until it is copied again. An endpoint is never
// modified in place: put() replaces it with a new one. So the engine, the store's last persisted
// state and every snapshot a reader holds share the Endpoint objects, and "did this endpoint
// change?" is first a pointer comparison (same()).
// Iteration is by id, like std::map; `for (const auto& [id, ep] : m)` gives const Endpoint& ep.
// Threading: an EndpointMap is a value: one thread may change it while other threads read OTHER
// EndpointMaps that share its map or endpoints (the copy-on-write takes care of that); the same
// EndpointMap object is not to be read and changed concurrently.
class EndpointMap {
public:
    using Ptr = std::shared_ptr<const Endpoint>;
    using Map = std::map<std::string, Ptr>;

    class const_iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::pair<const std::string&, const Endpoint&>;
        using reference = value_type;
        using difference_type = std::ptrdiff_t;
        struct pointer {  // it->second: a pair of references held by value
            value_type v;
            const value_type* operator->() const { return &v; }
        };
        const_iterator() = default;
        explicit const_iterator(Map::const_iterator it) : it_(it) {}
        reference operator*() const { return {it_->first, *it_->second}; }
        pointer operator->() const { return {**this}; }
        const_iterator& operator++() {
            ++it_;
            return *this;
        }
        const_iterator operator++(int) {
            auto old = *this;
            ++it_;
            return old;
        }
        bool operator==(const const_iterator& o) const { return it_ == o.it_; }
        const Ptr& ptr() const { return it_->second; }
        Map::const_iterator base() const { return it_; }

    private:
        Map::const_iterator it_;
    };

    const_iterator begin() const { return const_iterator(map().begin()); }
    const_iterator end() const { return const_iterator(map().end()); }
    const_iterator find(const std::string& id) const { return const_iterator(map().find(id)); }
    size_t size() const { return map_ ? map_->size() : 0; }
    bool empty() const { return size() == 0; }
    size_t count(const std::string& id) const { return map().count(id); }
    // Like std::map::at: std::out_of_range if absent.
    const Endpoint& at(const std::string& id) const { return *map().at(id); }
    // The shared endpoint, nullptr if absent.
    Ptr ptr(const std::string& id) const {
        auto it = map().find(id);
        return it == map().end() ? nullptr : it->second;
    }

    // Inserts or replaces the endpoint with ep.id.
    void put(Endpoint ep) { put(std::make_shared<const Endpoint>(std::move(ep))); }
    void put(Ptr ep);
    // Removes the endpoint with `id`; false if there was none.
    bool erase(const std::string& id);
    void erase(const_iterator it) { erase(std::string(it.base()->first)); }
    void clear() { map_.reset(); }

    // Both hold the very same map (so the same endpoints): nothing changed between them.
    bool shares_with(const EndpointMap& o) const { return map_ == o.map_; }

private:
    static const Map& empty_map() {
        static const Map m;
        return m;
    }
    const Map& map() const { return map_ ? *map_ : empty_map(); }
    Map& own();  // the map, copied first if another EndpointMap shares it

    std::shared_ptr<Map> map_;  // null: empty; shared between copies, changed only when not
};

struct Network {
    std::string id;    // 64 hex characters
    std::string name;  // "bridge" for the default network
    std::string bridge;
    Ipv4Cidr subnet;  // host bits zero
    Ipv4 gateway;
    std::optional<Ipv4Cidr> ip_range;  // addresses for endpoints come from here (fixed-cidr)
    unsigned mtu = 1500;
    bool is_default = false;
    bool internal = false;             // --internal: no traffic beyond the subnet, no default route
    bool icc = true;                   // inter-container communication on this bridge
    bool masquerade = true;            // NAT traffic leaving through other interfaces
    std::optional<Ipv4> host_ipv4;     // SNAT to this address instead of MASQUERADE
    std::optional<Ipv4> host_binding;  // default host address of published ports (nullopt: all)
    bool bridge_adopted = false;       // the bridge existed before us: left in place on removal
    std::string created;               // RFC 3339, UTC
    std::map<std::string, std::string> options;  // Docker-style driver options, as inspect shows
    EndpointMap endpoints;                       // by endpoint id

    // Dual stack (--ipv6): subnet6 set means every endpoint gets an IPv6 address too.
    std::optional<Ipv6Cidr> subnet6;
    Ipv6 gateway6;
    std::optional<Ipv6Cidr> ip_range6;
    std::map<std::string, std::string> labels;         // --label k=v
    std::map<std::string, std::string> aux_addresses;  // --aux-address name=IP (never handed out)
    firewall::GatewayMode mode4 = firewall::GatewayMode::Nat;
    firewall::GatewayMode mode6 = firewall::GatewayMode::Nat;
    bool inhibit_ipv4 = false;         // com.docker.network.bridge.inhibit_ipv4
    std::string iface_prefix = "eth";  // com.docker.network.container_iface_prefix
    // The NetworkDriver that made it (core/driver.hpp), by name; state files written before
    // drivers existed load as "bridge".
    std::string driver = "bridge";
    // The embedded resolver (docs/dns.md): user-defined networks have it unless created with
    // com.docker.network.enable_dns=false; the default network never. State files written before
    // it existed load with dns = !is_default.
    bool dns = true;
    // Overlay networks only (driver "overlay"): see Overlay. nullopt for bridge networks.
    std::optional<Overlay> overlay;
    // Docker's Scope: "global" for overlay networks (every node of the cluster has them), else
    // "local".
    const char* scope() const { return overlay ? "global" : "local"; }

    Ipv4Cidr gateway_cidr() const { return {gateway, subnet.prefix()}; }
    std::optional<Ipv6Cidr> gateway6_cidr() const {
        if (!subnet6) return std::nullopt;
        return Ipv6Cidr{gateway6, subnet6->prefix()};
    }
};

inline EndpointMap::Map& EndpointMap::own() {
    if (!map_) {
        map_ = std::make_shared<Map>();
    } else if (map_.use_count() > 1) {
        map_ = std::make_shared<Map>(*map_);
    } else {
        // Sole owner: other threads' reads of this map happened before they dropped their
        // references (a release decrement); this acquire orders our writes after them.
        std::atomic_thread_fence(std::memory_order_acquire);
    }
    return *map_;
}

inline void EndpointMap::put(Ptr ep) {
    std::string id = ep->id;
    own().insert_or_assign(std::move(id), std::move(ep));
}

inline bool EndpointMap::erase(const std::string& id) {
    if (!count(id)) return false;
    own().erase(id);
    return true;
}

}  // namespace cnetd::core
