// daemon/gc_watch.hpp directly, as root inside the sandbox (tests/daemon/meson.build runs this
// binary under unshare): real netns files in /run/netns (a private tmpfs), real veth deletions, the
// real worker over the API tests' fake backend, and a counting collection instead of the engine's.
#include "daemon/gc_watch.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "fake_backend.hpp"

namespace cnetd {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const std::string kNetnsDir = "/run/netns";

void sh(const std::string& cmd) {
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class GcWatchTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::mkdir(kNetnsDir.c_str(), 0755);
        auto r = worker_.start([this]() -> Result<std::unique_ptr<daemon::Backend>> {
            worker_thread_ = std::this_thread::get_id();
            return std::unique_ptr<daemon::Backend>(
                std::make_unique<testing::FakeBackend>(kNetnsDir));
        });
        ASSERT_TRUE(r.ok()) << r.error().message();
        io_thread_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        if (watch_) watch_->stop();
        release();
        worker_.stop();
        guard_.reset();
        io_.stop();
        io_thread_.join();
        watch_.reset();
        sh("for f in /run/netns/*; do [ -e \"$f\" ] && ip netns del \"${f##*/}\"; done; true");
    }

    void start(std::chrono::milliseconds sweep = 1h, std::string dir = kNetnsDir) {
        watch_.emplace(io_, worker_, dir, sweep, 100ms, [this](daemon::Backend&) {
            if (std::this_thread::get_id() != worker_thread_) ++off_worker_;
            std::unique_lock lk(mu_);
            ++collections_;
            cv_.notify_all();
            cv_.wait(lk, [&] { return !hold_; });
        });
        auto r = watch_->start();
        ASSERT_TRUE(r.ok()) << r.error().message();
        std::this_thread::sleep_for(50ms);  // the watches are armed on the io thread
    }
    int collections() {
        std::lock_guard lk(mu_);
        return collections_;
    }
    // Waits up to 2 s for `n` collections; then lets 400 ms pass (more than the settle time)
    // to catch a surplus one.
    int settle_at(int n) {
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, 2s, [&] { return collections_ >= n; });
        lk.unlock();
        std::this_thread::sleep_for(400ms);
        return collections();
    }
    void hold() {
        std::lock_guard lk(mu_);
        hold_ = true;
    }
    void release() {
        std::lock_guard lk(mu_);
        hold_ = false;
        cv_.notify_all();
    }
    // A netns file without `ip netns del`: unmount and unlink in-process (microseconds apart).
    static void remove_netns_file(const std::string& name) {
        const std::string path = kNetnsDir + "/" + name;
        ASSERT_EQ(::umount2(path.c_str(), MNT_DETACH), 0) << path;
        ASSERT_EQ(::unlink(path.c_str()), 0) << path;
    }

    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
    daemon::Worker worker_;
    std::optional<daemon::GcWatch> watch_;
    std::thread io_thread_;
    std::thread::id worker_thread_;
    std::atomic<int> off_worker_{0};
    std::mutex mu_;
    std::condition_variable cv_;
    int collections_ = 0;
    bool hold_ = false;
};

TEST_F(GcWatchTest, ARemovedNetnsFileIsOneCollectionOnTheWorker) {
    sh("ip netns add gc-a");
    start();
    EXPECT_EQ(settle_at(0), 0);  // nothing died yet (and the sweep is an hour away)
    sh("ip netns del gc-a");
    EXPECT_EQ(settle_at(1), 1);
    EXPECT_EQ(off_worker_.load(), 0);
}

TEST_F(GcWatchTest, ABurstOfRemovalsIsOneCollection) {
    for (int i = 0; i < 5; ++i) sh("ip netns add gc-b" + std::to_string(i));
    start();
    for (int i = 0; i < 5; ++i) remove_netns_file("gc-b" + std::to_string(i));
    EXPECT_EQ(settle_at(1), 1);
}

TEST_F(GcWatchTest, AVethDeletionTriggersACollectionOtherLinksDoNot) {
    start();
    sh("ip link add gcbr0 type bridge && ip link add veth-gc0 type veth peer name veth-gc1");
    sh("ip link del gcbr0");
    EXPECT_EQ(settle_at(0), 0);  // additions, and the deletion of a non-veth link
    sh("ip link del veth-gc0");  // both ends go: one collection
    EXPECT_EQ(settle_at(1), 1);
}

TEST_F(GcWatchTest, RemovalsDuringACollectionMakeExactlyOneMore) {
    for (int i = 0; i < 4; ++i) sh("ip netns add gc-c" + std::to_string(i));
    start();
    hold();
    remove_netns_file("gc-c0");
    ASSERT_EQ(settle_at(1), 1);  // the first collection is running (held)
    for (int i = 1; i < 4; ++i) {
        remove_netns_file("gc-c" + std::to_string(i));
        std::this_thread::sleep_for(150ms);  // more than the settle time apart
    }
    EXPECT_EQ(collections(), 1);  // never two jobs at once
    release();
    EXPECT_EQ(settle_at(2), 2);
}

TEST_F(GcWatchTest, ThePeriodicSweepCollectsWithoutEvents) {
    start(200ms);
    std::this_thread::sleep_for(1100ms);
    // Every 200 ms + settle (100 ms) + the job: about 3 in 1.1 s.
    int n = collections();
    EXPECT_GE(n, 2);
    EXPECT_LE(n, 5);
}

TEST_F(GcWatchTest, AnUnwatchableDirectoryLeavesTheLinkEvents) {
    start(1h, "/nonexistent/netns");
    sh("ip link add veth-gc2 type veth peer name veth-gc3 && ip link del veth-gc2");
    EXPECT_EQ(settle_at(1), 1);
}

TEST_F(GcWatchTest, StopIsPromptAndFinal) {
    sh("ip netns add gc-d");
    start(100ms);
    auto t0 = std::chrono::steady_clock::now();
    watch_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
    const int before = collections();
    remove_netns_file("gc-d");
    EXPECT_EQ(settle_at(before + 1), before);  // no event, no sweep after stop()
    watch_->stop();                            // idempotent
    EXPECT_FALSE(watch_->start().ok());        // a watch starts once
}

}  // namespace
}  // namespace cnetd
