// An in-memory daemon::Backend for the API tests: networks and endpoints as plain values, netns
// "namespaces" as plain files in a directory (so GET /v1/netns, which reads the directory, sees
// them), and a gate that can hold a mutation inside the worker to prove readers never wait.
// Threading: mutations run on the worker thread; the gate is driven from the test thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/backend.hpp"

namespace cnetd::testing {

class FakeBackend final : public daemon::Backend {
public:
    explicit FakeBackend(std::string netns_dir);

    // The next mutation, once inside the backend, signals entered() and waits for release().
    void hold_next();
    // Waits (up to 5 s) until a held mutation is inside the backend; false on timeout.
    bool wait_entered();
    void release();

    Result<core::Network> create_network(const core::CreateNetworkRequest& req) override;
    Result<void> remove_network(const std::string& name_or_id) override;
    Result<core::Endpoint> connect(const core::ConnectRequest& req) override;
    Result<void> disconnect(const std::string& network, const std::string& target) override;
    Result<std::string> create_netns(const std::string& name) override;
    Result<void> remove_netns(const std::string& name) override;
    std::vector<core::Network> networks() const override;

private:
    void gate();
    core::Network* find(const std::string& name_or_id);

    std::string netns_dir_;
    std::vector<core::Network> nets_;  // sorted by name
    unsigned next_host_ = 2;

    std::mutex mu_;
    std::condition_variable cv_;
    bool hold_ = false, entered_ = false, released_ = false;
};

}  // namespace cnetd::testing
