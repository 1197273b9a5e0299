// The CNI 1.1 plugin protocol as cnetd-cni speaks it (spec: shared/spec/cni.md, docs/cni.md):
// parsing a call (environment + network config on stdin) into a CniRequest, and encoding results,
// errors and the VERSION answer in the cniVersion the runtime asked for.
//
// Pure: no I/O, no kernel, no daemon. Every function is thread-safe and never throws (JSON type
// errors are caught and reported as code 6/7 errors).
//
// Errors: errors made by cni_error() carry their CNI error code (kIncompatibleVersion, ...) as
// kCodeBase + code in Error::error_number() (far above any errno, so a real errno is never taken
// for a code) and a message naming the field and the value
// ("ipam.ranges[0][0].gateway: 10.99.0.1 is not in subnet 10.88.0.0/16"). cni_code() reads it back.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.hpp"

namespace cnetd::cni {

using json = nlohmann::json;

// CNI error codes (spec "Error codes") and the STATUS ones.
inline constexpr int kIncompatibleVersion = 1;
inline constexpr int kUnsupportedField = 2;
inline constexpr int kUnknownContainer = 3;
inline constexpr int kInvalidEnv = 4;
inline constexpr int kIoFailure = 5;
inline constexpr int kDecodeFailure = 6;
inline constexpr int kInvalidConfig = 7;
inline constexpr int kTryAgainLater = 11;
inline constexpr int kPluginNotAvailable = 50;   // STATUS: the daemon cannot be reached
inline constexpr int kLimitedConnectivity = 51;  // STATUS: existing attachments are degraded
inline constexpr int kDaemonFailure = 100;       // plugin-specific: the daemon refused the call
inline constexpr int kCodeBase = 1 << 20;        // error_number() of cni_error(): kCodeBase + code

inline constexpr std::array<const char*, 7> kSupportedVersions = {
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

// An Error with a CNI code (kind InvalidArgument unless given).
Error cni_error(int code, std::string msg, ErrorKind kind = ErrorKind::InvalidArgument);
// The CNI code of an error: its own code for lib/cni errors, else derived from the kind
// (NotFound 3, InvalidArgument/Conflict 7, Unavailable 11, anything else kDaemonFailure).
int cni_code(const Error& e);

enum class Command { Add, Del, Check, Status, Gc, Version };
std::string_view to_string(Command c);

// Is `v` one of kSupportedVersions?
bool version_supported(std::string_view v);
// Orders "0.3.1" < "0.4.0" < "1.0.0"; unparsable text sorts first.
int compare_versions(std::string_view a, std::string_view b);

struct PortMapping {
    uint16_t host_port = 0;
    uint16_t container_port = 0;
    std::string protocol = "tcp";  // tcp, udp, sctp
    std::string host_ip;           // "" = every host address
    bool operator==(const PortMapping&) const = default;
};

struct Attachment {
    std::string container_id;
    std::string ifname;
    auto operator<=>(const Attachment&) const = default;
};

// The cnetd-cni entry of the network config: the reference bridge plugin's keys that cnetd honours,
// host-local IPAM, and cnetd's own keys (cnetdSocket, cnetdTimeout).
struct NetConf {
    std::string cni_version;
    std::string name;  // the CNI network name = the cnetd network name
    std::string type;  // "cnetd-cni" (any type is accepted: a runtime may install it renamed)
    std::string bridge = "cni0";
    bool is_gateway = true;
    bool is_default_gateway = false;
    bool ip_masq = false;  // reference default: off
    unsigned mtu = 0;      // 0: the daemon's
    bool hairpin_mode = false;
    bool port_isolation = false;  // → no traffic between containers of the bridge (icc off)
    // IPAM (host-local): one IPv4 range.
    std::string subnet;       // "10.88.0.0/16" (host bits zero)
    std::string gateway;      // "" = first host
    std::string range_start;  // "" = first usable
    std::string range_end;
    std::vector<std::string> routes;  // destinations of ipam.routes (cnetd installs 0.0.0.0/0)
    json dns = json::object();        // passed through to the result
    // cnetd's keys.
    std::string socket;           // "" = /run/cnetd/cnetd.sock (or $CNETD_SOCKET)
    unsigned timeout_ms = 30000;  // cnetdTimeout (seconds, may be fractional): wait for the daemon
};

struct CniRequest {
    Command command = Command::Version;
    std::string container_id;                 // CNI_CONTAINERID
    std::string netns;                        // CNI_NETNS ("" allowed for DEL)
    std::string ifname;                       // CNI_IFNAME
    std::string path;                         // CNI_PATH
    std::map<std::string, std::string> args;  // CNI_ARGS, K=V
    NetConf conf;
    // Capabilities and arguments, merged: runtimeConfig.ips, args.cni.ips, CNI_ARGS IP= (first
    // wins in that order); runtimeConfig.mac, args MAC=, conf mac.
    std::string ip;   // static IPv4 address, no prefix
    std::string mac;  // static MAC
    std::vector<PortMapping> port_mappings;
    std::optional<json> prev_result;            // raw, in conf.cni_version
    std::vector<Attachment> valid_attachments;  // GC
    std::string version() const { return conf.cni_version; }
};

// Parses one plugin call. `env` holds at least the CNI_* variables. VERSION needs no config (stdin
// may be empty or carry {"cniVersion": ...}). Codes: 4 bad/missing env, 6 stdin not JSON, 7 a key
// of the wrong type or value, 2 a key cnetd cannot honour (message names key and value),
// 1 an unsupported cniVersion.
Result<CniRequest> parse_cni(const std::map<std::string, std::string>& env,
                             std::string_view stdin_text);

// host-local's rangeStart/rangeEnd as a cnetd IP range: "" when absent or when they span the whole
// usable subnet, a CIDR when they are exactly one; anything else is code 2 naming both keys.
Result<std::string> ip_range_of(const NetConf& c);

// A result in version-independent form (the 1.x shape).
struct Interface {
    std::string name;
    std::string mac;
    std::string sandbox;  // netns path for container interfaces, "" for host ones
    unsigned mtu = 0;
    bool operator==(const Interface&) const = default;
};
struct IpConfig {
    std::string address;  // CIDR "10.88.0.2/16"
    std::string gateway;  // "" = none
    std::optional<int> interface;
    bool operator==(const IpConfig&) const = default;
};
struct Route {
    std::string dst;  // CIDR
    std::string gw;   // "" = none
    bool operator==(const Route&) const = default;
};
struct CniResult {
    std::vector<Interface> interfaces;
    std::vector<IpConfig> ips;
    std::vector<Route> routes;
    json dns = json::object();
};

// Reads a result (e.g. prevResult) written in `version`. 0.1.0/0.2.0 results ({ip4, ip6, dns})
// become one ips entry per family without an interface. Code 6/7 on malformed input.
Result<CniResult> decode_result(const json& j, std::string_view version);
// Writes `r` in `version` (which must be supported): 1.x as is; 0.3.x/0.4.0 add ips[].version;
// 0.1.0/0.2.0 the legacy {ip4: {ip, gateway, routes}, dns}.
json encode_result(const CniResult& r, std::string_view version);
// The result's "dns" (CNI spec: {nameservers, domain, search, options}, each omitted when empty).
// A conf that sets "dns" keeps it, unchanged (the admin's choice, as the reference bridge plugin
// passes it through); otherwise the daemon's resolver facts for the attachment (docs/dns.md:
// ["127.0.0.11"] and the host's search/options on networks with the embedded resolver, the host's
// servers elsewhere). Neither: {}.
json result_dns(const json& conf_dns, const std::vector<std::string>& nameservers,
                const std::vector<std::string>& search, const std::vector<std::string>& options);
// Appends `ours` to `prev` (chaining): ours' interface indexes are shifted past prev's interfaces.
CniResult append_result(CniResult prev, const CniResult& ours);

// {"cniVersion", "code", "msg", "details"?} — printed on stdout by the plugin.
json encode_error(std::string_view version, int code, std::string_view msg,
                  std::string_view details = {});
// The VERSION answer.
json version_reply(std::string_view version);

}  // namespace cnetd::cni
