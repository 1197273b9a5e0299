// lib/store/lock: what a loser of the state-dir lock says about the holder. The netns lock (an
// abstract socket) is covered by tests/integration/lock_test.cpp, which has a namespace of its own;
// these tests lose at the state-dir lock, before the netns lock is tried.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "store/lock.hpp"

namespace lock_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
namespace fs = std::filesystem;

namespace {

class LockTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cnetd-lock-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir = tmpl;
        // The "holder": an open file description of its own with the flock, as another cnetd
        // would have (flock conflicts between descriptions, even within one process).
        holder = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(holder, 0);
        ASSERT_EQ(::flock(holder, LOCK_EX | LOCK_NB), 0);
    }
    void TearDown() override {
        if (holder >= 0) ::close(holder);
        fs::remove_all(dir);
    }
    std::string dir;
    int holder = -1;
};

}  // namespace

// The holder won the flock but has not written its PID yet (the window between flock and pwrite):
// the loser waits for the line instead of saying "PID unknown".
TEST_F(LockTest, ALoserNamesAHolderThatWritesItsPidJustAfterLocking) {
    std::thread late([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ASSERT_EQ(::pwrite(holder, "4242\n", 5, 0), 5);
    });
    auto r = store::InstanceLock::acquire(dir);
    late.join();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(r.error().message().find("another cnetd (PID 4242) holds the state dir " + dir),
              std::string::npos)
        << r.error().message();
}

// A holder that never writes a complete line (not a cnetd, or one that died between flock and
// pwrite of a line): the loser still refuses, says the PID is unknown, and leaves the file as is.
TEST_F(LockTest, AHolderWithoutAPidLineIsUnknownAndTheFileIsLeftAlone) {
    ASSERT_EQ(::pwrite(holder, "12", 2, 0), 2);
    auto r = store::InstanceLock::acquire(dir);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_NE(r.error().message().find("another cnetd (PID unknown)"), std::string::npos)
        << r.error().message();
    char buf[8] = {};
    EXPECT_EQ(::pread(holder, buf, sizeof buf, 0), 2);
    EXPECT_EQ(std::string(buf), "12");
}

}  // namespace lock_test
