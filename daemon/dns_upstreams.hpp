// The host's resolvers for the embedded DNS server (daemon/dns_server.hpp): which file they come
// from, where to send forwarded queries, and a watch that says when either file changed.
//
// Threading: read_host_resolv() and upstream_endpoints() are plain functions (any thread);
// ResolvWatch lives on one io_context and calls its callback there.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "dns/resolv_conf.hpp"

namespace cnetd::daemon {

// The host file as the server uses it.
struct HostResolv {
    dns::ResolvConf conf;  // the file chosen (search/options for the container files)
    std::string file;      // its path
    std::vector<dns::Upstream> upstreams;
    bool operator==(const HostResolv& o) const;
};

// Docker's choice (dns::use_systemd_file): `etc`, or `systemd` when `etc` names only the stub
// 127.0.0.53. A missing or unreadable file reads as empty (no upstreams: forwarded names get
// SERVFAIL, containers on networks without the resolver get Docker's fallback servers).
HostResolv read_host_resolv(const std::string& etc, const std::string& systemd);

// Where to send queries: port 53 of each upstream. A "%zone" is resolved to its interface index
// now; a zone naming no interface drops that server with a warning (never a crash: podman#24451).
std::vector<boost::asio::ip::udp::endpoint> upstream_endpoints(
    const std::vector<dns::Upstream>& ups);

// inotify on the directories of the given files (and of a symlink's target, as /etc/resolv.conf
// often is one): `changed` runs on the io_context after a file there is written, moved in or
// created (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE). A directory that does not exist
// is not watched (logged once at debug level). Stops with the object.
class ResolvWatch {
public:
    ResolvWatch(boost::asio::io_context& io, const std::vector<std::string>& files,
                std::function<void()> changed);
    ~ResolvWatch();
    ResolvWatch(const ResolvWatch&) = delete;
    ResolvWatch& operator=(const ResolvWatch&) = delete;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace cnetd::daemon
