#include "netns/netns.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "base/log.hpp"

namespace cnetd::netns {

namespace {

// Where the calling thread's own namespace is visible. /proc/self would name the thread-group
// leader's namespace, which differs from ours whenever this thread has entered another one.
constexpr const char* kThreadNs = "/proc/thread-self/ns/net";

Result<void> check_netns(int fd, const std::string& path) {
    struct statfs fs {};
    if (::fstatfs(fd, &fs) != 0) return Error::sys(errno, fmt::format("statfs netns {}", path));
    if (static_cast<unsigned long>(fs.f_type) != NSFS_MAGIC)
        return Error::invalid(fmt::format("\"{}\" is not a network namespace", path));
    int type = ::ioctl(fd, NS_GET_NSTYPE);
    if (type < 0) return Error::sys(errno, fmt::format("query namespace type of {}", path));
    if (type != CLONE_NEWNET)
        return Error::invalid(fmt::format("\"{}\" is not a network namespace", path));
    return ok();
}

}  // namespace

Result<void> create(const std::string& path) {
    const std::string what = fmt::format("create netns {}", path);
    // O_EXCL: never bind over somebody else's file (or an existing namespace).
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) return Error::sys(errno, what);
    ::close(fd);

    // The new namespace is made on a throwaway thread: unshare() changes the namespace of the
    // thread that calls it, and the caller (the kernel worker) must stay where it is. The thread
    // bind-mounts its own nsfs inode before it exits, which keeps the namespace alive.
    int err = 0;
    const char* step = "";
    try {
        std::thread t([&]() noexcept {
            if (::unshare(CLONE_NEWNET) != 0) {
                err = errno;
                step = "unshare";
                return;
            }
            if (::mount(kThreadNs, path.c_str(), "none", MS_BIND, nullptr) != 0) {
                err = errno;
                step = "bind mount";
            }
        });
        t.join();
    } catch (const std::system_error& e) {
        err = e.code().value();
        step = "start thread";
    }
    if (err != 0) {
        ::unlink(path.c_str());  // rollback: the file we created, nothing was mounted on it
        return Error::sys(err, fmt::format("{}: {}", what, step));
    }
    return ok();
}

Result<UniqueFd> open(const std::string& path) {
    // O_NONBLOCK: a FIFO (or a device) named as a netns must not block the kernel worker in open();
    // check_netns() refuses anything that is not an nsfs network namespace right after.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd.valid()) {
        int e = errno;
        Error err = Error::sys(e, fmt::format("open netns {}", path));
        if (e == ENOENT) return Error(ErrorKind::NotFound, err.message(), e);
        return err;
    }
    CNETD_TRY(check_netns(fd.get(), path));
    return fd;
}

Result<UniqueFd> open_current() {
    UniqueFd fd(::open(kThreadNs, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return Error::sys(errno, "open current netns");
    return fd;
}

Result<void> remove(const std::string& path) {
    bool was_mounted = true;
    if (::umount2(path.c_str(), MNT_DETACH) != 0) {
        // EINVAL: not a mount point (a leftover plain file); ENOENT: already gone.
        if (errno != EINVAL && errno != ENOENT)
            return Error::sys(errno, fmt::format("unmount netns {}", path));
        was_mounted = false;
    }
    if (::unlink(path.c_str()) != 0) {
        // A missing file is success only if we did not just unmount something from it (then
        // someone else is racing us on this path, which is worth reporting).
        if (errno != ENOENT || was_mounted)
            return Error::sys(errno, fmt::format("remove netns file {}", path));
    }
    return ok();
}

Result<Id> identity(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Error::sys(errno, "stat netns");
    return Id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

Result<ScopedNetns> ScopedNetns::enter(int fd, const std::string& label) {
    CNETD_TRY_ASSIGN(UniqueFd original, open_current());
    if (::setns(fd, CLONE_NEWNET) != 0)
        return Error::sys(errno, fmt::format("enter netns {}", label));
    return ScopedNetns(std::move(original));
}

ScopedNetns::~ScopedNetns() {
    if (!original_.valid()) return;
    if (::setns(original_.get(), CLONE_NEWNET) != 0) {
        // Running on in a container's namespace would configure the wrong network: stop here.
        log::error("return to original netns failed (errno {}): aborting", errno);
        std::abort();
    }
}

}  // namespace cnetd::netns
