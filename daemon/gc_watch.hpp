// Netns garbage collection while running (owner: persist): when a container's namespace dies, its
// endpoint is detached promptly — IP released, port mappings removed, veth leftovers deleted,
// state saved — by core::Engine::collect_garbage() on the kernel worker.
//
// Triggers (any of them schedules one collection; a burst is coalesced):
//   - rtnetlink RTM_DELLINK of a "veth..." link in the daemon's namespace: a veth pair dies with
//     its container namespace, so the host side's deletion is the earliest signal;
//   - inotify on the netns directory (IN_DELETE / IN_MOVED_FROM): `ip netns del`, a runtime
//     removing its netns file while some process still holds the namespace;
//   - a periodic sweep (every `sweep`, 30 s by default, counted from the last collection) as a
//     backstop: /proc/PID/ns/net targets, a netns file only unmounted, an overflowed event queue
//     (ENOBUFS / IN_Q_OVERFLOW).
// Both fds are watched on the daemon's io_context (daemon/fd_watch.hpp: no thread of its own) and
// drained there (non-blocking reads of a few events). After a trigger the watch waits `settle`
// (100 ms) so the kernel finishes tearing the namespace down and a burst becomes one job, then
// posts ONE job; triggers while it runs schedule exactly one more collection after it (never a
// busy loop, never two jobs queued). Latency: settle + one job, well under a second on an idle
// worker.
//
// Threading: start()/stop() from the controlling thread (the io thread in the daemon); the fds are
// read on the io thread; the collection runs on the kernel worker (the engine is not thread-safe).
// Shutdown: stop() (idempotent) ends the watch: no collection is posted after it returns (on the
// io thread; from another thread, one already being posted may still be). Call it before the
// Worker stops. The io_context and the Worker must outlive the watch.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/error.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

class GcWatch {
public:
    // One collection, on the worker thread; must not throw (an exception is caught and logged).
    using Collect = std::function<void(Backend&)>;

    // `collect` defaults to the engine's collect_garbage() with its log lines (tests pass a
    // counter).
    GcWatch(boost::asio::io_context& io, Worker& worker, std::string netns_dir,
            std::chrono::milliseconds sweep = std::chrono::seconds(30),
            std::chrono::milliseconds settle = std::chrono::milliseconds(100),
            Collect collect = {});
    ~GcWatch();  // stop()
    GcWatch(const GcWatch&) = delete;
    GcWatch& operator=(const GcWatch&) = delete;

    // Opens the netlink and inotify sockets (in the calling thread's namespace: the daemon's) and
    // starts watching them (the first wait begins once the io_context runs). A missing inotify
    // (e.g. the directory cannot be watched) is logged and the other triggers still work; failing
    // to open netlink is an error.
    Result<void> start();
    void stop();

    struct State;  // gc_watch.cpp

private:
    boost::asio::io_context& io_;
    Worker& worker_;
    std::string netns_dir_;
    std::chrono::milliseconds sweep_, settle_;
    Collect collect_;
    std::shared_ptr<State> state_;
};

// The default collection's body: Backend::collect_garbage() with its log lines; returns the
// "network/endpoint" of each endpoint removed (none on an error, which is logged). Worker thread.
std::vector<std::string> collect_dead_endpoints(Backend& b);

}  // namespace cnetd::daemon
