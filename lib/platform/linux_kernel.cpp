#include "platform/linux_kernel.hpp"

#include <linux/filter.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <unistd.h>

#include <cerrno>

#include "base/log.hpp"
#include "base/sysctl.hpp"
#include "netlink/addr.hpp"
#include "netlink/announce.hpp"
#include "netlink/bridge.hpp"
#include "netlink/inspect.hpp"
#include "netlink/link.hpp"
#include "netlink/reap.hpp"
#include "netlink/route.hpp"
#include "netlink/socket.hpp"
#include "netlink/veth.hpp"
#include "netns/netns.hpp"
#include "platform/dns_sandbox.hpp"

namespace cnetd::platform {

namespace {

// What an open container namespace is to the kernel: the fd that pins it and a route socket made
// inside it once (open_netns), which serves every step without further setns() calls (only the
// /proc/sys writes need the thread to enter the namespace). Shared between the LinuxNetns that
// owns it and LinuxKernel's registry of open namespaces (a weak reference there).
struct NsHandle {
    std::string path;
    UniqueFd fd;
    netlink::RouteSocket sock;
    // Interface name -> ifindex, as resolved by this handle's steps: an attach's steps on one
    // interface (address, routes, IPv6) look its index up once, not once per step. Entries go
    // when this code deletes, retires or creates a link of that name in the namespace.
    std::map<std::string, int, std::less<>> ifindex;

    Result<int> ifindex_of(const std::string& ifname, std::string_view op) {
        if (auto it = ifindex.find(ifname); it != ifindex.end()) return it->second;
        CNETD_TRY_ASSIGN(auto link, netlink::get_link(sock, ifname));
        if (!link) return Error::sys(ENODEV, fmt::format("{} {}{}", op, ifname, sock.where()));
        ifindex.emplace(ifname, link->ifindex);
        return link->ifindex;
    }
};

class LinuxNetns final : public core::Netns {
public:
    LinuxNetns(core::NetnsId id, std::shared_ptr<NsHandle> h) : id_(id), h_(std::move(h)) {}

    const std::string& path() const override { return h_->path; }
    core::NetnsId id() const override { return id_; }

    Result<std::string> free_ifname(const std::string& prefix) override {
        return netlink::free_ifname(h_->sock, prefix);
    }

    Result<void> disable_ipv6(const std::string& ifname) override {
        const std::string key = fmt::format("net/ipv6/conf/{}/disable_ipv6", ifname);
        CNETD_TRY(validate_ifname(ifname).context("disable ipv6"));
        CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(h_->fd.get(), h_->path));
        auto r = sysctl::write(key, "1");
        if (!r.ok() && r.error().error_number() == ENOENT &&
            ::access("/proc/sys/net/ipv6/conf/all", F_OK) != 0)
            return ok();  // IPv6 is off in this kernel: nothing to disable
        if (!r.ok())
            return Error::sys(r.error().error_number(),
                              fmt::format("write sysctl {}=1 in {}", key, h_->path));
        return ok();
    }

    Result<void> add_address(const std::string& ifname, const Ipv4Cidr& addr) override {
        CNETD_TRY_ASSIGN(int ifindex,
                         h_->ifindex_of(ifname, fmt::format("add address {} to", addr.str())));
        return netlink::add_ipv4(h_->sock, ifindex, ifname, addr, /*replace=*/true);
    }

    Result<void> set_up(const std::string& ifname) override {
        return netlink::set_up(h_->sock, ifname);
    }

    Result<void> add_default_route(const std::string& ifname, Ipv4 gateway) override {
        CNETD_TRY_ASSIGN(int ifindex, h_->ifindex_of(ifname, fmt::format("add default route via "
                                                                         "{} dev",
                                                                         gateway.str())));
        return netlink::add_default_route(h_->sock, ifindex, ifname, gateway);
    }

    Result<void> delete_link(const std::string& ifname) override {
        h_->ifindex.erase(ifname);
        return netlink::delete_link(h_->sock, ifname);
    }

    Result<void> enable_ipv6(const std::string& ifname) override {
        CNETD_TRY(validate_ifname(ifname).context("enable ipv6"));
        CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(h_->fd.get(), h_->path));
        // accept_ra/accept_dad first: disable_ipv6=0 on an up link creates the link-local address
        // at once, and it must not start DAD or router solicitation either.
        for (const char* knob : {"accept_ra", "accept_dad", "disable_ipv6"}) {
            const std::string key = fmt::format("net/ipv6/conf/{}/{}", ifname, knob);
            auto r = sysctl::write(key, "0");
            if (r.ok()) continue;
            const int e = r.error().error_number();
            if (e == ENOENT && ::access("/proc/sys/net/ipv6", F_OK) != 0)
                return Error::sys(EAFNOSUPPORT, fmt::format("enable ipv6 on {} in {}: IPv6 is off",
                                                            ifname, h_->path));
            if (e == ENOENT)  // the per-interface directory is missing: no such link
                return Error::sys(ENODEV, fmt::format("enable ipv6 on {} in {}", ifname, h_->path));
            return Error::sys(e, fmt::format("write sysctl {}=0 in {}", key, h_->path));
        }
        return ok();
    }

    Result<void> add_address6(const std::string& ifname, const Ipv6Cidr& addr) override {
        CNETD_TRY_ASSIGN(int ifindex,
                         h_->ifindex_of(ifname, fmt::format("add address {} to", addr.str())));
        return netlink::add_ipv6_nodad(h_->sock, ifindex, ifname, addr);
    }

    Result<void> add_default_route6(const std::string& ifname, Ipv6 gateway) override {
        CNETD_TRY_ASSIGN(int ifindex, h_->ifindex_of(ifname, fmt::format("add default route via "
                                                                         "{} dev",
                                                                         gateway.str())));
        return netlink::add_default_route6(h_->sock, ifindex, ifname, gateway);
    }

    Result<std::optional<core::DefaultRoute>> default_route(core::IpFamily f) override {
        CNETD_TRY_ASSIGN(auto r, netlink::get_default_route(h_->sock, af(f)));
        if (!r) return std::optional<core::DefaultRoute>();
        CNETD_TRY_ASSIGN(auto link, netlink::get_link_by_index(h_->sock, r->ifindex));
        if (!link)  // the route's link vanished between two dumps: as good as no route
            return std::optional<core::DefaultRoute>();
        return std::optional(core::DefaultRoute{link->name, r->gateway4, r->gateway6, r->metric});
    }

    Result<void> put_default_route(core::IpFamily f, const core::DefaultRoute& r) override {
        CNETD_TRY_ASSIGN(int ifindex, h_->ifindex_of(r.ifname, "restore default route dev"));
        return netlink::put_default_route(h_->sock, af(f),
                                          {ifindex, r.gateway4, r.gateway6, r.metric}, r.ifname);
    }

    Result<void> delete_default_route(core::IpFamily f, const std::string& ifname,
                                      uint32_t metric) override {
        auto ifindex = h_->ifindex_of(ifname, "delete default route dev");
        if (!ifindex.ok() && ifindex.error().error_number() == ENODEV)
            return ok();  // gone with its routes
        CNETD_TRY(ifindex);
        return netlink::delete_default_route(h_->sock, af(f), *ifindex, metric, ifname);
    }

    Result<void> announce(const std::string& ifname, const Mac& mac, std::optional<Ipv4> v4,
                          std::optional<Ipv6> v6) override {
        // The packet socket (and the name lookup) must be made inside the container's namespace.
        CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(h_->fd.get(), h_->path));
        return netlink::announce(ifname, mac, v4, v6, h_->sock.where());
    }

    Result<void> add_route(const std::string& ifname, const Ipv4Cidr& dst, Ipv4 gateway) override {
        const std::string what =
            fmt::format("add route {} via {} dev {}", dst.str(), gateway.str(), ifname);
        if (dst != dst.masked()) {
            return Error::invalid(
                fmt::format("{}{}: destination {} is not a network address "
                            "(the network is {})",
                            what, h_->sock.where(), dst.str(), dst.masked().str()));
        }
        CNETD_TRY_ASSIGN(int ifindex,
                         h_->ifindex_of(ifname, fmt::format("add route {} via {} dev", dst.str(),
                                                            gateway.str())));
        return netlink::add_route4(h_->sock, {ifindex, dst, gateway, false}, ifname);
    }

    Result<bool> has_route(const std::string& ifname, const Ipv4Cidr& dst, Ipv4 gateway) override {
        auto ifindex = h_->ifindex_of(ifname, "find route dev");
        if (!ifindex.ok() && ifindex.error().error_number() == ENODEV) return false;
        CNETD_TRY(ifindex);
        CNETD_TRY_ASSIGN(auto routes, netlink::list_main_routes4(h_->sock));
        return std::any_of(routes.begin(), routes.end(), [&](const netlink::Route4& r) {
            return r.oif == *ifindex && r.dst == dst.masked() && r.gateway == gateway;
        });
    }

    Result<std::unique_ptr<core::DnsListener>> open_dns_listener() override {
        return platform::open_dns_listener(h_->sock, h_->fd.get(), h_->path);
    }
    Result<void> set_dns_nat(uint16_t udp_port, uint16_t tcp_port) override {
        return platform::set_dns_nat(h_->fd.get(), h_->path, udp_port, tcp_port);
    }
    Result<void> remove_dns_nat() override {
        return platform::remove_dns_nat(h_->fd.get(), h_->path);
    }

private:
    static int af(core::IpFamily f) { return f == core::IpFamily::V4 ? AF_INET : AF_INET6; }

    core::NetnsId id_;
    std::shared_ptr<NsHandle> h_;
};

}  // namespace

struct LinuxKernel::Impl {
    explicit Impl(netlink::RouteSocket s) : host(std::move(s)) {}

    netlink::RouteSocket host;
    // The host's mount namespace when ours is a private one (netns::host_mount_namespace()):
    // netns files are mounted there. Invalid: our own.
    UniqueFd host_mnt;
    // Deletes retired veth pairs in batches on its own thread and socket (netlink/reap.hpp); its
    // destructor deletes what is still queued, so a daemon stop leaves no retired pair behind.
    std::unique_ptr<netlink::Reaper> reaper = nullptr;
    // The namespaces open through open_netns(), by identity. create_veth, restore_netns and
    // retire_veth are handed a core::Netns (possibly wrapped, e.g. by core::FailpointNetns) and
    // find its fd and route socket here through Netns::id(): any open handle of one namespace
    // serves. Weak: an entry dies with its LinuxNetns; dead ones are swept as entries are added.
    std::multimap<core::NetnsId, std::weak_ptr<NsHandle>> open;
    size_t sweep_at = 64;

    void add(core::NetnsId id, const std::shared_ptr<NsHandle>& h) {
        if (open.size() >= sweep_at) {
            std::erase_if(open, [](const auto& e) { return e.second.expired(); });
            sweep_at = 2 * open.size() + 64;  // amortised O(1) per open
        }
        open.emplace(id, h);
    }

    // An open handle of the namespace `ns` names, or nullptr when this kernel has none.
    std::shared_ptr<NsHandle> find(const core::Netns& ns) const {
        auto [first, last] = open.equal_range(ns.id());
        for (auto it = first; it != last; ++it) {
            if (auto h = it->second.lock()) return h;
        }
        return nullptr;
    }

    // `ifname` in namespace `id` is about to name another link (or none): no handle may keep
    // its old index.
    void forget_ifindex(core::NetnsId id, const std::string& ifname) {
        auto [first, last] = open.equal_range(id);
        for (auto it = first; it != last; ++it) {
            if (auto h = it->second.lock()) h->ifindex.erase(ifname);
        }
    }
};

LinuxKernel::LinuxKernel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LinuxKernel::~LinuxKernel() = default;

netlink::RouteSocket& LinuxKernel::host_socket() {
    return impl_->host;
}

Result<std::unique_ptr<LinuxKernel>> LinuxKernel::create(const std::string& netns_dir) {
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_current());
    auto impl = std::make_unique<Impl>(std::move(sock));
    if (auto mnt = netns::host_mount_namespace(netns_dir.empty() ? "/" : netns_dir); !mnt) {
        log::warn("netns files: {}; mounting them in cnetd's own mount namespace",
                  mnt.error().message());
    } else if (mnt->valid()) {
        log::info(
            "netns files are mounted in the host's mount namespace (/proc/1/ns/mnt): cnetd runs "
            "in a private one (systemd ProtectSystem= and friends)");
        impl->host_mnt = std::move(mnt).value();
    }
    // Pairs a previous run retired but did not reap (it stopped in between) are doomed: delete
    // them now, before reconciliation looks at links.
    if (auto r = netlink::delete_group(impl->host, netlink::kReapGroup); !r.ok())
        log::warn("delete retired veths left by a previous run: {}", r.error().message());
    CNETD_TRY_ASSIGN(impl->reaper, netlink::Reaper::start());
    return std::unique_ptr<LinuxKernel>(new LinuxKernel(std::move(impl)));
}

Result<std::unique_ptr<core::Netns>> LinuxKernel::open_netns(const std::string& path) {
    CNETD_TRY_ASSIGN(UniqueFd fd, netns::open(path));
    CNETD_TRY_ASSIGN(netns::Id id, netns::identity(fd.get()));
    CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_in(fd.get(), path));
    auto h = std::make_shared<NsHandle>(NsHandle{path, std::move(fd), std::move(sock), {}});
    impl_->add(id, h);
    return std::unique_ptr<core::Netns>(new LinuxNetns(id, std::move(h)));
}

std::vector<core::NetnsId> LinuxKernel::host_netns_ids() {
    std::vector<core::NetnsId> out;
    // /proc/self is the thread group leader: the daemon's own namespace even when the calling
    // worker thread has entered a container's.
    for (const char* p : {"/proc/self/ns/net", "/proc/1/ns/net"}) {
        struct stat st {};
        if (::stat(p, &st) == 0)
            out.push_back(
                core::NetnsId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)});
    }
    return out;
}

Result<void> LinuxKernel::create_netns(const std::string& path) {
    CNETD_TRY(netns::create(path, impl_->host_mnt.get()));
    // `lo` up, as Docker's sandboxes have it: programs inside bind and talk to 127.0.0.1. Done
    // over a route socket made inside the namespace (no thread switch, no `ip`). If that fails,
    // the namespace goes again: create either succeeds whole or leaves nothing.
    auto lo_up = [&]() -> Result<void> {
        CNETD_TRY_ASSIGN(UniqueFd fd, netns::open(path));
        CNETD_TRY_ASSIGN(auto sock, netlink::RouteSocket::open_in(fd.get(), path));
        return netlink::set_up(sock, "lo");
    };
    if (auto r = lo_up(); !r.ok()) {
        if (auto undo = netns::remove(path, impl_->host_mnt.get()); !undo.ok())
            log::warn("create netns {}: undo: {}", path, undo.error().message());
        return std::move(r).error().wrap(fmt::format("create netns {}: bring lo up", path));
    }
    return ok();
}

Result<void> LinuxKernel::restore_netns(const std::string& path, core::Netns& ns) {
    auto h = impl_->find(ns);
    if (!h) return Error::internal("restore netns: not a namespace of this kernel");
    return netns::mount_at(h->fd.get(), path, impl_->host_mnt.get());
}

Result<void> LinuxKernel::delete_netns(const std::string& path) {
    return netns::remove(path, impl_->host_mnt.get());
}

Result<core::LinkKind> LinuxKernel::link_kind(const std::string& name) {
    CNETD_TRY_ASSIGN(auto link, netlink::get_link(impl_->host, name));
    if (!link) return core::LinkKind::Absent;
    return link->kind == "bridge" ? core::LinkKind::Bridge : core::LinkKind::Other;
}

Result<bool> LinuxKernel::ensure_bridge(const core::BridgeSpec& spec) {
    CNETD_TRY(validate_ifname(spec.name).context("ensure bridge"));
    return netlink::ensure_bridge(impl_->host, {spec.name, spec.address, spec.mtu, spec.address6,
                                                spec.no_ipv4_address, spec.mac});
}

Result<void> LinuxKernel::create_veth(const core::VethSpec& spec, core::Netns& ns) {
    const std::string what = fmt::format("create veth {} in {}", spec.host_name, ns.path());
    auto h = impl_->find(ns);
    if (!h) return Error::internal(fmt::format("{}: namespace not opened by LinuxKernel", what));
    // The peer is born with this name inside the namespace: a cached index of it is stale.
    impl_->forget_ifindex(ns.id(), spec.peer_name);
    // IFLA_MASTER takes an ifindex: one by-name lookup of the bridge (no dump).
    CNETD_TRY_ASSIGN(auto br, netlink::get_link(impl_->host, spec.bridge));
    if (!br) return Error::sys(ENODEV, fmt::format("{}: bridge {}", what, spec.bridge));
    if (br->kind != "bridge")
        return Error::conflict(fmt::format("{}: \"{}\" is a {} link, not a bridge", what,
                                           spec.bridge, br->kind.empty() ? "device" : br->kind));
    netlink::VethParams p{spec.host_name, br->ifindex, spec.peer_name,
                          spec.peer_mac,  spec.mtu,    h->fd.get()};
    auto made = netlink::create_veth(impl_->host, p, ns.path());
    if (!made.ok() && made.error().error_number() == EEXIST && impl_->reaper->pending() > 0) {
        // A retired pair not yet reaped may still hold a name (a peer that could not be
        // renamed): reap now and try once more.
        (void)impl_->reaper->flush();
        made = netlink::create_veth(impl_->host, p, ns.path());
    }
    CNETD_TRY(std::move(made));
    // Hairpin on the host port (Docker does this when it serves ports without its proxy): a
    // container reaching its own published port comes back in through the port it left by.
    auto port = netlink::get_link(impl_->host, spec.host_name);
    Result<void> hp = port.ok() && *port
                          ? netlink::set_hairpin(impl_->host, (*port)->ifindex, spec.host_name)
                          : Result<void>(Error::sys(ENODEV, "find " + spec.host_name));
    if (!hp.ok()) {
        (void)netlink::delete_link(impl_->host, spec.host_name);  // nothing half-made stays
        return std::move(hp).error().wrap(what);
    }
    return ok();
}

Result<void> LinuxKernel::set_up(const std::string& ifname) {
    return netlink::set_up(impl_->host, ifname);
}

Result<void> LinuxKernel::delete_link(const std::string& ifname) {
    return netlink::delete_link(impl_->host, ifname);
}

Result<void> LinuxKernel::retire_veth(const std::string& host_ifname, core::Netns* ns,
                                      const std::string& peer_ifname) {
    // Host end first: once it is in the reap group the pair is doomed (a stop from here on is
    // finished by the group deletion at the next start).
    auto retired = netlink::retire_host(impl_->host, host_ifname);
    if (!retired.ok()) {
        log::warn("{}; deleting it at once", retired.error().message());
        return netlink::delete_link(impl_->host, host_ifname);
    }
    if (!*retired) return ok();  // absent: nothing to delete
    if (auto h = ns ? impl_->find(*ns) : nullptr; h && !peer_ifname.empty()) {
        // The container end goes down and is renamed, inside the namespace: no handle may keep
        // its index under the old name.
        impl_->forget_ifindex(ns->id(), peer_ifname);
        auto r =
            netlink::retire_peer(h->sock, peer_ifname, netlink::retired_peer_name(host_ifname));
        if (!r.ok()) {
            // The container would keep `peer_ifname` until the reaper runs: delete at once.
            log::warn("{}; deleting the pair at once", r.error().message());
            return netlink::delete_link(impl_->host, host_ifname);
        }
    }
    impl_->reaper->queued();
    return ok();
}

Result<void> LinuxKernel::flush_retired() {
    return impl_->reaper->flush();
}

Result<void> LinuxKernel::write_sysctl(const std::string& key, const std::string& value) {
    return sysctl::write(key, value);
}

Result<std::string> LinuxKernel::read_sysctl(const std::string& key) {
    return sysctl::read(key);
}

namespace {

class SocketHold final : public core::PortHold {
public:
    ~SocketHold() override {
        // [::1]: the daemon's relay listens on dups of these sockets (daemon/relay.hpp). Shutting
        // them down stops that listener now, before the reply to the unpublishing request.
        if (shutdown_on_close)
            for (auto& fd : socks) ::shutdown(fd.get(), SHUT_RDWR);
    }
    std::vector<int> fds() const override {
        std::vector<int> out;
        for (const auto& fd : socks) out.push_back(fd.get());
        return out;
    }
    std::vector<UniqueFd> socks;
    bool shutdown_on_close = false;
};

struct SockAddr {
    int family = AF_INET;
    union {
        sockaddr_in in;
        sockaddr_in6 in6;
    } u{};
    socklen_t len = 0;
    std::string where;  // "0.0.0.0:8080", "[::]:8080": names the port in errors
    // [::1] tcp, which the daemon's relay serves on this socket: SO_REUSEADDR (so the relay's own
    // TIME_WAIT connections on [::1]:port do not block a re-hold after a restart) and listening
    // (which keeps the hold exclusive despite SO_REUSEADDR; connections wait in the backlog until
    // the relay accepts).
    bool listen = false;
};

// Binds one never-listening socket per port of [first, last]; all or nothing (the sockets made so
// far close when an error returns). `addr_of(port)` gives the address to bind.
template <class AddrOf>
Result<std::unique_ptr<core::PortHold>> hold_all(int proto, uint16_t first, uint16_t last,
                                                 AddrOf addr_of) {
    auto hold = std::make_unique<SocketHold>();
    const int type = proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    for (uint32_t port = first; port <= last; ++port) {
        const SockAddr sa = addr_of(static_cast<uint16_t>(port));
        UniqueFd fd(::socket(sa.family, type | SOCK_CLOEXEC, proto));
        if (!fd.valid()) {
            // No SCTP in this kernel: nothing can bind the port either, so there is nothing to
            // hold.
            if (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT) continue;
            return Error::sys(errno, fmt::format("Bind for {} failed: socket", sa.where));
        }
        if (sa.family == AF_INET6) {
            // Only the IPv6 port: an IPv4 hold (or another process's IPv4 socket) is separate.
            int one = 1;
            if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
                return Error::sys(errno, fmt::format("Bind for {} failed: IPV6_V6ONLY", sa.where));
        }
        if (proto == IPPROTO_UDP) {
            // Never queue a datagram on the holder: a one-instruction filter that drops everything.
            static sock_filter drop_all[] = {{BPF_RET | BPF_K, 0, 0, 0}};
            sock_fprog prog{1, drop_all};
            if (::setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
                return Error::sys(errno,
                                  fmt::format("Bind for {} failed: attach filter", sa.where));
            }
        }
        if (sa.listen && type == SOCK_STREAM) {
            int one = 1;
            if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
                return Error::sys(errno, fmt::format("Bind for {} failed: SO_REUSEADDR", sa.where));
        }
        if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa.u), sa.len) != 0) {
            return Error::sys(errno, fmt::format("Bind for {} failed", sa.where));
        }
        if (sa.listen && type == SOCK_STREAM && ::listen(fd.get(), SOMAXCONN) != 0) {
            return Error::sys(errno, fmt::format("Bind for {} failed: listen", sa.where));
        }
        hold->socks.push_back(std::move(fd));
    }
    return std::unique_ptr<core::PortHold>(std::move(hold));
}

}  // namespace

Result<std::unique_ptr<core::PortHold>> LinuxKernel::hold_ports(int proto, std::optional<Ipv4> addr,
                                                                uint16_t first, uint16_t last) {
    return hold_all(proto, first, last, [&](uint16_t port) {
        SockAddr sa;
        sa.where = fmt::format("{}:{}", addr ? addr->str() : "0.0.0.0", port);
        sa.family = AF_INET;
        sa.u.in.sin_family = AF_INET;
        sa.u.in.sin_port = htons(port);
        sa.u.in.sin_addr.s_addr = addr ? addr->network_order() : htonl(INADDR_ANY);
        sa.len = sizeof sa.u.in;
        return sa;
    });
}

Result<std::unique_ptr<core::PortHold>> LinuxKernel::hold_ports6(int proto,
                                                                 std::optional<Ipv6> addr,
                                                                 uint16_t first, uint16_t last) {
    auto held = hold_all(proto, first, last, [&](uint16_t port) {
        SockAddr sa;
        sa.where = fmt::format("[{}]:{}", addr ? addr->str() : "::", port);
        sa.family = AF_INET6;
        auto& in6 = sa.u.in6;
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        in6.sin6_addr = in6addr_any;
        if (addr) std::memcpy(&in6.sin6_addr, addr->bytes().data(), 16);
        sa.len = sizeof in6;
        sa.listen = addr && addr->is_loopback();
        return sa;
    });
    if (held.ok() && addr && addr->is_loopback())
        static_cast<SocketHold&>(**held).shutdown_on_close = true;
    return held;
}

Result<std::optional<unsigned>> LinuxKernel::default_route_mtu() {
    CNETD_TRY_ASSIGN(auto routes, netlink::list_main_routes4(impl_->host));
    // The preferred default route: lowest metric among unicast 0.0.0.0/0 routes with a device.
    const netlink::Route4* best = nullptr;
    for (const auto& r : routes) {
        if (r.dst.prefix() != 0 || r.type != RTN_UNICAST || r.oif <= 0) continue;
        if (!best || r.priority < best->priority) best = &r;
    }
    if (!best) return std::optional<unsigned>{};
    CNETD_TRY_ASSIGN(auto link, netlink::get_link_by_index(impl_->host, best->oif));
    if (!link)  // the device went away between the two dumps: as if there were no default route
        return std::optional<unsigned>{};
    return std::optional<unsigned>(link->mtu);
}

Result<std::vector<Ipv4Cidr>> LinuxKernel::onlink_routes4() {
    CNETD_TRY_ASSIGN(auto routes, netlink::list_main_routes4(impl_->host));
    std::vector<Ipv4Cidr> out;
    for (const auto& r : routes) {
        if (r.scope != RT_SCOPE_LINK || r.type != RTN_UNICAST) continue;
        if (std::find(out.begin(), out.end(), r.dst.masked()) == out.end())
            out.push_back(r.dst.masked());
    }
    return out;
}

Result<unsigned> LinuxKernel::bridge_port_count(const std::string& bridge) {
    const std::string what = fmt::format("count ports of bridge {}", bridge);
    CNETD_TRY(validate_ifname(bridge).context(what));
    CNETD_TRY_ASSIGN(auto br, netlink::get_link(impl_->host, bridge));
    if (!br) return Error::sys(ENODEV, what);
    if (br->kind != "bridge")
        return Error::conflict(fmt::format("{}: \"{}\" is a {} link, not a bridge", what, bridge,
                                           br->kind.empty() ? "device" : br->kind));
    return netlink::count_ports(impl_->host, br->ifindex, bridge);
}

}  // namespace cnetd::platform
