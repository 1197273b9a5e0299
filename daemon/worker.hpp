// The kernel worker: the one thread that owns the Backend (and so the engine and the kernel
// interface, whose setns() calls are per thread).
//
// Mutations are posted as jobs and run one at a time, in order. After start-up and after every job
// the worker publishes an immutable Snapshot of the networks; readers (GET handlers on the io
// thread) take it with snapshot() and never wait for the worker, even while a job is blocked in the
// kernel.
//
// Threading: start(), stop() and the destructor from one controlling thread; post() and snapshot()
// from any thread. Jobs run on the worker thread and must not throw (an escaping exception is
// caught, logged, and the job's caller is left without a reply, so jobs catch their own).
// Shutdown: stop() refuses new jobs, lets the job in flight finish, drops the queued ones and
// joins; the Backend is destroyed on the worker thread. Kernel state is never torn down here.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "core/model.hpp"
#include "daemon/backend.hpp"

namespace cnetd::daemon {

// What readers see: the state after the last completed mutation.
struct Snapshot {
    std::vector<core::Network> networks;  // sorted by name
    uint64_t generation = 0;              // bumps with every publication
};

class Worker {
public:
    using Factory = std::function<Result<std::unique_ptr<Backend>>()>;
    using Job = std::function<void(Backend&)>;

    Worker();
    ~Worker();  // stop()
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Spawns the thread, runs `factory` on it and waits for the result. On failure the thread is
    // joined and the factory's error returned; the worker cannot be started again.
    Result<void> start(Factory factory);
    // Queues a job. False when the worker is not running (never started, failed, or stopping): the
    // job is dropped and the caller must answer "unavailable" itself.
    bool post(Job job);
    // Idempotent.
    void stop();

    std::shared_ptr<const Snapshot> snapshot() const;

private:
    void run(Factory factory);
    void publish(const Backend& backend);

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    enum class State { Idle, Starting, Running, Stopping, Stopped } state_ = State::Idle;
    bool start_done_ = false;
    std::optional<Error> start_error_;
    std::shared_ptr<const Snapshot> snapshot_;  // guarded by mu_; the pointee is immutable
    std::thread thread_;
};

}  // namespace cnetd::daemon
