#include "daemon/gc_watch.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "daemon/fd_watch.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Drains the netlink socket; true when a veth was deleted (or events were lost).
bool drain_netlink(int fd) {
    bool hit = false;
    alignas(nlmsghdr) char buf[16384];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) {  // the queue overflowed: some deletion may be lost
                hit = true;
                continue;
            }
            return hit;  // EAGAIN: drained
        }
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != RTM_DELLINK) continue;
            auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(h));
            int len = static_cast<int>(IFLA_PAYLOAD(h));
            for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                if (a->rta_type != IFLA_IFNAME) continue;
                const char* name = static_cast<const char*>(RTA_DATA(a));
                if (std::strncmp(name, "veth", 4) == 0) hit = true;
            }
        }
    }
}

// Drains the inotify fd; true when a file left the directory (or events were lost).
bool drain_inotify(int fd) {
    bool hit = false;
    alignas(inotify_event) char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return hit;
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            if (ev->mask & (IN_DELETE | IN_MOVED_FROM | IN_Q_OVERFLOW | IN_UNMOUNT)) hit = true;
            p += sizeof(inotify_event) + ev->len;
        }
    }
}

// The default collection: the backend's.
void collect_garbage(Backend& b) {
    collect_dead_endpoints(b);
}

// The netlink socket for link events, in the calling thread's namespace.
Result<UniqueFd> open_link_events() {
    UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!nl.valid()) return Error::sys(errno, "start netns GC: netlink socket");
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(nl.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        return Error::sys(errno, "start netns GC: subscribe to link events");
    }
    return nl;
}

// inotify on the netns directory; invalid (logged) when it cannot be watched.
UniqueFd open_dir_events(const std::string& dir) {
    UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (in.valid() && ::inotify_add_watch(in.get(), dir.c_str(), IN_DELETE | IN_MOVED_FROM) < 0) {
        log::warn("netns GC: cannot watch {}: {}; relying on link events and the periodic sweep",
                  dir, std::strerror(errno));
        in.reset();
    }
    return in;
}

}  // namespace

// The watch: shared with the io handlers and worker jobs it queues. io thread only, but for
// construction and stop().
struct GcWatch::State : std::enable_shared_from_this<State> {
    enum class Phase { Idle, Settling, Running };

    State(asio::io_context& io, Worker& worker, std::chrono::milliseconds sweep,
          std::chrono::milliseconds settle, Collect collect)
        : io(io),
          worker(worker),
          sweep(sweep),
          settle(settle),
          collect(std::move(collect)),
          sweep_timer(io),
          settle_timer(io) {}

    // Watches `fd` (if valid) in `slot`; when it is readable, drains it with `drain`, which says
    // whether the events call for a collection.
    void watch(std::optional<FdWatch>& slot, UniqueFd fd, bool (*drain)(int), const char* what) {
        if (!fd.valid()) return;
        slot.emplace(io, std::move(fd),
                     [w = weak_from_this(), slot = &slot, drain, what](const error_code& ec) {
                         auto s = w.lock();
                         if (!s) return;
                         if (ec) {
                             log::error(
                                 "netns GC: waiting on the {}: {}; it no longer triggers "
                                 "collections",
                                 what, ec.message());
                             return;
                         }
                         if (drain((*slot)->fd())) s->trigger();
                         (*slot)->arm();
                     });
        slot->arm();
    }

    void begin(UniqueFd nl, UniqueFd in) {
        watch(link, std::move(nl), drain_netlink, "link event socket");
        watch(dir, std::move(in), drain_inotify, "netns directory");
        asio::dispatch(io, [s = shared_from_this()] { s->arm_sweep(); });
    }

    void stop() {
        if (stopped.exchange(true)) return;
        if (link) link->stop();
        if (dir) dir->stop();
        asio::dispatch(io, [s = shared_from_this()] {
            s->sweep_timer.cancel();
            s->settle_timer.cancel();
        });
    }

    void arm_sweep() {
        if (stopped) return;
        sweep_timer.expires_after(sweep);  // cancels the previous wait
        sweep_timer.async_wait([s = shared_from_this()](const error_code& ec) {
            if (!ec) s->trigger();
        });
    }

    void trigger() {
        if (stopped) return;
        if (phase == Phase::Running) again = true;  // one more collection once this one is done
        if (phase != Phase::Idle) return;           // settling: this event joins the burst
        phase = Phase::Settling;
        sweep_timer.cancel();
        // Let the teardown finish and a burst of events arrive, then collect once.
        settle_timer.expires_after(settle);
        settle_timer.async_wait([s = shared_from_this()](const error_code& ec) {
            if (!ec) s->settled();
        });
    }

    void settled() {
        if (stopped) return;
        // The burst's events belong to this collection.
        if (link) drain_netlink(link->fd());
        if (dir) drain_inotify(dir->fd());
        phase = Phase::Running;
        // False: the worker is stopping (and so is the daemon); the phase stays Running.
        run_on_worker(
            worker, io, "netns GC",
            [s = shared_from_this()](Backend& b) {
                s->collect(b);
                return true;
            },
            [s = shared_from_this()](bool) { s->collected(); });
    }

    void collected() {
        if (stopped) return;
        phase = Phase::Idle;
        arm_sweep();
        if (std::exchange(again, false)) trigger();
    }

    asio::io_context& io;
    Worker& worker;
    const std::chrono::milliseconds sweep, settle;
    const Collect collect;
    asio::steady_timer sweep_timer, settle_timer;
    std::optional<FdWatch> link, dir;
    std::atomic<bool> stopped{false};
    Phase phase = Phase::Idle;  // io thread only
    bool again = false;         // io thread only
};

std::vector<std::string> collect_dead_endpoints(Backend& b) {
    auto removed = b.collect_garbage();
    if (!removed.ok()) {
        log::error("netns GC: {}", removed.error().message());
        return {};
    }
    if (!removed->empty())
        log::info("netns GC: removed {} endpoint(s) whose namespace died", removed->size());
    return std::move(removed).value();
}

GcWatch::GcWatch(asio::io_context& io, Worker& worker, std::string netns_dir,
                 std::chrono::milliseconds sweep, std::chrono::milliseconds settle, Collect collect)
    : io_(io),
      worker_(worker),
      netns_dir_(std::move(netns_dir)),
      sweep_(sweep),
      settle_(settle),
      collect_(collect ? std::move(collect) : Collect(collect_garbage)) {}

GcWatch::~GcWatch() {
    stop();
}

Result<void> GcWatch::start() {
    if (state_) return Error::internal("start netns GC: already started");
    auto nl = open_link_events();
    if (!nl) return nl.error();
    auto state = std::make_shared<State>(io_, worker_, sweep_, settle_, collect_);
    try {
        state->begin(std::move(nl).value(), open_dir_events(netns_dir_));
    } catch (const boost::system::system_error& e) {
        state->stop();
        return Error::sys(e.code().value(), "start netns GC: watch its sockets");
    }
    state_ = std::move(state);
    return ok();
}

void GcWatch::stop() {
    if (state_) state_->stop();
}

}  // namespace cnetd::daemon
