// Netns garbage collection while running (owner: persist): when a container's namespace dies, its
// endpoint is detached promptly — IP released, port mappings removed, veth leftovers deleted,
// state saved — by core::Engine::collect_garbage() on the kernel worker.
//
// Triggers (any of them schedules one collection; a burst is coalesced):
//   - rtnetlink RTM_DELLINK of a "veth..." link in the daemon's namespace: a veth pair dies with
//     its container namespace, so the host side's deletion is the earliest signal;
//   - inotify on the netns directory (IN_DELETE / IN_MOVED_FROM): `ip netns del`, a runtime
//     removing its netns file while some process still holds the namespace;
//   - a periodic sweep (every `sweep`, 30 s by default) as a backstop: /proc/PID/ns/net targets,
//     a netns file only unmounted, an overflowed event queue (ENOBUFS / IN_Q_OVERFLOW).
// After a trigger the watcher waits `settle` (100 ms) so the kernel finishes tearing the
// namespace down and a burst becomes one job, then posts ONE job and polls again only when it has
// run (never a busy loop). Latency: settle + one job, well under a second on an idle worker.
//
// Threading: start()/stop() from the controlling thread; one watcher thread; the work runs on the
// kernel worker (the engine is not thread-safe). Shutdown: stop() (idempotent) wakes and joins the
// thread; call it before the Worker stops.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

class GcWatch {
public:
    GcWatch(Worker& worker, std::string netns_dir,
            std::chrono::milliseconds sweep = std::chrono::seconds(30),
            std::chrono::milliseconds settle = std::chrono::milliseconds(100));
    ~GcWatch();  // stop()
    GcWatch(const GcWatch&) = delete;
    GcWatch& operator=(const GcWatch&) = delete;

    // Opens the netlink and inotify sockets (in the calling thread's namespace: the daemon's) and
    // starts the thread. A missing inotify (e.g. the directory cannot be watched) is logged and
    // the other triggers still work; failing to open netlink or an eventfd is an error.
    Result<void> start();
    void stop();

private:
    struct Shared;
    void loop();
    bool run_collection();  // false: the worker is stopping

    Worker& worker_;
    std::string netns_dir_;
    std::chrono::milliseconds sweep_, settle_;
    std::shared_ptr<Shared> shared_;
    UniqueFd nl_, inotify_;
    std::thread thread_;
};

}  // namespace cnetd::daemon
