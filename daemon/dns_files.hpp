// The resolv.conf file cnetd keeps for every endpoint, for the runtime to bind-mount into the
// container (docs/dns.md "The resolv.conf file"): "<dir>/<endpoint id>/resolv.conf" with
// dns::render_resolver_file on a network with the embedded resolver, dns::render_plain_file
// elsewhere (the default network, enable_dns=false).
//
// Files are written in place (open O_TRUNC, write), never replaced by a rename: a bind mount holds
// the inode, so a renamed-in file would never reach a running container. Directories 0755, files
// 0644 (containers run as any user). A file is written only when its content changes; an endpoint
// that goes loses its file and directory. The first set_wanted() also removes the directories of
// endpoints that went while the daemon was down (names of 64 hex characters only: nothing else in
// `dir` is touched).
//
// Threading: every method takes an internal mutex (the kernel worker calls set_wanted(), the DNS
// thread set_host()). Errors are logged, never thrown; a file that could not be written is tried
// again at the next call.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/resolv_conf.hpp"

namespace cnetd::daemon {

class EndpointFiles {
public:
    struct Want {
        std::string endpoint_id;
        bool resolver = false;  // on a network with the embedded resolver
        bool ipv6 = false;      // the network is dual-stack (IPv6 servers kept in the plain file)
    };

    explicit EndpointFiles(std::string dir);
    // The host's file changed: rewrites the files whose content changes.
    void set_host(dns::ResolvConf host);
    // The endpoints now: writes new or changed files, removes those of endpoints gone.
    void set_wanted(std::vector<Want> want);

private:
    void write_all();  // mu_ held: every wanted file whose content is not on disk yet
    void sweep();      // mu_ held: directories of endpoints gone while we were down

    // What a file holds: one of four contents (resolver or not, IPv6 or not) of one host file.
    struct Written {
        int8_t want = 0;   // the variant wanted now: (resolver ? 2 : 0) + (ipv6 ? 1 : 0)
        int variant = -1;  // the variant on disk, -1 unknown
        uint64_t host_gen = 0;
        uint64_t mark = 0;  // the last set_wanted() that wanted it
    };
    const std::string* text_of(const Written& w) const;  // what its file holds, if known

    std::mutex mu_;
    const std::string dir_;
    dns::ResolvConf host_;
    uint64_t host_gen_ = 1;                // bumps with set_host()
    std::array<std::string, 4> contents_;  // of host_gen_
    uint64_t prev_gen_ = 0;
    std::array<std::string, 4> prev_contents_;  // of the host file before, to skip equal rewrites
    uint64_t mark_ = 0;
    // By endpoint id. A sync compares two integers per endpoint, never file contents: the cost of
    // a connect with 1,000 endpoints stays a hash probe each.
    std::unordered_map<std::string, Written> written_;
    bool swept_ = false;
};

}  // namespace cnetd::daemon
