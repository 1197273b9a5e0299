// The daemon's view of the engine: the mutations the API can ask for and the state it publishes.
//
// Why an interface and not core::Engine directly: the worker, handlers and server are tested with a
// fake backend (tests/api) that can block on a latch or fail on demand, without a kernel. The real
// implementation (EngineBackend, engine_backend.hpp) forwards to core::Engine.
// Threading: a Backend is used only on the kernel worker thread (created, called and destroyed
// there); see worker.hpp.
// Every route of the API is served through these methods alone (no escape hatch to the engine),
// so the tests' fake backend can serve them all.
// Firewall: the Backend exposes the firewall::Backend the engine drives (the drift monitor and
// GET /v1/firewall use it, on the worker thread too) and the coexistence check for its bridges.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "core/engine.hpp"
#include "core/model.hpp"
#include "firewall/firewall.hpp"

namespace cnetd::daemon {

class Backend {
public:
    virtual ~Backend() = default;
    virtual Result<core::Network> create_network(const core::CreateNetworkRequest& req) = 0;
    virtual Result<void> remove_network(const std::string& name_or_id) = 0;
    virtual Result<core::Endpoint> connect(const core::ConnectRequest& req) = 0;
    virtual Result<void> disconnect(const std::string& network, const std::string& target) = 0;
    virtual Result<std::string> create_netns(const std::string& name) = 0;  // returns the path
    virtual Result<void> remove_netns(const std::string& name) = 0;
    // A copy of the current networks, sorted by name (the worker publishes it as a snapshot).
    virtual std::vector<core::Network> networks() const = 0;

    // The firewall backend the engine drives (owned by the Backend, lives as long as it).
    virtual firewall::Backend& firewall() = 0;
    // What `nft list` calls our table: "inet cnetd"; "" when the firewall is "none".
    virtual std::string firewall_table() const = 0;
    // firewall::check_coexistence for the current bridges and the configured ip-forward: one
    // warning per problem found. Reads the kernel; never changes anything.
    virtual Result<std::vector<std::string>> check_coexistence() = 0;

    // --- CNI attachments (the /v1/cni routes, daemon/handlers_cni.cpp); contracts as
    // core::Engine's methods of the same name ---
    virtual Result<core::Endpoint> cni_add(const core::CreateNetworkRequest& net,
                                           const core::ConnectRequest& att) = 0;
    // true when something was removed; unknown network or attachment is success (false).
    virtual Result<bool> cni_del(const std::string& network, const std::string& container_id,
                                 const std::string& ifname) = 0;
    virtual Result<core::Endpoint> cni_check(const std::string& network,
                                             const std::string& container_id,
                                             const std::string& ifname,
                                             const std::string& netns) = 0;
    // Removes the attachments of `network` not in `keep` ((container id, ifname) pairs); returns
    // "<container id>/<ifname>" of each removed.
    virtual Result<std::vector<std::string>> cni_gc(
        const std::string& network,
        const std::vector<std::pair<std::string, std::string>>& keep) = 0;
    // What is broken for `network`'s attachments; empty when healthy. Reads the kernel.
    virtual std::vector<std::string> cni_status(const std::string& network) = 0;

    // --- daemon housekeeping ---
    // The netns GC watch (daemon/gc_watch.cpp): detaches every endpoint whose namespace died;
    // returns "network/endpoint" of each.
    virtual Result<std::vector<std::string>> collect_garbage() = 0;
    // Config reload (SIGHUP, daemon/daemon.cpp): core::Engine::reconfigure. All or nothing.
    virtual Result<void> reconfigure(const std::optional<core::DefaultNetworkSpec>& spec,
                                     const core::EngineOptions& live, bool ip_forward) = 0;
    // The [::1] bindings the userland relay serves (daemon/relay.cpp); their fds are borrowed
    // until the next mutation.
    virtual std::vector<core::LoopbackRelay> loopback_relays() const = 0;
    // The embedded resolver's sockets per namespace (core::Engine::dns_sandboxes), fds borrowed
    // until the next mutation. Default: none (the tests' fake backend).
    virtual std::vector<core::DnsSandbox> dns_sandboxes() const { return {}; }
    // What start-up's reconciliation found (core::Engine::reconcile_report). Default: nothing
    // (the tests' fake backend reconciles nothing).
    virtual core::ReconcileReport reconcile_report() const { return {}; }

    // --- overlay networks: contracts as core::Engine's methods of the same name; the cluster
    // agent (daemon/cluster_agent.hpp) calls them through jobs. Default: Unavailable (backends
    // without overlay support, e.g. the API tests' fake). ---
    virtual Result<core::OverlayNetworkDef> plan_overlay_network(
        const core::CreateNetworkRequest& req) {
        (void)req;
        return Error(ErrorKind::Unavailable, "overlay networks are not supported by this backend");
    }
    virtual Result<core::Network> add_overlay_network(const core::OverlayNetworkDef& def,
                                                      const core::OverlayLocal& local) {
        (void)def;
        (void)local;
        return Error(ErrorKind::Unavailable, "overlay networks are not supported by this backend");
    }
    virtual Result<void> set_overlay_peers(const std::string& net_id,
                                           std::vector<core::OverlayPeer> peers) {
        (void)net_id;
        (void)peers;
        return Error(ErrorKind::Unavailable, "overlay networks are not supported by this backend");
    }
};

}  // namespace cnetd::daemon
