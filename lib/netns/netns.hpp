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

namespace cnetd::netns {

// A namespace's identity: (st_dev, st_ino) of its nsfs inode. Two fds or paths that name the same
// namespace have the same Id.
struct Id {
    uint64_t dev = 0;
    uint64_t ino = 0;
    auto operator<=>(const Id&) const = default;
};

// Creates a new network namespace (with only a down `lo`) and bind-mounts it on `path`, which must
// not exist (its directory must). On failure nothing is left behind: no file, no mount.
Result<void> create(const std::string& path);

// Opens `path` (O_RDONLY|O_CLOEXEC) and checks it is a network namespace.
Result<UniqueFd> open(const std::string& path);

// The calling thread's current network namespace.
Result<UniqueFd> open_current();

// Detach-unmounts `path` and unlinks it. Idempotent: a missing path is success. A path that is a
// plain file (not mounted) is just unlinked.
Result<void> remove(const std::string& path);

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
