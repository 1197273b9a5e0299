#include "daemon/worker.hpp"

#include <malloc.h>

#include <chrono>
#include <exception>
#include <utility>

#include "base/log.hpp"

namespace cnetd::daemon {

namespace {
constexpr std::chrono::milliseconds kTrimAfterIdle{200};
}  // namespace

Worker::Worker() : snapshot_(std::make_shared<const Snapshot>()) {}

Worker::~Worker() {
    stop();
}

Result<void> Worker::start(Factory factory) {
    {
        std::lock_guard lk(mu_);
        if (state_ != State::Idle) return Error::internal("start kernel worker: already started");
        state_ = State::Starting;
    }
    thread_ = std::thread([this, f = std::move(factory)]() mutable { run(std::move(f)); });
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return start_done_; });
    if (start_error_) {
        Error e = *start_error_;
        lk.unlock();
        thread_.join();
        return e;
    }
    return ok();
}

bool Worker::post(Job job, std::function<void()> on_drop, Priority prio) {
    {
        std::lock_guard lk(mu_);
        if (state_ != State::Running) return false;
        (prio == Priority::Read ? reads_ : jobs_)
            .push_back(Entry{std::move(job), std::move(on_drop)});
    }
    cv_.notify_all();
    return true;
}

void Worker::stop() {
    std::deque<Entry> dropped;
    {
        std::lock_guard lk(mu_);
        if (state_ == State::Running) state_ = State::Stopping;
        dropped.swap(jobs_);  // not started yet: they changed nothing
        for (auto& r : reads_) dropped.push_back(std::move(r));
        reads_.clear();
    }
    cv_.notify_all();
    for (auto& q : dropped) {
        if (!q.on_drop) continue;
        try {
            q.on_drop();
        } catch (const std::exception& e) {
            log::error("kernel worker: dropping a queued job failed: {}", e.what());
        }
    }
    if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const Snapshot> Worker::snapshot() const {
    std::lock_guard lk(mu_);
    return snapshot_;
}

uint64_t Worker::mutations_started() const {
    std::lock_guard lk(mu_);
    return mutations_started_;
}

Worker::Queued Worker::queued() const {
    std::lock_guard lk(mu_);
    return Queued{jobs_.size(), reads_.size()};
}

void Worker::note_firewall_repair(std::string when) {
    fw_notes_.last_repair = std::move(when);
}

void Worker::note_firewall_warnings(std::vector<std::string> warnings) {
    fw_notes_.warnings = std::move(warnings);
}

void Worker::after_publish(std::function<void()> fn) {
    after_.push_back(std::move(fn));
}

void Worker::publish(Backend& backend) {
    auto next = std::make_shared<Snapshot>();
    // Outside the lock, so readers never wait for it. O(networks): the endpoints are shared with
    // the engine (core::EndpointMap), not copied.
    next->networks = backend.networks();
    next->firewall = fw_notes_;
    next->firewall.backend = backend.firewall().name();
    next->firewall.table = backend.firewall_table();
    next->firewall.repairs = backend.firewall().repairs();
    next->reconcile = backend.reconcile_report();
    {
        std::lock_guard lk(mu_);
        next->generation = snapshot_->generation + 1;
        snapshot_ = next;
    }
    std::lock_guard hk(snapshot_hook_mu_);
    if (snapshot_hook_) snapshot_hook_(*next, backend);
}

void Worker::run_hook(Backend& backend) {
    std::lock_guard hk(hook_mu_);
    if (hook_) hook_(backend);
}

void Worker::set_publish_hook(std::function<void(Backend&)> hook) {
    std::lock_guard hk(hook_mu_);
    hook_ = std::move(hook);
}

void Worker::set_snapshot_hook(std::function<void(const Snapshot&, Backend&)> hook) {
    std::lock_guard hk(snapshot_hook_mu_);
    snapshot_hook_ = std::move(hook);
}

void Worker::run(Factory factory) {
    Result<std::unique_ptr<Backend>> created = Error::internal("kernel worker: no backend");
    try {
        created = factory();
    } catch (const std::exception& e) {
        created = Error::internal(fmt::format("start kernel worker: {}", e.what()));
    }
    if (!created) {
        std::lock_guard lk(mu_);
        start_error_ = created.error();
        start_done_ = true;
        state_ = State::Stopped;
        cv_.notify_all();
        return;
    }
    std::unique_ptr<Backend> backend = std::move(created).value();
    publish(*backend);
    run_hook(*backend);
    {
        std::lock_guard lk(mu_);
        start_done_ = true;
        // stop() may have been called by now only from another thread than start()'s caller;
        // honour it.
        if (state_ == State::Starting) state_ = State::Running;
    }
    cv_.notify_all();

    bool trim_pending = false;
    for (;;) {
        Job job;
        bool mutation = true;
        {
            std::unique_lock lk(mu_);
            auto ready = [&] {
                return state_ != State::Running || !jobs_.empty() || !reads_.empty();
            };
            // After a burst of jobs, once the worker has been idle for kTrimAfterIdle, give the
            // heap's free pages back to the kernel: a burst (1,000 attaches, 10,000 mappings)
            // leaves megabytes of freed memory that glibc keeps otherwise. Never between the jobs
            // of a burst, so it costs no request any latency.
            if (trim_pending && !cv_.wait_for(lk, kTrimAfterIdle, ready)) {
                lk.unlock();
#if !defined(__SANITIZE_ADDRESS__)
                // (Not under ASan: its allocator owns the heap, and glibc's trim of arenas it
                // never used crashed in mtrim.)
                ::malloc_trim(0);
#endif
                trim_pending = false;
                continue;
            }
            cv_.wait(lk, ready);
            if (state_ != State::Running) break;
            // Mutations first: a read never runs while a mutation waits.
            mutation = !jobs_.empty();
            auto& queue = mutation ? jobs_ : reads_;
            job = std::move(queue.front().job);
            queue.pop_front();
            if (mutation) ++mutations_started_;
        }
        try {
            job(*backend);
        } catch (const std::exception& e) {
            log::error("kernel worker: job failed with an exception: {}", e.what());
        } catch (...) {
            log::error("kernel worker: job failed with an unknown exception");
        }
        // The snapshot and its hook (the DNS server's sync: in effect before anyone is answered),
        // then the replies (a GET after an answer sees the change), then the publish hook (the
        // relay's sync: nobody waits for it, so it does not delay the answer).
        if (mutation) publish(*backend);
        for (auto& fn : std::exchange(after_, {})) fn();
        if (mutation) run_hook(*backend);
        trim_pending = true;
    }
    backend.reset();  // on this thread, as the Backend contract requires
    std::lock_guard lk(mu_);
    state_ = State::Stopped;
}

}  // namespace cnetd::daemon
