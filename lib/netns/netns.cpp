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
#include <fstream>
#include <functional>
#include <sstream>
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

// Runs `fn` on a throwaway thread, inside the mount namespace `mntns_fd` when it is valid (-1: the
// caller's). A thread, because setns()/unshare() change only the calling thread and the caller (the
// kernel worker) must stay where it is; unshare(CLONE_FS) first, because setns(CLONE_NEWNS) refuses
// a thread that shares its filesystem context (root, cwd) with others. `fn` returns 0 or an errno
// and names its failing step.
int on_thread(int mntns_fd, const char*& step, const std::function<int(const char*&)>& fn) {
    int err = 0;
    try {
        std::thread t([&]() noexcept {
            if (mntns_fd >= 0) {
                if (::unshare(CLONE_FS) != 0) {
                    err = errno;
                    step = "unshare filesystem context";
                    return;
                }
                if (::setns(mntns_fd, CLONE_NEWNS) != 0) {
                    err = errno;
                    step = "enter the host's mount namespace";
                    return;
                }
            }
            err = fn(step);
        });
        t.join();
    } catch (const std::system_error& e) {
        err = e.code().value();
        step = "start thread";
    }
    return err;
}

}  // namespace

Result<UniqueFd> host_mount_namespace(const std::string& dir, const std::string& host_path) {
    UniqueFd host(::open(host_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!host.valid()) return Error::sys(errno, fmt::format("open {}", host_path));
    struct stat a {
    }, b{};
    if (::fstat(host.get(), &a) != 0) return Error::sys(errno, fmt::format("stat {}", host_path));
    if (::stat("/proc/thread-self/ns/mnt", &b) != 0)
        return Error::sys(errno, "stat /proc/thread-self/ns/mnt");
    if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) return UniqueFd();

    // The mount that holds `dir`: the longest mount point that is a prefix of its real path.
    std::string real = dir;
    if (char* r = ::realpath(dir.c_str(), nullptr)) {
        real = r;
        std::free(r);
    }
    std::ifstream mi("/proc/thread-self/mountinfo");
    if (!mi) return Error::sys(errno, "read /proc/thread-self/mountinfo");
    std::string best;
    bool slave = false;
    for (std::string line; std::getline(mi, line);) {
        // id parent major:minor root mount-point options [optional fields...] - fstype ...
        std::istringstream in(line);
        std::string id, parent, dev, root, point, opts, field;
        in >> id >> parent >> dev >> root >> point >> opts;
        // Mount points escape blanks as \040 etc.; the netns dir has none worth unescaping.
        const bool covers = real == point || (real.rfind(point, 0) == 0 &&
                                              (point == "/" || real[point.size()] == '/'));
        if (!covers || point.size() < best.size()) continue;
        best = point;
        slave = false;
        while (in >> field && field != "-")
            if (field.rfind("master:", 0) == 0) slave = true;
    }
    if (!slave) return UniqueFd();
    return host;
}

namespace {

// On a throwaway thread inside `mntns_fd`: creates the empty file `path`, with `new_netns` moves
// the thread into a new network namespace, then bind-mounts `src` on the file. On failure the file
// is unlinked again: nothing is left behind. Errors "<what>[: <step>]: <strerror>", the step of a
// failed file creation being `create_step` ("": none).
Result<void> bind_on_new_file(int mntns_fd, const std::string& path, const std::string& src,
                              bool new_netns, const char* create_step, const std::string& what) {
    const char* step = "";
    int err = on_thread(mntns_fd, step, [&](const char*& s) noexcept {
        // O_EXCL: never bind over somebody else's file (or an existing namespace).
        int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0) {
            int e = errno;
            s = create_step;
            return e;
        }
        ::close(fd);
        int e = 0;
        if (new_netns && ::unshare(CLONE_NEWNET) != 0) {
            e = errno;
            s = "unshare";
        } else if (::mount(src.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
            e = errno;
            s = "bind mount";
        }
        if (e != 0) ::unlink(path.c_str());  // rollback: the file we created, nothing mounted
        return e;
    });
    if (err != 0) return Error::sys(err, *step ? fmt::format("{}: {}", what, step) : what);
    return ok();
}

}  // namespace

Result<void> create(const std::string& path, int mntns_fd) {
    // The new namespace is made on a throwaway thread: unshare() changes the namespace of the
    // thread that calls it. The thread bind-mounts its own nsfs inode before it exits, which keeps
    // the namespace alive. File, namespace and mount are made in the same mount namespace.
    return bind_on_new_file(mntns_fd, path, kThreadNs, true, "",
                            fmt::format("create netns {}", path));
}

Result<void> mount_at(int ns_fd, const std::string& path, int mntns_fd) {
    // The fd table is shared with the throwaway thread; /proc/self/fd/N names the namespace.
    return bind_on_new_file(mntns_fd, path, fmt::format("/proc/self/fd/{}", ns_fd), false,
                            "create file", fmt::format("restore netns {}", path));
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

namespace {

// What remove() found at a path, decided without following a symlink.
enum class Found { Missing, NetnsMount, PlainFile, Symlink, ForeignMount, NotAFile };

// Classifies `path`: 0 and `found`, or an errno. A network namespace file is an nsfs inode of type
// CLONE_NEWNET mounted on the path; anything else mounted there (a tmpfs, a bind-mounted file, a
// mount namespace) is foreign. O_NOFOLLOW throughout: the answer is about the path itself.
int classify(const std::string& path, Found& found) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) return errno;
        found = Found::Missing;
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        found = Found::Symlink;
        return 0;
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd.valid()) return errno;
    struct statfs fs {};
    if (::fstatfs(fd.get(), &fs) != 0) return errno;
    if (static_cast<unsigned long>(fs.f_type) == NSFS_MAGIC) {
        found = ::ioctl(fd.get(), NS_GET_NSTYPE) == CLONE_NEWNET ? Found::NetnsMount
                                                                 : Found::ForeignMount;
        return 0;
    }
    struct statx sx {};
    if (::statx(fd.get(), "", AT_EMPTY_PATH, STATX_TYPE, &sx) != 0) return errno;
    if ((sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
        (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        found = Found::ForeignMount;
        return 0;
    }
    found = S_ISREG(st.st_mode) ? Found::PlainFile : Found::NotAFile;
    return 0;
}

const char* refusal(Found f) {
    switch (f) {
        case Found::Symlink:
            return "is a symbolic link, not a network namespace file";
        case Found::ForeignMount:
            return "has something other than a network namespace mounted on it";
        case Found::NotAFile:
            return "is not a network namespace file";
        default:
            return nullptr;
    }
}

}  // namespace

Result<void> remove(const std::string& path, int mntns_fd) {
    const char* step = "";
    Found found = Found::Missing;
    int err = on_thread(mntns_fd, step, [&](const char*& s) noexcept {
        // Look before unmounting: the netns dir is writable by whoever may create namespaces, and
        // an unmount there must never take down a mount that is not ours (a symlink to /home, a
        // tmpfs mounted over a name) nor follow a symlink to one.
        if (int e = classify(path, found); e != 0) {
            s = "inspect netns file";
            return e;
        }
        if (found == Found::Missing) return 0;
        if (refusal(found)) return 0;
        if (found == Found::NetnsMount &&
            ::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 &&
            errno != EINVAL) {  // EINVAL: someone unmounted it just now
            s = "unmount netns";
            return errno;
        }
        if (::unlink(path.c_str()) != 0) {
            // A missing file is success only if we did not just unmount something from it (then
            // someone else is racing us on this path, which is worth reporting).
            if (errno != ENOENT || found == Found::NetnsMount) {
                s = "remove netns file";
                return errno;
            }
        }
        return 0;
    });
    if (err == 0 && refusal(found))
        return Error::invalid(
            fmt::format("remove netns {}: refused: it {}; left alone", path, refusal(found)));
    if (err == 0) return ok();
    const std::string_view st = step;
    if (st.starts_with("unmount") || st.starts_with("remove") || st.starts_with("inspect"))
        return Error::sys(err, fmt::format("{} {}", step, path));
    return Error::sys(err, fmt::format("remove netns {}: {}", path, step));
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
