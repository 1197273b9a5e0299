// The daemon's instance locks: one cnetd per state directory, one cnetd per network namespace.
//
// Two daemons on one state dir would hand out the same addresses and interleave journal records;
// two daemons in one network namespace (whatever their state dirs) would create the same bridges
// and fight over the `inet cnetd` table. So before it reads any state, touches the kernel or its
// control socket, the daemon takes (and holds for its whole life) two locks:
//
//   state-dir lock  flock(LOCK_EX|LOCK_NB) on <state-dir>/lock, which holds the holder's PID.
//                   flock, not fcntl locks: tied to the open file, released by the kernel when the
//                   process dies (SIGKILL included), never inherited across exec (O_CLOEXEC).
//   netns lock      an abstract unix socket "@cnetd/inet-<table>" bound and listening. Abstract
//                   names live in the network namespace, not the file system: two daemons in
//                   different network namespaces (containers, the test suite's many sandboxes)
//                   never see each other's name, while two daemons in one namespace always do,
//                   even from different mount namespaces (systemd's PrivateTmp=, a chroot) where a
//                   lock file under /run could differ. The kernel releases the name when the
//                   process dies; there is no stale file to clean up. A loser learns the holder's
//                   PID from SO_PEERCRED on a connection, and its state dir from one line the
//                   holder's answering thread writes to every connection ("<pid> <state-dir>\n").
//
// A loser changes nothing: the lock file is opened with O_CREAT only (an existing one is neither
// truncated nor rewritten), and a failed bind() leaves no trace.
// Errors: ErrorKind::Conflict naming the holder's PID and state dir; Kernel for a failing syscall.
// Threading: acquire() from one thread; the lock answers connections on a thread of its own until
// it is destroyed.
#pragma once

#include <memory>
#include <string>

#include "base/error.hpp"

namespace cnetd::store {

class InstanceLock {
public:
    // Takes the state-dir lock (the directory must exist), then the netns lock for `table`.
    static Result<InstanceLock> acquire(const std::string& state_dir,
                                        const std::string& table = "cnetd");
    InstanceLock(InstanceLock&&) noexcept;
    InstanceLock& operator=(InstanceLock&&) noexcept;
    ~InstanceLock();  // releases both locks (the process's exit does the same)

    // The abstract socket name of the netns lock, without the leading NUL ("cnetd/inet-cnetd").
    static std::string netns_lock_name(const std::string& table);

private:
    struct State;
    explicit InstanceLock(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

}  // namespace cnetd::store
