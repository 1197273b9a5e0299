#include "nft/spec.hpp"

#include <netinet/in.h>  // before any <linux/*.h>: it keeps linux/in.h's duplicates out
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

namespace {

struct TypeInfo {
    Type type;
    uint32_t len;
    const char* name;
};
constexpr TypeInfo kTypes[] = {
    {Type::NfProto, 1, "nf_proto"},
    {Type::Ipv4Addr, 4, "ipv4_addr"},
    {Type::Ipv6Addr, 16, "ipv6_addr"},
    {Type::InetProto, 1, "inet_proto"},
    {Type::InetService, 2, "inet_service"},
    {Type::Ifname, 16, "ifname"},  // IFNAMSIZ: meta iifname loads 16 zero-padded bytes
};
const TypeInfo* info(Type t) {
    for (const auto& i : kTypes)
        if (i.type == t) return &i;
    return nullptr;
}

}  // namespace

uint32_t type_len(Type t) {
    const TypeInfo* i = info(t);
    return i ? i->len : 0;
}

const char* type_name(Type t) {
    const TypeInfo* i = info(t);
    return i ? i->name : "invalid";
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
