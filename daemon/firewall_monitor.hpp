// Drift repair and coexistence warnings for the firewall: the daemon's side of
// firewall::Backend::monitor_fd()/handle_events() (docs/firewall.md, "Drift repair").
//
// start() runs one job on the kernel worker: the coexistence check (its warnings are logged and
// noted for GET /v1/info) and fetching the backend's monitor fd. If the fd is >= 0, the monitor
// watches a dup of it on the daemon's io_context (daemon/fd_watch.hpp: no thread of its own). When
// it becomes readable the io thread posts ONE job that calls handle_events() on the worker (the
// backend is not thread-safe, and its netlink sockets belong to the worker's netns) and does not
// watch again until that job has run, so a readable fd never turns into a busy loop.
// If the job finds a repair it logs a warning
//   "firewall: table inet cnetd was changed or removed by someone else; restored (repair #N)",
// notes the time, and re-runs the coexistence check (a `flush ruleset` by firewalld or
// nftables.service usually means another ruleset was just loaded). Errors are logged; after a
// failed job the monitor waits (200 ms, doubling up to 5 s while it keeps failing) before
// watching again, because a failed handle_events() may leave the socket readable.
//
// Latency: a foreign flush is repaired as soon as the worker is free, i.e. well within a second
// unless a long mutation is running (it is then repaired right after it).
// Threading: start(), stop() and the destructor from one controlling thread (the io thread in the
// daemon; another thread works too, e.g. in tests). start() waits for its worker job, so it must
// not run on the worker thread. Jobs and io handlers share state with the monitor through a
// shared_ptr, so a job the worker drops at shutdown is harmless.
// Shutdown: stop() (idempotent) ends the watch: no job is posted after it returns (on the io
// thread; from another thread, one whose readiness was already being handled may still be). Call
// it before the Worker stops. The io_context and the Worker must outlive the monitor.
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "base/error.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

class FirewallMonitor {
public:
    // Borrows the io_context (where the fd is watched) and the worker.
    FirewallMonitor(boost::asio::io_context& io, Worker& worker,
                    std::chrono::milliseconds error_backoff = std::chrono::milliseconds(200));
    ~FirewallMonitor();  // stop()
    FirewallMonitor(const FirewallMonitor&) = delete;
    FirewallMonitor& operator=(const FirewallMonitor&) = delete;

    // Runs the start-up job and waits for it; starts the watch when there is a monitor fd (the
    // first wait begins once the io_context runs). Fails only when the worker does not run the
    // job (not running, or stopping), or when the fd cannot be duplicated. A failed coexistence
    // check is logged, not returned: it must not keep the daemon from starting.
    Result<void> start();
    void stop();

    // True while the monitor fd is watched (started with a monitor fd, not stopped).
    bool watching() const noexcept;

    struct State;  // firewall_monitor.cpp

private:
    boost::asio::io_context& io_;
    Worker& worker_;
    std::chrono::milliseconds backoff_;
    bool started_ = false;
    std::shared_ptr<State> state_;  // null: no monitor fd
};

// The coexistence check as a job body: runs backend.check_coexistence(), logs each warning at
// warning level (an error if the kernel could not be asked) and notes the list on the worker.
// Worker thread only.
void refresh_coexistence(Worker& worker, Backend& backend);

}  // namespace cnetd::daemon
