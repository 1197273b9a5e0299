// Deferred, batched deletion of veth pairs ("reaping").
//
// Why: deleting a veth costs one RCU grace period in the kernel (netdev_run_todo's rcu_barrier,
// 15-26 ms), whatever else the request does, so 500 one-by-one deletions take 10-40 s. A detach
// instead takes the pair out of service at once (retire_host/retire_peer: a few sub-millisecond
// RTM_SETLINKs) and a Reaper deletes every retired link with ONE RTM_DELLINK addressed by
// IFLA_GROUP (kernel: rtnl_group_dellink → unregister_netdevice_many), i.e. one grace period for
// the whole batch. The peer goes with its host end (veth_dellink queues both).
//
// The reap group is a reserved IFLA_GROUP value. A link in it is owned by cnetd and doomed: the
// next group deletion (the reaper's, or the one at daemon start that clears what a crash left
// behind) removes it. Nothing else may use that group number.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/error.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

// IFLA_GROUP of retired links: "cnrd". 0 is the kernel's default group.
constexpr uint32_t kReapGroup = 0x636e7264;

// Host end, one RTM_SETLINK by name: down, no master (leaves the bridge, so it neither forwards
// nor counts against the bridge's 1,024 ports) and IFLA_GROUP = kReapGroup. Returns false (and
// does nothing) when `name` does not exist. Errors: Kernel kind, "retire link <name>: <strerror>".
Result<bool> retire_host(RouteSocket& s, const std::string& name);

// Container end (socket in the container's namespace): down and renamed to `new_name`, so the
// container loses `name` at once (a re-attach may reuse it immediately: CNI DEL then ADD of eth0)
// while the pair waits for the reaper. Absent `name` is success. Kernels that refuse to rename an
// up link (before 6.2, EBUSY) get the down and the rename as two requests.
Result<void> retire_peer(RouteSocket& s, const std::string& name, const std::string& new_name);

// The name a retired peer gets in its namespace: "r" + the host end's name, cut to 15 characters
// (unique while host names are unique in the daemon's namespace).
std::string retired_peer_name(const std::string& host_name);

// One RTM_DELLINK with IFLA_GROUP = group: deletes every link of the group in the socket's
// namespace (veth peers elsewhere included) in one unregister batch. An empty group is success.
Result<void> delete_group(RouteSocket& s, uint32_t group);

// The background deleter: one thread with its own route socket in the namespace the Reaper was
// started in. Threading: queued()/flush()/pending() may be called from any thread.
class Reaper {
public:
    // Opens the socket in the calling thread's namespace and starts the thread.
    static Result<std::unique_ptr<Reaper>> start(uint32_t group = kReapGroup);
    // Flushes (deletes everything queued), then stops the thread.
    ~Reaper();
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;

    // One more link was retired into the group: wake the thread. Retirements arriving while a
    // batch is in flight are coalesced into the next batch.
    void queued();
    // Blocks until every link queued before the call is deleted. Returns the error of the batch
    // that covered the last of them, if it failed (those links stay in the group for the next).
    Result<void> flush();
    // Links queued and not yet deleted.
    uint64_t pending() const;
    // Batches sent so far (tests, statistics).
    uint64_t batches() const;

private:
    Reaper(RouteSocket sock, uint32_t group);
    void run();

    RouteSocket sock_;
    const uint32_t group_;
    mutable std::mutex mu_;
    std::condition_variable wake_;  // the thread: work or stop
    std::condition_variable done_;  // flush(): a batch finished
    uint64_t queued_ = 0;           // sequence number of the last queued link
    uint64_t reaped_ = 0;           // every link up to this sequence number is deleted
    uint64_t batches_ = 0;
    bool stop_ = false;
    std::optional<Error> last_error_;
    std::thread thread_;
};

}  // namespace cnetd::netlink
