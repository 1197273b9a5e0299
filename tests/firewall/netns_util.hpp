// Helpers shared by the root (kernel-suite) tests of tests/firewall and tests/nft: run a shell
// command (tests may use ip/nft to build and observe their sandbox) and make a socket inside a
// named network namespace (/run/netns/<ns>, private to the test's mount namespace).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace cnetd::testing_netns {

// Runs `cmd` through the shell; a non-zero exit status fails the test. Returns stdout+stderr.
inline std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = pclose(p);
    EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    return out;
}

// A socket created inside netns `ns` ("" = the test's own netns); it stays there. -1 on failure.
// A helper thread enters the namespace, so the caller's thread never changes namespace.
inline int socket_in(const std::string& ns, int type = SOCK_STREAM, int family = AF_INET) {
    int s = -1;
    std::thread t([&] {
        if (!ns.empty()) {
            int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) return;
            close(fd);
        }
        s = socket(family, type | SOCK_CLOEXEC, 0);
    });
    t.join();
    return s;
}

// Moves the calling test process into a fresh network and mount namespace with a private tmpfs on
// /run (so `ip netns` files stay inside the test) and loopback up. Call with
// ASSERT_NO_FATAL_FAILURE.
inline void enter_sandbox() {
    ASSERT_EQ(unshare(CLONE_NEWNET | CLONE_NEWNS), 0) << strerror(errno);
    ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
    ASSERT_EQ(mount("tmpfs", "/run", "tmpfs", 0, nullptr), 0);
    run("ip link set lo up");
}

}  // namespace cnetd::testing_netns
