// Readiness of a kernel file descriptor as an event on the daemon's io_context: the one way
// daemon/ watches an fd (the nftables monitor socket, the netns GC's netlink and inotify fds), so
// none of them needs a thread, an eventfd or a poll() loop of its own.
//
// FdWatch: arm() asks for ONE call of `on_ready` once the fd is readable (or has an error
// condition, e.g. ENOBUFS on a netlink socket: reading it is how the owner learns). The owner
// reads the fd (on the io thread, or by posting a job to the kernel worker) and calls arm() again
// when it wants the next event: so an fd that stays readable until a worker job has read it never
// becomes a busy loop. Arming twice before the call is one arm.
// Level-triggered: readiness that arrived while nothing was armed (e.g. between the worker's read
// and the next arm()) is reported by the next arm() at once, not only at the next event.
// `on_ready(ec)`: ec is empty when the fd is ready; otherwise the wait failed (the fd is unusable)
// and the watch stays idle until armed again. Exceptions escaping on_ready are caught and logged
// (they would otherwise stop the daemon's loop).
//
// Threading: on_ready runs on the io thread (the thread running io.run()), never after stop() has
// returned on the io thread; arm() and stop() may be called from any thread (they dispatch to the
// io thread). From another thread, a call of on_ready already running may finish after stop().
// Ownership: the FdWatch owns the fd (closed once stopped, on the io thread) and borrows the
// io_context, which must outlive it (pending handlers keep the internal state alive, not the
// io_context). Destroying the FdWatch stops it.
//
// run_on_worker: the round trip the watch owners make: a job on the kernel worker (the Backend is
// not thread-safe) whose completion comes back to the io thread.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include "base/fd.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

class FdWatch {
public:
    using Callback = std::function<void(const boost::system::error_code&)>;

    // `fd`: valid and non-blocking (Asio sets O_NONBLOCK, which a dup shares; it is only waited
    // on here). Waits for nothing yet: the first arm() starts watching. An fd epoll cannot watch
    // (a regular file) gets on_ready(operation_not_supported) at the first arm(). Throws
    // boost::system::system_error when the fd cannot be registered at all (it is then closed).
    FdWatch(boost::asio::io_context& io, UniqueFd fd, Callback on_ready);
    ~FdWatch();  // stop()
    FdWatch(const FdWatch&) = delete;
    FdWatch& operator=(const FdWatch&) = delete;

    void arm();
    // Idempotent. No on_ready call starts after it; the fd is closed on the io thread.
    void stop();

    int fd() const noexcept { return fd_; }  // for reading it; valid until stop()
    bool stopped() const noexcept;

private:
    struct State;
    int fd_;  // declared first: initialised before `fd` moves into the state
    std::shared_ptr<State> state_;
};

// Posts `job` to the worker (Mutation priority: a job may change state, e.g. a repair or a GC).
// When it has run, `done(ok)` is posted to `io` with the job's result; an exception escaping `job`
// is caught, logged as "<what>: <message>" and counts as ok = false. False when the worker refused
// the job (not running or stopping): then neither runs. A job dropped by Worker::stop() never
// calls `done`.
bool run_on_worker(Worker& worker, boost::asio::io_context& io, const char* what,
                   std::function<bool(Backend&)> job, std::function<void(bool ok)> done);

}  // namespace cnetd::daemon
