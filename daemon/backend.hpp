// The daemon's view of the engine: the mutations the API can ask for and the state it publishes.
//
// Why an interface and not core::Engine directly: the worker, handlers and server are tested with a
// fake backend (tests/api) that can block on a latch or fail on demand, without a kernel. The real
// implementation (EngineBackend, engine_backend.hpp) forwards to core::Engine.
// Threading: a Backend is used only on the kernel worker thread (created, called and destroyed
// there); see worker.hpp.
// Firewall: the Backend exposes the firewall::Backend the engine drives (the drift monitor and
// GET /v1/firewall use it, on the worker thread too) and the coexistence check for its bridges.
#pragma once

#include <string>
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
    // The engine itself, for calls without a Backend method of their own (the CNI routes,
    // daemon/handlers_cni.cpp); nullptr for backends without one (the tests' fakes): those routes
    // then answer 503.
    virtual core::Engine* engine() { return nullptr; }
};

}  // namespace cnetd::daemon
