#include "netlink/reap.hpp"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>

#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "base/log.hpp"
#include "netlink/link.hpp"

namespace cnetd::netlink {

namespace {

// RTM_SETLINK for one link: by ifindex when > 0, else by IFLA_IFNAME = name. `down` clears
// IFF_UP; `rename_to` (by ifindex only) renames; master/group when given.
Result<NlMsg> build_setlink(int ifindex, const std::string& name, bool down,
                            const std::string& rename_to, std::optional<uint32_t> master,
                            std::optional<uint32_t> group, std::string_view what) {
    NlMsg msg(nlmsg_alloc_simple(RTM_SETLINK, 0));
    if (!msg) return Error::sys(ENOMEM, what);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = ifindex;
    if (down) ifi.ifi_change = IFF_UP;  // flags 0: IFF_UP cleared, nothing else touched
    bool fail = nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0;
    if (ifindex <= 0) fail = fail || nla_put_string(msg.get(), IFLA_IFNAME, name.c_str()) < 0;
    if (!rename_to.empty())
        fail = fail || nla_put_string(msg.get(), IFLA_IFNAME, rename_to.c_str()) < 0;
    if (master) fail = fail || nla_put_u32(msg.get(), IFLA_MASTER, *master) < 0;
    if (group) fail = fail || nla_put_u32(msg.get(), IFLA_GROUP, *group) < 0;
    if (fail) return Error::sys(ENOBUFS, what);
    return msg;
}

}  // namespace

Result<bool> retire_host(RouteSocket& s, const std::string& name) {
    const std::string what = fmt::format("retire link {}{}", name, s.where());
    CNETD_TRY(validate_ifname(name).context(what));
    CNETD_TRY_ASSIGN(auto msg, build_setlink(0, name, /*down=*/true, "", 0u, kReapGroup, what));
    if (int rc = s.send_sync(std::move(msg)); rc < 0) {
        int e = s.errno_of(rc);
        if (e == ENODEV || e == ENOENT) return false;
        return s.error(rc, what);
    }
    return true;
}

Result<void> retire_peer(RouteSocket& s, const std::string& name, const std::string& new_name) {
    const std::string what = fmt::format("retire link {}{}", name, s.where());
    CNETD_TRY(validate_ifname(new_name).context(what));
    // A rename must address the link by ifindex (IFLA_IFNAME would be the lookup key).
    CNETD_TRY_ASSIGN(auto link, get_link(s, name));
    if (!link) return ok();
    auto send = [&](bool down, const std::string& rename) -> int {
        auto msg =
            build_setlink(link->ifindex, name, down, rename, std::nullopt, std::nullopt, what);
        if (!msg.ok()) return -NLE_NOMEM;
        return s.send_sync(std::move(msg).value());
    };
    int rc = send(true, new_name);
    if (rc < 0 && s.errno_of(rc) == EBUSY) {  // no live rename in this kernel: down first
        rc = send(true, "");
        if (rc >= 0) rc = send(false, new_name);
    }
    if (rc < 0) {
        int e = s.errno_of(rc);
        if (e == ENODEV || e == ENOENT) return ok();  // gone meanwhile (its host end was deleted)
        return s.error(rc, what);
    }
    return ok();
}

std::string retired_peer_name(const std::string& host_name) {
    return ("r" + host_name).substr(0, IFNAMSIZ - 1);
}

Result<void> delete_group(RouteSocket& s, uint32_t group) {
    const std::string what = fmt::format("delete links of group {:#x}{}", group, s.where());
    NlMsg msg(nlmsg_alloc_simple(RTM_DELLINK, 0));
    if (!msg) return Error::sys(ENOMEM, what);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    if (nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
        nla_put_u32(msg.get(), IFLA_GROUP, group) < 0)
        return Error::sys(ENOBUFS, what);
    if (int rc = s.send_sync(std::move(msg)); rc < 0) {
        if (s.errno_of(rc) == ENODEV) return ok();  // rtnl_group_dellink: no link in the group
        return s.error(rc, what);
    }
    return ok();
}

// --- Reaper --------------------------------------------------------------------------------------

Reaper::Reaper(RouteSocket sock, uint32_t group) : sock_(std::move(sock)), group_(group) {}

Result<std::unique_ptr<Reaper>> Reaper::start(uint32_t group) {
    CNETD_TRY_ASSIGN(auto sock, RouteSocket::open_current());
    std::unique_ptr<Reaper> r(new Reaper(std::move(sock), group));
    try {
        r->thread_ = std::thread([p = r.get()] { p->run(); });
    } catch (const std::system_error& e) {
        return Error::sys(e.code().value(), "start the veth reaper thread");
    }
    return r;
}

Reaper::~Reaper() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;  // the thread finishes what is queued before it returns
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Reaper::queued() {
    {
        std::lock_guard lock(mu_);
        ++queued_;
    }
    wake_.notify_one();
}

Result<void> Reaper::flush() {
    std::unique_lock lock(mu_);
    const uint64_t target = queued_;
    done_.wait(lock, [&] { return reaped_ >= target; });
    if (last_error_) return *last_error_;
    return ok();
}

uint64_t Reaper::pending() const {
    std::lock_guard lock(mu_);
    return queued_ - reaped_;
}

uint64_t Reaper::batches() const {
    std::lock_guard lock(mu_);
    return batches_;
}

void Reaper::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        wake_.wait(lock, [&] { return stop_ || queued_ > reaped_; });
        if (queued_ == reaped_) return;  // stop_ and nothing left
        // Everything retired up to now is in the group already (retire happens before queued()):
        // one request takes it all; later arrivals wait for the next batch.
        const uint64_t target = queued_;
        lock.unlock();
        auto r = delete_group(sock_, group_);
        lock.lock();
        ++batches_;
        reaped_ = target;
        if (r.ok()) {
            last_error_.reset();
        } else {
            // The links stay in the group: the next batch (or the next daemon start) retries.
            log::warn("veth reaper: {}", r.error().message());
            last_error_ = std::move(r).error();
        }
        done_.notify_all();
    }
}

}  // namespace cnetd::netlink
