// libFuzzer target: Docker -p specs (lib/core/ports) and the host port allocator fed with what
// they parse to. Properties: a parsed request has a sane shape (ranges ordered, container ports
// non-zero, equal-size 1:1 ranges or one-of-range host side); allocating then releasing leaves the
// allocator empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/ports.hpp"

using namespace cnetd;
using namespace cnetd::core;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view spec(reinterpret_cast<const char*>(data), size);
    auto r = parse_port_spec(spec);
    if (!r.ok()) {
        if (r.error().kind() != ErrorKind::InvalidArgument) std::abort();
        return 0;
    }
    if (r->empty()) std::abort();
    PortAllocator alloc({32768, 32800});
    std::vector<PortBinding> held;
    bool dual = size % 2 == 1;  // also the dual-stack path (0.0.0.0 and [::] together)
    for (const auto& req : *r) {
        if (req.container.first == 0 || req.container.last < req.container.first) std::abort();
        if (req.host.first != 0 && req.host.last < req.host.first) std::abort();
        if (req.host.first != 0 && req.container.size() > 1 &&
            req.host.size() != req.container.size())
            std::abort();
        auto bs = alloc.allocate(req, dual && !req.ipv6 && !req.host_ip);
        if (!bs.ok()) continue;  // e.g. the small ephemeral range is full
        if (bs->empty()) std::abort();
        for (const auto& b : *bs) {
            if (b.host.size() != b.container.size()) std::abort();
            if (!b.ipv6 && !alloc.in_use(b.proto, b.host_ip, b.host.first)) std::abort();
            (void)b.str();
            held.push_back(b);
        }
    }
    for (const auto& b : held) alloc.release(b);
    for (const auto& b : held)
        if (!b.ipv6 && alloc.in_use(b.proto, b.host_ip, b.host.first)) std::abort();
    return 0;
}
