// daemon/worker.hpp's snapshot hook (the embedded DNS server's sync runs there): called after a
// mutation's snapshot is published, with that snapshot, and BEFORE the job's replies
// (after_publish); the publish hook (the relay's) still runs after them. No privileges: the fake
// backend.
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/worker.hpp"
#include "fake_backend.hpp"

namespace cnetd {
namespace {

using namespace std::chrono_literals;

TEST(WorkerSnapshotHook, RunsWithTheNewSnapshotBeforeTheRepliesAndBeforeThePublishHook) {
    daemon::Worker w;
    auto r = w.start([] {
        return Result<std::unique_ptr<daemon::Backend>>(
            std::make_unique<testing::FakeBackend>("/nonexistent"));
    });
    ASSERT_TRUE(r.ok()) << r.error().message();
    const size_t before = w.snapshot()->networks.size();
    std::mutex mu;
    std::vector<std::string> events;
    auto note = [&](std::string e) {
        std::lock_guard lk(mu);
        events.push_back(std::move(e));
    };
    w.set_snapshot_hook([&](const daemon::Snapshot& s, daemon::Backend&) {
        // The snapshot the hook gets is the published one, with the job's effects.
        note("snapshot " + std::to_string(s.networks.size()) + " " +
             std::to_string(s.generation == w.snapshot()->generation));
    });
    w.set_publish_hook([&](daemon::Backend&) { note("publish"); });
    std::promise<void> done;
    ASSERT_TRUE(w.post([&](daemon::Backend& b) {
        core::CreateNetworkRequest req;
        req.name = "app";
        req.subnet = "10.89.0.0/24";
        ASSERT_TRUE(b.create_network(req).ok());
        w.after_publish([&] { note("reply"); });
        w.after_publish([&] { done.set_value(); });
    }));
    ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
    w.stop();
    const std::string snap = "snapshot " + std::to_string(before + 1) + " 1";
    EXPECT_EQ(events, (std::vector<std::string>{snap, "reply", "publish"}));
}

TEST(WorkerSnapshotHook, ReadsDoNotRunItAndClearingItStopsIt) {
    daemon::Worker w;
    ASSERT_TRUE(w.start([] {
                     return Result<std::unique_ptr<daemon::Backend>>(
                         std::make_unique<testing::FakeBackend>("/nonexistent"));
                 }).ok());
    std::atomic<int> calls{0};
    w.set_snapshot_hook([&](const daemon::Snapshot&, daemon::Backend&) { ++calls; });
    std::promise<void> read_done;
    ASSERT_TRUE(w.post([&](daemon::Backend&) { read_done.set_value(); }, {},
                       daemon::Worker::Priority::Read));
    read_done.get_future().wait();
    std::promise<void> m1;
    ASSERT_TRUE(w.post([&](daemon::Backend&) { w.after_publish([&] { m1.set_value(); }); }));
    m1.get_future().wait();
    EXPECT_EQ(calls.load(), 1);
    w.set_snapshot_hook({});
    std::promise<void> m2;
    ASSERT_TRUE(w.post([&](daemon::Backend&) { w.after_publish([&] { m2.set_value(); }); }));
    m2.get_future().wait();
    EXPECT_EQ(calls.load(), 1);
    w.stop();
}

}  // namespace
}  // namespace cnetd
