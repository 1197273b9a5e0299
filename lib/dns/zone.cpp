#include "dns/zone.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace cnetd::dns {

namespace {

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

// Transparent hashing, so that lookups by string_view do not build a std::string.
struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

struct V6Hash {
    size_t operator()(const Ipv6& a) const noexcept {
        uint64_t hi = 0, lo = 0;
        std::memcpy(&hi, a.bytes().data(), 8);
        std::memcpy(&lo, a.bytes().data() + 8, 8);
        return std::hash<uint64_t>{}(hi ^ (lo * 0x9E3779B97F4A7C15ULL));
    }
};

struct Addrs {
    std::vector<Ipv4> v4;
    std::vector<Ipv6> v6;
};

template <class T>
void sort_unique(std::vector<T>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Docker's buildEndpointDNSNames: name, aliases, short endpoint id, short container id.
std::vector<std::string> names_of(const HostEntry& h) {
    std::vector<std::string> out;
    out.reserve(3 + h.aliases.size());
    out.push_back(lowered(h.name));
    for (const auto& a : h.aliases) out.push_back(lowered(a));
    out.push_back(lowered(std::string_view(h.endpoint_id).substr(0, 12)));
    if (!h.container_id.empty())
        out.push_back(lowered(std::string_view(h.container_id).substr(0, 12)));
    std::erase(out, std::string());
    sort_unique(out);
    return out;
}

// The PTR target's host part: the endpoint's name (Docker's), else a short id (a CNI endpoint
// may have no name), so the answer is always a name that resolves back.
std::string ptr_name(const HostEntry& h) {
    if (!h.name.empty()) return h.name;
    const std::string& id = h.container_id.empty() ? h.endpoint_id : h.container_id;
    return lowered(std::string_view(id).substr(0, 12));
}

}  // namespace

struct Zone::Index {
    struct Net {
        std::string name;  // lower-cased network name, for NAME.NETWORK
        std::unordered_map<std::string, Addrs, NameHash, std::equal_to<>> names;
        std::unordered_map<uint32_t, std::string> rev4;  // address → "endpoint.network"
        std::unordered_map<Ipv6, std::string, V6Hash> rev6;
    };
    std::vector<Net> nets;
    std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> by_id;
    size_t names = 0;
};

Zone::Zone(std::vector<NetworkEntry> networks) : nets_(std::move(networks)) {
    auto index = std::make_shared<Index>();
    index->nets.resize(nets_.size());
    for (uint32_t i = 0; i < nets_.size(); ++i) {
        const NetworkEntry& n = nets_[i];
        Index::Net& net = index->nets[i];
        net.name = lowered(n.name);
        index->by_id.emplace(n.id, i);
        for (const HostEntry& h : n.hosts) {
            for (auto& key : names_of(h)) {
                Addrs& a = net.names[std::move(key)];
                if (h.v4) a.v4.push_back(*h.v4);
                if (h.v6) a.v6.push_back(*h.v6);
            }
            // The first endpoint with an address names it (addresses are unique per network).
            std::string target = ptr_name(h) + "." + n.name;
            if (h.v4) net.rev4.emplace(h.v4->value(), target);
            if (h.v6) net.rev6.emplace(*h.v6, target);
        }
        for (auto& [key, a] : net.names) {  // a name given twice for one endpoint, or a
            sort_unique(a.v4);              // duplicate address: one record each
            sort_unique(a.v6);
        }
        index->names += net.names.size();
        nets_[i].hosts = {};  // indexed: the copies (64-hex ids and all) would only cost memory
    }
    index_ = std::move(index);
}

std::optional<uint32_t> Zone::network_index(std::string_view id) const {
    if (!index_) return std::nullopt;
    auto it = index_->by_id.find(id);
    if (it == index_->by_id.end()) return std::nullopt;
    return it->second;
}

const NetworkEntry& Zone::network(uint32_t index) const {
    if (index >= nets_.size()) throw std::out_of_range("dns::Zone::network: no such index");
    return nets_[index];
}

size_t Zone::networks() const {
    return nets_.size();
}

size_t Zone::names() const {
    return index_ ? index_->names : 0;
}

namespace {

// Adds the addresses of `name` in `net` to `out`; true when the name exists there.
template <class Net>
bool collect(const Net& net, std::string_view name, Found& out) {
    auto it = net.names.find(name);
    if (it == net.names.end()) return false;
    out.found = true;
    out.v4.insert(out.v4.end(), it->second.v4.begin(), it->second.v4.end());
    out.v6.insert(out.v6.end(), it->second.v6.begin(), it->second.v6.end());
    return true;
}

}  // namespace

Found Zone::lookup(std::span<const uint32_t> scope, std::string_view name) const {
    Found out;
    if (!index_ || name.empty()) return out;
    size_t hits = 0;
    for (uint32_t i : scope)
        if (i < index_->nets.size() && collect(index_->nets[i], name, out)) ++hits;
    if (hits == 0) {
        // "a.b.c": "c" then "b.c" as the name of a network in scope, "a.b" then "a" in it.
        for (size_t dot = name.rfind('.'); dot != std::string_view::npos && dot > 0;
             dot = name.rfind('.', dot - 1)) {
            std::string_view host = name.substr(0, dot), network = name.substr(dot + 1);
            for (uint32_t i : scope) {
                if (i >= index_->nets.size() || index_->nets[i].name != network) continue;
                if (collect(index_->nets[i], host, out)) ++hits;
            }
        }
    }
    if (hits > 1) {  // the same address reached twice (two networks, two splits): once each
        sort_unique(out.v4);
        sort_unique(out.v6);
    }
    return out;
}

std::optional<std::string> Zone::reverse(std::span<const uint32_t> scope, const Ipv4& a) const {
    if (!index_) return std::nullopt;
    for (uint32_t i : scope) {
        if (i >= index_->nets.size()) continue;
        auto it = index_->nets[i].rev4.find(a.value());
        if (it != index_->nets[i].rev4.end()) return it->second;
    }
    return std::nullopt;
}

std::optional<std::string> Zone::reverse(std::span<const uint32_t> scope, const Ipv6& a) const {
    if (!index_) return std::nullopt;
    for (uint32_t i : scope) {
        if (i >= index_->nets.size()) continue;
        auto it = index_->nets[i].rev6.find(a);
        if (it != index_->nets[i].rev6.end()) return it->second;
    }
    return std::nullopt;
}

}  // namespace cnetd::dns
