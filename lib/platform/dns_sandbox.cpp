#include "platform/dns_sandbox.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "firewall/dns_nat.hpp"
#include "netlink/link.hpp"
#include "netlink/socket.hpp"
#include "netns/netns.hpp"
#include "nft/conntrack.hpp"
#include "nft/socket.hpp"

namespace cnetd::platform {

namespace {

class LinuxDnsListener final : public core::DnsListener {
public:
    LinuxDnsListener(UniqueFd udp, UniqueFd tcp, uint16_t udp_port, uint16_t tcp_port)
        : udp_(std::move(udp)), tcp_(std::move(tcp)), udp_port_(udp_port), tcp_port_(tcp_port) {}
    ~LinuxDnsListener() override {
        // The daemon's DNS server serves dups of these: shutting the listener down stops it
        // accepting now, not when its dup closes (the contract in core/kernel.hpp). UDP is left
        // alone: a shut-down datagram socket reads 0 bytes forever, which a server would spin
        // on; the DNAT is gone by now, so no query reaches it, and the server's sync() closes it.
        ::shutdown(tcp_.get(), SHUT_RDWR);
    }
    uint16_t udp_port() const override { return udp_port_; }
    uint16_t tcp_port() const override { return tcp_port_; }
    int udp_fd() const override { return udp_.get(); }
    int tcp_fd() const override { return tcp_.get(); }

private:
    UniqueFd udp_, tcp_;
    uint16_t udp_port_, tcp_port_;
};

// One socket of `type` bound to 127.0.0.11:0 (listening for TCP); its port through `port`.
Result<UniqueFd> bind_resolver_socket(int type, uint16_t& port) {
    const char* what = type == SOCK_DGRAM ? "udp" : "tcp";
    UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Error::sys(errno, fmt::format("{} socket", what));
    // 127.0.0.11 is local only while lo is up: bind whatever its state (Docker does the same).
    int one = 1;
    if (::setsockopt(fd.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof one) != 0)
        return Error::sys(errno, fmt::format("{} socket: IP_FREEBIND", what));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = firewall::kDnsAddress.network_order();
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return Error::sys(errno, fmt::format("bind {} 127.0.0.11:0", what));
    if (type == SOCK_STREAM && ::listen(fd.get(), 128) != 0)
        return Error::sys(errno, "listen tcp 127.0.0.11");
    socklen_t len = sizeof sa;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
        return Error::sys(errno, fmt::format("{} socket: getsockname", what));
    port = ntohs(sa.sin_port);
    return fd;
}

}  // namespace

Result<std::unique_ptr<core::DnsListener>> open_dns_listener(netlink::RouteSocket& sock, int ns_fd,
                                                             const std::string& label) {
    const std::string frame = fmt::format("open resolver sockets in {}", label);
    CNETD_TRY(netlink::set_up(sock, "lo").context(frame));
    CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(ns_fd, label));
    uint16_t udp_port = 0, tcp_port = 0;
    auto udp = bind_resolver_socket(SOCK_DGRAM, udp_port);
    if (!udp) return std::move(udp).error().wrap(frame);
    auto tcp = bind_resolver_socket(SOCK_STREAM, tcp_port);
    if (!tcp) return std::move(tcp).error().wrap(frame);
    return std::unique_ptr<core::DnsListener>(
        new LinuxDnsListener(std::move(udp).value(), std::move(tcp).value(), udp_port, tcp_port));
}

Result<void> set_dns_nat(int ns_fd, const std::string& label, uint16_t udp_port,
                         uint16_t tcp_port) {
    const std::string frame = fmt::format("table ip {} in {}", firewall::kDnsTable, label);
    CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(ns_fd, label));
    // The socket is made here, so it is bound to the container's namespace for its life.
    CNETD_TRY_ASSIGN(nft::Socket nl, nft::Socket::open().context(frame));
    CNETD_TRY(nl.commit(firewall::build_dns_nat(udp_port, tcp_port)).context(frame));
    // Queries in flight to an older port (a restarted daemon) keep their conntrack entry, and so
    // their old DNAT, as long as the client reuses its source port: drop them all.
    std::vector<nft::ConntrackMatch> ms;
    for (uint8_t proto : {uint8_t(IPPROTO_UDP), uint8_t(IPPROTO_TCP)})
        ms.push_back({nft::ConntrackMatch::V4, proto, 1, 65535, firewall::kDnsAddress});
    if (auto r = nft::conntrack_delete(ms); !r.ok())
        log::warn("embedded DNS in {}: {}", label, r.error().message());
    return ok();
}

Result<void> remove_dns_nat(int ns_fd, const std::string& label) {
    const std::string frame = fmt::format("delete table ip {} in {}", firewall::kDnsTable, label);
    CNETD_TRY_ASSIGN(auto scope, netns::ScopedNetns::enter(ns_fd, label));
    CNETD_TRY_ASSIGN(nft::Socket nl, nft::Socket::open().context(frame));
    return nl.commit(firewall::build_dns_nat_removal()).context(frame);
}

}  // namespace cnetd::platform
