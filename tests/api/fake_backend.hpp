// An in-memory daemon::Backend for the API tests: networks and endpoints as plain values, netns
// "namespaces" as plain files in a directory (so GET /v1/netns, which reads the directory, sees
// them), and a gate that can hold a mutation inside the worker to prove readers never wait.
// Threading: mutations run on the worker thread; the gate is driven from the test thread.
// FakeFirewall stands in for the nftables backend: its monitor fd is a socket pair the test writes
// to
// ('r' = a foreign change that gets repaired, 'n' = our own notification, 'x' = handle_events()
// fails without draining it), and it records on which thread handle_events() ran.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.hpp"

#include "core/ports.hpp"
#include "daemon/backend.hpp"

namespace cnetd::testing {

class FakeFirewall final : public firewall::Backend {
public:
    // `with_monitor`: a socket pair's end as monitor fd; otherwise -1, like the "none" backend.
    explicit FakeFirewall(bool with_monitor);

    int write_end() const { return sock_w_.get(); }  // the test writes event bytes here
    int events_handled() const { return handled_.load(); }
    std::thread::id handled_on() const;  // thread of the last handle_events()

    std::string show_text = "table inet cnetd {\n}\n# kernel: matches\n";
    std::string backend_name = "nftables";

    Result<void> ensure_base() override { return ok(); }
    Result<void> add_network(const firewall::NetworkRules&) override { return ok(); }
    Result<void> remove_network(const firewall::NetworkRules&) override { return ok(); }
    Result<void> sync(const std::vector<firewall::NetworkRules>&,
                      const std::vector<firewall::PortForward>&) override {
        return ok();
    }
    Result<void> add_ports(const std::vector<firewall::PortForward>&) override { return ok(); }
    Result<void> remove_ports(const std::vector<firewall::PortForward>&) override { return ok(); }
    Result<void> check_ports(const std::vector<firewall::PortForward>&) override { return ok(); }
    Result<std::string> show() override {
        if (on_show) on_show();
        return show_text;
    }
    std::function<void()> on_show;  // set by FakeBackend: logs the call and passes its gate
    int monitor_fd() override { return sock_r_.get(); }
    Result<bool> handle_events() override;
    uint64_t repairs() const override { return repairs_; }
    std::string name() const override { return backend_name; }

private:
    UniqueFd sock_r_, sock_w_;
    uint64_t repairs_ = 0;  // worker thread only
    std::atomic<int> handled_{0};
    mutable std::mutex mu_;
    std::thread::id handled_on_;
};

class FakeBackend final : public daemon::Backend {
public:
    explicit FakeBackend(std::string netns_dir, bool firewall_monitor = false);

    // The next mutation or firewall show(), once inside the backend, signals entered() and waits
    // for release().
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
    // An overlay network as the engine makes it, minus the kernel: driver "overlay", subnet =
    // the block, overlay facts from `def` and `local` (for the cluster routes' tests).
    Result<core::Network> add_overlay_network(const core::OverlayNetworkDef& def,
                                              const core::OverlayLocal& local) override;

    // CNI attachments as the engine keeps them (core/engine.hpp), minus the kernel: cni_add
    // creates the network when missing (Conflict when it exists with another subnet), a retry
    // of a recorded attachment in the same netns returns it, another netns is a Conflict;
    // cni_check's "kernel" check is that the netns path matches and its file exists.
    Result<core::Endpoint> cni_add(const core::CreateNetworkRequest& net,
                                   const core::ConnectRequest& att) override;
    Result<bool> cni_del(const std::string& network, const std::string& container_id,
                         const std::string& ifname) override;
    Result<core::Endpoint> cni_check(const std::string& network, const std::string& container_id,
                                     const std::string& ifname, const std::string& netns) override;
    Result<std::vector<std::string>> cni_gc(
        const std::string& network,
        const std::vector<std::pair<std::string, std::string>>& keep) override;
    // Returns what set_cni_problems() gave last (nothing by default).
    std::vector<std::string> cni_status(const std::string& network) override;
    void set_cni_problems(std::vector<std::string> problems);
    // Endpoints whose netns file is gone are removed ("network/endpoint").
    Result<std::vector<std::string>> collect_garbage() override;
    // Records the call; fails with `reconfigure_error` when set (set it before the reload is
    // posted; read on the worker).
    std::optional<Error> reconfigure_error;
    Result<void> reconfigure(const std::optional<core::DefaultNetworkSpec>& spec,
                             const core::EngineOptions& live, bool ip_forward) override;
    std::vector<core::LoopbackRelay> loopback_relays() const override { return {}; }

    // The kernel-facing calls in the order the worker made them: "create_netns <name>",
    // "remove_netns <name>", "show" (the firewall dump), "cni_add <cid>/<ifname>", "cni_del ...",
    // "cni_check ...", "cni_gc <network>", "cni_status <network>", "collect_garbage",
    // "reconfigure". Any thread.
    std::vector<std::string> calls() const;

    firewall::Backend& firewall() override { return fw_; }
    std::string firewall_table() const override {
        return fw_.backend_name == "none" ? "" : "inet cnetd";
    }
    Result<std::vector<std::string>> check_coexistence() override;

    FakeFirewall& fake_firewall() { return fw_; }
    // What check_coexistence() returns next (set before the check runs, e.g. before start()).
    void set_coexistence(std::vector<std::string> warnings);
    int coexistence_checks() const { return coexist_checks_.load(); }

private:
    void gate();
    void log(std::string call);
    core::Network* find(const std::string& name_or_id);
    // create_network and connect without the gate (cni_add runs them both under one gate).
    Result<core::Network> add_network(const core::CreateNetworkRequest& req);
    Result<core::Endpoint> attach(const core::ConnectRequest& req);
    // The endpoint lives as long as `n` holds it (endpoints are shared, immutable values).
    const core::Endpoint* find_attachment(const core::Network& n, const std::string& container_id,
                                          const std::string& ifname) const;
    // Releases its ports and drops it (the id is copied: it may live in the endpoint dropped).
    void erase_endpoint(core::Network& n, std::string id);

    std::string netns_dir_;
    std::vector<core::Network> nets_;  // sorted by name
    unsigned next_host_ = 2;
    core::PortAllocator ports_;  // worker thread only

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool hold_ = false, entered_ = false, released_ = false;
    std::vector<std::string> calls_;  // guarded by mu_

    FakeFirewall fw_;
    std::vector<std::string> coexist_;       // guarded by mu_
    std::vector<std::string> cni_problems_;  // guarded by mu_
    std::atomic<int> coexist_checks_{0};
};

}  // namespace cnetd::testing
