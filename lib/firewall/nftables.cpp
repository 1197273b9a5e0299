// The nftables backend: remembered intent + pure builders (ruleset.hpp) + one netlink transaction
// per call (nft::Socket::commit). See firewall.hpp for the contract, docs/firewall.md for design.
#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
#include <linux/netfilter.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>
#include <optional>
#include <tuple>

#include "base/log.hpp"
#include "base/sysctl.hpp"
#include "firewall/firewall.hpp"
#include "firewall/ruleset.hpp"
#include "nft/conntrack.hpp"
#include "nft/dump.hpp"
#include "nft/monitor.hpp"
#include "nft/socket.hpp"

namespace cnetd::firewall {
namespace {

constexpr const char* kBrNfCallIptables = "net/bridge/bridge-nf-call-iptables";
constexpr const char* kBrNfCallIp6tables = "net/bridge/bridge-nf-call-ip6tables";

// Makes sysctl `key` 1 unless it already is; `manage` false only reports it. Errors start with
// `what` (the feature that needs the switch). Returns true if it wrote the 1.
Result<bool> switch_on(const std::string& key, const std::string& what, bool manage = true) {
    CNETD_TRY_ASSIGN(const std::string v, sysctl::read(key).context(what));
    if (v == "1") return false;
    if (!manage)
        return Error(ErrorKind::Unavailable,
                     fmt::format("{}: /proc/sys/{} is 0 (set it to 1)", what, key));
    CNETD_TRY(sysctl::write(key, "1").context(what));
    return true;
}

Result<void> ensure_one_bridge_nf(const char* key, const std::string& bridge, bool manage) {
    const std::string what = fmt::format("icc off on bridge {} needs br_netfilter", bridge);
    CNETD_TRY_ASSIGN(bool wrote, switch_on(key, what, manage));
    if (wrote)
        log::info("firewall: set /proc/sys/{}=1 so bridged traffic of {} passes the forward hook",
                  key, bridge);
    return ok();
}

// ICC off is enforced in the inet forward hook, which sees bridged (port-to-port) traffic only
// when br_netfilter's bridge-nf-call-iptables (IPv4) / bridge-nf-call-ip6tables (IPv6) is 1 in
// this network namespace.
Result<void> ensure_bridge_nf(const std::vector<NetworkRules>& nets, bool manage) {
    const NetworkRules *off = nullptr, *off6 = nullptr;
    for (const auto& n : nets)
        if (!n.icc) {
            off = &n;
            if (n.subnet6) off6 = &n;
        }
    if (off) CNETD_TRY(ensure_one_bridge_nf(kBrNfCallIptables, off->bridge, manage));
    if (off6) CNETD_TRY(ensure_one_bridge_nf(kBrNfCallIp6tables, off6->bridge, manage));
    return ok();
}

// Reads br_netfilter's switches for this network namespace (see BridgeNf): "1" is on; "0", a
// missing file (module not loaded, and cnetd never loads modules) or an unreadable one is off.
// Hairpin never writes them: bridge-nf-call-iptables=1 sends every bridge's switched traffic of
// the namespace through netfilter (VM bridges included), so an administrator's 0 stays, and
// hairpin falls back to masquerade. Only ICC off writes 1 (ensure_bridge_nf()), as Docker does.
BridgeNf probe_bridge_nf() {
    auto on = [](const char* key) {
        auto v = sysctl::read(key);
        return v.ok() && v.value() == "1";
    };
    return BridgeNf{on(kBrNfCallIptables), on(kBrNfCallIp6tables)};
}

// Host -> 127.0.0.1:port -> container: after the nat output DNAT the packet leaves through the
// bridge with source 127.0.0.1, which the kernel routes only if route_localnet=1 on that bridge
// (then "localhost to container" masquerades it). Docker sets it on the bridge as well. Remote
// access to 127/8 stays impossible: raw prerouting drops 127/8 not arriving on lo. Left at 1
// when the last port goes (harmless with that drop; another port may come back).
Result<void> ensure_route_localnet(const std::string& bridge) {
    const std::string key = fmt::format("net/ipv4/conf/{}/route_localnet", bridge);
    const std::string what = fmt::format("published ports on {} via 127.0.0.1", bridge);
    CNETD_TRY(switch_on(key, what));
    return ok();
}

// Only mappings that cover 127.0.0.1 need it (every address, or a loopback host address).
bool covers_localhost(const PortForward& p) {
    if (p.family == Family::V6) return false;  // ::1 is never DNAT'd (see validate())
    return !p.host_ip || p.host_ip->value() == 0 || (p.host_ip->value() >> 24) == 127;
}

// Stale UDP flows: conntrack entries created before a change keep their old NAT decision (or
// their lack of one) for as long as datagrams flow. Delete those whose original destination is
// this mapping's host port range (and host address), as Docker does.
// Deletes the conntrack entries of the UDP mappings among `ports` (one table dump for all).
Result<void> flush_udp(const std::vector<PortForward>& ports) {
    std::vector<nft::ConntrackMatch> ms;
    for (const auto& p : ports) {
        if (p.proto != L4::Udp) continue;
        nft::ConntrackMatch m;
        m.l4proto = static_cast<uint8_t>(p.proto);
        m.port_first = p.host_first;
        m.port_last = p.host_last;
        if (p.family == Family::V6) {
            m.family = nft::ConntrackMatch::V6;
            if (p.host_ip6 && !p.host_ip6->is_unspecified()) m.dst6 = p.host_ip6;
        } else if (p.host_ip && p.host_ip->value() != 0) {
            m.dst = p.host_ip;
        }
        ms.push_back(m);
    }
    CNETD_TRY_ASSIGN(size_t n, nft::conntrack_delete(ms));
    if (n) log::info("firewall: deleted {} conntrack entries of {} UDP mapping(s)", n, ms.size());
    return ok();
}

// Reference counts of the hairpin_self[6] elements: how many mappings target each container
// address. The element exists while the count is non-zero.
using SelfRefs = std::map<SelfKey, size_t>;
struct SelfDelta {
    std::vector<PortForward> added, gone;  // one mapping per address whose element comes / goes
};
// Moves the counts: the `minus` mappings leave, the `plus` ones arrive. Returns the addresses that
// got their first reference (add the element) or lost their last (delete it).
SelfDelta count_self(SelfRefs& refs, const std::vector<PortForward>& minus,
                     const std::vector<PortForward>& plus) {
    std::map<SelfKey, std::pair<size_t, PortForward>> before;  // count before, one mapping
    auto note = [&](const PortForward& p) {
        const SelfKey k = self_key(p);
        auto it = refs.find(k);
        before.try_emplace(k, it == refs.end() ? 0 : it->second, p);
        return k;
    };
    for (const auto& p : minus)
        if (auto it = refs.find(note(p)); it != refs.end() && --it->second == 0) refs.erase(it);
    for (const auto& p : plus) ++refs[note(p)];
    SelfDelta d;
    for (const auto& [k, b] : before) {
        const bool now = refs.count(k) > 0;
        if (b.first == 0 && now) d.added.push_back(b.second);
        if (b.first > 0 && !now) d.gone.push_back(b.second);
    }
    return d;
}

// "publish port tcp 0.0.0.0:80 -> ..." for one mapping, "publish 3 ports" for several.
std::string ports_frame(std::string_view verb, const std::vector<PortForward>& ports) {
    if (ports.size() == 1) return fmt::format("{} port {}", verb, describe(ports[0]));
    return fmt::format("{} {} ports", verb, ports.size());
}

Error conflict(const std::string& frame, const PortForward& p, const PortForward& other) {
    return Error::conflict(
        fmt::format("{}: {} conflicts with {}", frame, describe(p), describe(other)));
}

// Validates a list of mappings and indexes it; a key given twice or two overlapping mappings are
// an error. `existing` (may be null): mappings kept alongside, except those with a key in `ports`
// (which `ports` replaces). O(|ports| x log(|ports| + |existing|)) (find_overlap()): a restart's
// sync() of 10,000 mappings checks them in milliseconds, not 50 million pairs.
Result<PortMap> index_ports(const std::vector<PortForward>& ports, const std::string& frame,
                            const PortMap* existing = nullptr) {
    static const PortMap none;
    PortMap m;
    for (const auto& p : ports) {
        CNETD_TRY(validate(p).context(frame));
        if (const PortForward* q = find_overlap(m, p, none)) return conflict(frame, p, *q);
        m.emplace(port_key(p), p);
    }
    if (existing)
        for (const auto& p : ports)
            if (const PortForward* q = find_overlap(*existing, p, m)) return conflict(frame, p, *q);
    return m;
}

class NftablesBackend final : public Backend {
public:
    explicit NftablesBackend(NftablesOptions opts) : opts_(std::move(opts)) {
        auto s = nft::Socket::open();
        if (!s.ok()) {
            open_error_ = std::move(s).error();
            return;
        }
        sock_.emplace(std::move(s).value());
        auto m = nft::Monitor::open({{NFPROTO_INET, opts_.table}});
        if (!m.ok()) {
            open_error_ = std::move(m).error();
            return;
        }
        mon_.emplace(std::move(m).value());
    }

    Result<void> ensure_base() override {
        CNETD_TRY(ready());
        CNETD_TRY_ASSIGN(auto have, nft::dump_table(*sock_, NFPROTO_INET, opts_.table));
        if (matches(have, expected_state(opts_.table, intent(), list(ports_)), /*elements=*/false))
            return ok();
        if (have.exists)
            log::warn("firewall: table inet {} differs from our layout, rebuilding", opts_.table);
        return rebuild(intent(), list(ports_)).context("ensure firewall base");
    }

    Result<void> add_network(const NetworkRules& n) override {
        CNETD_TRY(ready());
        const std::string frame = fmt::format("add firewall rules for network {}", n.id);
        std::vector<NetworkRules> next;
        for (const auto& [id, old] : intent_)
            if (id != n.id) next.push_back(old);
        next.push_back(n);
        if (auto v = validate(next); !v.ok()) return Error(v.error()).wrap(frame);
        CNETD_TRY(ensure_bridge_nf({n}, opts_.manage_br_netfilter).context(frame));

        auto it = intent_.find(n.id);
        if ((it != intent_.end() && !(it->second == n)) ||
            (it == intent_.end() && has_routed_ports(n)) || probe_bridge_nf() != bnf_) {
            // Changed options (the old elements must go in the same transaction), a new routed
            // network whose mappings are already known (their routed_ports elements come with
            // it), or br_netfilter switched (ICC off may just have turned it on: `unbridged`
            // changes): the simplest atomic form of "replace some elements" is a rebuild.
            CNETD_TRY(rebuild(next, list(ports_)).context(frame));
        } else if (auto r = sock_->commit(build_network(opts_.table, n, true)); !r.ok()) {
            if (r.error().error_number() != ENOENT) return std::move(r).context(frame);
            // Our table or a set vanished (e.g. `nft flush ruleset`): rebuild and retry once.
            log::warn("firewall: {} ({}); rebuilding table inet {}", frame, r.error().message(),
                      opts_.table);
            CNETD_TRY(rebuild(next, list(ports_)).context(frame));
            ++repairs_;
        }
        intent_[n.id] = n;
        return ok();
    }

    Result<void> remove_network(const NetworkRules& given) override {
        CNETD_TRY(ready());
        auto it = intent_.find(given.id);
        const NetworkRules n = it != intent_.end() ? it->second : given;
        if (it != intent_.end()) intent_.erase(it);
        const std::string frame = fmt::format("remove firewall rules for network {}", n.id);
        if (has_routed_ports(n)) {
            // Its mappings' routed_ports elements go with it: rebuild from the remaining intent.
            if (auto r = rebuild(intent(), list(ports_)); !r.ok())
                return std::move(r).context(frame);
            return ok();
        }
        nft::Batch b = build_network(opts_.table, n, false);
        if (sock_->commit(b).ok()) return ok();
        // Best effort: retry each set's delete alone so one missing element does not keep the
        // others, and report every failure.
        ErrorList errors;
        for (const auto& one : b.split())
            if (auto r = sock_->commit(one); !r.ok()) errors.add(std::move(r).error());
        if (!errors.empty()) return errors.combined(frame);
        return ok();
    }

    Result<void> check_ports(const std::vector<PortForward>& ports) override {
        if (ports.empty()) return ok();
        auto checked = index_ports(ports, "publish", &ports_);
        if (!checked.ok()) return std::move(checked).error();
        return ok();
    }

    Result<void> add_ports(const std::vector<PortForward>& ports) override {
        CNETD_TRY(ready());
        if (ports.empty()) return ok();
        const std::string frame = ports_frame("publish", ports);
        CNETD_TRY(index_ports(ports, frame, &ports_));
        for (const auto& p : ports)
            if (covers_localhost(p)) CNETD_TRY(ensure_route_localnet(p.bridge).context(frame));

        // One transaction: first delete the elements these mappings replace (same key, other
        // target), then add. A conflicting mapping (e.g. 0.0.0.0 vs one address on the same port)
        // is refused by the kernel as an overlapping element and nothing changes.
        std::vector<PortForward> replaced, previous;  // previous: remembered at these keys
        for (const auto& p : ports)
            if (auto it = ports_.find(port_key(p)); it != ports_.end()) {
                previous.push_back(it->second);
                if (!(it->second == p)) replaced.push_back(it->second);
            }
        SelfRefs refs = self_refs_;
        const SelfDelta self = count_self(refs, previous, ports);
        const auto nets = intent();
        nft::Batch b = build_ports(opts_.table, replaced, false, nets);
        b.append(build_hairpin_self(opts_.table, self.gone, false));
        b.append(build_ports(opts_.table, ports, true, nets));
        b.append(build_hairpin_self(opts_.table, self.added, true));
        if (auto r = sock_->commit(b); r.ok()) {
            self_refs_ = std::move(refs);
        } else {
            if (r.error().error_number() != ENOENT) return std::move(r).context(frame);
            // Our table or map vanished: rebuild from intent with these ports, once.
            log::warn("firewall: {} ({}); rebuilding table inet {}", frame, r.error().message(),
                      opts_.table);
            PortMap next = ports_;
            for (const auto& p : ports) next[port_key(p)] = p;
            CNETD_TRY(rebuild(intent(), list(next)).context(frame));
            ++repairs_;
        }
        for (const auto& p : ports) ports_[port_key(p)] = p;
        // New mappings apply to new flows only: flush UDP flows to these host ports (including
        // flows that hit the host, or an old target, before). Best effort: the mapping is in.
        if (auto r = flush_udp(ports); !r.ok())
            log::warn("firewall: {}: {}", frame, r.error().message());
        return ok();
    }

    Result<void> remove_ports(const std::vector<PortForward>& given) override {
        CNETD_TRY(ready());
        if (given.empty()) return ok();
        const std::string frame = ports_frame("unpublish", given);
        // Delete what we actually put in (the remembered value), and forget it in any case.
        std::vector<PortForward> gone, known;  // known: the ones we remembered
        for (const auto& p : given) {
            auto it = ports_.find(port_key(p));
            if (it != ports_.end()) {
                gone.push_back(it->second);
                known.push_back(it->second);
                ports_.erase(it);
            } else {
                gone.push_back(p);
            }
        }
        ErrorList errors;
        nft::Batch b = build_ports(opts_.table, gone, false, intent());
        b.append(build_hairpin_self(opts_.table, count_self(self_refs_, known, {}).gone, false));
        if (!sock_->commit(b).ok()) {
            // Best effort: each mapping alone, so one missing element does not keep the others.
            for (const auto& one : b.split())
                if (auto r = sock_->commit(one); !r.ok()) errors.add(std::move(r).error());
        }
        if (auto r = flush_udp(gone); !r.ok()) errors.add(std::move(r).error());
        if (!errors.empty()) return errors.combined(frame);
        return ok();
    }

    Result<void> sync(const std::vector<NetworkRules>& nets,
                      const std::vector<PortForward>& ports) override {
        CNETD_TRY(ready());
        const std::string frame = "sync firewall";
        CNETD_TRY(validate(nets).context(frame));
        CNETD_TRY_ASSIGN(PortMap wanted, index_ports(ports, frame));
        CNETD_TRY(ensure_bridge_nf(nets, opts_.manage_br_netfilter).context(frame));
        for (const auto& p : ports)
            if (covers_localhost(p)) CNETD_TRY(ensure_route_localnet(p.bridge).context(frame));
        const PortMap before = ports_;
        CNETD_TRY(rebuild(nets, ports).context(frame));
        // UDP mappings that went away or changed: their flows must not keep the old target.
        std::vector<PortForward> changed;
        for (const auto& [key, old] : before)
            if (auto it = wanted.find(key); it == wanted.end() || !(it->second == old))
                changed.push_back(old);
        if (auto r = flush_udp(changed); !r.ok())
            log::warn("firewall: {}: {}", frame, r.error().message());
        return ok();
    }

    Result<std::string> show() override {
        CNETD_TRY(ready());
        const auto nets = intent();
        // A fresh look at br_netfilter: a switch flipped since the last rebuild shows as a
        // difference in `unbridged`.
        const BridgeNf bnf = probe_bridge_nf();
        std::string out = render(opts_.table, nets, list(ports_), bnf);
        CNETD_TRY_ASSIGN(auto have, nft::dump_table(*sock_, NFPROTO_INET, opts_.table));
        const Expected want = expected_state(opts_.table, nets, list(ports_), bnf);
        const std::string why = mismatch(have, want, /*elements=*/true);
        if (why.empty())
            out += "# kernel: matches\n";
        else
            out += fmt::format("# kernel: differs: {}\n", why);
        return out;
    }

    int monitor_fd() override { return mon_ ? mon_->fd() : -1; }

    Result<bool> handle_events() override {
        CNETD_TRY(ready());
        bool lost = false;
        CNETD_TRY_ASSIGN(bool changed, mon_->drain(sock_->portid(), &lost));
        if (!changed && lost) {
            // Notifications were lost: typically our own big transaction (one notification per
            // element). Verify rules and element counts instead of rebuilding blindly, which would
            // overflow the monitor again and repeat forever.
            CNETD_TRY_ASSIGN(auto have, nft::dump_table(*sock_, NFPROTO_INET, opts_.table));
            const std::string why =
                mismatch(have, expected_state(opts_.table, intent(), list(ports_), bnf_),
                         /*elements=*/true);
            if (why.empty()) return false;
            log::warn("firewall: table inet {} differs ({})", opts_.table, why);
            changed = true;
        }
        if (!changed) return false;
        // Someone else touched our table: we do not try to understand the edit, we restore the
        // whole table from intent in one transaction (cheap, and correct for any edit).
        log::warn("firewall: table inet {} was changed by someone else, restoring it", opts_.table);
        CNETD_TRY(rebuild(intent(), list(ports_)).context("repair firewall table"));
        ++repairs_;
        return true;
    }

    uint64_t repairs() const override { return repairs_; }
    std::string name() const override { return "nftables"; }

private:
    Result<void> ready() const {
        if (open_error_) return Error(*open_error_).wrap("nftables firewall");
        return ok();
    }
    // True if `n` is routed for some family and a remembered mapping uses its bridge.
    bool has_routed_ports(const NetworkRules& n) const {
        if (n.mode4 != GatewayMode::Routed && n.mode6 != GatewayMode::Routed) return false;
        for (const auto& [k, p] : ports_)
            if (p.bridge == n.bridge) return true;
        return false;
    }
    std::vector<NetworkRules> intent() const {
        std::vector<NetworkRules> v;
        for (const auto& [id, n] : intent_) v.push_back(n);
        return v;
    }
    // Replaces the table and, on success, the remembered intent (networks and ports).
    // br_netfilter is looked at again on every rebuild (start-up sync, repairs, changes).
    Result<void> rebuild(const std::vector<NetworkRules>& nets,
                         const std::vector<PortForward>& ports) {
        const BridgeNf bnf = probe_bridge_nf();
        CNETD_TRY(sock_->commit(build_rebuild(opts_.table, nets, ports, bnf)));
        if (!bnf.ipv4 && (bnf_.ipv4 || !bnf_known_))
            log::warn(
                "firewall: {} is not 1 (br_netfilter not loaded, or off): containers "
                "reaching another container's published port through a host address are "
                "masqueraded, the server sees the bridge address, not the client",
                std::string("/proc/sys/") + kBrNfCallIptables);
        bnf_ = bnf;
        bnf_known_ = true;
        intent_.clear();
        for (const auto& n : nets) intent_[n.id] = n;
        ports_.clear();
        self_refs_.clear();
        for (const auto& p : ports) {
            ports_[port_key(p)] = p;
            ++self_refs_[self_key(p)];
        }
        return ok();
    }
    static std::vector<PortForward> list(const PortMap& m) {
        std::vector<PortForward> v;
        v.reserve(m.size());
        for (const auto& [k, p] : m) v.push_back(p);
        return v;
    }

    NftablesOptions opts_;
    std::optional<nft::Socket> sock_;
    std::optional<nft::Monitor> mon_;
    std::optional<Error> open_error_;
    std::map<std::string, NetworkRules> intent_;  // by id: a stable order for rebuilds
    PortMap ports_;       // published ports by key (proto, host address, host range)
    SelfRefs self_refs_;  // mappings per container address (hairpin_self elements)
    BridgeNf bnf_;        // br_netfilter as of the last rebuild (the `unbridged` elements)
    bool bnf_known_ = false;
    uint64_t repairs_ = 0;
};

class NoneBackend final : public Backend {
public:
    Result<void> ensure_base() override { return ok(); }
    Result<void> add_network(const NetworkRules& n) override { return validate(n); }
    Result<void> remove_network(const NetworkRules&) override { return ok(); }
    Result<void> sync(const std::vector<NetworkRules>& nets,
                      const std::vector<PortForward>&) override {
        return validate(nets);
    }
    Result<void> add_ports(const std::vector<PortForward>&) override { return ok(); }
    Result<void> remove_ports(const std::vector<PortForward>&) override { return ok(); }
    Result<void> check_ports(const std::vector<PortForward>&) override { return ok(); }
    Result<std::string> show() override {
        return std::string("# firewall: none (cnetd manages no firewall rules)\n");
    }
    int monitor_fd() override { return -1; }
    Result<bool> handle_events() override { return false; }
    uint64_t repairs() const override { return 0; }
    std::string name() const override { return "none"; }
};

}  // namespace

std::unique_ptr<Backend> make_nftables_backend(NftablesOptions opts) {
    return std::make_unique<NftablesBackend>(std::move(opts));
}
std::unique_ptr<Backend> make_none_backend() {
    return std::make_unique<NoneBackend>();
}

}  // namespace cnetd::firewall
