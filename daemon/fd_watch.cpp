#include "daemon/fd_watch.hpp"

#include <atomic>
#include <exception>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "base/log.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using boost::system::error_code;

// Shared with the handlers queued on the io_context, so a handler that runs (or is destroyed with
// the io_context) after the FdWatch is gone touches nothing freed.
struct FdWatch::State : std::enable_shared_from_this<State> {
    State(asio::io_context& io, UniqueFd fd, Callback cb)
        : io(io), desc(io), on_ready(std::move(cb)) {
        desc.assign(fd.get());  // throws if epoll refuses it; `fd` then closes it
        fd.release();
    }

    // io thread only. Asio's async_wait re-arms the (edge-triggered) registration with
    // EPOLL_CTL_MOD, which reports an fd that is already readable: no readiness is lost between
    // two arms (tests/daemon/fd_watch_test.cpp checks it).
    void arm_now() {
        if (stopped || waiting || !desc.is_open()) return;
        waiting = true;
        desc.async_wait(asio::posix::descriptor_base::wait_read,
                        [s = shared_from_this()](const error_code& ec) {
                            if (ec == asio::error::operation_aborted) {
                                s->waiting = false;
                                return;
                            }
                            s->fire(ec);
                        });
    }

    void fire(const error_code& ec) {
        waiting = false;
        if (stopped) return;
        try {
            on_ready(ec);
        } catch (const std::exception& e) {
            log::error("fd watch: {}", e.what());
        }
    }

    asio::io_context& io;
    asio::posix::stream_descriptor desc;
    Callback on_ready;
    std::atomic<bool> stopped{false};
    bool waiting = false;  // io thread only: a wait (or a ready call) is pending
};

FdWatch::FdWatch(asio::io_context& io, UniqueFd fd, Callback on_ready)
    : fd_(fd.get()), state_(std::make_shared<State>(io, std::move(fd), std::move(on_ready))) {}

FdWatch::~FdWatch() {
    stop();
}

void FdWatch::arm() {
    asio::dispatch(state_->io, [s = state_] { s->arm_now(); });
}

void FdWatch::stop() {
    if (state_->stopped.exchange(true)) return;
    asio::dispatch(state_->io, [s = state_] {
        error_code ignored;
        s->desc.close(ignored);  // cancels the wait: its handler sees operation_aborted
    });
}

bool FdWatch::stopped() const noexcept {
    return state_->stopped;
}

bool run_on_worker(Worker& worker, asio::io_context& io, const char* what,
                   std::function<bool(Backend&)> job, std::function<void(bool ok)> done) {
    return worker.post([&io, what, job = std::move(job), done = std::move(done)](Backend& b) {
        bool ok = false;
        try {
            ok = job(b);
        } catch (const std::exception& e) {
            log::error("{}: {}", what, e.what());
        }
        asio::post(io, [done, ok] { done(ok); });
    });
}

}  // namespace cnetd::daemon
