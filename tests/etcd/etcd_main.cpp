// The main of etcd_client_test: gtest as PID 1 of private net/mount/pid namespaces (meson runs it
// under `unshare`), with its own tmpfs /run for etcd's data and loopback up, so the etcd servers
// the tests start never touch the machine's network.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (geteuid() != 0) {
        fprintf(stderr, "these tests need root (they run inside private namespaces): skipped\n");
        return 77;
    }
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
        perror("private mount namespace");
        return 1;
    }
    if (std::system("ip link set lo up") != 0) {
        fprintf(stderr, "cannot bring lo up\n");
        return 1;
    }
    return RUN_ALL_TESTS();
}
