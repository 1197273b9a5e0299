// The kernel worker: the one thread that owns the Backend (and so the engine and the kernel
// interface, whose setns() calls are per thread).
//
// Mutations are posted as jobs and run one at a time, in order. After start-up and after every
// mutation the worker publishes an immutable Snapshot of the networks; readers (GET handlers on the
// io thread) take it with snapshot() and never wait for the worker, even while a job is blocked in
// the kernel.
// Priorities: a job is a Mutation (the default) or a Read (a kernel dump that changes nothing, e.g.
// GET /v1/firewall). Reads run only when no mutation is queued: a queued mutation always runs
// before every queued read, whatever their arrival order, so read-only clients can delay a
// mutation by at most the one read already running. Reads keep their order among themselves and
// publish no snapshot (they changed nothing).
//
// Threading: start(), stop() and the destructor from one controlling thread; post() and snapshot()
// from any thread. Jobs run on the worker thread and must not throw (an escaping exception is
// caught, logged, and the job's caller is left without a reply, so jobs catch their own).
// Firewall facts the firewall::Backend does not keep itself (time of the last drift repair, the
// latest coexistence warnings) are noted by jobs through note_firewall_*() and published with the
// next snapshot, so GET /v1/info reads them without waiting either.
// Shutdown: stop() refuses new jobs, lets the job in flight finish, drops the queued ones (calling
// each one's on_drop, so a client waiting for it is told it never ran) and joins; the Backend is
// destroyed on the worker thread. Kernel state is never torn down here.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "core/model.hpp"
#include "daemon/backend.hpp"

namespace cnetd::daemon {

// The firewall as readers see it (GET /v1/info).
struct FirewallStatus {
    std::string backend;                // "nftables" / "none" (firewall::Backend::name())
    std::string table;                  // "inet cnetd", "" for none
    uint64_t repairs = 0;               // drift repairs since start (firewall::Backend::repairs())
    std::string last_repair;            // RFC 3339 UTC of the last repair, "" if none yet
    std::vector<std::string> warnings;  // latest coexistence check (start-up, after each repair)
};

// What readers see: the state after the last completed mutation.
struct Snapshot {
    std::vector<core::Network> networks;  // sorted by name
    FirewallStatus firewall;
    core::ReconcileReport reconcile;  // start-up's reconciliation (Backend::reconcile_report)
    uint64_t generation = 0;  // bumps with every publication
};

class Worker {
public:
    using Factory = std::function<Result<std::unique_ptr<Backend>>()>;
    using Job = std::function<void(Backend&)>;
    enum class Priority { Mutation, Read };
    // Jobs waiting (not the one running), per priority; for tests and diagnostics.
    struct Queued {
        std::size_t mutations = 0;
        std::size_t reads = 0;
    };

    Worker();
    ~Worker();  // stop()
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Spawns the thread, runs `factory` on it and waits for the result. On failure the thread is
    // joined and the factory's error returned; the worker cannot be started again.
    Result<void> start(Factory factory);
    // Queues a job. False when the worker is not running (never started, failed, or stopping): the
    // job is dropped and the caller must answer "unavailable" itself. `on_drop` runs instead of the
    // job if stop() discards it before it started (on stop()'s thread, never with `job`).
    // `prio` Read: see the class comment (never ahead of a queued mutation, no publication).
    bool post(Job job, std::function<void()> on_drop = {}, Priority prio = Priority::Mutation);
    // Idempotent.
    void stop();

    std::shared_ptr<const Snapshot> snapshot() const;
    // How many mutation jobs have started so far (any thread). A read result computed while this
    // count was N is still current as long as it is N: nothing but a mutation changes state.
    uint64_t mutations_started() const;
    Queued queued() const;

    // For jobs only (they run on the worker thread, which alone touches these notes): published
    // with the snapshot that follows the job.
    void note_firewall_repair(std::string when);
    void note_firewall_warnings(std::vector<std::string> warnings);
    // For jobs only: runs `fn` on the worker thread right after the job, once the snapshot that
    // includes the job's effects is published (mutations). Replies go through it, so a client
    // that got its answer and then reads (GET on the io thread) sees its own change.
    void after_publish(std::function<void()> fn);

    // Called on the worker thread after every publication (start-up's included once set), with
    // the Backend, e.g. to sync the [::1] relay (daemon/relay.hpp); after the job's replies
    // (after_publish), so it never delays an answer. Set or clear it from any
    // thread; clearing waits for a call in progress, so the hook's owner may then go away.
    void set_publish_hook(std::function<void(Backend&)> hook);
    // Called on the worker thread right after every publication (start-up's included once set)
    // with the snapshot just published and the Backend, BEFORE the job's replies (after_publish):
    // what it does is in effect when the client hears back (the DNS server's sync: a name
    // answers the moment connect returns). Every reply waits for it, so it must be quick (no
    // kernel calls). Runs before the publish hook. Set or clear it from any thread; clearing
    // waits for a call in progress, so the hook's owner may then go away.
    void set_snapshot_hook(std::function<void(const Snapshot&, Backend&)> hook);

private:
    void run(Factory factory);
    void publish(Backend& backend);   // the snapshot, then the snapshot hook
    void run_hook(Backend& backend);  // the publish hook, if set

    mutable std::mutex mu_;
    std::condition_variable cv_;
    struct Entry {
        Job job;
        std::function<void()> on_drop;
    };
    std::deque<Entry> jobs_;          // mutations, in order
    std::deque<Entry> reads_;         // read jobs, in order; run only while jobs_ is empty
    uint64_t mutations_started_ = 0;  // guarded by mu_
    enum class State { Idle, Starting, Running, Stopping, Stopped } state_ = State::Idle;
    bool start_done_ = false;
    std::optional<Error> start_error_;
    std::shared_ptr<const Snapshot> snapshot_;  // guarded by mu_; the pointee is immutable
    FirewallStatus fw_notes_;                   // worker thread only: last_repair, warnings
    std::vector<std::function<void()>> after_;  // worker thread only: after_publish() calls
    std::thread thread_;
    std::mutex hook_mu_;  // held while the hook runs
    std::function<void(Backend&)> hook_;
    std::mutex snapshot_hook_mu_;  // held while the snapshot hook runs
    std::function<void(const Snapshot&, Backend&)> snapshot_hook_;
};

}  // namespace cnetd::daemon
