#include "daemon/engine_backend.hpp"

#include <optional>

#include "core/engine.hpp"
#include "core/failpoint_wrappers.hpp"
#include "core/ula.hpp"
#include "firewall/coexist.hpp"
#include "platform/linux_kernel.hpp"
#include "store/file_store.hpp"

namespace cnetd::daemon {
namespace {

class EngineBackend final : public Backend {
public:
    EngineBackend(std::unique_ptr<platform::LinuxKernel> kernel,
                  std::unique_ptr<firewall::Backend> fw, std::string state_dir,
                  core::EngineOptions opts)
        : kernel_(std::move(kernel)),
          fw_(std::move(fw)),
          fp_kernel_(*kernel_),
          fp_fw_(*fw_),
          store_(std::move(state_dir)),
          engine_(fp_kernel_, fp_fw_, store_, std::move(opts)) {}

    Result<void> init(const config::Config& cfg) {
        ip_forward_ = cfg.ip_forward;
        CNETD_TRY(store_.init().context("create state dir"));
        return engine_.start(default_spec_of(cfg), cfg.ip_forward).context("start engine");
    }

    Result<core::Network> create_network(const core::CreateNetworkRequest& req) override {
        return engine_.create_network(req);
    }
    Result<void> remove_network(const std::string& name_or_id) override {
        return engine_.remove_network(name_or_id);
    }
    Result<core::Endpoint> connect(const core::ConnectRequest& req) override {
        return engine_.connect(req);
    }
    Result<void> disconnect(const std::string& network, const std::string& target) override {
        return engine_.disconnect(network, target);
    }
    Result<std::string> create_netns(const std::string& name) override {
        return engine_.create_netns(name);
    }
    Result<void> remove_netns(const std::string& name) override {
        return engine_.remove_netns(name);
    }
    std::vector<core::Network> networks() const override { return engine_.networks(); }

    firewall::Backend& firewall() override { return engine_.firewall(); }

    Result<core::Endpoint> cni_add(const core::CreateNetworkRequest& net,
                                   const core::ConnectRequest& att) override {
        return engine_.cni_add(net, att);
    }
    Result<bool> cni_del(const std::string& network, const std::string& container_id,
                         const std::string& ifname) override {
        return engine_.cni_del(network, container_id, ifname);
    }
    Result<core::Endpoint> cni_check(const std::string& network, const std::string& container_id,
                                     const std::string& ifname, const std::string& netns) override {
        return engine_.cni_check(network, container_id, ifname, netns);
    }
    Result<std::vector<std::string>> cni_gc(
        const std::string& network,
        const std::vector<std::pair<std::string, std::string>>& keep) override {
        return engine_.cni_gc(network, keep);
    }
    std::vector<std::string> cni_status(const std::string& network) override {
        return engine_.cni_status(network);
    }
    Result<std::vector<std::string>> collect_garbage() override {
        return engine_.collect_garbage();
    }
    Result<void> reconfigure(const std::optional<core::DefaultNetworkSpec>& spec,
                             const core::EngineOptions& live, bool ip_forward) override {
        return engine_.reconfigure(spec, live, ip_forward);
    }
    std::vector<core::LoopbackRelay> loopback_relays() const override {
        return engine_.loopback_relays();
    }
    std::vector<core::DnsSandbox> dns_sandboxes() const override { return engine_.dns_sandboxes(); }
    core::ReconcileReport reconcile_report() const override { return engine_.reconcile_report(); }
    Result<core::OverlayNetworkDef> plan_overlay_network(
        const core::CreateNetworkRequest& req) override {
        return engine_.plan_overlay_network(req);
    }
    Result<core::Network> add_overlay_network(const core::OverlayNetworkDef& def,
                                              const core::OverlayLocal& local) override {
        return engine_.add_overlay_network(def, local);
    }
    Result<void> set_overlay_peers(const std::string& net_id,
                                   std::vector<core::OverlayPeer> peers) override {
        return engine_.set_overlay_peers(net_id, std::move(peers));
    }
    std::string firewall_table() const override {
        return fw_->name() == "none" ? std::string() : "inet " + std::string(kTable);
    }
    Result<std::vector<std::string>> check_coexistence() override {
        firewall::CoexistenceInput in;
        in.ip_forward_configured = ip_forward_;
        in.own_table = kTable;
        for (const auto& n : engine_.networks()) in.bridges.push_back(n.bridge);
        return firewall::check_coexistence(in);
    }

    // The table of the nftables backend (NftablesOptions::table).
    static constexpr const char* kTable = "cnetd";

private:
    // Declaration order matters: the engine borrows the kernel and the store.
    std::unique_ptr<platform::LinuxKernel> kernel_;
    std::unique_ptr<firewall::Backend> fw_;
    // Crash-test failpoints around every kernel and firewall step (core/failpoint_wrappers.hpp):
    // one flag load per call when CNETD_FAILPOINTS is unset.
    core::FailpointKernel fp_kernel_;
    core::FailpointFirewall fp_fw_;
    store::FileStateStore store_;
    core::Engine engine_;
    bool ip_forward_ = true;  // config ip-forward, for the coexistence check
};

}  // namespace

core::EngineOptions engine_options_of(const config::Config& cfg) {
    core::EngineOptions opts;
    opts.netns_dir = cfg.netns_dir;
    opts.mtu = cfg.mtu;
    opts.host_binding = cfg.default_host_ip;
    opts.pools = cfg.address_pools;
    opts.pools6 = cfg.address_pools6;
    return opts;
}

std::optional<core::DefaultNetworkSpec> default_spec_of(const config::Config& cfg) {
    // `bridge: none` in the config: no default network (Engine::start takes nullopt).
    if (!cfg.default_network) return std::nullopt;
    core::DefaultNetworkSpec spec = cfg.default_net;
    spec.icc = cfg.icc;
    spec.masquerade = cfg.ip_masq;
    spec.host_binding = cfg.default_host_ip;
    spec.ipv6 = cfg.ipv6;
    spec.fixed_cidr_v6 = cfg.ipv6 ? cfg.fixed_cidr_v6 : std::nullopt;
    return spec;
}

Result<std::unique_ptr<Backend>> create_engine_backend(const config::Config& cfg) {
    auto kernel = platform::LinuxKernel::create(cfg.netns_dir);
    if (!kernel) return std::move(kernel).error().wrap("open kernel interface");
    core::EngineOptions opts = engine_options_of(cfg);
    {
        // The persistent daemon ID names the IPv6 ULA /48 (stable across restarts and upgrades).
        store::FileStateStore ids(cfg.state_dir);
        CNETD_TRY(ids.init().context("create state dir"));
        CNETD_TRY_ASSIGN(std::string id, ids.daemon_id().context("daemon id"));
        opts.ula48 = core::ula48_from_id(id);
    }
    firewall::NftablesOptions fw_opts;
    fw_opts.table = EngineBackend::kTable;
    auto fw = cfg.firewall == "none" ? firewall::make_none_backend()
                                     : firewall::make_nftables_backend(fw_opts);
    auto backend = std::make_unique<EngineBackend>(std::move(kernel).value(), std::move(fw),
                                                   cfg.state_dir, std::move(opts));
    CNETD_TRY(backend->init(cfg));
    return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace cnetd::daemon
