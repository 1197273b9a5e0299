#include "store/file_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "base/failpoint.hpp"
#include "base/log.hpp"
#include "base/opstats.hpp"

namespace cnetd::store {

using nlohmann::json;

namespace {

constexpr int kFormatVersion = 2;  // 1: the whole state rewritten per save (read for migration)

// CRC-32 (IEEE 802.3), table-driven: detects torn or bit-flipped journal records.
uint32_t crc32(const std::string& s) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char ch : s) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

const char* mode_str(firewall::GatewayMode m) {
    switch (m) {
        case firewall::GatewayMode::Nat: return "nat";
        case firewall::GatewayMode::NatUnprotected: return "nat-unprotected";
        case firewall::GatewayMode::Routed: return "routed";
        case firewall::GatewayMode::Isolated: return "isolated";
    }
    return "nat";
}

firewall::GatewayMode parse_mode(const std::string& s) {
    if (s == "nat") return firewall::GatewayMode::Nat;
    if (s == "nat-unprotected") return firewall::GatewayMode::NatUnprotected;
    if (s == "routed") return firewall::GatewayMode::Routed;
    if (s == "isolated") return firewall::GatewayMode::Isolated;
    throw std::runtime_error("gateway mode: unknown value \"" + s + "\"");
}

json ports_json(const std::vector<core::PortBinding>& ports) {
    json out = json::array();
    for (const auto& b : ports) {
        json j = {{"proto", core::to_string(b.proto)},
                  {"host", {b.host.first, b.host.last}},
                  {"container", {b.container.first, b.container.last}}};
        if (b.host_ip) j["host_ip"] = b.host_ip->str();
        if (b.ipv6) j["ipv6"] = true;
        if (b.host_ip6) j["host_ip6"] = b.host_ip6->str();
        out.push_back(j);
    }
    return out;
}

json to_json(const core::Endpoint& e) {
    json j = {{"id", e.id},
              {"ports", ports_json(e.ports)},
              {"name", e.name},
              {"netns_path", e.netns_path},
              {"netns_dev", e.netns_id.dev},
              {"netns_ino", e.netns_id.ino},
              {"host_ifname", e.host_ifname},
              {"ifname", e.ifname},
              {"mac", e.mac.str()},
              {"address", e.address.str()},
              {"container_id", e.container_id}};
    if (e.gw_priority != 0) j["gw_priority"] = e.gw_priority;
    if (!e.aliases.empty()) j["aliases"] = e.aliases;
    if (e.address6) j["address6"] = e.address6->str();
    return j;
}

json overlay_json(const core::Overlay& o) {
    json peers = json::array();
    for (const auto& p : o.peers)
        peers.push_back({{"node", p.node},
                         {"underlay", p.underlay.str()},
                         {"block", p.block.str()},
                         {"mac", p.mac.str()}});
    return {{"subnet", o.subnet.str()},
            {"block_prefix", o.block_prefix},
            {"vni", o.vni},
            {"vxlan", o.vxlan},
            {"mac", o.mac.str()},
            {"node", o.node},
            {"local", o.local.str()},
            {"port", o.port},
            {"peers", std::move(peers)}};
}

// A network without its endpoints (journal put_net records, and the snapshot's base).
json header_json(const core::Network& n) {
    json j = {{"id", n.id},
              {"name", n.name},
              {"bridge", n.bridge},
              {"subnet", n.subnet.str()},
              {"gateway", n.gateway.str()},
              {"mtu", n.mtu},
              {"is_default", n.is_default},
              {"internal", n.internal},
              {"icc", n.icc},
              {"masquerade", n.masquerade},
              {"bridge_adopted", n.bridge_adopted},
              {"created", n.created},
              {"options", n.options},
              {"labels", n.labels},
              {"aux_addresses", n.aux_addresses},
              {"mode4", mode_str(n.mode4)},
              {"mode6", mode_str(n.mode6)},
              {"inhibit_ipv4", n.inhibit_ipv4},
              {"iface_prefix", n.iface_prefix},
              {"driver", n.driver},
              {"dns", n.dns}};
    if (n.ip_range) j["ip_range"] = n.ip_range->str();
    if (n.host_ipv4) j["host_ipv4"] = n.host_ipv4->str();
    if (n.host_binding) j["host_binding"] = n.host_binding->str();
    if (n.subnet6) {
        j["subnet6"] = n.subnet6->str();
        j["gateway6"] = n.gateway6.str();
    }
    if (n.ip_range6) j["ip_range6"] = n.ip_range6->str();
    if (n.overlay) j["overlay"] = overlay_json(*n.overlay);
    return j;
}

json to_json(const core::Network& n) {
    json j = header_json(n);
    json eps = json::array();
    for (const auto& [id, e] : n.endpoints) eps.push_back(to_json(e));
    j["endpoints"] = std::move(eps);
    return j;
}

// Field readers throw; load() turns that into one error naming the file.
template <class T>
T parsed(Result<T> r, const char* field) {
    if (!r.ok()) throw std::runtime_error(fmt::format("{}: {}", field, r.error().message()));
    return std::move(r).value();
}

// A short rendering of a bad value for an error message.
std::string shown(const json& v) {
    std::string s = v.dump();
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// `v` (the value of field `name`) as T, checked: the right JSON type and, for integers, in T's
// range. nlohmann's own get<> would wrap 70000 into a uint16_t or -1 into an unsigned silently, and
// its type_error does not name the field; every failure here throws a message naming the field and
// the value.
template <class T>
T as(const json& v, std::string_view name) {
    auto bad = [&](std::string_view expected) {
        return std::runtime_error(fmt::format("{}: expected {}, got {}", name, expected, shown(v)));
    };
    if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_boolean()) throw bad("true or false");
        return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
        static_assert(std::is_unsigned_v<T>, "only unsigned integer fields exist");
        if (!v.is_number_unsigned() || v.get<uint64_t>() > std::numeric_limits<T>::max())
            throw bad(fmt::format("an integer 0..{}", uint64_t{std::numeric_limits<T>::max()}));
        return static_cast<T>(v.get<uint64_t>());
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) throw bad("a string");
        return v.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
        if (!v.is_array()) throw bad("an array of strings");
        T out;
        for (size_t i = 0; i < v.size(); ++i)
            out.push_back(as<std::string>(v[i], fmt::format("{}[{}]", name, i)));
        return out;
    } else {
        static_assert(std::is_same_v<T, std::map<std::string, std::string>>);
        if (!v.is_object()) throw bad("an object of strings");
        T out;
        for (const auto& [k, x] : v.items())
            out.emplace(k, as<std::string>(x, fmt::format("{}.{}", name, k)));
        return out;
    }
}

// The member `name` of object `j` (missing: an error naming it).
const json& member(const json& j, const char* name) {
    if (!j.is_object())
        throw std::runtime_error(fmt::format("expected an object, got {}", shown(j)));
    auto it = j.find(name);
    if (it == j.end()) throw std::runtime_error(fmt::format("{}: missing", name));
    return *it;
}

template <class T>
T field(const json& j, const char* name) {
    return as<T>(member(j, name), name);
}

// field() for an optional member: `fallback` when absent.
template <class T>
T field_or(const json& j, const char* name, T fallback) {
    return j.is_object() && j.contains(name) ? field<T>(j, name) : std::move(fallback);
}

// The string member `name` of `j` read with `parse` (Ipv4::parse, Mac::parse, ...); errors name it.
template <class Parse>
auto field_parsed(const json& j, const char* name, Parse parse) {
    return parsed(parse(field<std::string>(j, name)), name);
}

// field_parsed() for an optional member: `out` is set only when `name` is present.
template <class T, class Parse>
void optional_parsed(const json& j, const char* name, Parse parse, std::optional<T>& out) {
    if (j.contains(name)) out = field_parsed(j, name, parse);
}

// j[name] as an array (for iteration), checked.
const json& array_field(const json& j, const char* name) {
    const json& v = member(j, name);
    if (!v.is_array())
        throw std::runtime_error(fmt::format("{}: expected an array, got {}", name, shown(v)));
    return v;
}

// One end (i = 0: first, 1: last) of the [first, last] port range j[name].
uint16_t port_at(const json& j, const char* name, size_t i) {
    const json& r = array_field(j, name);
    if (r.size() != 2)
        throw std::runtime_error(fmt::format("{}: expected [first, last], got {}", name, shown(r)));
    return as<uint16_t>(r[i], name);
}

core::Endpoint endpoint_from(const json& j) {
    using S = std::string;
    core::Endpoint e;
    e.id = field<S>(j, "id");
    e.name = field<S>(j, "name");
    e.netns_path = field<S>(j, "netns_path");
    e.netns_id.dev = field<uint64_t>(j, "netns_dev");
    e.netns_id.ino = field<uint64_t>(j, "netns_ino");
    e.host_ifname = field<S>(j, "host_ifname");
    e.ifname = field<S>(j, "ifname");
    e.mac = field_parsed(j, "mac", Mac::parse);
    e.address = field_parsed(j, "address", Ipv4Cidr::parse);
    optional_parsed(j, "address6", Ipv6Cidr::parse, e.address6);
    e.container_id = field_or<S>(j, "container_id", "");
    if (j.contains("gw_priority")) {  // signed: the one such field
        const json& v = j["gw_priority"];
        if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
            throw std::runtime_error(
                fmt::format("gw_priority: expected an integer {}..{}, got {}", INT32_MIN,
                            INT32_MAX, shown(v)));
        e.gw_priority = static_cast<int>(v.get<int64_t>());
    }
    e.aliases = field_or(j, "aliases", std::vector<S>());  // absent before the resolver existed
    if (!j.contains("ports")) return e;
    for (const auto& pj : array_field(j, "ports")) {
        core::PortBinding b;
        b.proto = field_parsed(pj, "proto", core::parse_proto);
        optional_parsed(pj, "host_ip", Ipv4::parse, b.host_ip);
        b.ipv6 = field_or(pj, "ipv6", false);
        optional_parsed(pj, "host_ip6", Ipv6::parse, b.host_ip6);
        b.host = {port_at(pj, "host", 0), port_at(pj, "host", 1)};
        b.container = {port_at(pj, "container", 0), port_at(pj, "container", 1)};
        if (b.host.first == 0 || b.host.last < b.host.first || b.container.first == 0 ||
            b.container.size() != b.host.size()) {
            throw std::runtime_error("ports: inconsistent mapping " + pj.dump());
        }
        e.ports.push_back(b);
    }
    return e;
}

// Overlay networks' "overlay" object (absent in files written before overlay networks existed,
// and on bridge networks).
core::Overlay overlay_from(const json& j) {
    using S = std::string;
    core::Overlay o;
    o.subnet = field_parsed(j, "subnet", Ipv4Cidr::parse_network);
    o.block_prefix = field<unsigned>(j, "block_prefix");
    o.vni = field<uint32_t>(j, "vni");
    o.vxlan = field<S>(j, "vxlan");
    o.mac = field_parsed(j, "mac", Mac::parse);
    o.node = field<S>(j, "node");
    o.local = field_parsed(j, "local", Ipv4::parse);
    o.port = field<uint16_t>(j, "port");
    for (const auto& pj : array_field(j, "peers")) {
        core::OverlayPeer p;
        p.node = field<S>(pj, "node");
        p.underlay = field_parsed(pj, "underlay", Ipv4::parse);
        p.block = field_parsed(pj, "block", Ipv4Cidr::parse_network);
        p.mac = field_parsed(pj, "mac", Mac::parse);
        o.peers.push_back(std::move(p));
    }
    return o;
}

core::Network header_from(const json& j) {
    using S = std::string;
    using Map = std::map<std::string, std::string>;
    core::Network n;
    n.id = field<S>(j, "id");
    n.name = field<S>(j, "name");
    n.bridge = field<S>(j, "bridge");
    n.subnet = field_parsed(j, "subnet", Ipv4Cidr::parse_network);
    n.gateway = field_parsed(j, "gateway", Ipv4::parse);
    optional_parsed(j, "ip_range", Ipv4Cidr::parse_network, n.ip_range);
    n.mtu = field<unsigned>(j, "mtu");
    n.is_default = field<bool>(j, "is_default");
    n.internal = field_or(j, "internal", false);
    n.icc = field_or(j, "icc", true);
    n.masquerade = field_or(j, "masquerade", true);
    optional_parsed(j, "host_binding", Ipv4::parse, n.host_binding);
    optional_parsed(j, "host_ipv4", Ipv4::parse, n.host_ipv4);
    n.bridge_adopted = field<bool>(j, "bridge_adopted");
    n.created = field<S>(j, "created");
    n.options = field<Map>(j, "options");
    // Fields added with format 2 (dual stack, labels...): absent in v1 files, defaults then.
    if (j.contains("subnet6")) {
        n.subnet6 = field_parsed(j, "subnet6", Ipv6Cidr::parse_network);
        n.gateway6 = field_parsed(j, "gateway6", Ipv6::parse);
    }
    optional_parsed(j, "ip_range6", Ipv6Cidr::parse_network, n.ip_range6);
    n.labels = field_or(j, "labels", Map());
    n.aux_addresses = field_or(j, "aux_addresses", Map());
    n.mode4 = parse_mode(field_or<S>(j, "mode4", "nat"));
    n.mode6 = parse_mode(field_or<S>(j, "mode6", "nat"));
    n.inhibit_ipv4 = field_or(j, "inhibit_ipv4", false);
    n.iface_prefix = field_or<S>(j, "iface_prefix", "eth");
    n.driver = field_or<S>(j, "driver", "bridge");  // absent before drivers existed
    n.dns = field_or(j, "dns", !n.is_default);      // absent before the resolver existed
    if (j.contains("overlay")) {
        try {
            n.overlay = overlay_from(j["overlay"]);
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(fmt::format("overlay.{}", e.what()));
        }
    }
    return n;
}

core::Network network_from(const json& j) {
    core::Network n = header_from(j);
    for (const auto& ej : array_field(j, "endpoints")) {
        core::Endpoint e = endpoint_from(ej);
        n.endpoints.put(std::move(e));
    }
    return n;
}

bool same_endpoint(const core::Endpoint& a, const core::Endpoint& b) {
    return a.id == b.id && a.name == b.name && a.netns_path == b.netns_path &&
           a.netns_id == b.netns_id && a.host_ifname == b.host_ifname && a.ifname == b.ifname &&
           a.mac == b.mac && a.address == b.address && a.ports == b.ports &&
           a.address6 == b.address6 && a.container_id == b.container_id &&
           a.gw_priority == b.gw_priority && a.aliases == b.aliases;
}

Result<void> write_all(int fd, const std::string& data, const std::string& path) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t w = ::write(fd, data.data() + off, data.size() - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return Error::sys(errno, "write " + path);
        }
        off += static_cast<size_t>(w);
    }
    return ok();
}

Result<std::optional<std::string>> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return std::optional<std::string>{};
        return Error::sys(errno, "read " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return std::optional<std::string>(ss.str());
}

// Makes the directory's entries (a created or renamed file) durable.
Result<void> fsync_dir(const std::string& dir) {
    CNETD_TRY(failpoint::hit_error("store.dir.fsync.error"));
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d.valid() || ::fsync(d.get()) != 0) return Error::sys(errno, "fsync directory " + dir);
    return ok();
}

// write-temp + fsync + rename + fsync of the directory: the file is either old or new.
Result<void> replace_file(const std::string& dir, const std::string& path, const std::string& data,
                          const char* fp_before_rename) {
    const std::string tmp = path + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return Error::sys(errno, "create " + tmp);
    CNETD_TRY(write_all(fd.get(), data, tmp));
    if (::fsync(fd.get()) != 0) return Error::sys(errno, "fsync " + tmp);
    fd.reset();
    failpoint::hit(fp_before_rename);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error::sys(err, "rename " + tmp + " to " + path);
    }
    return fsync_dir(dir);
}

// One parsed journal record, or why it is not one.
struct Record {
    bool valid = false;
    size_t end = 0;  // offset after its newline
    json body;
    // Set when length and checksum are right but the JSON does not parse (e.g. a number out of
    // range, "1e999"): no torn write produces that, so it is corruption, never cut off as a tail.
    std::string json_error;
};

Record parse_record(const std::string& data, size_t off) {
    Record r;
    size_t nl = data.find('\n', off);
    if (nl == std::string::npos) return r;  // torn: no end
    std::string line = data.substr(off, nl - off);
    unsigned long len = 0;
    unsigned int crc = 0;
    int consumed = 0;
    if (std::sscanf(line.c_str(), "J %lu %8x %n", &len, &crc, &consumed) != 2 || consumed <= 0)
        return r;
    std::string payload = line.substr(static_cast<size_t>(consumed));
    if (payload.size() != len || crc32(payload) != crc) return r;
    try {
        r.body = json::parse(payload);
    } catch (const json::exception& e) {
        r.json_error = e.what();
        return r;
    }
    r.valid = true;
    r.end = nl + 1;
    return r;
}

// Adds the networks of a parsed snapshot to `nets`; returns its seq. Sets `v1` for a version 1
// file. Throws (a message naming the field) on anything malformed.
uint64_t apply_snapshot(const json& j, std::map<std::string, core::Network>& nets, bool& v1) {
    const unsigned version = field<unsigned>(j, "version");
    if (version != 1 && version != kFormatVersion)
        throw std::runtime_error(fmt::format("format version {} is not supported (expected {})",
                                             version, kFormatVersion));
    v1 = version == 1;
    const json& list = array_field(j, "networks");
    for (size_t i = 0; i < list.size(); ++i) {
        try {
            core::Network n = network_from(list[i]);
            std::string id = n.id;
            nets[id] = std::move(n);
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("networks[{}]: {}", i, e.what()));
        }
    }
    return field_or<uint64_t>(j, "seq", 0);
}

// Applies one journal op (put_net, del_net, put_ep, del_ep) to `nets`. Throws as above.
void apply_op(const json& op, std::map<std::string, core::Network>& nets) {
    const std::string kind = field<std::string>(op, "op");
    if (kind == "put_net") {
        core::Network h = header_from(member(op, "net"));
        auto it = nets.find(h.id);
        if (it != nets.end()) h.endpoints = std::move(it->second.endpoints);
        std::string id = h.id;
        nets[id] = std::move(h);
    } else if (kind == "del_net") {
        nets.erase(field<std::string>(op, "id"));
    } else if (kind == "put_ep") {
        auto it = nets.find(field<std::string>(op, "net"));
        if (it == nets.end()) throw std::runtime_error("put_ep for an unknown network");
        it->second.endpoints.put(endpoint_from(member(op, "ep")));
    } else if (kind == "del_ep") {
        auto it = nets.find(field<std::string>(op, "net"));
        if (it != nets.end()) it->second.endpoints.erase(field<std::string>(op, "id"));
    } else {
        throw std::runtime_error("unknown op \"" + kind + "\"");
    }
}

std::mutex g_read_only_mu;
std::string g_read_only;  // guarded by g_read_only_mu: the last store's reason, "" = writable

}  // namespace

std::string read_only_reason() {
    std::lock_guard lock(g_read_only_mu);
    return g_read_only;
}

FileStateStore::FileStateStore(std::string dir) : dir_(std::move(dir)) {}

Result<void> FileStateStore::init() {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
        return Error::sys(errno, "create state dir " + dir_);
    }
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0) return Error::sys(errno, "stat state dir " + dir_);
    if (!S_ISDIR(st.st_mode)) {
        return Error::invalid(fmt::format("state dir {} is not a directory", dir_));
    }
    return ok();
}

Result<std::vector<core::Network>> FileStateStore::load() {
    loaded_ = false;
    torn_tail_ = false;
    journal_.reset();
    std::map<std::string, core::Network> nets;
    uint64_t snap_seq = 0;
    need_compact_ = false;

    CNETD_TRY_ASSIGN(auto snap, read_file(path()));
    if (snap) {
        try {
            bool v1 = false;
            snap_seq = apply_snapshot(json::parse(*snap), nets, v1);
            need_compact_ = v1;  // migrate on the first save
        } catch (const std::exception& e) {
            // Any nlohmann exception (parse_error, out_of_range such as "1e999", type_error) or
            // field error: never drop or overwrite a state file we cannot read, refuse to start.
            return Error::invalid(fmt::format("{} is corrupt: {} (move it away to start from scratch)",
                                              path(), e.what()));
        }
        snapshot_bytes_ = snap->size();
    } else {
        need_compact_ = true;  // no snapshot yet: the first save writes one
        snapshot_bytes_ = 0;
    }
    uint64_t seq = snap_seq;
    CNETD_TRY(replay_journal(nets, snap_seq, seq));
    seq_ = seq;
    last_ = nets;
    loaded_ = true;
    // Every file was read back whole: whatever made the store read-only is behind us.
    set_read_only("");
    std::vector<core::Network> out;
    out.reserve(nets.size());
    for (auto& [id, n] : nets) out.push_back(std::move(n));
    return out;
}

Result<void> FileStateStore::replay_journal(std::map<std::string, core::Network>& nets,
                                            uint64_t snap_seq, uint64_t& seq) {
    journal_bytes_ = 0;
    CNETD_TRY_ASSIGN(auto jr, read_file(journal_path()));
    if (!jr) return ok();
    const std::string& data = *jr;
    size_t off = 0;
    while (off < data.size()) {
        Record r = parse_record(data, off);
        auto corrupt = [&](const std::string& why) {
            return Error::invalid(fmt::format(
                "{} is corrupt: record at offset {}: {} (move it away to start from the snapshot)",
                journal_path(), off, why));
        };
        if (!r.json_error.empty()) return corrupt(r.json_error);
        if (!r.valid) break;
        try {
            const uint64_t rseq = field<uint64_t>(r.body, "seq");
            if (rseq > snap_seq) {
                for (const auto& op : array_field(r.body, "ops")) apply_op(op, nets);
                seq = rseq;
            }
        } catch (const std::exception& e) {
            return corrupt(e.what());
        }
        off = r.end;
    }
    journal_bytes_ = off;
    if (off == data.size()) return ok();
    // Is there a valid record after the bad one? Then this is not a torn final write.
    for (size_t p = data.find("\nJ ", off); p != std::string::npos; p = data.find("\nJ ", p + 1)) {
        if (parse_record(data, p + 1).valid) {
            return Error::invalid(fmt::format(
                "{} is corrupt: bad record at offset {} followed by valid records (move "
                "it away to start from the snapshot)",
                journal_path(), off));
        }
    }
    // A torn final record: the save that wrote it never returned. Keep a copy, cut it off.
    torn_tail_ = true;
    const std::string keep = fmt::format("{}.torn-{}", journal_path(), std::time(nullptr));
    std::ofstream(keep, std::ios::binary) << data.substr(off);
    log::warn(
        "state: {} ends with a torn record ({} bytes at offset {}, an interrupted save); cut "
        "off, copy kept in {}",
        journal_path(), data.size() - off, off, keep);
    if (::truncate(journal_path().c_str(), static_cast<off_t>(off)) != 0)
        return Error::sys(errno, "truncate " + journal_path());
    return ok();
}

Result<void> FileStateStore::open_journal() {
    if (journal_.valid()) return ok();
    const std::string jp = journal_path();
    journal_.reset(::open(jp.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (journal_.valid()) return ok();
    if (errno != ENOENT) return Error::sys(errno, "open " + jp);
    // A new journal (next to an existing snapshot, or the first one): its directory entry must be
    // durable before a record in it is acknowledged, or a crash could lose the file, and with it
    // saves that were reported done. So: create, then fsync the directory.
    UniqueFd fd(::open(jp.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd.valid()) return Error::sys(errno, "create " + jp);
    CNETD_TRY(fsync_dir(dir_));
    journal_ = std::move(fd);
    return ok();
}

Result<void> FileStateStore::append(const std::string& payload) {
    CNETD_TRY(open_journal());
    std::string rec = fmt::format("J {} {:08x} {}\n", payload.size(), crc32(payload), payload);
    failpoint::hit("store.journal.append.before");
    CNETD_TRY(failpoint::hit_error("store.journal.append.error"));
    if (failpoint::enabled()) {
        // A torn write for crash tests: half the record reaches the file, then the hit may kill.
        if (auto half = failpoint::hit_error("store.journal.torn"); !half.ok()) {
            (void)write_all(journal_.get(), rec.substr(0, rec.size() / 2), journal_path());
            ::fsync(journal_.get());
            failpoint::hit("store.journal.torn.kill");
            return std::move(half).error();
        }
    }
    CNETD_TRY(write_all(journal_.get(), rec, journal_path()));
    failpoint::hit("store.journal.append.written");
    // Timed for the metrics (cnetd_journal_fsync_duration_seconds): the cost every save pays.
    const auto t0 = std::chrono::steady_clock::now();
    if (::fdatasync(journal_.get()) != 0) return Error::sys(errno, "fsync " + journal_path());
    opstats::observe("journal_fsync", std::chrono::duration<double>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count());
    failpoint::hit("store.journal.append.after");
    journal_bytes_ += rec.size();
    return ok();
}

Result<void> FileStateStore::compact(const std::vector<core::Network>& networks) {
    failpoint::hit("store.compact.before");
    json nets = json::array();
    for (const auto& n : networks) nets.push_back(to_json(n));
    std::string data =
        json{{"version", kFormatVersion}, {"seq", seq_}, {"networks", nets}}.dump(1) + "\n";
    CNETD_TRY(replace_file(dir_, path(), data, "store.compact.before_rename"));
    failpoint::hit("store.compact.renamed");
    // The snapshot covers every record so far: start the journal afresh.
    CNETD_TRY(open_journal());
    if (::ftruncate(journal_.get(), 0) != 0) return Error::sys(errno, "truncate " + journal_path());
    if (::fsync(journal_.get()) != 0) return Error::sys(errno, "fsync " + journal_path());
    failpoint::hit("store.compact.after");
    snapshot_bytes_ = data.size();
    journal_bytes_ = 0;
    ++compactions_;
    opstats::count("journal_compactions");
    need_compact_ = false;
    return ok();
}

void FileStateStore::cut_back() {
    // A half-written record may be on disk: cut the journal back so the next append does not
    // follow garbage (which load() would take for corruption: a bad record before good ones).
    if (!journal_.valid()) return;
    int err = 0;
    if (auto fp = failpoint::hit_error("store.journal.truncate.error"); !fp.ok())
        err = EIO;
    else if (::ftruncate(journal_.get(), static_cast<off_t>(journal_bytes_)) != 0)
        err = errno;
    if (err == 0) return;
    // The journal may now end in garbage we cannot remove. Appending after it would make the
    // file unloadable, so accept no more mutations; the next start cuts the garbage off as a
    // torn tail and loads everything acknowledged so far.
    set_read_only(fmt::format("truncate {} to {} bytes after a failed append: {}", journal_path(),
                              journal_bytes_, std::strerror(err)));
    log::error("state: store is now read-only (mutations are refused until cnetd restarts): {}",
               read_only_);
}

void FileStateStore::set_read_only(std::string reason) {
    read_only_ = reason;
    std::lock_guard lock(g_read_only_mu);
    g_read_only = std::move(reason);
}

Result<void> FileStateStore::save(const std::vector<core::Network>& networks) {
    if (!read_only_.empty()) {
        return Error(ErrorKind::Unavailable,
                     fmt::format("save state: the state store is read-only ({}); restart cnetd",
                                 read_only_));
    }
    if (!loaded_) {
        // Never write over files we have not read (they may be corrupt, or hold other state).
        auto r = load();
        if (!r.ok()) return std::move(r).error().wrap("save state: refusing to overwrite");
        need_compact_ = true;  // the caller's state replaces whatever was there
    }
    // The difference to the last saved state, as journal ops.
    json ops = json::array();
    std::map<std::string, const core::Network*> now;
    for (const auto& n : networks) now[n.id] = &n;
    for (const auto& [id, old] : last_) {
        if (!now.count(id)) ops.push_back({{"op", "del_net"}, {"id", id}});
    }
    for (const auto& [id, n] : now) {
        auto it = last_.find(id);
        const core::Network* old = it == last_.end() ? nullptr : &it->second;
        json h = header_json(*n);
        if (!old || header_json(*old) != h) ops.push_back({{"op", "put_net"}, {"net", std::move(h)}});
        // The endpoints are shared with the last saved state (core::EndpointMap): an unchanged
        // map is one pointer comparison, an unchanged endpoint too. So a save costs O(networks +
        // endpoints of the changed network), with no endpoint compared field by field unless it
        // was replaced.
        if (old && old->endpoints.shares_with(n->endpoints)) continue;
        // Both maps are sorted by id: one merge walk.
        static const core::EndpointMap none;
        const core::EndpointMap& before = old ? old->endpoints : none;
        auto o = before.begin(), c = n->endpoints.begin();
        while (o != before.end() || c != n->endpoints.end()) {
            if (c == n->endpoints.end() || (o != before.end() && (*o).first < (*c).first)) {
                ops.push_back({{"op", "del_ep"}, {"net", id}, {"id", (*o).first}});
                ++o;
                continue;
            }
            const bool existed = o != before.end() && (*o).first == (*c).first;
            if (!existed || (o.ptr() != c.ptr() && !same_endpoint(*o.ptr(), *c.ptr())))
                ops.push_back({{"op", "put_ep"}, {"net", id}, {"ep", to_json(*c.ptr())}});
            if (existed) ++o;
            ++c;
        }
    }
    failpoint::hit("store.save.before");
    bool compact_now = need_compact_ || journal_bytes_ > std::max(compact_floor_, snapshot_bytes_);
    if (!ops.empty()) {
        ++seq_;
        auto r = append(json{{"seq", seq_}, {"ops", ops}}.dump());
        if (!r.ok()) {
            --seq_;
            cut_back();
            return r;
        }
    }
    // The journal now matches `networks` (what it did not record was equal already): remember
    // them. O(networks): the endpoints are shared, not copied.
    last_.clear();
    for (const auto& n : networks) last_.emplace(n.id, n);
    failpoint::hit("store.save.after");
    if (compact_now) {
        // The journal is already durable: a failed compaction is logged, retried next time.
        if (auto c = compact(networks); !c.ok()) {
            log::warn("state: compaction failed (the journal still holds everything): {}",
                      c.error().message());
        }
    }
    return ok();
}

Result<std::string> FileStateStore::daemon_id() {
    const std::string p = dir_ + "/daemon-id";
    CNETD_TRY_ASSIGN(auto existing, read_file(p));
    if (existing) {
        std::string id = *existing;
        while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
        bool hex = id.size() == 64 &&
                   id.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex) {
            return Error::invalid(fmt::format(
                "{} is corrupt: expected 64 lower-case hex characters, got \"{}\" (the daemon ID "
                "derives the IPv6 ULA prefix: restore it rather than deleting it)",
                p, id.substr(0, 80)));
        }
        return id;
    }
    std::string id = random_hex(64);
    CNETD_TRY(replace_file(dir_, p, id + "\n", "store.daemon_id.before_rename"));
    return id;
}

}  // namespace cnetd::store
