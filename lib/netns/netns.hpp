// Network namespace files (the kernel's nsfs objects), in kernel words only.
//
// A "netns file" is an empty regular file with a network namespace's nsfs inode bind-mounted on it,
// exactly what `ip netns add` and Docker create: the namespace lives as long as the mount (or any
// open fd / process inside it) does. Files made here work with `ip netns exec` once their directory
// is symlinked to /run/netns.
//
// Threading: create() runs unshare() on its own short-lived thread so the caller never changes
// namespace. ScopedNetns switches the *calling thread* (namespaces are per thread) and must be
// destroyed on the thread that made it. Everything else is thread-safe.
// Errors: ErrorKind::Kernel with the syscall's errno text, framed "<op> <path>"; open() gives
// NotFound for a missing file and InvalidArgument for a file that is not a network namespace.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/net.hpp"

namespace cnetd::netns {

// A namespace's identity: (st_dev, st_ino) of its nsfs inode (base/net.hpp). Two fds or paths that
// name the same namespace have the same Id.
using Id = NetnsId;

// The mount namespace netns files must be mounted in, when it is not the caller's own.
//
// Why: under systemd with ProtectSystem=/ProtectHome=/PrivateTmp= (etc/systemd/cnetd.service) the
// daemon runs in a private mount namespace that systemd made a *slave* of the host's: mounts made
// there never propagate back. A netns file bind-mounted there would look like an empty file to
// the runtime, `ip netns` and everyone else, and its namespace would die with the daemon. So the
// bind mount (and its unmount) is done in the host's mount namespace — that of PID 1 — from a
// short-lived thread that enters it; the mount then propagates *into* the daemon's namespace
// (slave: host → daemon) like any other host mount.
// Returns an fd of /proc/1/ns/mnt when (a) it differs from the caller's mount namespace and (b) the
// mount holding `dir` (the netns dir) is, in the caller's namespace, a slave ("master:N" in
// /proc/thread-self/mountinfo): exactly what systemd's namespacing makes. Otherwise an invalid fd:
// the usual case outside systemd; and a namespace of our own with *private* mounts (a test
// harness, `unshare --mount`) is where the caller's peers look, so mounts stay there.
// Errors: /proc/1/ns/mnt or mountinfo cannot be read (the daemon then cannot tell where its mounts
// land; the caller decides whether to go on).
// `host`: the host's mount namespace file (a test passes its own process's).
Result<UniqueFd> host_mount_namespace(const std::string& dir,
                                      const std::string& host = "/proc/1/ns/mnt");

// Creates a new network namespace (with only a down `lo`; platform::LinuxKernel::create_netns
// brings it up) and bind-mounts it on `path`, which must
// not exist (its directory must). On failure nothing is left behind: no file, no mount.
// `mntns_fd` (from host_mount_namespace(), or -1 for the caller's own): the mount namespace in
// which the file is created and mounted; entering it needs CAP_SYS_ADMIN and CAP_SYS_CHROOT.
Result<void> create(const std::string& path, int mntns_fd = -1);

// Opens `path` (O_RDONLY|O_CLOEXEC) and checks it is a network namespace.
Result<UniqueFd> open(const std::string& path);

// The calling thread's current network namespace.
Result<UniqueFd> open_current();

// Detach-unmounts `path` and unlinks it. Idempotent: a missing path is success. A path that is a
// plain file (not mounted) is just unlinked. `mntns_fd` as for create(): the unmount must happen
// where the mount was made (an unmount in a slave namespace does not reach the host).
// Only a network namespace is ever unmounted: the path is inspected first without following
// symlinks (an nsfs mount of type CLONE_NEWNET), and unmounted with UMOUNT_NOFOLLOW. A symlink,
// a directory or device, or a foreign mount (tmpfs, a bind-mounted file, another namespace type)
// is refused with InvalidArgument and left exactly as it was.
Result<void> remove(const std::string& path, int mntns_fd = -1);

// Makes `path` name the namespace open at `ns_fd` again (the file created with O_EXCL, then a bind
// mount of the fd): the undo of remove() while the caller still holds the namespace open.
// `mntns_fd` as for create().
Result<void> mount_at(int ns_fd, const std::string& path, int mntns_fd = -1);

// Identity of the namespace behind an fd from open()/open_current().
Result<Id> identity(int fd);

// RAII: switches the calling thread into the namespace `fd` and back to the thread's original
// namespace on destruction. If switching back fails the process aborts: continuing in the wrong
// namespace would silently configure the wrong network. Move-only; not thread-transferable.
class ScopedNetns {
public:
    // `label` names the target in errors, e.g. the netns path.
    static Result<ScopedNetns> enter(int fd, const std::string& label);
    ScopedNetns(ScopedNetns&& o) noexcept : original_(std::move(o.original_)) {}
    ScopedNetns& operator=(ScopedNetns&&) = delete;
    ScopedNetns(const ScopedNetns&) = delete;
    ScopedNetns& operator=(const ScopedNetns&) = delete;
    ~ScopedNetns();

private:
    explicit ScopedNetns(UniqueFd original) : original_(std::move(original)) {}
    UniqueFd original_;  // invalid after a move: nothing to restore
};

}  // namespace cnetd::netns
