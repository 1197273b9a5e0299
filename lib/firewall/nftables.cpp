// The nftables backend: remembered intent + pure builders (ruleset.cpp) + one netlink transaction
// per call (nft::Socket::commit). See firewall.hpp for the contract, docs/firewall.md for design.
#include <fcntl.h>
#include <linux/netfilter.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <optional>

#include "base/log.hpp"
#include "firewall/firewall.hpp"
#include "firewall/ruleset.hpp"
#include "nft/nft.hpp"

namespace cnetd::firewall {
namespace {

constexpr const char* kBrNfCallIptables = "/proc/sys/net/bridge/bridge-nf-call-iptables";

// ICC off is enforced in the inet forward hook, which sees bridged (port-to-port) IPv4 traffic
// only when br_netfilter's bridge-nf-call-iptables is 1 in this network namespace.
Result<void> ensure_bridge_nf(const std::vector<NetworkRules>& nets, bool manage) {
    const NetworkRules* off = nullptr;
    for (const auto& n : nets)
        if (!n.icc) off = &n;
    if (!off) return ok();
    const std::string what = fmt::format("icc off on bridge {} needs br_netfilter", off->bridge);
    UniqueFd fd(::open(kBrNfCallIptables, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return Error::sys(errno, fmt::format("{}: open {}", what, kBrNfCallIptables));
    char c = 0;
    if (::pread(fd.get(), &c, 1, 0) != 1)
        return Error::sys(errno, fmt::format("{}: read {}", what, kBrNfCallIptables));
    if (c == '1') return ok();
    if (!manage)
        return Error(ErrorKind::Unavailable,
                     fmt::format("{}: {} is 0 (set it to 1)", what, kBrNfCallIptables));
    if (::pwrite(fd.get(), "1\n", 2, 0) != 2)
        return Error::sys(errno, fmt::format("{}: write 1 to {}", what, kBrNfCallIptables));
    log::info("firewall: set {}=1 so bridged traffic of {} passes the forward hook",
              kBrNfCallIptables, off->bridge);
    return ok();
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
        CNETD_TRY_ASSIGN(auto have, sock_->dump_table(NFPROTO_INET, opts_.table));
        if (matches(have, expected_state(opts_.table, intent()), /*elements=*/false)) return ok();
        if (have.exists)
            log::warn("firewall: table inet {} differs from our layout, rebuilding", opts_.table);
        return rebuild(intent()).context("ensure firewall base");
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
        if (it != intent_.end() && !(it->second == n)) {
            // Changed options: the old elements must go in the same transaction; the simplest
            // atomic form of "replace some elements" is a rebuild.
            CNETD_TRY(rebuild(next).context(frame));
        } else if (auto r = sock_->commit(build_network(opts_.table, n, true)); !r.ok()) {
            if (r.error().error_number() != ENOENT) return std::move(r).context(frame);
            // Our table or a set vanished (e.g. `nft flush ruleset`): rebuild and retry once.
            log::warn("firewall: {} ({}); rebuilding table inet {}", frame, r.error().message(),
                      opts_.table);
            CNETD_TRY(rebuild(next).context(frame));
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

    Result<void> sync(const std::vector<NetworkRules>& nets) override {
        CNETD_TRY(ready());
        CNETD_TRY(validate(nets).context("sync firewall"));
        CNETD_TRY(ensure_bridge_nf(nets, opts_.manage_br_netfilter).context("sync firewall"));
        CNETD_TRY(rebuild(nets).context("sync firewall"));
        return ok();
    }

    Result<std::string> show() override {
        CNETD_TRY(ready());
        const auto nets = intent();
        std::string out = render(opts_.table, nets);
        CNETD_TRY_ASSIGN(auto have, sock_->dump_table(NFPROTO_INET, opts_.table));
        const Expected want = expected_state(opts_.table, nets);
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
        CNETD_TRY_ASSIGN(bool changed, mon_->drain(sock_->portid()));
        if (!changed) return false;
        // Someone else touched our table: we do not try to understand the edit, we restore the
        // whole table from intent in one transaction (cheap, and correct for any edit).
        log::warn("firewall: table inet {} was changed by someone else, restoring it", opts_.table);
        CNETD_TRY(rebuild(intent()).context("repair firewall table"));
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
    std::vector<NetworkRules> intent() const {
        std::vector<NetworkRules> v;
        for (const auto& [id, n] : intent_) v.push_back(n);
        return v;
    }
    Result<void> rebuild(const std::vector<NetworkRules>& nets) {
        CNETD_TRY(sock_->commit(build_rebuild(opts_.table, nets)));
        intent_.clear();
        for (const auto& n : nets) intent_[n.id] = n;
        return ok();
    }

    NftablesOptions opts_;
    std::optional<nft::Socket> sock_;
    std::optional<nft::Monitor> mon_;
    std::optional<Error> open_error_;
    std::map<std::string, NetworkRules> intent_;  // by id: a stable order for rebuilds
    uint64_t repairs_ = 0;
};

class NoneBackend final : public Backend {
public:
    Result<void> ensure_base() override { return ok(); }
    Result<void> add_network(const NetworkRules& n) override { return validate(n); }
    Result<void> remove_network(const NetworkRules&) override { return ok(); }
    Result<void> sync(const std::vector<NetworkRules>& nets) override { return validate(nets); }
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
