// libFuzzer target: a CNI plugin call as cnetd-cni receives it (lib/cni parse_cni): environment
// variables plus the network config on stdin, and decode_result() of a prevResult-like JSON.
// Input layout: "K=V" lines (the environment), an empty line, then stdin. Without an empty line
// the whole input is stdin with a fixed ADD environment, so JSON seeds are fuzzed directly.
// Properties: no crash, leak or UB; a call that parses names a container ID that matches the CNI
// regex and an interface name the kernel would take (for the commands that carry them).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "base/net.hpp"
#include "base/validate.hpp"
#include "cni/cni.hpp"

using namespace cnetd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 256 * 1024) return 0;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::map<std::string, std::string> env;
    std::string_view stdin_text = in;
    if (auto sep = in.find("\n\n"); sep != std::string_view::npos) {
        std::string_view head = in.substr(0, sep);
        stdin_text = in.substr(sep + 2);
        while (!head.empty()) {
            auto nl = head.find('\n');
            std::string_view line = head.substr(0, nl);
            if (auto eq = line.find('='); eq != std::string_view::npos)
                env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
            if (nl == std::string_view::npos) break;
            head.remove_prefix(nl + 1);
        }
    } else {
        env = {{"CNI_COMMAND", "ADD"},
               {"CNI_CONTAINERID", "c0ffee"},
               {"CNI_NETNS", "/var/run/netns/x"},
               {"CNI_IFNAME", "eth0"},
               {"CNI_PATH", "/opt/cni/bin"}};
    }
    auto r = cni::parse_cni(env, stdin_text);
    // Errors are user text: an nlohmann exception's "[json.exception...]" means one escaped a
    // check (unless the input itself carries the marker: messages quote bad values).
    if (!r.ok() && r.error().message().find("[json.exception") != std::string::npos &&
        in.find("[json.exception") == std::string_view::npos)
        std::abort();
    if (r.ok()) {
        auto c = r->command;
        if (c == cni::Command::Add || c == cni::Command::Del || c == cni::Command::Check) {
            if (!validate_container_id(r->container_id).ok()) std::abort();
            if (!r->ifname.empty() && !validate_ifname(r->ifname).ok()) std::abort();
        }
    }
    auto j = cni::json::parse(stdin_text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) {
        for (const char* v : {"0.3.1", "1.0.0"}) (void)cni::decode_result(j, v);
        if (j.is_object() && j.contains("prevResult"))
            (void)cni::decode_result(j["prevResult"], "1.1.0");
    }
    return 0;
}
