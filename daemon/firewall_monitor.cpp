#include "daemon/firewall_monitor.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <future>
#include <mutex>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "daemon/handlers.hpp"

namespace cnetd::daemon {

namespace {

constexpr std::chrono::milliseconds kMaxBackoff{5000};

// One drift check on the worker thread. False when handle_events() failed (the caller backs off).
bool handle_drift(Worker& worker, Backend& backend) {
    firewall::Backend& fw = backend.firewall();
    auto repaired = fw.handle_events();
    if (!repaired) {
        log::error("firewall: checking table {} for foreign changes failed: {}",
                   backend.firewall_table(), repaired.error().message());
        return false;
    }
    if (!*repaired) return true;  // only our own transactions, or other tables
    worker.note_firewall_repair(now_rfc3339());
    log::warn("firewall: table {} was changed or removed by someone else; restored (repair #{})",
              backend.firewall_table(), fw.repairs());
    refresh_coexistence(worker, backend);
    return true;
}

}  // namespace

// Shared between the monitor thread and the jobs it posts; a dropped job only drops a reference.
struct FirewallMonitor::Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool job_done = false;
    bool job_failed = false;
    UniqueFd stop_fd;  // eventfd: wakes poll() in stop()
};

void refresh_coexistence(Worker& worker, Backend& backend) {
    auto warnings = backend.check_coexistence();
    if (!warnings) {
        // Keep the previous list: a transient failure must not make known problems disappear.
        log::error("firewall: coexistence check failed: {}", warnings.error().message());
        return;
    }
    for (const auto& w : *warnings) log::warn("firewall: {}", w);
    worker.note_firewall_warnings(std::move(warnings).value());
}

FirewallMonitor::FirewallMonitor(Worker& worker, std::chrono::milliseconds error_backoff)
    : worker_(worker), backoff_(error_backoff) {}

FirewallMonitor::~FirewallMonitor() {
    stop();
}

Result<void> FirewallMonitor::start() {
    if (shared_) return Error::internal("start firewall monitor: already started");
    auto shared = std::make_shared<Shared>();
    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return Error::sys(errno, "start firewall monitor: create eventfd");
    shared->stop_fd.reset(efd);

    // The fd and the first check come from the worker: the backend is not thread-safe. A
    // shared_ptr'd promise, because std::function needs a copyable job; if the worker drops the
    // job (stopping), the promise dies unset and get() throws broken_promise.
    auto fd_promise = std::make_shared<std::promise<int>>();
    auto fd_future = fd_promise->get_future();
    bool queued = worker_.post([fd_promise, w = &worker_](Backend& b) {
        try {
            refresh_coexistence(*w, b);
        } catch (const std::exception& e) {
            log::error("firewall: coexistence check failed: {}", e.what());
        }
        fd_promise->set_value(b.firewall().monitor_fd());
    });
    int fd = -1;
    try {
        if (!queued) throw std::future_error(std::future_errc::broken_promise);
        fd = fd_future.get();
    } catch (const std::future_error&) {
        return Error(ErrorKind::Unavailable,
                     "start firewall monitor: the kernel worker is not running");
    }
    shared_ = std::move(shared);
    if (fd < 0) {
        log::debug("firewall: backend has no event socket; drift is not monitored");
        return ok();
    }
    thread_ = std::thread([this, fd] { loop(fd); });
    return ok();
}

void FirewallMonitor::stop() {
    if (!shared_) return;
    {
        std::lock_guard lk(shared_->mu);
        shared_->stopping = true;
    }
    shared_->cv.notify_all();
    const uint64_t one = 1;
    // Cannot fail short of a bug (the counter cannot overflow with one write); nothing to do then.
    [[maybe_unused]] ssize_t n = ::write(shared_->stop_fd.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
}

void FirewallMonitor::loop(int fd) {
    const std::shared_ptr<Shared> s = shared_;
    std::chrono::milliseconds backoff = backoff_;
    for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {s->stop_fd.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log::error(
                "firewall: poll on the nftables event socket: {}; drift is no longer "
                "repaired",
                std::strerror(errno));
            return;
        }
        if (fds[1].revents != 0) return;
        if (fds[0].revents & POLLNVAL) {
            log::error(
                "firewall: the nftables event socket was closed; drift is no longer "
                "repaired");
            return;
        }
        // Readable, or an error condition (e.g. ENOBUFS after lost events): handle_events() reads
        // it and decides; either way exactly one job, and no poll until it has run.
        {
            std::lock_guard lk(s->mu);
            if (s->stopping) return;
            s->job_done = s->job_failed = false;
        }
        bool queued = worker_.post([s, w = &worker_](Backend& b) {
            bool ok = false;
            try {
                ok = handle_drift(*w, b);
            } catch (const std::exception& e) {
                log::error("firewall: drift check failed: {}", e.what());
            }
            std::lock_guard lk(s->mu);
            s->job_done = true;
            s->job_failed = !ok;
            s->cv.notify_all();
        });
        if (!queued) return;  // the worker is stopping
        std::unique_lock lk(s->mu);
        s->cv.wait(lk, [&] { return s->job_done || s->stopping; });
        if (s->stopping) return;
        if (!s->job_failed) {
            backoff = backoff_;
            continue;
        }
        // A failed check may have left the socket readable: wait before looking again.
        if (s->cv.wait_for(lk, backoff, [&] { return s->stopping; })) return;
        backoff = std::min(backoff * 2, kMaxBackoff);
    }
}

}  // namespace cnetd::daemon
