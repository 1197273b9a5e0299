// The main of the root test binaries (integration, persist, load, relay, lock, fault, rollback,
// the daemon-level tests and etcd_client_test): gtest inside a private mount namespace with its
// own /run (the daemon's netns files and the outside namespaces are bind mounts: they must not
// leak into the machine's /run, even when a binary is started without the meson unshare wrapper),
// and loopback up in its network namespace (meson runs each binary under `unshare --net`, where lo
// starts down; etcd servers and daemons the tests start listen on 127.0.0.1).
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {
// Sets IFF_UP on lo only when it is down: in a namespace of the machine's own (a binary started
// by hand without unshare) lo is already up, and nothing is changed there.
bool loopback_up() {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    if (ok && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
        ok = ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    }
    ::close(fd);
    return ok;
}
}  // namespace

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
    if (!loopback_up()) {
        perror("loopback up");
        return 1;
    }
    return RUN_ALL_TESTS();
}
