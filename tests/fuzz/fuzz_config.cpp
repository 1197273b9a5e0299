// libFuzzer target: the YAML config loader (lib/config). Any text must give either a Config or an
// InvalidArgument error; yaml-cpp's exceptions must never escape.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.hpp"

using namespace cnetd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // yaml-cpp recurses per nesting level: very deep inputs exhaust the stack in the library
    // itself (a known yaml-cpp limit, not our code); real config files are tiny.
    if (size > 64 * 1024) return 0;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = config::parse(text, "fuzz.yaml");
    if (!r.ok() && r.error().kind() != ErrorKind::InvalidArgument) std::abort();
    if (r.ok()) {
        // Invariants the rest of the daemon relies on.
        const auto& c = r.value();
        if (c.mtu != 0 && (c.mtu < 68 || c.mtu > 65535)) std::abort();  // 0: not set (uplink's)
        if (c.socket.empty() || c.socket[0] != '/') std::abort();
        if (c.max_connections < 1) std::abort();
        if (c.default_net.fixed_cidr &&
            !c.default_net.bip.masked().contains(c.default_net.fixed_cidr->network()))
            std::abort();
    }
    return 0;
}
