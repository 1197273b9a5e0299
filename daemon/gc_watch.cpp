#include "daemon/gc_watch.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "base/log.hpp"

namespace cnetd::daemon {

struct GcWatch::Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool job_done = false;
    UniqueFd stop_fd;
};

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

}  // namespace

GcWatch::GcWatch(Worker& worker, std::string netns_dir, std::chrono::milliseconds sweep,
                 std::chrono::milliseconds settle)
    : worker_(worker), netns_dir_(std::move(netns_dir)), sweep_(sweep), settle_(settle) {}

GcWatch::~GcWatch() { stop(); }

Result<void> GcWatch::start() {
    if (shared_) return Error::internal("start netns GC: already started");
    auto shared = std::make_shared<Shared>();
    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return Error::sys(errno, "start netns GC: create eventfd");
    shared->stop_fd.reset(efd);

    UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!nl.valid()) return Error::sys(errno, "start netns GC: netlink socket");
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(nl.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        return Error::sys(errno, "start netns GC: subscribe to link events");
    }
    UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (in.valid() && ::inotify_add_watch(in.get(), netns_dir_.c_str(),
                                          IN_DELETE | IN_MOVED_FROM) < 0) {
        log::warn("netns GC: cannot watch {}: {}; relying on link events and the periodic sweep",
                  netns_dir_, std::strerror(errno));
        in.reset();
    }
    nl_ = std::move(nl);
    inotify_ = std::move(in);
    shared_ = std::move(shared);
    thread_ = std::thread([this] { loop(); });
    return ok();
}

void GcWatch::stop() {
    if (!shared_) return;
    {
        std::lock_guard lk(shared_->mu);
        shared_->stopping = true;
    }
    shared_->cv.notify_all();
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(shared_->stop_fd.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
}

bool GcWatch::run_collection() {
    const std::shared_ptr<Shared> s = shared_;
    {
        std::lock_guard lk(s->mu);
        if (s->stopping) return false;
        s->job_done = false;
    }
    bool queued = worker_.post([s](Backend& b) {
        try {
            auto removed = b.collect_garbage();
            if (!removed.ok()) {
                log::error("netns GC: {}", removed.error().message());
            } else if (!removed->empty()) {
                log::info("netns GC: removed {} endpoint(s) whose namespace died",
                          removed->size());
            }
        } catch (const std::exception& ex) {
            log::error("netns GC: {}", ex.what());
        }
        std::lock_guard lk(s->mu);
        s->job_done = true;
        s->cv.notify_all();
    });
    if (!queued) return false;
    std::unique_lock lk(s->mu);
    s->cv.wait(lk, [&] { return s->job_done || s->stopping; });
    return !s->stopping;
}

void GcWatch::loop() {
    const std::shared_ptr<Shared> s = shared_;
    auto next_sweep = std::chrono::steady_clock::now() + sweep_;
    for (;;) {
        auto now = std::chrono::steady_clock::now();
        int timeout = static_cast<int>(
            std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep - now).count()));
        pollfd fds[3] = {{s->stop_fd.get(), POLLIN, 0},
                         {nl_.get(), POLLIN, 0},
                         {inotify_.valid() ? inotify_.get() : -1, POLLIN, 0}};
        int r = ::poll(fds, 3, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            log::error("netns GC: poll: {}; only stopping is handled now", std::strerror(errno));
            return;
        }
        if (fds[0].revents) return;
        bool trigger = r == 0;  // the periodic sweep
        if (fds[1].revents && drain_netlink(nl_.get())) trigger = true;
        if (fds[2].revents && drain_inotify(inotify_.get())) trigger = true;
        if (!trigger) continue;
        // Let the teardown finish and a burst of events arrive, then collect once.
        {
            std::unique_lock lk(s->mu);
            if (s->cv.wait_for(lk, settle_, [&] { return s->stopping; })) return;
        }
        drain_netlink(nl_.get());
        if (inotify_.valid()) drain_inotify(inotify_.get());
        if (!run_collection()) return;
        next_sweep = std::chrono::steady_clock::now() + sweep_;
    }
}

}  // namespace cnetd::daemon
