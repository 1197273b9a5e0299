// Entry point of the kernel test tier. Needs root; exits 77 (meson "skipped") otherwise.
//
// Before any test runs (and before any thread exists, which unshare(CLONE_NEWNS) requires) the
// process gets a private mount namespace with a tmpfs for netns files and a tmpfs over /run whose
// /run/netns points at it, so `ip netns exec` / `ip -n` work on the files the tests create and
// nothing is mounted in the machine's namespaces. Each test then unshares a fresh network namespace
// (see kernel_fixture.hpp).
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "kernel_fixture.hpp"

namespace cnetd::ktest {
std::string g_netns_dir;
}

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    auto skip = [](const char* why) {
        std::fprintf(stderr, "kernel tests skipped: %s\n", why);
        return 77;
    };
    if (::geteuid() != 0) return skip("need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)");
    if (::unshare(CLONE_NEWNS) != 0) return skip(std::strerror(errno));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return skip("cannot make / private in our mount namespace");

    char tmpl[] = "/tmp/cnetd-kernel-XXXXXX";
    if (!::mkdtemp(tmpl)) return skip("mkdtemp failed");
    std::string dir = tmpl;
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "mode=0755") != 0 ||
        ::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0 ||
        ::symlink(dir.c_str(), "/run/netns") != 0) {
        ::umount2(dir.c_str(), MNT_DETACH);
        ::rmdir(dir.c_str());
        return skip("cannot mount tmpfs for netns files");
    }
    cnetd::ktest::g_netns_dir = dir;

    int rc = RUN_ALL_TESTS();

    ::umount2(dir.c_str(), MNT_DETACH);
    ::rmdir(dir.c_str());  // the only trace on the real filesystem: an empty directory, removed
    return rc;
}
