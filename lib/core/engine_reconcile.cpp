// Reconciliation at start and netns garbage collection (owner: persist). See engine.hpp.
//
// Why here and not in engine.cpp: these walk persisted endpoints against the kernel and share the
// "forget an endpoint whose namespace died" step; attach/detach stay in engine.cpp. What an
// endpoint is in the kernel (and so how it is repaired, and which leftovers are swept) is its
// network driver's (core/driver.hpp): this file decides which endpoints live, die or carry the
// default routes.
#include <cerrno>

#include "base/log.hpp"
#include "core/engine.hpp"

namespace cnetd::core {

namespace {

void log_failure(const Result<void>& r, std::string_view what) {
    if (!r.ok()) log::error("{}: {}", what, r.error().message());
}

}  // namespace

Engine::NetnsFate Engine::netns_fate(const Endpoint& ep, std::unique_ptr<Netns>* out) {
    auto ns = kernel_.open_netns(ep.netns_path);
    if (!ns.ok()) {
        const Error& e = ns.error();
        // Missing file, or a file that is no longer a namespace (unmounted): gone for good.
        if (e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::InvalidArgument ||
            e.error_number() == ENOENT || e.error_number() == ESRCH) {
            return NetnsFate::Gone;
        }
        log::warn("endpoint {}: cannot check namespace {}: {}", ep.name, ep.netns_path,
                  e.message());
        return NetnsFate::Unknown;
    }
    // The same path may now hold a new namespace (a container restarted under the same name).
    if ((*ns)->id() != ep.netns_id) return NetnsFate::Gone;
    if (out) *out = std::move(ns).value();
    return NetnsFate::Alive;
}

Result<void> Engine::repair_endpoint(const std::string& net_id, const std::string& ep_id,
                                     Netns& ns) {
    const Network& net = nets_.at(net_id).net;
    const Endpoint& ep = net.endpoints.at(ep_id);
    // Only the namespace's elected endpoint carries each default route (core/gateway.hpp).
    const auto cands = namespace_endpoints(ep.netns_id);
    auto carries = [&](IpFamily f) {
        auto w = elect_gateway(cands, f);
        return w && w->ep->id == ep.id;
    };
    return driver_of(net).repair(net, ep, ns, {carries(IpFamily::V4), carries(IpFamily::V6)});
}

bool Engine::reconcile_endpoints() {
    bool changed = false;
    ReconcileReport report;
    std::vector<std::pair<std::string, std::string>> all;
    for (const auto& [nid, n] : nets_)
        for (const auto& [eid, ep] : n.net.endpoints) all.emplace_back(nid, eid);
    for (const auto& [nid, eid] : all) {
        const Endpoint& ep = nets_.at(nid).net.endpoints.at(eid);
        std::unique_ptr<Netns> ns;
        switch (netns_fate(ep, &ns)) {
            case NetnsFate::Gone: {
                // Saved once by start() after this walk; the full firewall sync follows.
                const std::string why = fmt::format("namespace {} is gone", ep.netns_path);
                const std::string what = "endpoint " + ep.name;  // `ep` goes with the detach
                log_failure(detach_endpoints({{nid, eid}}, why, {.save = false, .firewall = false}),
                            what);
                changed = true;
                ++report.removed;
                break;
            }
            case NetnsFate::Unknown:
                ++report.unchecked;
                break;  // logged; checked again by the next GC sweep
            case NetnsFate::Alive:
                if (auto r = repair_endpoint(nid, eid, *ns); !r.ok()) {
                    log::error("endpoint {}: repair failed, left as is: {}", ep.name,
                               r.error().message());
                    ++report.repair_failed;
                } else {
                    ++report.kept;
                }
                break;
        }
    }
    // Leftovers of an interrupted connect, which no endpoint owns: each driver knows its own.
    for (const auto& [nid, n] : nets_) driver_of(n.net).sweep(n.net);
    reconcile_report_ = report;
    return changed;
}

Result<std::vector<std::string>> Engine::collect_garbage() {
    std::vector<std::pair<std::string, std::string>> dead;
    for (const auto& [nid, n] : nets_) {
        for (const auto& [eid, ep] : n.net.endpoints) {
            if (netns_fate(ep, nullptr) == NetnsFate::Gone) dead.emplace_back(nid, eid);
        }
    }
    std::vector<std::string> removed;
    if (dead.empty()) return removed;
    for (const auto& [nid, eid] : dead) {
        const Network& net = nets_.at(nid).net;
        const Endpoint& ep = net.endpoints.at(eid);
        removed.push_back(net.name + "/" + ep.name);
        log::warn("endpoint {} on network {}: namespace {} disappeared", ep.name, net.name,
                  ep.netns_path);
    }
    // One save for all; a failed one keeps them all (the next sweep tries again).
    CNETD_TRY(detach_endpoints(dead, "its namespace disappeared", {})
                  .context("garbage collection: save state"));
    return removed;
}

}  // namespace cnetd::core
