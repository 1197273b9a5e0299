// libFuzzer target: lib/dns/resolv_conf. Properties: parsing never fails or crashes; the file a
// container gets, read back, keeps the host's search domains and options (plus ndots:0 unless the
// host set ndots) with 127.0.0.11 as its only server; the plain file keeps them too and names only
// non-loopback servers that parse; upstreams() gives at most 3, each an address we can dial.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolv_conf.hpp"

using namespace cnetd;
using namespace cnetd::dns;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void check_resolver_file(const ResolvConf& rc) {
    auto back = parse_resolv_conf(render_resolver_file(rc));
    check(back.nameservers == std::vector<std::string>{kResolverAddress});
    check(back.search == rc.search);
    std::vector<std::string> want = rc.options;
    bool ndots = std::any_of(want.begin(), want.end(),
                             [](const std::string& o) { return o.rfind("ndots:", 0) == 0; });
    if (!ndots) want.emplace_back("ndots:0");
    check(back.options == want);
}

void check_plain_file(const ResolvConf& rc, bool ipv6) {
    auto back = parse_resolv_conf(render_plain_file(rc, ipv6));
    check(back.search == rc.search && back.options == rc.options);
    check(!back.nameservers.empty());
    for (const auto& ns : back.nameservers) {
        ResolvConf one;
        one.nameservers = {ns};
        auto ups = upstreams(one);
        check(ups.size() == 1);
        if (auto* a = std::get_if<Ipv4>(&ups[0].addr)) {
            check((a->value() >> 24) != 127);
        } else {
            check(ipv6 && !std::get<Ipv6>(ups[0].addr).is_loopback());
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto rc = parse_resolv_conf(text);
    for (const auto& v : {rc.nameservers, rc.search, rc.options})
        for (const auto& s : v)
            check(!s.empty() && s.find_first_of(" \t\r\n#;") == std::string::npos);
    check_resolver_file(rc);
    check_plain_file(rc, false);
    check_plain_file(rc, true);
    auto ups = upstreams(rc);
    check(ups.size() <= kMaxUpstreams);
    for (const auto& u : ups) {
        check(u.text.find('%') == std::string::npos ? u.zone.empty() : !u.zone.empty());
        check(u.zone.empty() || std::holds_alternative<Ipv6>(u.addr));
    }
    (void)use_systemd_file(rc);
    return 0;
}
