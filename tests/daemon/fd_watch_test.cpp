// daemon/fd_watch.hpp without privileges: pipes on an io_context, and run_on_worker with the real
// worker over the API tests' fake backend.
#include "daemon/fd_watch.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/steady_timer.hpp>

#include "fake_backend.hpp"

namespace cnetd {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

struct Pipe {
    Pipe() {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        r = UniqueFd(p[0]);
        w = UniqueFd(p[1]);
    }
    void put(char c = 'x') const { ASSERT_EQ(::write(w.get(), &c, 1), 1); }
    UniqueFd r, w;
};

class FdWatchTest : public ::testing::Test {
protected:
    // Runs the loop on this thread for `d` (kept busy with a timer, so epoll really waits and
    // collects the kernel's readiness events even while nothing is armed).
    void run_for(std::chrono::milliseconds d) {
        asio::steady_timer t(io_, d);
        t.async_wait([](const error_code&) {});
        io_.restart();
        io_.run_for(d + 50ms);
    }

    asio::io_context io_{1};
    Pipe pipe_;
    int calls_ = 0;
    daemon::FdWatch::Callback count_ = [this](const error_code& ec) {
        EXPECT_FALSE(ec) << ec.message();
        ++calls_;
    };
};

TEST_F(FdWatchTest, OneCallPerArmAndNoneWhileReadableButNotArmed) {
    daemon::FdWatch w(io_, std::move(pipe_.r), count_);
    w.arm();
    run_for(50ms);
    EXPECT_EQ(calls_, 0);  // nothing to read yet
    pipe_.put();
    run_for(100ms);
    EXPECT_EQ(calls_, 1);
    run_for(100ms);  // still readable (nobody read it), but not armed: no busy loop
    EXPECT_EQ(calls_, 1);
    w.arm();
    w.arm();  // twice before the call: one arm
    run_for(100ms);
    EXPECT_EQ(calls_, 2);
}

// Descriptors are registered edge-triggered (EPOLLET): data that arrived while nothing waited
// (here: after the first call, before the owner armed again) brings no new edge once epoll has
// collected it. The next arm() must report it anyway (the monitor re-arms after a worker read).
TEST_F(FdWatchTest, ReadinessThatArrivedWhileNotArmedIsNotLost) {
    daemon::FdWatch w(io_, std::move(pipe_.r), [&](const error_code&) {
        ++calls_;
        char buf[16];
        while (::read(w.fd(), buf, sizeof buf) > 0) {
        }
    });
    w.arm();
    pipe_.put();
    run_for(100ms);
    ASSERT_EQ(calls_, 1);
    pipe_.put();     // the edge of this one is collected by epoll while no wait is queued
    run_for(100ms);  // (the timer keeps the loop in epoll_wait)
    EXPECT_EQ(calls_, 1);
    w.arm();
    run_for(100ms);
    EXPECT_EQ(calls_, 2);
}

TEST_F(FdWatchTest, StopIsFinalAndClosesTheFd) {
    const int fd = pipe_.r.get();
    daemon::FdWatch w(io_, std::move(pipe_.r), count_);
    w.arm();
    run_for(20ms);
    w.stop();
    EXPECT_TRUE(w.stopped());
    pipe_.put();
    w.arm();  // a no-op once stopped
    run_for(100ms);
    EXPECT_EQ(calls_, 0);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed on the io thread
    EXPECT_EQ(errno, EBADF);
    w.stop();  // idempotent
}

TEST_F(FdWatchTest, StopFromAnotherThreadWhileTheLoopRuns) {
    auto guard = asio::make_work_guard(io_);
    std::thread io_thread([&] { io_.run(); });
    std::atomic<int> calls{0};
    {
        daemon::FdWatch w(io_, std::move(pipe_.r), [&](const error_code&) { ++calls; });
        w.arm();
        std::this_thread::sleep_for(20ms);
        w.stop();
        pipe_.put();
        std::this_thread::sleep_for(100ms);
    }  // destroyed while the loop runs: pending handlers keep its state alive
    guard.reset();
    io_.stop();
    io_thread.join();
    EXPECT_EQ(calls.load(), 0);
}

TEST_F(FdWatchTest, AnExceptionInTheCallbackDoesNotStopTheLoop) {
    daemon::FdWatch w(io_, std::move(pipe_.r), [&](const error_code&) {
        ++calls_;
        throw std::runtime_error("boom");
    });
    w.arm();
    pipe_.put();
    EXPECT_NO_THROW(run_for(100ms));
    w.arm();
    EXPECT_NO_THROW(run_for(100ms));
    EXPECT_EQ(calls_, 2);
}

// epoll refuses regular files (EPERM); Asio accepts them and fails the wait instead: the owner
// hears it through on_ready(ec) (and logs that its trigger is gone), nothing spins.
TEST_F(FdWatchTest, AnFdEpollCannotWatchIsReportedToTheOwner) {
    char path[] = "/tmp/cnetd-fdwatch-XXXXXX";
    UniqueFd file(::mkstemp(path));
    ASSERT_TRUE(file.valid());
    ::unlink(path);
    error_code got;
    int calls = 0;
    daemon::FdWatch w(io_, std::move(file), [&](const error_code& ec) {
        got = ec;
        ++calls;
    });
    w.arm();
    run_for(50ms);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(got, asio::error::operation_not_supported) << got.message();
}

// run_on_worker: the job on the worker thread, `done` back on the io thread with its result.
class RunOnWorker : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = worker_.start([this]() -> Result<std::unique_ptr<daemon::Backend>> {
            worker_thread_ = std::this_thread::get_id();
            return std::unique_ptr<daemon::Backend>(
                std::make_unique<testing::FakeBackend>("/nonexistent"));
        });
        ASSERT_TRUE(r.ok()) << r.error().message();
    }
    // Runs the loop until `done` was called (or 2 s).
    void run_until(const bool& done) {
        for (int i = 0; i < 200 && !done; ++i) {
            io_.restart();
            io_.poll();  // returns at once when nothing is queued yet
            if (!done) std::this_thread::sleep_for(10ms);
        }
    }

    asio::io_context io_{1};
    daemon::Worker worker_;
    std::thread::id worker_thread_;
};

TEST_F(RunOnWorker, JobOnTheWorkerDoneOnTheIoThread) {
    std::thread::id job_thread, done_thread;
    bool done = false, result = false;
    ASSERT_TRUE(daemon::run_on_worker(
        worker_, io_, "test",
        [&](daemon::Backend&) {
            job_thread = std::this_thread::get_id();
            return true;
        },
        [&](bool ok) {
            done_thread = std::this_thread::get_id();
            result = ok;
            done = true;
        }));
    run_until(done);
    ASSERT_TRUE(done);
    EXPECT_TRUE(result);
    EXPECT_EQ(job_thread, worker_thread_);
    EXPECT_EQ(done_thread, std::this_thread::get_id());
}

TEST_F(RunOnWorker, AThrowingJobCountsAsFailed) {
    bool done = false, result = true;
    ASSERT_TRUE(daemon::run_on_worker(
        worker_, io_, "test", [](daemon::Backend&) -> bool { throw std::runtime_error("boom"); },
        [&](bool ok) {
            result = ok;
            done = true;
        }));
    run_until(done);
    ASSERT_TRUE(done);
    EXPECT_FALSE(result);
}

TEST_F(RunOnWorker, AStoppedWorkerRunsNeither) {
    worker_.stop();
    bool ran = false;
    EXPECT_FALSE(daemon::run_on_worker(
        worker_, io_, "test",
        [&](daemon::Backend&) {
            ran = true;
            return true;
        },
        [&](bool) { ran = true; }));
    io_.restart();
    io_.run_for(50ms);
    EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace cnetd

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
