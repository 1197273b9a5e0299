// cnetd-bench-floor: the kernel floor of an attach, for tools/bench.sh.
//
// Does what every container network attach must do, with nothing else around it: one RTM_NEWLINK
// that creates a veth pair whose peer is born in the container's namespace as eth0 (enslaved to the
// bridge, MAC set), the host end up, then inside the namespace the address, eth0 up and the default
// route — the same lib/netlink calls cnetd's kernel layer makes, without engine, IPAM, state file,
// firewall or API. A detach is one RTM_DELLINK of the host end (the kernel takes the peer along).
//
// Protocol: one command per line on stdin, one reply per line on stdout ("ok <microseconds>" or
// "err <message>"), so the driver (tools/bench/compare.py) keeps one process for the whole run:
//   bridge <name> <gateway-cidr>                     create (or adopt) the bridge, set it up
//   attach <netns-path> <host-ifname> <addr-cidr> <gateway>
//   detach <host-ifname>
//   par <threads> attach <netns> <host> <cidr> <gw> [attach ...]   the attaches on <threads>
//   threads
//                                                    (one route socket each); replies total time
// Never run it outside a throwaway network namespace: it creates and deletes links in the current
// one.
#include <chrono>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/error.hpp"
#include "base/net.hpp"
#include "netlink/addr.hpp"
#include "netlink/bridge.hpp"
#include "netlink/link.hpp"
#include "netlink/route.hpp"
#include "netlink/socket.hpp"
#include "netlink/veth.hpp"
#include "netns/netns.hpp"

namespace {

using namespace cnetd;

struct Attach {
    std::string netns;
    std::string host;
    std::string cidr;
    std::string gw;
};

Result<void> attach(netlink::RouteSocket& host, int bridge_ifindex, const Attach& a) {
    CNETD_TRY_ASSIGN(auto addr, Ipv4Cidr::parse(a.cidr));
    CNETD_TRY_ASSIGN(auto gw, Ipv4::parse(a.gw));
    CNETD_TRY_ASSIGN(UniqueFd fd, netns::open(a.netns));
    CNETD_TRY_ASSIGN(auto ns, netlink::RouteSocket::open_in(fd.get(), a.netns));
    netlink::VethParams p{a.host, bridge_ifindex, "eth0", Mac::random_local(), 1500, fd.get()};
    CNETD_TRY(netlink::create_veth(host, p, a.netns));
    CNETD_TRY(netlink::set_up(host, a.host));
    CNETD_TRY_ASSIGN(auto eth0, netlink::get_link(ns, "eth0"));
    if (!eth0) return Error::internal("eth0 missing in " + a.netns);
    CNETD_TRY(netlink::add_ipv4(ns, eth0->ifindex, "eth0", addr, /*replace=*/false));
    CNETD_TRY(netlink::set_up(ns, "eth0"));
    CNETD_TRY(netlink::add_default_route(ns, eth0->ifindex, "eth0", gw));
    return ok();
}

Result<Attach> parse_attach(std::istringstream& in) {
    Attach a;
    if (!(in >> a.netns >> a.host >> a.cidr >> a.gw))
        return Error::invalid("attach: <netns> <host-ifname> <cidr> <gateway>");
    return a;
}

long long micros_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 t0)
        .count();
}

Result<void> parallel(int threads, const std::vector<Attach>& jobs, int bridge_ifindex) {
    std::mutex mu;
    size_t next = 0;
    std::optional<Error> first_error;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            auto sock = netlink::RouteSocket::open_current();
            for (;;) {
                size_t i;
                {
                    std::lock_guard lock(mu);
                    if (next >= jobs.size() || !sock.ok()) {
                        if (!sock.ok() && !first_error) first_error = sock.error();
                        return;
                    }
                    i = next++;
                }
                auto r = attach(*sock, bridge_ifindex, jobs[i]);
                if (!r.ok()) {
                    std::lock_guard lock(mu);
                    if (!first_error) first_error = r.error();
                }
            }
        });
    }
    for (auto& th : pool) th.join();
    if (first_error) return *first_error;
    return ok();
}

Result<void> run_line(netlink::RouteSocket& host, int& bridge_ifindex, const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "bridge") {
        std::string name, cidr;
        if (!(in >> name >> cidr)) return Error::invalid("bridge: <name> <gateway-cidr>");
        CNETD_TRY_ASSIGN(auto addr, Ipv4Cidr::parse(cidr));
        CNETD_TRY(netlink::ensure_bridge(host, {name, addr, 1500}));
        CNETD_TRY_ASSIGN(auto br, netlink::get_link(host, name));
        if (!br) return Error::internal("bridge " + name + " vanished");
        bridge_ifindex = br->ifindex;
        return ok();
    }
    if (cmd == "attach") {
        CNETD_TRY_ASSIGN(auto a, parse_attach(in));
        return attach(host, bridge_ifindex, a);
    }
    if (cmd == "detach") {
        std::string name;
        if (!(in >> name)) return Error::invalid("detach: <host-ifname>");
        return netlink::delete_link(host, name);
    }
    if (cmd == "par") {
        int threads = 0;
        if (!(in >> threads) || threads < 1) return Error::invalid("par: <threads> ...");
        std::vector<Attach> jobs;
        std::string word;
        while (in >> word) {
            if (word != "attach") return Error::invalid("par: expected attach, got " + word);
            CNETD_TRY_ASSIGN(auto a, parse_attach(in));
            jobs.push_back(std::move(a));
        }
        return parallel(threads, jobs, bridge_ifindex);
    }
    return Error::invalid("unknown command: " + line);
}

}  // namespace

int main() {
    auto host = cnetd::netlink::RouteSocket::open_current();
    if (!host.ok()) {
        std::cerr << "cnetd-bench-floor: " << host.error().message() << "\n";
        return 1;
    }
    int bridge_ifindex = 0;
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        auto t0 = std::chrono::steady_clock::now();
        auto r = run_line(*host, bridge_ifindex, line);
        long long us = micros_since(t0);
        if (r.ok())
            std::cout << "ok " << us << std::endl;
        else
            std::cout << "err " << r.error().message() << std::endl;
    }
    return 0;
}
