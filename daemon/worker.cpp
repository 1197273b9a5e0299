#include "daemon/worker.hpp"

#include <exception>

#include "base/log.hpp"

namespace cnetd::daemon {

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

bool Worker::post(Job job) {
    {
        std::lock_guard lk(mu_);
        if (state_ != State::Running) return false;
        jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
    return true;
}

void Worker::stop() {
    {
        std::lock_guard lk(mu_);
        if (state_ == State::Running) state_ = State::Stopping;
        jobs_.clear();  // not started yet: nobody is waiting on their side effects
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const Snapshot> Worker::snapshot() const {
    std::lock_guard lk(mu_);
    return snapshot_;
}

void Worker::note_firewall_repair(std::string when) {
    fw_notes_.last_repair = std::move(when);
}

void Worker::note_firewall_warnings(std::vector<std::string> warnings) {
    fw_notes_.warnings = std::move(warnings);
}

void Worker::publish(Backend& backend) {
    auto next = std::make_shared<Snapshot>();
    next->networks = backend.networks();  // copied outside the lock: readers never wait for it
    next->firewall = fw_notes_;
    next->firewall.backend = backend.firewall().name();
    next->firewall.table = backend.firewall_table();
    next->firewall.repairs = backend.firewall().repairs();
    std::lock_guard lk(mu_);
    next->generation = snapshot_->generation + 1;
    snapshot_ = std::move(next);
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
    {
        std::lock_guard lk(mu_);
        start_done_ = true;
        // stop() may have been called by now only from another thread than start()'s caller;
        // honour it.
        if (state_ == State::Starting) state_ = State::Running;
    }
    cv_.notify_all();

    for (;;) {
        Job job;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return state_ != State::Running || !jobs_.empty(); });
            if (state_ != State::Running) break;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        try {
            job(*backend);
        } catch (const std::exception& e) {
            log::error("kernel worker: job failed with an exception: {}", e.what());
        } catch (...) {
            log::error("kernel worker: job failed with an unknown exception");
        }
        publish(*backend);
    }
    backend.reset();  // on this thread, as the Backend contract requires
    std::lock_guard lk(mu_);
    state_ = State::Stopped;
}

}  // namespace cnetd::daemon
