// Engine::create_network and Engine::remove_network (engine.hpp): validate -> plan -> apply with
// one undo log -> persist. The request is planned purely first (core/network_spec.hpp), so a
// request that can be refused is refused before any kernel call; the kernel objects are the
// network's driver's (core/driver.hpp), the firewall intent is added in the same undo log.
#include <cstdio>

#include "base/log.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"
#include "core/overlay_driver.hpp"

namespace cnetd::core {

namespace {

// Nameserver lines of resolv.conf that are IPv4 addresses.
std::vector<Ipv4> nameservers_of(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "re");
    if (!f) return {};
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (1u << 20))
        text.append(buf, n);
    std::fclose(f);
    return read_nameservers(text);
}

}  // namespace

Result<Network> Engine::plan_new_network(const CreateNetworkRequest& req) {
    // The daemon routes these to its cluster agent (Engine::plan_overlay_network and
    // add_overlay_network): a node never makes one alone.
    if (req.driver == "overlay") return Error::invalid(kOverlayThroughCluster);
    CNETD_TRY_ASSIGN(NetworkDriver * driver, driver_for("driver", req.driver));
    PlanInputs in = plan_inputs();
    CNETD_TRY_ASSIGN(NetworkSpec spec, parse_network_request(req, random_hex(64), *driver, in));
    if (spec.needs_pool4()) {
        // The pool choice avoids the host's on-link routes and nameservers: read only now, when
        // the text has passed and a pool is really needed.
        auto routes = kernel_.onlink_routes4();
        if (routes.ok()) {
            in.pool_context.onlink_routes = *routes;
        } else {
            log::warn("address pools: cannot list on-link routes: {}", routes.error().message());
        }
        in.pool_context.nameservers = nameservers_of(opts_.resolv_conf);
    }
    CNETD_TRY_ASSIGN(Network n, plan_network(std::move(spec), in, *driver));
    CNETD_TRY(driver->probe(n));  // kernel reads only
    if (n.mtu == 0) n.mtu = default_mtu();
    n.created = detail::now_rfc3339();
    return n;
}

Result<void> Engine::record_network(const Network& n, Rollback& undo) {
    // Write-ahead: the network is saved before its kernel objects exist. A crash in between
    // leaves a network whose bridge the next start creates (roll forward); the other order would
    // leave a bridge no state owns, which a restart cannot tell from an admin's (and a retried
    // create would then adopt it and never delete it).
    CNETD_TRY_ASSIGN(Net net, make_net(n));
    nets_.emplace(n.id, std::move(net));
    if (auto saved = persist(); !saved.ok()) {
        nets_.erase(n.id);
        return std::move(saved).error().wrap("save state");
    }
    undo.add([this, id = n.id] {
        nets_.erase(id);
        log_undo_failure(persist(), "save state without network " + id);
    });
    return ok();
}

Result<void> Engine::realize_network(const Network& n, const std::string& frame) {
    Rollback undo;
    CNETD_TRY(record_network(n, undo).context(frame));
    CNETD_TRY(driver_of(n).create(n, undo).context(frame));
    const firewall::NetworkRules rules = driver_of(n).rules(n);
    CNETD_TRY(fw_.add_network(rules).context(frame + ": firewall"));
    undo.add([this, rules] {
        log_undo_failure(fw_.remove_network(rules), "remove firewall elements of " + rules.bridge);
    });
    undo.commit();
    return ok();
}

Result<Network> Engine::create_network(const CreateNetworkRequest& req) {
    // 1. Validate and plan everything; nothing changes until all of it passes.
    CNETD_TRY_ASSIGN(Network n, plan_new_network(req));
    // 2. Apply, with one undo log: state, kernel objects, firewall.
    CNETD_TRY(realize_network(n, fmt::format("create network {}", req.name)));
    // After the commit, so a refused request leaves the sysctl as it was; forwarding is never
    // turned off again (other networks may need it), as at start.
    if (n.subnet6) {
        if (auto f = enable_ip6_forwarding(); !f.ok())
            log::warn("network {}: {}", n.name, f.error().message());
    }
    log::info("network {} created: {} {}, subnet {}, gateway {}{}", n.name, n.driver, n.bridge,
              n.subnet.str(), n.gateway.str(),
              n.subnet6 ? fmt::format(", subnet {}, gateway {}", n.subnet6->str(), n.gateway6.str())
                        : "");
    return n;
}

Result<void> Engine::check_removable(const Network& n) const {
    if (n.is_default) {
        return Error::invalid(fmt::format(
            "{} is the default network and cannot be removed (set `bridge: none` in the config)",
            n.name));
    }
    if (!n.endpoints.empty()) {
        std::string names;
        for (const auto& [id, ep] : n.endpoints) names += (names.empty() ? "" : ", ") + ep.name;
        return Error::conflict(fmt::format("network {} has active endpoints ({})", n.name, names));
    }
    return ok();
}

Result<void> Engine::remove_network(const std::string& key) {
    CNETD_TRY_ASSIGN(Net * n, lookup(key));
    CNETD_TRY(check_removable(n->net));
    const Network copy = n->net;
    const std::string frame = fmt::format("remove network {}", copy.name);
    NetworkDriver& driver = driver_of(copy);
    Rollback undo;
    // The network's firewall elements go first: nothing may filter or NAT for a bridge that is
    // gone. A failure here is logged, not fatal: the backend forgets the network anyway and the
    // next full sync (restart, drift repair) drops any leftover element.
    const firewall::NetworkRules rules = driver.rules(copy);
    if (auto fw = fw_.remove_network(rules); !fw.ok()) {
        log::warn("{}: firewall: {}", frame, fw.error().message());
    }
    undo.add([this, rules] {
        log_undo_failure(fw_.add_network(rules), "restore firewall of " + rules.bridge);
    });
    CNETD_TRY(driver.remove(copy, undo).context(frame));
    // Kernel first, then the state: a crash in between finds the network in the state file and
    // the next start makes its kernel objects again; a failed save puts them back at once.
    auto node = nets_.extract(copy.id);
    if (auto saved = persist(); !saved.ok()) {
        nets_.insert(std::move(node));
        return std::move(saved).error().wrap(frame + ": save state");
    }
    undo.commit();
    log::info("network {} removed", copy.name);
    return ok();
}

}  // namespace cnetd::core
