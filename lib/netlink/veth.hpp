// veth pairs whose container end is born inside the container's namespace.
//
// One RTM_NEWLINK does everything: the host end (name, MTU, IFLA_MASTER = bridge) in the socket's
// namespace, and the peer (final name, MAC, MTU, IFLA_NET_NS_FD) directly in the target namespace.
// The kernel creates both or neither (a failure to enslave unregisters the new pair), so there is
// nothing to roll back. This saves the create-then-move round trips (~25 ms in Docker's history).
// Errors: Kernel kind, "create veth <host> in <netns>: <strerror>" (EEXIST when the host name or
// the peer name is taken).
#pragma once

#include <string>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/socket.hpp"

namespace cnetd::netlink {

struct VethParams {
    std::string host_name;
    int master_ifindex = 0;  // bridge to enslave the host end to; 0 = none
    std::string peer_name;
    Mac peer_mac;
    unsigned mtu = 1500;
    int peer_netns_fd = -1;  // namespace of the peer; -1 = same as the host end
};

// Pure: builds the request (NLM_F_CREATE|NLM_F_EXCL). Validates both names.
Result<NlMsg> build_veth_create(const VethParams& p);

// Sends build_veth_create(p) on `s` (the host end's namespace). `netns_label` names the peer's
// namespace in errors.
Result<void> create_veth(RouteSocket& s, const VethParams& p, const std::string& netns_label);

}  // namespace cnetd::netlink
