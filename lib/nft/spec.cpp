#include "nft/spec.hpp"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <fmt/format.h>

namespace cnetd::nft {
namespace {

// Sum of the fields padded to registers for a concatenation, the plain size for one field.
uint32_t packed_len(const std::vector<Type>& fields) {
    if (fields.size() == 1) return type_len(fields[0]);
    uint32_t len = 0;
    for (Type t : fields) len += (type_len(t) + 3) & ~3u;
    return len;
}
uint32_t pack(const std::vector<Type>& fields) {
    uint32_t v = 0;
    for (Type t : fields) v = (v << 6) | static_cast<uint32_t>(t);
    return v;
}
std::string type_text(const std::vector<Type>& fields) {
    std::string out;
    for (Type t : fields) out += (out.empty() ? "" : " . ") + std::string(type_name(t));
    return out;
}
const char* hook_name(uint32_t hooknum) {
    switch (hooknum) {
        case NF_INET_PRE_ROUTING:
            return "prerouting";
        case NF_INET_LOCAL_IN:
            return "input";
        case NF_INET_FORWARD:
            return "forward";
        case NF_INET_LOCAL_OUT:
            return "output";
        case NF_INET_POST_ROUTING:
            return "postrouting";
        default:
            return "ingress";
    }
}
// nft's standard priority names (inet/ip/ip6 families).
std::string priority_text(int32_t prio) {
    switch (prio) {
        case -300:
            return "raw";
        case -150:
            return "mangle";
        case -100:
            return "dstnat";
        case 0:
            return "filter";
        case 50:
            return "security";
        case 100:
            return "srcnat";
        default:
            return fmt::format("{}", prio);
    }
}

}  // namespace

std::string family_name(int nfproto) {
    switch (nfproto) {
        case NFPROTO_INET:
            return "inet";
        case NFPROTO_IPV4:
            return "ip";
        case NFPROTO_IPV6:
            return "ip6";
        case NFPROTO_BRIDGE:
            return "bridge";
        case NFPROTO_ARP:
            return "arp";
        case NFPROTO_NETDEV:
            return "netdev";
        default:
            return fmt::format("family {}", nfproto);
    }
}

uint32_t type_len(Type t) {
    switch (t) {
        case Type::NfProto:
            return 1;
        case Type::Ipv4Addr:
            return 4;
        case Type::Ipv6Addr:
            return 16;
        case Type::InetProto:
            return 1;
        case Type::InetService:
            return 2;
        case Type::Ifname:
            return 16;  // IFNAMSIZ: meta iifname loads 16 zero-padded bytes
    }
    return 0;
}

const char* type_name(Type t) {
    switch (t) {
        case Type::NfProto:
            return "nf_proto";
        case Type::Ipv4Addr:
            return "ipv4_addr";
        case Type::Ipv6Addr:
            return "ipv6_addr";
        case Type::InetProto:
            return "inet_proto";
        case Type::InetService:
            return "inet_service";
        case Type::Ifname:
            return "ifname";
    }
    return "invalid";
}

std::vector<Type> unpack_types(uint32_t packed) {
    std::vector<Type> out;
    for (; packed; packed >>= 6) out.insert(out.begin(), static_cast<Type>(packed & 0x3f));
    return out;
}

std::string ChainSpec::hook_text() const {
    if (!base) return {};
    std::string out = fmt::format("type {} hook {} priority {};", base->type,
                                  hook_name(base->hooknum), priority_text(base->priority));
    if (base->policy) out += *base->policy == NF_DROP ? " policy drop;" : " policy accept;";
    return out;
}

uint32_t SetSpec::flags() const {
    uint32_t f = 0;
    if (interval) f |= NFT_SET_INTERVAL;
    if (is_map()) f |= NFT_SET_MAP;
    if (key.size() > 1) f |= NFT_SET_CONCAT;
    return f;
}
uint32_t SetSpec::key_len() const {
    return packed_len(key);
}
uint32_t SetSpec::data_len() const {
    return is_map() ? packed_len(data) : 0;
}
uint32_t SetSpec::key_type() const {
    return pack(key);
}
uint32_t SetSpec::data_type() const {
    return pack(data);
}

std::string SetSpec::decl() const {
    std::string out = "type " + type_text(key);
    if (is_map()) out += " : " + type_text(data);
    if (interval) out += "; flags interval";
    return out;
}

}  // namespace cnetd::nft
