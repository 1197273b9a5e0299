// The main of the root test binaries (integration, persist, load, relay, lock, fault, rollback):
// gtest inside a private mount namespace with its own /run (the daemon's netns files and the
// outside namespaces are bind mounts: they must not leak into the machine's /run, even when a
// binary is started without the meson unshare wrapper).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>

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
    return RUN_ALL_TESTS();
}
