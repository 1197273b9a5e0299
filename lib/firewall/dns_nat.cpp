// The resolver's DNAT table (dns_nat.hpp): typed specs, as `nft --debug=netlink` compiles the text.
#include "firewall/dns_nat.hpp"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>

#include <fmt/format.h>

namespace cnetd::firewall {
namespace {

using namespace nft::expr;

constexpr int kDnsFamily = NFPROTO_IPV4;
constexpr uint32_t kIpDaddr = 16;  // offset in the IPv4 header
constexpr uint32_t kThDport = 2;   // offset of the destination port (tcp/udp)

nft::TableSpec table() {
    return {kDnsFamily, kDnsTable};
}

// ip daddr 127.0.0.11 <proto> dport 53 dnat to 127.0.0.11:<port>
nft::Exprs dnat_rule(uint8_t proto, uint16_t port) {
    const uint32_t addr = kDnsAddress.network_order();
    const uint16_t port_be = htons(port);
    return seq(payload(NFT_PAYLOAD_NETWORK_HEADER, kIpDaddr, 4, NFT_REG_1),
               cmp(NFT_REG_1, NFT_CMP_EQ, &addr, sizeof addr), meta(NFT_META_L4PROTO, NFT_REG_1),
               cmp(NFT_REG_1, NFT_CMP_EQ, &proto, sizeof proto),
               payload(NFT_PAYLOAD_TRANSPORT_HEADER, kThDport, 2, NFT_REG_1),
               cmp_u16_be(NFT_REG_1, NFT_CMP_EQ, 53), immediate(NFT_REG_1, &addr, sizeof addr),
               immediate(NFT_REG_2, &port_be, sizeof port_be),
               dnat(NFPROTO_IPV4, NFT_REG_1, NFT_REG_2, NFT_REG_2, 0));
}

}  // namespace

std::string dns_nat_rule_text(const char* proto, uint16_t port) {
    return fmt::format("ip daddr {0} {1} dport 53 dnat to {0}:{2}", kDnsAddress.str(), proto, port);
}

nft::Batch build_dns_nat(uint16_t udp_port, uint16_t tcp_port) {
    nft::Batch b;
    b.add_table(table());
    b.delete_table(table());
    b.create_table(table());
    b.create_chain(
        {kDnsFamily, kDnsTable, kDnsChain, nft::BaseChain{"nat", NF_INET_LOCAL_OUT, -100, NF_ACCEPT}});
    const struct {
        const char* name;
        uint8_t proto;
        uint16_t port;
    } rules[] = {{"udp", IPPROTO_UDP, udp_port}, {"tcp", IPPROTO_TCP, tcp_port}};
    for (const auto& r : rules) {
        b.add_rule({kDnsFamily, kDnsTable, kDnsChain, dnat_rule(r.proto, r.port),
                    fmt::format("cnetd: embedded DNS ({})", r.name)},
                   dns_nat_rule_text(r.name, r.port));
    }
    return b;
}

nft::Batch build_dns_nat_removal() {
    nft::Batch b;
    b.add_table(table());
    b.delete_table(table());
    return b;
}

}  // namespace cnetd::firewall
