// Drift repair and coexistence warnings for the firewall: the daemon's side of
// firewall::Backend::monitor_fd()/handle_events() (docs/firewall.md, "Drift repair").
//
// start() runs one job on the kernel worker: the coexistence check (its warnings are logged and
// noted for GET /v1/info) and fetching the backend's monitor fd. If the fd is >= 0, a small thread
// poll()s it. When it becomes readable the thread posts ONE job that calls handle_events() on the
// worker (the backend is not thread-safe, and its netlink sockets belong to the worker's netns) and
// does not poll again until that job has run, so a readable fd never turns into a busy loop.
// If the job finds a repair it logs a warning
//   "firewall: table inet cnetd was changed or removed by someone else; restored (repair #N)",
// notes the time, and re-runs the coexistence check (a `flush ruleset` by firewalld or
// nftables.service usually means another ruleset was just loaded). Errors are logged; after a
// failed job the thread waits (200 ms, doubling up to 5 s while it keeps failing) before polling
// again, because a failed handle_events() may leave the socket readable.
//
// Latency: a foreign flush is repaired as soon as the worker is free, i.e. well within a second
// unless a long mutation is running (it is then repaired right after it).
// Threading: start(), stop() and the destructor from one controlling thread. Jobs share state with
// the monitor through a shared_ptr, so a job the worker drops at shutdown is harmless.
// Shutdown: stop() (idempotent) wakes and joins the thread. It must run before the Worker stops,
// because the fd belongs to the backend the worker destroys: destroy the monitor first.
#pragma once

#include <chrono>
#include <memory>
#include <thread>

#include "base/error.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

class FirewallMonitor {
public:
    // Borrows the worker, which must outlive the monitor.
    explicit FirewallMonitor(
        Worker& worker, std::chrono::milliseconds error_backoff = std::chrono::milliseconds(200));
    ~FirewallMonitor();  // stop()
    FirewallMonitor(const FirewallMonitor&) = delete;
    FirewallMonitor& operator=(const FirewallMonitor&) = delete;

    // Runs the start-up job and waits for it; starts the watch thread when there is a monitor fd.
    // Fails only when the worker does not run the job (not running, or stopping), or when the
    // stop eventfd cannot be created. A failed coexistence check is logged, not returned: it must
    // not keep the daemon from starting.
    Result<void> start();
    void stop();

    // True when the watch thread runs (the firewall has a monitor fd).
    bool watching() const noexcept { return thread_.joinable(); }

private:
    struct Shared;
    void loop(int fd);

    Worker& worker_;
    std::chrono::milliseconds backoff_;
    std::shared_ptr<Shared> shared_;
    std::thread thread_;
};

// The coexistence check as a job body: runs backend.check_coexistence(), logs each warning at
// warning level (an error if the kernel could not be asked) and notes the list on the worker.
// Worker thread only.
void refresh_coexistence(Worker& worker, Backend& backend);

}  // namespace cnetd::daemon
