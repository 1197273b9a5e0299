// libFuzzer target: the address parsers of lib/base/net and the identifier validators of
// lib/base/validate. Properties: whatever parses prints back to a text that parses to the same
// value (so what we store and show is what we accepted), and errors are InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/net.hpp"
#include "base/validate.hpp"

using namespace cnetd;

namespace {

template <class T>
void round_trip(std::string_view text, Result<T> (*parse)(std::string_view)) {
    auto r = parse(text);
    if (!r.ok()) {
        if (r.error().kind() != ErrorKind::InvalidArgument) std::abort();
        return;
    }
    auto again = parse(r->str());
    if (!again.ok() || !(*again == *r)) std::abort();
}

void check_cidr4(std::string_view text) {
    auto r = Ipv4Cidr::parse_network(text);
    if (r.ok() && (r->addr() != r->network() || r->prefix() < 0 || r->prefix() > 32)) std::abort();
}

void check_cidr6(std::string_view text) {
    auto r = Ipv6Cidr::parse_network(text);
    if (r.ok() && (r->addr() != r->network() || r->prefix() < 0 || r->prefix() > 128)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    round_trip<Ipv4>(text, &Ipv4::parse);
    round_trip<Ipv4Cidr>(text, &Ipv4Cidr::parse);
    round_trip<Ipv6>(text, &Ipv6::parse);
    round_trip<Ipv6Cidr>(text, &Ipv6Cidr::parse);
    round_trip<Mac>(text, &Mac::parse);
    check_cidr4(text);
    check_cidr6(text);
    if (auto r = validate_ifname(text); r.ok()) {
        if (text.empty() || text.size() > 15 || text.find('/') != std::string_view::npos)
            std::abort();
    }
    if (auto r = validate_container_id(text); r.ok() && text.empty()) std::abort();
    (void)quote_for_error(text);
    return 0;
}
