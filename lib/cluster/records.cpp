#include "cluster/records.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/overlay_driver.hpp"

namespace cnetd::cluster {
namespace {

using nlohmann::json;

// "10.200.1.0-24" (flannel's form: a '/' would make a path level).
std::string block_name(const Ipv4Cidr& b) {
    return fmt::format("{}-{}", b.network().str(), b.prefix());
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == sep) {
            out.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

std::optional<Ipv4Cidr> parse_block_name(const std::string& s) {
    auto dash = s.rfind('-');
    if (dash == std::string::npos) return std::nullopt;
    auto cidr = Ipv4Cidr::parse_network(s.substr(0, dash) + "/" + s.substr(dash + 1));
    if (!cidr) return std::nullopt;
    return *cidr;
}

std::optional<uint32_t> parse_u32(const std::string& s) {
    if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > UINT32_MAX) return std::nullopt;
    return static_cast<uint32_t>(v);
}

// Reads required fields of one record, naming the key and the field in its errors.
class Reader {
public:
    Reader(const std::string& key, const std::string& text) : key_(key) {
        j_ = json::parse(text, nullptr, false);
        if (j_.is_discarded() || !j_.is_object())
            err_ = Error::invalid(fmt::format("{}: value is not a JSON object", key));
    }
    bool ok() const { return !err_; }
    Error error() const { return *err_; }

    std::string str(const char* field, bool required = true) {
        if (!ok()) return {};
        auto it = j_.find(field);
        if (it == j_.end() || !it->is_string()) {
            if (required || it != j_.end()) fail(field, "missing or not a string");
            return {};
        }
        return it->get<std::string>();
    }
    uint64_t num(const char* field, uint64_t max) {
        if (!ok()) return 0;
        auto it = j_.find(field);
        if (it == j_.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max) {
            fail(field, fmt::format("missing or not a number in 0..{}", max));
            return 0;
        }
        return it->get<uint64_t>();
    }
    bool flag(const char* field, bool dflt) {
        if (!ok()) return dflt;
        auto it = j_.find(field);
        if (it == j_.end()) return dflt;
        if (!it->is_boolean()) fail(field, "not a boolean");
        return it->is_boolean() ? it->get<bool>() : dflt;
    }
    std::vector<std::string> strings(const char* field) {
        std::vector<std::string> out;
        if (!ok()) return out;
        auto it = j_.find(field);
        if (it == j_.end()) return out;
        if (!it->is_array()) return fail(field, "not an array of strings"), out;
        for (const auto& v : *it) {
            if (!v.is_string()) return fail(field, "not an array of strings"), out;
            out.push_back(v.get<std::string>());
        }
        return out;
    }
    std::map<std::string, std::string> string_map(const char* field) {
        std::map<std::string, std::string> out;
        if (!ok()) return out;
        auto it = j_.find(field);
        if (it == j_.end()) return out;
        if (!it->is_object()) return fail(field, "not an object of strings"), out;
        for (const auto& [k, v] : it->items()) {
            if (!v.is_string()) return fail(field, "not an object of strings"), out;
            out[k] = v.get<std::string>();
        }
        return out;
    }
    template <typename T, typename Parse>
    T parsed(const char* field, Parse parse) {
        std::string text = str(field);
        if (!ok()) return T{};
        auto r = parse(text);
        if (!r) {
            fail(field, fmt::format("\"{}\": {}", text, r.error().message()));
            return T{};
        }
        return *r;
    }

private:
    void fail(const char* field, const std::string& what) {
        if (!err_) err_ = Error::invalid(fmt::format("{}: field \"{}\": {}", key_, field, what));
    }
    const std::string& key_;
    json j_;
    std::optional<Error> err_;
};

Result<Ipv4> parse_ipv4(const std::string& s) {
    return Ipv4::parse(s);
}
Result<Mac> parse_mac(const std::string& s) {
    return Mac::parse(s);
}
Result<Ipv4Cidr> parse_net(const std::string& s) {
    return Ipv4Cidr::parse_network(s);
}

}  // namespace

std::string network_key(const std::string& name) {
    return std::string(kPrefix) + "networks/" + name;
}
std::string vni_key(uint32_t vni) {
    return fmt::format("{}vni/{}", kPrefix, vni);
}
std::string node_key(const std::string& node) {
    return std::string(kPrefix) + "nodes/" + node;
}
std::string blocks_prefix(const std::string& net_id) {
    return std::string(kPrefix) + "blocks/" + net_id + "/";
}
std::string block_key(const std::string& net_id, const Ipv4Cidr& block) {
    return blocks_prefix(net_id) + block_name(block);
}
std::string endpoints_prefix(const std::string& net_id) {
    return std::string(kPrefix) + "endpoints/" + net_id + "/";
}
std::string endpoint_key(const std::string& net_id, const std::string& node,
                         const std::string& ep_id) {
    return endpoints_prefix(net_id) + node + "/" + ep_id;
}

ParsedKey parse_key(const std::string& key) {
    ParsedKey k;
    const std::string prefix = kPrefix;
    if (key.compare(0, prefix.size(), prefix) != 0) return k;
    auto parts = split(key.substr(prefix.size()), '/');
    for (const auto& p : parts)
        if (p.empty()) return k;
    const std::string& kind = parts[0];
    if (kind == "networks" && parts.size() == 2) {
        k.kind = ParsedKey::Kind::Network;
        k.name = parts[1];
    } else if (kind == "vni" && parts.size() == 2) {
        if (auto v = parse_u32(parts[1])) {
            k.kind = ParsedKey::Kind::Vni;
            k.vni = *v;
        }
    } else if (kind == "nodes" && parts.size() == 2) {
        k.kind = ParsedKey::Kind::Node;
        k.name = parts[1];
    } else if (kind == "blocks" && parts.size() == 3) {
        if (auto b = parse_block_name(parts[2])) {
            k.kind = ParsedKey::Kind::Block;
            k.net_id = parts[1];
            k.block = *b;
        }
    } else if (kind == "endpoints" && parts.size() == 4) {
        k.kind = ParsedKey::Kind::Endpoint;
        k.net_id = parts[1];
        k.name = parts[2];
        k.ep_id = parts[3];
    }
    return k;
}

std::string encode(const core::OverlayNetworkDef& d) {
    json j = {{"id", d.id},
              {"name", d.name},
              {"subnet", d.subnet.str()},
              {"block_prefix", d.block_prefix},
              {"vni", d.vni},
              {"internal", d.internal},
              {"dns", d.dns},
              {"labels", d.labels},
              {"options", d.options},
              {"created", d.created}};
    return j.dump();
}

std::string encode(const NodeRecord& r) {
    json j = {{"name", r.name},
              {"address", r.address.str()},
              {"port", r.port},
              {"started", r.started},
              {"last_seen", r.last_seen}};
    return j.dump();
}

std::string encode(const BlockRecord& r) {
    json j = {{"node", r.node}, {"underlay", r.underlay.str()}, {"mac", r.mac.str()}};
    return j.dump();
}

std::string encode(const EndpointRecord& r) {
    json j = {{"name", r.name},
              {"aliases", r.aliases},
              {"address", r.address.str()},
              {"container_id", r.container_id}};
    return j.dump();
}

Result<core::OverlayNetworkDef> decode_network(const std::string& key, const std::string& text) {
    Reader r(key, text);
    core::OverlayNetworkDef d;
    d.id = r.str("id");
    d.name = r.str("name");
    d.subnet = r.parsed<Ipv4Cidr>("subnet", parse_net);
    d.block_prefix = static_cast<unsigned>(r.num("block_prefix", 32));
    d.vni = static_cast<uint32_t>(r.num("vni", 0xffffff));  // 24-bit VXLAN id
    d.internal = r.flag("internal", false);
    d.dns = r.flag("dns", true);
    d.labels = r.string_map("labels");
    d.options = r.string_map("options");
    d.created = r.str("created", false);
    if (!r.ok()) return r.error();
    if (d.id.empty() || d.name.empty())
        return Error::invalid(
            fmt::format("{}: field \"{}\": empty", key, d.id.empty() ? "id" : "name"));
    if (d.block_prefix <= static_cast<unsigned>(d.subnet.prefix()))
        return Error::invalid(
            fmt::format("{}: field \"block_prefix\": {} is not longer than the subnet's prefix {}",
                        key, d.block_prefix, d.subnet.prefix()));
    return d;
}

Result<NodeRecord> decode_node(const std::string& key, const std::string& text) {
    Reader r(key, text);
    NodeRecord n;
    n.name = r.str("name");
    n.address = r.parsed<Ipv4>("address", parse_ipv4);
    n.port = static_cast<uint16_t>(r.num("port", 65535));
    n.started = r.str("started", false);
    n.last_seen = r.str("last_seen", false);
    if (!r.ok()) return r.error();
    return n;
}

Result<BlockRecord> decode_block(const std::string& key, const std::string& text) {
    Reader r(key, text);
    BlockRecord b;
    b.node = r.str("node");
    b.underlay = r.parsed<Ipv4>("underlay", parse_ipv4);
    b.mac = r.parsed<Mac>("mac", parse_mac);
    if (!r.ok()) return r.error();
    if (b.node.empty()) return Error::invalid(fmt::format("{}: field \"node\": empty", key));
    return b;
}

Result<EndpointRecord> decode_endpoint(const std::string& key, const std::string& text) {
    Reader r(key, text);
    EndpointRecord e;
    e.name = r.str("name");
    e.aliases = r.strings("aliases");
    e.address = r.parsed<Ipv4>("address", parse_ipv4);
    e.container_id = r.str("container_id", false);
    if (!r.ok()) return r.error();
    return e;
}

// One derivation for the MAC the engine gives the device and the one peers are told.
Mac vtep_mac(const std::string& node, const std::string& net_id) {
    return core::overlay_vtep_mac(node, net_id);
}

std::optional<Ipv4Cidr> choose_block(const Ipv4Cidr& subnet, unsigned block_prefix,
                                     const std::vector<Ipv4Cidr>& taken,
                                     std::optional<Ipv4Cidr> own, std::optional<Ipv4Cidr> previous,
                                     const std::function<std::size_t(std::size_t)>& pick) {
    if (block_prefix <= static_cast<unsigned>(subnet.prefix()) || block_prefix > 32)
        return std::nullopt;
    auto fits = [&](const Ipv4Cidr& b) {
        return b.prefix() == static_cast<int>(block_prefix) && subnet.contains(b.addr()) &&
               b.addr() == b.network();
    };
    auto is_free = [&](const Ipv4Cidr& b) {
        return std::none_of(taken.begin(), taken.end(),
                            [&](const Ipv4Cidr& t) { return t.overlaps(b); });
    };
    if (own && fits(*own)) return own;
    if (previous && fits(*previous) && is_free(*previous)) return previous;
    constexpr std::size_t kCandidates = 100;  // flannel: random among the first 100 free
    std::vector<Ipv4Cidr> free;
    const uint64_t count = uint64_t{1} << (block_prefix - subnet.prefix());
    const uint64_t step = uint64_t{1} << (32 - block_prefix);
    for (uint64_t i = 0; i < count && free.size() < kCandidates; ++i) {
        Ipv4Cidr b(Ipv4(static_cast<uint32_t>(subnet.network().value() + i * step)),
                   static_cast<int>(block_prefix));
        if (is_free(b)) free.push_back(b);
    }
    if (free.empty()) return std::nullopt;
    return free[pick(free.size()) % free.size()];
}

}  // namespace cnetd::cluster
