#include "daemon/firewall_monitor.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <future>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "daemon/fd_watch.hpp"
#include "daemon/handlers.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using boost::system::error_code;

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

// The start-up job: the first coexistence check and the backend's monitor fd (both from the
// worker: the backend is not thread-safe). Waits for it.
Result<int> first_check(Worker& worker) {
    // A shared_ptr'd promise, because std::function needs a copyable job; if the worker drops the
    // job (stopping), the promise dies unset and get() throws broken_promise.
    auto fd_promise = std::make_shared<std::promise<int>>();
    auto fd_future = fd_promise->get_future();
    bool queued = worker.post([fd_promise, w = &worker](Backend& b) {
        try {
            refresh_coexistence(*w, b);
        } catch (const std::exception& e) {
            log::error("firewall: coexistence check failed: {}", e.what());
        }
        fd_promise->set_value(b.firewall().monitor_fd());
    });
    try {
        if (!queued) throw std::future_error(std::future_errc::broken_promise);
        return fd_future.get();
    } catch (const std::future_error&) {
        return Error(ErrorKind::Unavailable,
                     "start firewall monitor: the kernel worker is not running");
    }
}

}  // namespace

// The watch: shared with the io handlers and worker jobs it queues. io thread only, but for
// construction and stop().
struct FirewallMonitor::State : std::enable_shared_from_this<State> {
    State(asio::io_context& io, Worker& worker, std::chrono::milliseconds backoff)
        : io(io), worker(worker), initial(backoff), backoff(backoff), retry(io) {}

    void begin(UniqueFd fd) {
        watch.emplace(io, std::move(fd), [w = weak_from_this()](const error_code& ec) {
            if (auto s = w.lock()) s->ready(ec);
        });
        watch->arm();
    }

    void stop() {
        watch->stop();
        asio::dispatch(io, [s = shared_from_this()] { s->retry.cancel(); });
    }

    // Readable, or an error condition (e.g. ENOBUFS after lost events): handle_events() reads
    // it and decides; either way exactly one job, and no watch until it has run.
    void ready(const error_code& ec) {
        if (ec) {
            log::error(
                "firewall: waiting on the nftables event socket: {}; drift is no longer "
                "repaired",
                ec.message());
            return;
        }
        // False: the worker is stopping, and so is the daemon.
        run_on_worker(
            worker, io, "firewall: drift check failed",
            [s = shared_from_this()](Backend& b) { return handle_drift(s->worker, b); },
            [s = shared_from_this()](bool ok) { s->job_done(ok); });
    }

    void job_done(bool ok) {
        if (watch->stopped()) return;
        if (ok) {
            backoff = initial;
            watch->arm();
            return;
        }
        // A failed check may have left the socket readable: wait before looking again.
        retry.expires_after(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        retry.async_wait([s = shared_from_this()](const error_code& ec) {
            if (!ec) s->watch->arm();  // a no-op once stopped
        });
    }

    asio::io_context& io;
    Worker& worker;
    const std::chrono::milliseconds initial;
    std::chrono::milliseconds backoff;
    asio::steady_timer retry;
    std::optional<FdWatch> watch;
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

FirewallMonitor::FirewallMonitor(asio::io_context& io, Worker& worker,
                                 std::chrono::milliseconds error_backoff)
    : io_(io), worker_(worker), backoff_(error_backoff) {}

FirewallMonitor::~FirewallMonitor() {
    stop();
}

Result<void> FirewallMonitor::start() {
    if (started_) return Error::internal("start firewall monitor: already started");
    auto fd = first_check(worker_);
    if (!fd) return fd.error();
    started_ = true;
    if (*fd < 0) {
        log::debug("firewall: backend has no event socket; drift is not monitored");
        return ok();
    }
    // A dup: the watch owns (and closes) its fd, the backend keeps its own.
    UniqueFd dup(::fcntl(*fd, F_DUPFD_CLOEXEC, 0));
    if (!dup.valid())
        return Error::sys(errno, "start firewall monitor: duplicate the event socket");
    auto state = std::make_shared<State>(io_, worker_, backoff_);
    try {
        state->begin(std::move(dup));
    } catch (const boost::system::system_error& e) {
        return Error::sys(e.code().value(), "start firewall monitor: watch the event socket");
    }
    state_ = std::move(state);
    return ok();
}

void FirewallMonitor::stop() {
    if (state_) state_->stop();
}

bool FirewallMonitor::watching() const noexcept {
    return state_ && !state_->watch->stopped();
}

}  // namespace cnetd::daemon
