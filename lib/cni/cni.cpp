#include "cni/cni.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>

#include "api/json_parse.hpp"
#include "base/net.hpp"

namespace cnetd::cni {
namespace {

// JSON text of a value for messages, short enough to read.
std::string show(const json& v) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

Error bad_config(std::string msg) {
    return cni_error(kInvalidConfig, std::move(msg));
}
Error unsupported(std::string_view key, const json& v, std::string_view why) {
    return cni_error(kUnsupportedField, fmt::format("{}: {}: {}", key, show(v), why));
}

const char* type_name(const json& v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::boolean:
            return "boolean";
        case json::value_t::string:
            return "string";
        case json::value_t::array:
            return "array";
        case json::value_t::object:
            return "object";
        case json::value_t::discarded:
            return "nothing";
        default:
            return "number";
    }
}

Result<std::string> get_string(const json& v, std::string_view key) {
    if (!v.is_string()) {
        return bad_config(
            fmt::format("{}: expected a string, got {} {}", key, type_name(v), show(v)));
    }
    return v.get<std::string>();
}

// obj[key] as a string into `out` when present.
Result<void> opt_string(const json& obj, const char* key, const std::string& path,
                        std::string& out) {
    if (!obj.contains(key)) return ok();
    CNETD_TRY_ASSIGN(out, get_string(obj[key], path));
    return ok();
}

Result<bool> get_bool(const json& v, std::string_view key) {
    if (!v.is_boolean()) {
        return bad_config(fmt::format("{}: expected true or false, got {}", key, show(v)));
    }
    return v.get<bool>();
}

Result<uint64_t> get_uint(const json& v, std::string_view key, uint64_t max) {
    if (!v.is_number_integer() && !v.is_number_unsigned()) {
        return bad_config(fmt::format("{}: expected a whole number, got {}", key, show(v)));
    }
    if (v.is_number_integer() && v.get<int64_t>() < 0) {
        return bad_config(fmt::format("{}: {} is negative", key, show(v)));
    }
    uint64_t n = v.get<uint64_t>();
    if (n > max) return bad_config(fmt::format("{}: {} is larger than {}", key, n, max));
    return n;
}

Result<const json*> get_object(const json& v, std::string_view key) {
    if (!v.is_object()) {
        return bad_config(
            fmt::format("{}: expected an object, got {} {}", key, type_name(v), show(v)));
    }
    return &v;
}

Result<const json*> get_array(const json& v, std::string_view key) {
    if (!v.is_array()) {
        return bad_config(
            fmt::format("{}: expected an array, got {} {}", key, type_name(v), show(v)));
    }
    return &v;
}

// ^[A-Za-z0-9][A-Za-z0-9_.\-]*$ (the spec's container id; also cnetd's network names).
bool valid_id(std::string_view s) {
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (s.empty() || !alnum(s[0])) return false;
    return std::all_of(s.begin(), s.end(),
                       [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// Linux interface names as the daemon accepts them (base/net.hpp validate_ifname: 1-15 printable
// ASCII characters, no '/' or ':', not "." or "..").
bool valid_ifname(std::string_view s) {
    return validate_ifname(s).ok();
}

// An address, with or without prefix ("10.1.2.3" or "10.1.2.3/24"): the IPv4 part as text.
Result<std::string> static_ipv4(const std::string& text, std::string_view key) {
    std::string addr = text.substr(0, text.find('/'));
    if (addr.find(':') != std::string::npos) {
        return unsupported(key, text, "IPv6 addresses are not supported by cnetd-cni yet");
    }
    auto a = Ipv4::parse(addr);
    if (!a) return bad_config(fmt::format("{}: {}", key, a.error().message()));
    if (addr.size() != text.size()) {
        auto c = Ipv4Cidr::parse(text);
        if (!c) return bad_config(fmt::format("{}: {}", key, c.error().message()));
    }
    return a->str();
}

Result<void> parse_cni_args(const std::string& text, CniRequest& r) {
    std::map<std::string, std::string> kv;
    size_t pos = 0;
    while (pos <= text.size() && !text.empty()) {
        size_t semi = text.find(';', pos);
        std::string item =
            text.substr(pos, semi == std::string::npos ? std::string::npos : semi - pos);
        if (!item.empty()) {
            size_t eq = item.find('=');
            if (eq == std::string::npos || eq == 0) {
                return cni_error(kInvalidEnv,
                                 fmt::format("CNI_ARGS: \"{}\" is not KEY=VALUE", item));
            }
            kv[item.substr(0, eq)] = item.substr(eq + 1);
        }
        if (semi == std::string::npos) break;
        pos = semi + 1;
    }
    bool ignore_unknown = false;
    if (auto it = kv.find("IgnoreUnknown"); it != kv.end()) {
        std::string v = it->second;
        std::transform(v.begin(), v.end(), v.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        ignore_unknown = v == "1" || v == "true";
    }
    static const std::set<std::string> known = {"IgnoreUnknown", "IP",
                                                "MAC",           "K8S_POD_NAMESPACE",
                                                "K8S_POD_NAME",  "K8S_POD_INFRA_CONTAINER_ID",
                                                "K8S_POD_UID"};
    for (const auto& [k, v] : kv) {
        if (!known.count(k) && !ignore_unknown) {
            return cni_error(kUnsupportedField,
                             fmt::format("CNI_ARGS: unknown argument {}={} (add IgnoreUnknown=1 to "
                                         "ignore it)",
                                         k, v));
        }
    }
    r.args = std::move(kv);
    return ok();
}

// Each element of the array `v` (at `key`) must be an object: calls fn(element, "key[i]").
template <class Fn>
Result<void> each_object(const json& v, const std::string& key, Fn fn) {
    CNETD_TRY(get_array(v, key));
    for (size_t i = 0; i < v.size(); ++i) {
        std::string k = fmt::format("{}[{}]", key, i);
        CNETD_TRY(get_object(v[i], k));
        CNETD_TRY(fn(v[i], k));
    }
    return ok();
}

// The string member `name` of object `o` (at `key`), which must be there.
Result<std::string> required_string(const json& o, const char* name, const std::string& key) {
    if (!o.contains(name)) return bad_config(fmt::format("{}.{}: required", key, name));
    return get_string(o[name], fmt::format("{}.{}", key, name));
}

// A MAC address given as text at `key`, in canonical form.
Result<std::string> mac_text(const std::string& m, std::string_view key) {
    auto mac = Mac::parse(m);
    if (!mac) return bad_config(fmt::format("{}: {}", key, mac.error().message()));
    return mac->str();
}

// A result's route {dst, gw?} at `key`.
Result<Route> result_route(const json& e, const std::string& key) {
    Route rt;
    CNETD_TRY_ASSIGN(rt.dst, required_string(e, "dst", key));
    CNETD_TRY(opt_string(e, "gw", key + ".gw", rt.gw));
    return rt;
}

// One ipam.routes entry: only the IPv4 default route (via the bridge's gateway) is accepted; IPv6
// routes are skipped (no IPv6 here).
Result<void> ipam_route(const json& e, const std::string& rk, NetConf& c) {
    CNETD_TRY_ASSIGN(std::string dst, required_string(e, "dst", rk));
    if (dst.find(':') != std::string::npos) return ok();
    auto d = Ipv4Cidr::parse(dst);
    if (!d) return bad_config(fmt::format("{}.dst: {}", rk, d.error().message()));
    if (d->prefix() != 0) {
        return unsupported(rk + ".dst", e["dst"],
                           "cnetd installs only the default route (0.0.0.0/0) in the container");
    }
    if (e.contains("gw")) {
        return unsupported(rk + ".gw", e["gw"],
                           "the default route always goes via the bridge's gateway");
    }
    c.routes.push_back(dst);
    return ok();
}

using Ranges = std::vector<std::pair<std::string, const json*>>;  // (key path, range object)

// The keys of the ipam object; host-local ranges are collected into `ranges` for parse_range().
Result<void> ipam_keys(const json& ipam, NetConf& c, Ranges& ranges) {
    for (const auto& [k, v] : ipam.items()) {
        std::string key = "ipam." + k;
        if (k == "type") {
            CNETD_TRY_ASSIGN(std::string t, get_string(v, key));
            if (t != "host-local" && !t.empty()) {
                return unsupported(key, v,
                                   "cnetd allocates addresses itself; only host-local's keys "
                                   "(ranges, subnet, rangeStart, rangeEnd, gateway, routes) are "
                                   "understood");
            }
        } else if (k == "subnet" || k == "rangeStart" || k == "rangeEnd" || k == "gateway") {
            // The pre-ranges host-local form: one range at the top level.
            CNETD_TRY(get_string(v, key));
        } else if (k == "ranges") {
            CNETD_TRY(get_array(v, key));
            for (size_t i = 0; i < v.size(); ++i) {
                CNETD_TRY(each_object(v[i], fmt::format("{}[{}]", key, i),
                                      [&](const json& r, const std::string& rk) -> Result<void> {
                                          ranges.emplace_back(rk, &r);
                                          return ok();
                                      }));
            }
        } else if (k == "routes") {
            CNETD_TRY(each_object(v, key, [&](const json& e, const std::string& rk) {
                return ipam_route(e, rk, c);
            }));
        } else if (k == "dataDir" || k == "resolvConf") {
            CNETD_TRY(get_string(v, key));  // host-local's files: cnetd keeps its own state
        } else {
            return unsupported(key, v, "unknown IPAM key");
        }
    }
    return ok();
}

// One host-local range `r` at `rk`: its IPv4 subnet, gateway and range bounds into `c` (a second
// IPv4 range is refused: `have_v4`).
Result<void> parse_range(const std::string& rk, const json& r, NetConf& c, bool& have_v4) {
    for (const auto& [k, v] : r.items()) {
        if (rk == "ipam" &&
            (k == "type" || k == "ranges" || k == "routes" || k == "dataDir" || k == "resolvConf"))
            continue;
        if (k != "subnet" && k != "rangeStart" && k != "rangeEnd" && k != "gateway") {
            return unsupported(rk + "." + k, v, "unknown range key");
        }
    }
    CNETD_TRY_ASSIGN(std::string subnet, required_string(r, "subnet", rk));
    if (subnet.find(':') != std::string::npos) {
        return unsupported(rk + ".subnet", r["subnet"],
                           "IPv6 ranges are not supported by cnetd-cni yet");
    }
    if (have_v4) {
        return unsupported(rk + ".subnet", r["subnet"],
                           "a cnetd network has one IPv4 subnet; give one range");
    }
    have_v4 = true;
    auto net = Ipv4Cidr::parse_network(subnet);
    if (!net) return bad_config(fmt::format("{}.subnet: {}", rk, net.error().message()));
    c.subnet = net->str();
    auto addr_in = [&](const char* key, std::string& out) -> Result<void> {
        if (!r.contains(key)) return ok();
        std::string k = fmt::format("{}.{}", rk, key);
        CNETD_TRY_ASSIGN(std::string t, get_string(r[key], k));
        auto a = Ipv4::parse(t);
        if (!a) return bad_config(fmt::format("{}: {}", k, a.error().message()));
        if (!net->contains(*a)) {
            return bad_config(fmt::format("{}: {} is not in subnet {}", k, t, net->str()));
        }
        out = a->str();
        return ok();
    };
    CNETD_TRY(addr_in("gateway", c.gateway));
    CNETD_TRY(addr_in("rangeStart", c.range_start));
    return addr_in("rangeEnd", c.range_end);
}

Result<void> parse_ipam(const json& ipam, NetConf& c) {
    CNETD_TRY(get_object(ipam, "ipam"));
    Ranges ranges;
    CNETD_TRY(ipam_keys(ipam, c, ranges));
    if (ipam.contains("subnet")) {
        if (!ranges.empty()) {
            return bad_config("ipam: give either subnet or ranges, not both");
        }
        ranges.emplace_back("ipam", &ipam);
    }
    bool have_v4 = false;
    for (const auto& [rk, r] : ranges) CNETD_TRY(parse_range(rk, *r, c, have_v4));
    return ok();
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// One runtimeConfig.portMappings entry at `pk`.
Result<PortMapping> port_mapping(const json& m, const std::string& pk) {
    PortMapping pm;
    for (const auto& [mk_raw, mv] : m.items()) {
        std::string f = pk + "." + mk_raw;
        // Go's encoding/json (the portmap plugin's decoder) matches keys without case:
        // containerd's go-cni sends "HostPort", "ContainerPort", "HostIP".
        const std::string mk = lower(mk_raw);
        if (mk == "hostport" || mk == "containerport") {
            CNETD_TRY_ASSIGN(uint64_t port, get_uint(mv, f, 65535));
            if (port == 0) return bad_config(f + ": 0 is not a port (1-65535)");
            (mk == "hostport" ? pm.host_port : pm.container_port) = static_cast<uint16_t>(port);
        } else if (mk == "protocol") {
            CNETD_TRY_ASSIGN(std::string p, get_string(mv, f));
            p = p.empty() ? "tcp" : lower(p);
            if (p != "tcp" && p != "udp" && p != "sctp") {
                return bad_config(fmt::format("{}: {} is not tcp, udp or sctp", f, show(mv)));
            }
            pm.protocol = p;
        } else if (mk == "hostip") {
            CNETD_TRY_ASSIGN(std::string ip, get_string(mv, f));
            if (ip.find(':') != std::string::npos) {
                return unsupported(f, mv, "IPv6 host addresses are not supported by cnetd-cni yet");
            }
            if (!ip.empty()) {
                auto a = Ipv4::parse(ip);
                if (!a) return bad_config(fmt::format("{}: {}", f, a.error().message()));
            }
            pm.host_ip = ip;
        } else {
            return unsupported(f, mv, "unknown port mapping key");
        }
    }
    if (pm.container_port == 0) return bad_config(pk + ".containerPort: required");
    if (pm.host_port == 0) return bad_config(pk + ".hostPort: required");
    return pm;
}

Result<void> parse_runtime_config(const json& rc, CniRequest& r) {
    CNETD_TRY(get_object(rc, "runtimeConfig"));
    for (const auto& [k, v] : rc.items()) {
        std::string key = "runtimeConfig." + k;
        if (k == "portMappings") {
            CNETD_TRY(
                each_object(v, key, [&](const json& m, const std::string& pk) -> Result<void> {
                    CNETD_TRY_ASSIGN(PortMapping pm, port_mapping(m, pk));
                    r.port_mappings.push_back(pm);
                    return ok();
                }));
        } else if (k == "ips") {
            CNETD_TRY(get_array(v, key));
            for (size_t i = 0; i < v.size(); ++i) {
                std::string ik = fmt::format("{}[{}]", key, i);
                CNETD_TRY_ASSIGN(std::string ip, get_string(v[i], ik));
                CNETD_TRY_ASSIGN(std::string a, static_ipv4(ip, ik));
                if (!r.ip.empty() && r.ip != a) {
                    return unsupported(ik, v[i], "one IPv4 address per attachment");
                }
                r.ip = a;
            }
        } else if (k == "mac") {
            CNETD_TRY_ASSIGN(std::string m, get_string(v, key));
            CNETD_TRY_ASSIGN(r.mac, mac_text(m, key));
        } else if (k == "bandwidth") {
            if (!v.is_null() && !v.empty()) {
                return unsupported(key, v,
                                   "cnetd does not shape traffic (use the bandwidth plugin "
                                   "after cnetd-cni in the chain)");
            }
        }
        // Other capabilities (dns, aliases, ...) are not ours; libcni passes only what the conf
        // declares in "capabilities", so anything else is for a later plugin of the chain.
    }
    return ok();
}

Result<void> parse_args(const json& a, CniRequest& r) {
    CNETD_TRY(get_object(a, "args"));
    if (!a.contains("cni")) return ok();
    CNETD_TRY(get_object(a["cni"], "args.cni"));
    const json& c = a["cni"];
    if (c.contains("ips")) {
        CNETD_TRY(get_array(c["ips"], "args.cni.ips"));
        for (size_t i = 0; i < c["ips"].size(); ++i) {
            std::string ik = fmt::format("args.cni.ips[{}]", i);
            CNETD_TRY_ASSIGN(std::string ip, get_string(c["ips"][i], ik));
            CNETD_TRY_ASSIGN(std::string addr, static_ipv4(ip, ik));
            if (r.ip.empty()) r.ip = addr;
        }
    }
    if (c.contains("mac") && r.mac.empty()) {
        CNETD_TRY_ASSIGN(std::string m, get_string(c["mac"], "args.cni.mac"));
        CNETD_TRY_ASSIGN(r.mac, mac_text(m, "args.cni.mac"));
    }
    return ok();
}

Result<void> parse_gc_list(const json& v, const std::string& key, CniRequest& r) {
    return each_object(v, key, [&](const json& e, const std::string& ak) -> Result<void> {
        Attachment a;
        if (!e.contains("containerID")) return bad_config(ak + ".containerID: required");
        if (!e.contains("ifname")) return bad_config(ak + ".ifname: required");
        CNETD_TRY_ASSIGN(a.container_id, get_string(e["containerID"], ak + ".containerID"));
        CNETD_TRY_ASSIGN(a.ifname, get_string(e["ifname"], ak + ".ifname"));
        r.valid_attachments.push_back(std::move(a));
        return ok();
    });
}

// A boolean key cnetd supports only with the value `want`; `why` says so otherwise.
Result<void> flag_must_be(const std::string& k, const json& v, bool want, std::string_view why) {
    CNETD_TRY_ASSIGN(bool b, get_bool(v, k));
    if (b != want) return unsupported(k, v, why);
    return ok();
}

// The bridge plugin's own keys (what cnetd honours, accepts or refuses of them). Returns false
// when `k` is not one of them.
Result<bool> bridge_plugin_key(const std::string& k, const json& v, NetConf& c) {
    if (k == "isGateway") {
        CNETD_TRY(flag_must_be(k, v, true,
                               "cnetd bridges always carry the gateway address; remove the key or "
                               "set it to true"));
    } else if (k == "isDefaultGateway") {
        CNETD_TRY_ASSIGN(c.is_default_gateway, get_bool(v, k));
    } else if (k == "ipMasq") {
        CNETD_TRY_ASSIGN(c.ip_masq, get_bool(v, k));
    } else if (k == "ipMasqBackend") {
        CNETD_TRY(get_string(v, k));  // cnetd always uses its own nftables table
    } else if (k == "mtu") {
        CNETD_TRY_ASSIGN(uint64_t m, get_uint(v, k, 65535));
        if (m != 0 && m < 68) return bad_config(fmt::format("mtu: {} is below 68", m));
        c.mtu = static_cast<unsigned>(m);
    } else if (k == "hairpinMode") {
        CNETD_TRY_ASSIGN(c.hairpin_mode, get_bool(v, k));
    } else if (k == "promiscMode" || k == "forceAddress" || k == "enabledad" ||
               k == "preserveDefaultVlan") {
        // promiscMode: published-port hairpin is done in nftables, the bridge needs no
        // promiscuity; forceAddress: cnetd owns the bridge's address anyway; enabledad: IPv4
        // only; preserveDefaultVlan: no VLANs.
        CNETD_TRY(get_bool(v, k));
    } else if (k == "portIsolation") {
        CNETD_TRY_ASSIGN(c.port_isolation, get_bool(v, k));
    } else if (k == "vlan") {
        CNETD_TRY_ASSIGN(uint64_t vl, get_uint(v, k, 4094));
        if (vl != 0) return unsupported(k, v, "cnetd bridges are not VLAN-aware");
    } else if (k == "vlanTrunk") {
        CNETD_TRY(get_array(v, k));
        if (!v.empty()) return unsupported(k, v, "cnetd bridges are not VLAN-aware");
    } else if (k == "macspoofchk") {
        CNETD_TRY(flag_must_be(k, v, false, "cnetd has no MAC spoof check"));
    } else if (k == "disableContainerInterface") {
        CNETD_TRY(flag_must_be(k, v, false, "cnetd always brings the container interface up"));
    } else {
        return false;
    }
    return true;
}

// cnetd-cni's own keys (cnetdSocket, cnetdTimeout). Returns false when `k` is not one of them.
Result<bool> cnetd_key(const std::string& k, const json& v, NetConf& c) {
    if (k == "cnetdSocket") {
        CNETD_TRY_ASSIGN(c.socket, get_string(v, k));
        if (c.socket.empty() || c.socket[0] != '/') {
            return bad_config(fmt::format("cnetdSocket: \"{}\" is not an absolute path", c.socket));
        }
        return true;
    }
    if (k == "cnetdTimeout") {
        if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 600) {
            return bad_config(
                fmt::format("cnetdTimeout: {} is not a number of seconds in (0, 600]", show(v)));
        }
        c.timeout_ms = static_cast<unsigned>(v.get<double>() * 1000);
        return true;
    }
    return false;
}

// One top-level key of the plugin entry; the sections read in a fixed order afterwards
// (runtimeConfig, args, prevResult, the GC lists) are only recognised here.
Result<void> conf_key(const std::string& k, const json& v, CniRequest& r) {
    NetConf& c = r.conf;
    if (k == "cniVersion") {
        CNETD_TRY_ASSIGN(c.cni_version, get_string(v, k));
    } else if (k == "name") {
        CNETD_TRY_ASSIGN(c.name, get_string(v, k));
        if (!valid_id(c.name) || c.name.size() > 128) {
            return bad_config(fmt::format(
                "name: \"{}\" is not a valid network name ([A-Za-z0-9][A-Za-z0-9_.-]*, at most "
                "128 characters)",
                c.name));
        }
    } else if (k == "type") {
        CNETD_TRY_ASSIGN(c.type, get_string(v, k));
    } else if (k == "bridge") {
        CNETD_TRY_ASSIGN(c.bridge, get_string(v, k));
        if (!valid_ifname(c.bridge)) {
            return bad_config(fmt::format("bridge: \"{}\" is not an interface name", c.bridge));
        }
    } else if (k == "mac") {
        CNETD_TRY_ASSIGN(std::string m, get_string(v, k));
        CNETD_TRY_ASSIGN(std::string mac, mac_text(m, k));
        if (r.mac.empty()) r.mac = mac;
    } else if (k == "ipam") {
        CNETD_TRY(parse_ipam(v, c));
    } else if (k == "dns") {
        CNETD_TRY(get_object(v, k));
        c.dns = v;
    } else if (k == "capabilities") {
        CNETD_TRY(get_object(v, k));
    } else if (k == "runtimeConfig" || k == "args" || k == "prevResult" ||
               k == "cni.dev/valid-attachments" || k == "cni.dev/attachments") {
        // handled by parse_conf, in a fixed order
    } else {
        CNETD_TRY_ASSIGN(bool known, bridge_plugin_key(k, v, c));
        if (!known) {
            CNETD_TRY_ASSIGN(known, cnetd_key(k, v, c));
        }
        if (!known) return unsupported(k, v, "unknown key for cnetd-cni");
    }
    return ok();
}

// The plugin entry's keys.
Result<void> parse_conf(const json& j, CniRequest& r) {
    NetConf& c = r.conf;
    for (const auto& [k, v] : j.items()) CNETD_TRY(conf_key(k, v, r));
    if (c.cni_version.empty()) return bad_config("cniVersion: required");
    if (!version_supported(c.cni_version)) {
        return cni_error(kIncompatibleVersion,
                         fmt::format("cniVersion: \"{}\" is not supported (supported: {})",
                                     c.cni_version, fmt::join(kSupportedVersions, ", ")));
    }
    if (c.name.empty()) return bad_config("name: required");
    // Precedence for the static address and MAC: runtimeConfig, then args, then CNI_ARGS.
    if (j.contains("runtimeConfig")) CNETD_TRY(parse_runtime_config(j["runtimeConfig"], r));
    if (j.contains("args")) CNETD_TRY(parse_args(j["args"], r));
    if (j.contains("prevResult")) {
        CNETD_TRY(get_object(j["prevResult"], "prevResult"));
        r.prev_result = j["prevResult"];
    }
    if (j.contains("cni.dev/valid-attachments")) {
        CNETD_TRY(parse_gc_list(j["cni.dev/valid-attachments"], "cni.dev/valid-attachments", r));
    } else if (j.contains("cni.dev/attachments")) {
        CNETD_TRY(parse_gc_list(j["cni.dev/attachments"], "cni.dev/attachments", r));
    }
    return ok();
}

using Env = std::map<std::string, std::string>;

// env[k], "" when unset.
std::string env_get(const Env& env, const char* k) {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
}

Result<Command> parse_command(const std::string& cmd) {
    static const std::map<std::string, Command> cmds = {
        {"ADD", Command::Add},       {"DEL", Command::Del}, {"CHECK", Command::Check},
        {"STATUS", Command::Status}, {"GC", Command::Gc},   {"VERSION", Command::Version}};
    auto ci = cmds.find(cmd);
    if (ci == cmds.end()) {
        return cni_error(kInvalidEnv,
                         cmd.empty() ? std::string("CNI_COMMAND: required")
                                     : fmt::format("CNI_COMMAND: \"{}\" is not ADD, DEL, CHECK, "
                                                   "STATUS, GC or VERSION",
                                                   cmd));
    }
    return ci->second;
}

// VERSION: stdin is optional; {"cniVersion": "..."} says which version to answer in.
Result<CniRequest> parse_version_request(CniRequest r, std::string_view in) {
    r.conf.cni_version = "1.1.0";
    std::string_view t = in;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
    if (t.empty()) return r;
    auto parsed = api::parse_json(in, api::PathStyle::Plain);
    if (!parsed) {
        return cni_error(kDecodeFailure, fmt::format("stdin: {}", parsed.error().message()));
    }
    const json& j = *parsed;
    if (!j.is_object()) return cni_error(kDecodeFailure, "stdin: not a JSON object");
    if (j.contains("cniVersion")) {
        CNETD_TRY_ASSIGN(std::string v, get_string(j["cniVersion"], "cniVersion"));
        if (!v.empty()) r.conf.cni_version = v;
    }
    return r;
}

// CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH into `r`, checked for ADD, DEL and CHECK.
Result<void> parse_container_env(const Env& env, CniRequest& r) {
    r.container_id = env_get(env, "CNI_CONTAINERID");
    r.netns = env_get(env, "CNI_NETNS");
    r.ifname = env_get(env, "CNI_IFNAME");
    r.path = env_get(env, "CNI_PATH");
    if (r.command != Command::Add && r.command != Command::Del && r.command != Command::Check)
        return ok();
    if (r.container_id.empty()) return cni_error(kInvalidEnv, "CNI_CONTAINERID: required");
    if (!valid_id(r.container_id) || r.container_id.size() > 128) {
        return cni_error(kInvalidEnv,
                         fmt::format("CNI_CONTAINERID: \"{}\" is invalid (allowed: "
                                     "[A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters)",
                                     r.container_id));
    }
    if (r.ifname.empty()) return cni_error(kInvalidEnv, "CNI_IFNAME: required");
    if (!valid_ifname(r.ifname)) {
        return cni_error(kInvalidEnv,
                         fmt::format("CNI_IFNAME: \"{}\" is not a valid interface name (1-15 "
                                     "printable ASCII characters, no '/', ':' or spaces)",
                                     r.ifname));
    }
    if (r.command != Command::Del && r.netns.empty()) {
        return cni_error(kInvalidEnv, "CNI_NETNS: required");
    }
    if (!r.netns.empty() && r.netns[0] != '/') {
        return cni_error(kInvalidEnv,
                         fmt::format("CNI_NETNS: \"{}\" is not an absolute path", r.netns));
    }
    return ok();
}

// The network config on stdin (a JSON object) into `r`.
Result<void> parse_stdin_conf(std::string_view in, CniRequest& r) {
    // parse_json says where: the line and column of a syntax error, the key of a number that
    // does not fit a double ("mtu: number 1e999 is out of range ...").
    auto parsed = api::parse_json(in, api::PathStyle::Plain);
    if (!parsed) {
        return cni_error(kDecodeFailure,
                         fmt::format("stdin: network config: {}", parsed.error().message()));
    }
    const json& j = *parsed;
    if (!j.is_object()) {
        return cni_error(
            kDecodeFailure,
            fmt::format("stdin: network config must be a JSON object, got {}", type_name(j)));
    }
    return parse_conf(j, r);
}

// CNI_ARGS IP and MAC, where runtimeConfig and args gave none (they come last: those win).
Result<void> apply_cni_args(CniRequest& r) {
    if (auto it = r.args.find("IP"); it != r.args.end() && r.ip.empty()) {
        std::string first = it->second.substr(0, it->second.find(','));
        CNETD_TRY_ASSIGN(r.ip, static_ipv4(first, "CNI_ARGS IP"));
    }
    if (auto it = r.args.find("MAC"); it != r.args.end() && r.mac.empty()) {
        CNETD_TRY_ASSIGN(r.mac, mac_text(it->second, "CNI_ARGS MAC"));
    }
    return ok();
}

// What the command needs of the whole request: its minimum cniVersion, ADD a subnet, ordered
// range bounds.
Result<void> check_request(const CniRequest& r) {
    if (r.command == Command::Check && compare_versions(r.conf.cni_version, "0.4.0") < 0) {
        return cni_error(kIncompatibleVersion,
                         fmt::format("CHECK needs cniVersion 0.4.0 or later, the config says {}",
                                     r.conf.cni_version));
    }
    if ((r.command == Command::Status || r.command == Command::Gc) &&
        compare_versions(r.conf.cni_version, "1.1.0") < 0) {
        return cni_error(kIncompatibleVersion,
                         fmt::format("{} needs cniVersion 1.1.0, the config says {}",
                                     to_string(r.command), r.conf.cni_version));
    }
    if (r.command == Command::Add && r.conf.subnet.empty()) {
        return bad_config(
            "ipam.ranges: required: the subnet of the network (e.g. "
            "\"ipam\": {\"type\": \"host-local\", \"ranges\": [[{\"subnet\": "
            "\"10.88.0.0/16\"}]]})");
    }
    if (!r.conf.range_start.empty() && !r.conf.range_end.empty()) {
        auto a = Ipv4::parse(r.conf.range_start), b = Ipv4::parse(r.conf.range_end);
        if (a && b && *b < *a) {
            return bad_config(fmt::format("ipam: rangeEnd {} is below rangeStart {}",
                                          r.conf.range_end, r.conf.range_start));
        }
    }
    return ok();
}

Result<CniRequest> parse_impl(const Env& env, std::string_view in) {
    CniRequest r;
    CNETD_TRY_ASSIGN(r.command, parse_command(env_get(env, "CNI_COMMAND")));
    if (r.command == Command::Version) return parse_version_request(std::move(r), in);
    CNETD_TRY(parse_container_env(env, r));
    CNETD_TRY(parse_cni_args(env_get(env, "CNI_ARGS"), r));
    CNETD_TRY(parse_stdin_conf(in, r));
    CNETD_TRY(apply_cni_args(r));
    CNETD_TRY(check_request(r));
    return r;
}

Result<std::vector<std::string>> parse_legacy_ip(const json& ipj, std::string_view key,
                                                 CniResult& out) {
    CNETD_TRY(get_object(ipj, key));
    IpConfig ip;
    CNETD_TRY_ASSIGN(ip.address, required_string(ipj, "ip", std::string(key)));
    CNETD_TRY(opt_string(ipj, "gateway", fmt::format("{}.gateway", key), ip.gateway));
    out.ips.push_back(ip);
    if (!ipj.contains("routes")) return std::vector<std::string>{};
    CNETD_TRY(each_object(ipj["routes"], fmt::format("{}.routes", key),
                          [&](const json& e, const std::string& rk) -> Result<void> {
                              CNETD_TRY_ASSIGN(Route rt, result_route(e, rk));
                              out.routes.push_back(rt);
                              return ok();
                          }));
    return std::vector<std::string>{};
}

// prevResult.ips[i] at `k`; its interface index must name one of `out.interfaces`.
Result<IpConfig> result_ip(const json& e, const std::string& k, const CniResult& out) {
    IpConfig ip;
    CNETD_TRY_ASSIGN(ip.address, required_string(e, "address", k));
    CNETD_TRY(opt_string(e, "gateway", k + ".gateway", ip.gateway));
    if (e.contains("interface")) {
        CNETD_TRY_ASSIGN(uint64_t n, get_uint(e["interface"], k + ".interface", 1 << 20));
        if (n >= out.interfaces.size()) {
            return bad_config(
                fmt::format("{}.interface: {} is not an index of interfaces "
                            "(there are {})",
                            k, n, out.interfaces.size()));
        }
        ip.interface = static_cast<int>(n);
    }
    return ip;
}

Result<Interface> result_interface(const json& e, const std::string& k) {
    Interface itf;
    CNETD_TRY(opt_string(e, "name", k + ".name", itf.name));
    CNETD_TRY(opt_string(e, "mac", k + ".mac", itf.mac));
    CNETD_TRY(opt_string(e, "sandbox", k + ".sandbox", itf.sandbox));
    if (e.contains("mtu")) {
        CNETD_TRY_ASSIGN(uint64_t m, get_uint(e["mtu"], k + ".mtu", 65535));
        itf.mtu = static_cast<unsigned>(m);
    }
    return itf;
}

// For each element of the optional array j[name] (an object each): out.push_back(read(e, key)).
template <class T, class Read>
Result<void> read_list(const json& j, const char* name, std::vector<T>& out, Read read) {
    if (!j.contains(name)) return ok();
    return each_object(j[name], fmt::format("prevResult.{}", name),
                       [&](const json& e, const std::string& k) -> Result<void> {
                           CNETD_TRY_ASSIGN(T x, read(e, k));
                           out.push_back(std::move(x));
                           return ok();
                       });
}

Result<CniResult> decode_impl(const json& j, std::string_view version) {
    CNETD_TRY(get_object(j, "prevResult"));
    CniResult out;
    if (j.contains("dns")) {
        CNETD_TRY(get_object(j["dns"], "prevResult.dns"));
        out.dns = j["dns"];
    }
    if (compare_versions(version, "0.3.0") < 0) {
        if (j.contains("ip4")) CNETD_TRY(parse_legacy_ip(j["ip4"], "prevResult.ip4", out));
        if (j.contains("ip6")) CNETD_TRY(parse_legacy_ip(j["ip6"], "prevResult.ip6", out));
        return out;
    }
    CNETD_TRY(read_list(j, "interfaces", out.interfaces, result_interface));
    CNETD_TRY(read_list(j, "ips", out.ips,
                        [&](const json& e, const std::string& k) { return result_ip(e, k, out); }));
    CNETD_TRY(read_list(j, "routes", out.routes, result_route));
    return out;
}

}  // namespace

Error cni_error(int code, std::string msg, ErrorKind kind) {
    return Error(kind, std::move(msg), kCodeBase + code);
}

int cni_code(const Error& e) {
    if (e.error_number() > kCodeBase) return e.error_number() - kCodeBase;
    switch (e.kind()) {
        case ErrorKind::NotFound:
            return kUnknownContainer;
        case ErrorKind::InvalidArgument:
        case ErrorKind::Conflict:
            return kInvalidConfig;
        case ErrorKind::Unavailable:
            return kTryAgainLater;
        default:
            return kDaemonFailure;
    }
}

std::string_view to_string(Command c) {
    switch (c) {
        case Command::Add:
            return "ADD";
        case Command::Del:
            return "DEL";
        case Command::Check:
            return "CHECK";
        case Command::Status:
            return "STATUS";
        case Command::Gc:
            return "GC";
        case Command::Version:
            return "VERSION";
    }
    return "?";
}

bool version_supported(std::string_view v) {
    return std::find(kSupportedVersions.begin(), kSupportedVersions.end(), v) !=
           kSupportedVersions.end();
}

int compare_versions(std::string_view a, std::string_view b) {
    auto parts = [](std::string_view s) {
        std::array<int, 3> p{-1, -1, -1};
        std::string t(s);
        if (std::sscanf(t.c_str(), "%d.%d.%d", &p[0], &p[1], &p[2]) != 3) p = {-1, -1, -1};
        return p;
    };
    auto x = parts(a), y = parts(b);
    return x < y ? -1 : (x == y ? 0 : 1);
}

Result<CniRequest> parse_cni(const std::map<std::string, std::string>& env,
                             std::string_view stdin_text) {
    try {
        return parse_impl(env, stdin_text);
    } catch (const std::exception& e) {
        // Only nlohmann type errors on paths we did not check could land here. The exception's
        // own text is kept: fuzz_cni treats "[json.exception" in a message as a finding.
        return cni_error(kDecodeFailure, fmt::format("stdin: network config: {}", e.what()));
    }
}

Result<std::string> ip_range_of(const NetConf& c) {
    if (c.range_start.empty() && c.range_end.empty()) return std::string();
    CNETD_TRY_ASSIGN(Ipv4Cidr net, Ipv4Cidr::parse_network(c.subnet));
    const uint64_t first = net.network().value() + 1, last = net.broadcast().value() - 1;
    uint64_t a = first, b = last;
    if (!c.range_start.empty()) {
        CNETD_TRY_ASSIGN(Ipv4 x, Ipv4::parse(c.range_start));
        a = x.value();
    }
    if (!c.range_end.empty()) {
        CNETD_TRY_ASSIGN(Ipv4 x, Ipv4::parse(c.range_end));
        b = x.value();
    }
    if (a <= first && b >= last) return std::string();
    // One CIDR [start, end]: host-local skips network and broadcast addresses, so a range that
    // leaves out the first and/or last address of a CIDR (10.88.1.1-10.88.1.254) is that CIDR.
    for (uint64_t start : {a, a - 1}) {
        for (uint64_t end : {b, b + 1}) {
            uint64_t size = end - start + 1;
            if (end < start || (size & (size - 1)) != 0 || (start & (size - 1)) != 0) continue;
            int prefix = 32;
            while ((uint64_t{1} << (32 - prefix)) < size) --prefix;
            return Ipv4Cidr(Ipv4(static_cast<uint32_t>(start)), prefix).str();
        }
    }
    return cni_error(
        kUnsupportedField,
        fmt::format("ipam.rangeStart/rangeEnd: {}-{}: cnetd allocates from a CIDR "
                    "range; use a range that is one CIDR (e.g. 10.88.1.0-10.88.1.255)",
                    Ipv4(static_cast<uint32_t>(a)).str(), Ipv4(static_cast<uint32_t>(b)).str()));
}

Result<CniResult> decode_result(const json& j, std::string_view version) {
    try {
        return decode_impl(j, version);
    } catch (const std::exception& e) {
        return cni_error(kDecodeFailure, fmt::format("prevResult: {}", e.what()));
    }
}

json encode_result(const CniResult& r, std::string_view version) {
    json out = {{"cniVersion", std::string(version)}};
    if (compare_versions(version, "0.3.0") < 0) {
        for (const auto& ip : r.ips) {
            const bool v6 = ip.address.find(':') != std::string::npos;
            const char* key = v6 ? "ip6" : "ip4";
            if (out.contains(key)) continue;  // the legacy shape holds one address per family
            json e = {{"ip", ip.address}};
            if (!ip.gateway.empty()) e["gateway"] = ip.gateway;
            json routes = json::array();
            for (const auto& rt : r.routes) {
                if ((rt.dst.find(':') != std::string::npos) != v6) continue;
                json x = {{"dst", rt.dst}};
                if (!rt.gw.empty()) x["gw"] = rt.gw;
                routes.push_back(x);
            }
            if (!routes.empty()) e["routes"] = routes;
            out[key] = e;
        }
        out["dns"] = r.dns;
        return out;
    }
    const bool with_family = compare_versions(version, "1.0.0") < 0;
    json itfs = json::array();
    for (const auto& i : r.interfaces) {
        json e = {{"name", i.name}};
        if (!i.mac.empty()) e["mac"] = i.mac;
        if (i.mtu) e["mtu"] = i.mtu;
        if (!i.sandbox.empty()) e["sandbox"] = i.sandbox;
        itfs.push_back(e);
    }
    json ips = json::array();
    for (const auto& ip : r.ips) {
        json e;
        if (with_family) e["version"] = ip.address.find(':') != std::string::npos ? "6" : "4";
        e["address"] = ip.address;
        if (!ip.gateway.empty()) e["gateway"] = ip.gateway;
        if (ip.interface) e["interface"] = *ip.interface;
        ips.push_back(e);
    }
    json routes = json::array();
    for (const auto& rt : r.routes) {
        json e = {{"dst", rt.dst}};
        if (!rt.gw.empty()) e["gw"] = rt.gw;
        routes.push_back(e);
    }
    if (!itfs.empty()) out["interfaces"] = itfs;
    if (!ips.empty()) out["ips"] = ips;
    if (!routes.empty()) out["routes"] = routes;
    out["dns"] = r.dns;
    return out;
}

json result_dns(const json& conf_dns, const std::vector<std::string>& nameservers,
                const std::vector<std::string>& search, const std::vector<std::string>& options) {
    if (conf_dns.is_object() && !conf_dns.empty()) return conf_dns;
    json out = json::object();
    if (!nameservers.empty()) out["nameservers"] = nameservers;
    if (!search.empty()) out["search"] = search;
    if (!options.empty()) out["options"] = options;
    return out;
}

CniResult append_result(CniResult prev, const CniResult& ours) {
    const int shift = static_cast<int>(prev.interfaces.size());
    prev.interfaces.insert(prev.interfaces.end(), ours.interfaces.begin(), ours.interfaces.end());
    for (auto ip : ours.ips) {
        if (ip.interface) *ip.interface += shift;
        prev.ips.push_back(ip);
    }
    for (const auto& rt : ours.routes) {
        if (std::find(prev.routes.begin(), prev.routes.end(), rt) == prev.routes.end())
            prev.routes.push_back(rt);
    }
    if (prev.dns.empty()) prev.dns = ours.dns;
    return prev;
}

json encode_error(std::string_view version, int code, std::string_view msg,
                  std::string_view details) {
    json out = {{"cniVersion", version.empty() ? std::string("1.1.0") : std::string(version)},
                {"code", code},
                {"msg", std::string(msg)}};
    if (!details.empty()) out["details"] = std::string(details);
    return out;
}

json version_reply(std::string_view version) {
    json v = json::array();
    for (const char* s : kSupportedVersions) v.push_back(s);
    return {{"cniVersion", std::string(version)}, {"supportedVersions", v}};
}

}  // namespace cnetd::cni
