// Engine::start and Engine::reconfigure (engine.hpp): the state file and the config brought into
// the kernel. The default network is planned purely (core/network_spec.hpp, plan_default_
// addressing) before its bridge is touched; each network's kernel objects are its driver's.
#include "base/log.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

namespace {

const char* bool_str(bool b) {
    return b ? "true" : "false";
}

// The settings of the default network that reload may change live (and start sets).
void apply_live_settings(Network& n, const DefaultNetworkSpec& spec, unsigned mtu) {
    n.icc = spec.icc;
    n.masquerade = spec.masquerade;
    n.host_binding = spec.host_binding;
    n.mtu = mtu;
    n.options[kOptEnableIcc] = bool_str(spec.icc);
    n.options[kOptEnableMasquerade] = bool_str(spec.masquerade);
    n.options[kOptHostBinding] = spec.host_binding ? spec.host_binding->str() : "0.0.0.0";
}

// Every config-given field of the default network onto `n` (what start sets, reload or not).
void apply_default_spec(Network& n, const DefaultNetworkSpec& spec, const DefaultAddressing& a,
                        unsigned mtu) {
    n.subnet = a.subnet;
    n.gateway = a.gateway;
    n.ip_range = a.ip_range;
    n.subnet6 = a.subnet6;
    n.gateway6 = a.gateway6;
    n.bridge = spec.bridge;
    n.options[kOptBridgeName] = spec.bridge;
    n.dns = false;  // Docker: the default network has no embedded resolver
    apply_live_settings(n, spec, mtu);
}

bool same_default(const Network& n, const DefaultNetworkSpec& spec, const DefaultAddressing& a,
                  unsigned mtu) {
    return n.subnet == a.subnet && n.gateway == a.gateway && n.bridge == spec.bridge &&
           n.ip_range == a.ip_range && n.mtu == mtu && n.icc == spec.icc &&
           n.masquerade == spec.masquerade && n.host_binding == spec.host_binding &&
           n.subnet6 == a.subnet6 && (!a.subnet6 || n.gateway6 == a.gateway6);
}

// Refuses moving a default network that has endpoints (they would be stranded).
Result<void> check_default_move(const Network& old, const DefaultNetworkSpec& spec,
                                const DefaultAddressing& a) {
    bool moved = old.subnet != a.subnet || old.gateway != a.gateway || old.bridge != spec.bridge ||
                 old.subnet6 != a.subnet6;
    if (!moved || old.endpoints.empty()) return ok();
    return Error::invalid(fmt::format(
        "the config moves the default network from {} on {} to {} on {}, but it has {} "
        "endpoint(s); disconnect them or restore the old bip/bridge",
        old.gateway_cidr().str(), old.bridge, spec.bip.str(), spec.bridge, old.endpoints.size()));
}

}  // namespace

Result<void> Engine::start(const std::optional<DefaultNetworkSpec>& spec, bool ip_forward) {
    ip_forward_ = ip_forward;
    if (ip_forward) {
        CNETD_TRY(kernel_.write_sysctl("net/ipv4/ip_forward", "1").context("enable ip_forward"));
    }
    CNETD_TRY(load_state());
    // The default network follows the config; a change that would strand endpoints is refused.
    CNETD_TRY_ASSIGN(bool changed, apply_default_network(spec));
    CNETD_TRY(ensure_networks());
    if (reconcile_endpoints()) changed = true;  // engine_reconcile.cpp
    if (changed) CNETD_TRY(persist().context("save state"));
    open_dns_sandboxes();  // engine_dns.cpp: the sockets died with the previous daemon
    // The whole table from state, in one transaction: a restart never opens a window without
    // NAT or filtering, and leftovers of a crashed run are replaced.
    CNETD_TRY(sync_firewall().context(fmt::format("firewall ({})", fw_.name())));
    return ok();
}

Result<void> Engine::load_state() {
    CNETD_TRY_ASSIGN(std::vector<Network> saved, store_.load().context("load state"));
    publisher_.load_port_range();  // the kernel's ephemeral range, minus its reserved ports
    for (auto& n : saved) {
        const std::string frame = fmt::format("load state: network {}", n.name);
        if (auto d = driver_for("driver", n.driver); !d) return std::move(d).error().wrap(frame);
        if ((n.driver == "overlay") != n.overlay.has_value())
            return Error::internal(frame + ": the overlay record and the driver disagree");
        if (n.is_default) n.dns = false;  // never, whatever a hand-edited file says
        auto made = make_net(std::move(n));
        if (!made.ok()) return std::move(made).error().wrap("load state");
        CNETD_TRY(restore_ports(*made));
        std::string id = made->net.id;
        nets_.emplace(id, std::move(made).value());
    }
    return ok();
}

Result<void> Engine::restore_ports(const Net& net) {
    for (const auto& [eid, ep] : net.net.endpoints) {
        if (auto c = publisher_.restore(ep); !c.ok()) {
            return Error::internal(fmt::format("load state: network {} endpoint {}: {}",
                                               net.net.name, ep.name, c.error().message()));
        }
    }
    return ok();
}

Result<bool> Engine::drop_default_network(Net* def) {
    if (!def) return false;
    if (!def->net.endpoints.empty()) {
        return Error::invalid(fmt::format(
            "config bridge: none, but the default network has {} endpoint(s); disconnect them "
            "first",
            def->net.endpoints.size()));
    }
    Rollback undo;  // nothing to undo after the bridge: the state is saved by start()
    CNETD_TRY(driver_of(def->net).remove(def->net, undo).context("remove default bridge"));
    undo.commit();
    nets_.erase(def->net.id);
    return true;
}

Result<bool> Engine::apply_default_network(const std::optional<DefaultNetworkSpec>& spec_opt) {
    Net* def = default_net();
    if (!spec_opt) return drop_default_network(def);
    const DefaultNetworkSpec& spec = *spec_opt;
    const Network* current = def ? &def->net : nullptr;
    CNETD_TRY_ASSIGN(DefaultAddressing a, plan_default_addressing(spec, current, plan_inputs()));
    const unsigned mtu = spec.mtu != 0 ? spec.mtu : default_mtu();
    if (def && same_default(def->net, spec, a, mtu)) return false;
    Network n;
    // A bridge not ours yet: adopted when it exists (Docker's docker0, an admin's), else made.
    const bool new_bridge = !def || def->net.bridge != spec.bridge;
    if (def) {
        n = def->net;
        CNETD_TRY(check_default_move(n, spec, a));
        if (n.bridge != spec.bridge) {
            CNETD_TRY(drop_default_network(def));
        } else {
            nets_.erase(n.id);
        }
    } else {
        n.id = random_hex(64);
        n.name = "bridge";
        n.is_default = true;
        n.created = detail::now_rfc3339();
        n.options["com.docker.network.bridge.default_bridge"] = "true";
    }
    apply_default_spec(n, spec, a, mtu);
    if (new_bridge) CNETD_TRY(driver_of(n).probe(n));
    std::string id = n.id;
    CNETD_TRY_ASSIGN(Net net, make_net(std::move(n)));
    nets_.emplace(id, std::move(net));
    return true;
}

Result<void> Engine::ensure_networks() {
    // Bring every network's kernel objects to their recorded state. Existing veths, addresses in
    // containers and namespaces are left alone: a restart must not disturb running containers.
    for (auto& [id, n] : nets_) {
        CNETD_TRY_ASSIGN(bool created, driver_of(n.net).ensure(n.net));
        if (n.net.subnet6) CNETD_TRY(enable_ip6_forwarding());
        log::info("network {}: bridge {} {} with {}", n.net.name, n.net.bridge,
                  created ? "created" : "ready", n.net.gateway_cidr().str());
    }
    return ok();
}

// ---------------------------------------------------------------------------------------------
// reload

Result<void> Engine::reconfigure(const std::optional<DefaultNetworkSpec>& spec,
                                 const EngineOptions& live, bool ip_forward) {
    if (ip_forward && !ip_forward_) {
        CNETD_TRY(kernel_.write_sysctl("net/ipv4/ip_forward", "1").context("reload: ip-forward"));
        ip_forward_ = true;
        for (const auto& [id, n] : nets_)
            if (n.net.subnet6) CNETD_TRY(enable_ip6_forwarding().context("reload"));
    }
    bool synced = false;  // declared before the undo log, whose first action reads it
    Rollback undo;
    // Added first, so it runs last: once the firewall has the new intent, a later failure puts the
    // old one back after everything else is restored.
    undo.add([this, &synced] {
        if (synced) log_undo_failure(sync_firewall(), "firewall");
    });
    undo.add([this, old = opts_] { opts_ = old; });
    opts_.mtu = live.mtu;
    opts_.host_binding = live.host_binding;
    opts_.pools = live.pools;
    opts_.pools6 = live.pools6;
    Net* def = default_net();
    if (def && spec) {
        const Network before = def->net;
        undo.add([this, before] { nets_.at(before.id).net = before; });
        Network& n = def->net;
        apply_live_settings(n, *spec, spec->mtu != 0 ? spec->mtu : default_mtu());
        if (n.mtu != before.mtu) {
            undo.add([this, before] {
                if (auto r = driver_of(before).ensure(before); !r.ok())
                    log::error("rollback: restore MTU of {}: {}", before.bridge,
                               r.error().message());
            });
            if (auto r = driver_of(n).ensure(n); !r.ok())
                return std::move(r).error().wrap("reload: mtu");
        }
        CNETD_TRY(sync_firewall().context("reload: firewall"));
        synced = true;
        CNETD_TRY(persist().context("reload: save state"));
        log::info("reload: default network: icc={} ip-masq={} mtu={} ip={}", bool_str(n.icc),
                  bool_str(n.masquerade), n.mtu,
                  n.host_binding ? n.host_binding->str() : "0.0.0.0");
    }
    undo.commit();
    return ok();
}

}  // namespace cnetd::core
