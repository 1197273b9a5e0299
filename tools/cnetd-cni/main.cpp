// cnetd-cni: the CNI 1.1 plugin runtimes exec (docs/cni.md). A thin front end: it parses the call
// (lib/cni), forwards it to cnetd over the control socket (/v1/cni/..., docs/api.md) and prints
// the result or a CNI error on stdout. All kernel work and all state stay in the daemon; the one
// thing done here is CHECK's look into the container's namespace (interface, address, route).
//
// Exit status: 0 on success, 1 with a CNI error JSON on stdout otherwise.
// Waiting: every call to the daemon has one deadline, cnetdTimeout seconds (default 5), covering
// the connection (retried while the socket is missing or refuses) and the answer; past it ADD,
// DEL, CHECK and GC answer code 11 (try again later), STATUS code 50, with the time waited. An ADD
// whose answer was lost is undone with a DEL given at most 1 s more.
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "api/client.hpp"
#include "api/codec.hpp"
#include "base/net.hpp"
#include "cni/cni.hpp"

extern char** environ;

namespace api = cnetd::api;
namespace cni = cnetd::cni;
using cnetd::Error;
using cnetd::ErrorKind;
using cnetd::Result;
using json = nlohmann::json;

namespace {

std::string g_version = "1.1.0";  // the version errors are written in

[[noreturn]] void fail(int code, const std::string& msg, const std::string& details = {}) {
    std::cout << cni::encode_error(g_version, code, msg, details)
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << std::endl;
    std::exit(1);
}

[[noreturn]] void fail(const Error& e) {
    fail(cni::cni_code(e), e.message());
}

struct Daemon {
    api::Client client;
    unsigned timeout_ms;

    // One request under one deadline, `budget_ms` (default cnetdTimeout) from now: a daemon not
    // there yet (no socket, connection refused) is retried every 50 ms until then; one that
    // accepts but does not answer (stopped, wedged) is given until then. Past it, or on an I/O
    // failure: code 11 with the time really waited; `lost` says whether the request may have
    // reached the daemon. A daemon error: the body's message and CniCode.
    Result<json> call(std::string_view method, const std::string& target, const json& body,
                      bool* lost = nullptr, unsigned budget_ms = 0) const {
        using Clock = api::Clock;
        const auto start = Clock::now();
        const auto deadline = start + std::chrono::milliseconds(budget_ms ? budget_ms : timeout_ms);
        const std::string text =
            body.is_null() ? std::string()
                           : body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        for (;;) {
            auto r = client.raw_until(deadline, method, target, text);
            if (!r) {
                const Error& e = r.error();
                const bool not_sent = api::never_sent(e);
                if (not_sent && Clock::now() + std::chrono::milliseconds(50) < deadline) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                    continue;
                }
                if (lost) *lost = !not_sent;
                const auto waited =
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
                return cni::cni_error(
                    cni::kTryAgainLater,
                    fmt::format("cnetd is not reachable (waited {} ms, cnetdTimeout {:g} s): {}",
                                waited.count(), timeout_ms / 1000.0, e.message()),
                    ErrorKind::Unavailable);
            }
            json j = json::parse(r->body, nullptr, false);
            if (r->status / 100 == 2) return j.is_discarded() ? json() : j;
            const auto body = api::read<api::ErrorBody>(j);
            if (r->status == 503) {
                return cni::cni_error(cni::kTryAgainLater,
                                      body.message.empty() ? "cnetd is unavailable" : body.message,
                                      ErrorKind::Unavailable);
            }
            Error e = api::error_from_response(r->status, r->body);
            return cni::cni_error(body.cni_code.value_or(cni::cni_code(e)), e.message(), e.kind());
        }
    }
};

api::CniAddRequest add_request(const cni::CniRequest& r, const std::string& ip_range) {
    api::CniAddRequest req;
    req.network = {r.conf.name,   r.conf.subnet, r.conf.gateway, ip_range,
                   r.conf.bridge, r.conf.mtu,    r.conf.ip_masq, !r.conf.port_isolation};
    req.container_id = r.container_id;
    req.ifname = r.ifname;
    req.netns = r.netns;
    req.ipv4_address = r.ip;
    req.mac_address = r.mac;
    for (const auto& m : r.port_mappings)
        req.port_mappings.push_back({m.host_port, m.container_port, m.protocol, m.host_ip});
    return req;
}

// The attachment's key; CHECK names the namespace too.
api::CniKeyRequest key_request(const cni::CniRequest& r, bool with_netns) {
    return {r.conf.name, r.container_id, r.ifname, with_netns ? r.netns : std::string()};
}

// Our part of the result: [bridge, host veth, container interface], the address on the container
// interface, the default route via the gateway (none on internal networks), and "dns": the
// embedded resolver's facts from the answer's "Dns" unless the conf sets "dns" (cni::result_dns).
cni::CniResult our_result(const cni::CniRequest& r, const api::CniAttachment& a) {
    const api::Endpoint& ep = a.endpoint;
    cni::CniResult res;
    res.interfaces.push_back({a.bridge, "", "", 0});
    res.interfaces.push_back({ep.host_interface, "", "", 0});
    res.interfaces.push_back({ep.interface, ep.mac_address, r.netns, 0});
    res.ips.push_back({ep.ipv4_address, a.gateway, 2});
    if (!ep.ipv6_address.empty()) res.ips.push_back({ep.ipv6_address, "", 2});
    if (!a.internal) res.routes.push_back({"0.0.0.0/0", a.gateway});
    const api::EndpointDns dns = ep.dns.value_or(api::EndpointDns{});
    res.dns = cni::result_dns(r.conf.dns, dns.nameservers, dns.search, dns.options);
    return res;
}

// CHECK inside the container: the interface is up and carries the address, and (unless internal)
// a default route exists. Runs in this single-threaded process after setns().
Result<void> check_in_netns(const cni::CniRequest& r, const std::string& cidr, bool want_route) {
    int fd = ::open(r.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::sys(errno, fmt::format("open CNI_NETNS {}", r.netns));
    int rc = ::setns(fd, CLONE_NEWNET);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Error::sys(err, fmt::format("enter CNI_NETNS {}", r.netns));
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return Error::sys(errno, "socket");
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", r.ifname.c_str());
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
        err = errno;
        ::close(s);
        return Error(ErrorKind::Kernel,
                     fmt::format("interface {} in {}: {}", r.ifname, r.netns, std::strerror(err)));
    }
    bool up = ifr.ifr_flags & IFF_UP;
    std::string have;
    if (::ioctl(s, SIOCGIFADDR, &ifr) == 0) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
        have = cnetd::Ipv4(ntohl(sin->sin_addr.s_addr)).str();
    }
    ::close(s);
    if (!up)
        return Error(ErrorKind::Kernel,
                     fmt::format("interface {} in {} is down", r.ifname, r.netns));
    std::string want = cidr.substr(0, cidr.find('/'));
    if (have != want) {
        return Error(ErrorKind::Kernel,
                     fmt::format("interface {} in {} has address {}, expected {}", r.ifname,
                                 r.netns, have.empty() ? "(none)" : have, want));
    }
    if (want_route) {
        std::ifstream routes("/proc/self/net/route");
        std::string line;
        bool found = false;
        while (std::getline(routes, line)) {
            char ifn[64];
            unsigned dst = 1;
            if (std::sscanf(line.c_str(), "%63s %x", ifn, &dst) == 2 && dst == 0 && r.ifname == ifn)
                found = true;
        }
        if (!found) {
            return Error(ErrorKind::Kernel,
                         fmt::format("no default route via {} in {}", r.ifname, r.netns));
        }
    }
    return cnetd::ok();
}

void print(const json& j) {
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

int cmd_version(const cni::CniRequest& r) {
    if (!cni::version_supported(r.conf.cni_version)) {
        fail(cni::kIncompatibleVersion,
             fmt::format("cniVersion \"{}\" is not supported", r.conf.cni_version));
    }
    print(cni::version_reply(r.conf.cni_version));
    return 0;
}

int cmd_add(const Daemon& d, const cni::CniRequest& r) {
    const std::string& v = r.conf.cni_version;
    auto range = cni::ip_range_of(r.conf);
    if (!range) fail(range.error());
    std::optional<cni::CniResult> prev;
    if (r.prev_result) {
        auto p = cni::decode_result(*r.prev_result, v);
        if (!p) fail(p.error());
        prev = *p;
    }
    bool lost = false;
    auto a = d.call("POST", "/v1/cni/add", api::to_json(add_request(r, *range)), &lost);
    if (!a) {
        if (lost) {
            // The answer was lost mid-exchange: the daemon may have made the attachment. Undo it
            // so nothing half-done is left, then let the runtime retry. At most 1 s more: a daemon
            // that did not answer the ADD is stopped or stuck, and still gets the DEL after the ADD
            // once it runs again.
            (void)d.call("POST", "/v1/cni/del", api::to_json(key_request(r, false)), nullptr,
                         std::min(r.conf.timeout_ms, 1000u));
        }
        fail(a.error());
    }
    cni::CniResult res = our_result(r, api::read<api::CniAttachment>(*a));
    if (prev) res = cni::append_result(*prev, res);
    print(cni::encode_result(res, v));
    return 0;
}

int cmd_del(const Daemon& d, const cni::CniRequest& r) {
    auto a = d.call("POST", "/v1/cni/del", api::to_json(key_request(r, false)));
    if (!a) fail(a.error());
    return 0;
}

int cmd_check(const Daemon& d, const cni::CniRequest& r) {
    if (!r.prev_result) fail(cni::kInvalidConfig, "prevResult: required for CHECK");
    auto prev = cni::decode_result(*r.prev_result, r.conf.cni_version);
    if (!prev) fail(prev.error());
    auto a = d.call("POST", "/v1/cni/check", api::to_json(key_request(r, true)));
    if (!a) fail(a.error());
    const auto att = api::read<api::CniAttachment>(*a);
    const std::string& addr = att.endpoint.ipv4_address;
    // The cached result must describe what the daemon has.
    bool listed = false;
    for (const auto& ip : prev->ips) listed = listed || ip.address == addr;
    if (!listed) {
        fail(cni::kInvalidConfig,
             fmt::format("prevResult does not list {}, the address of {} in {}", addr, r.ifname,
                         r.netns));
    }
    if (auto c = check_in_netns(r, addr, !att.internal); !c)
        fail(cni::kDaemonFailure, c.error().message());
    return 0;
}

int cmd_gc(const Daemon& d, const cni::CniRequest& r) {
    api::CniGcRequest req{r.conf.name, {}};
    for (const auto& at : r.valid_attachments) req.valid.emplace_back(at.container_id, at.ifname);
    auto a = d.call("POST", "/v1/cni/gc", api::to_json(req));
    if (!a) fail(a.error());
    return 0;
}

int cmd_status(const Daemon& d, const cni::CniRequest& r) {
    auto a = d.call("GET", "/v1/cni/status/" + api::encode_segment(r.conf.name), nullptr);
    if (!a) {
        if (a.error().kind() == ErrorKind::Unavailable)
            fail(cni::kPluginNotAvailable, a.error().message());
        fail(a.error());
    }
    const auto status = api::read<api::CniStatus>(*a);
    if (!status.problems.empty()) {
        std::string msg;
        for (const auto& p : status.problems) msg += (msg.empty() ? "" : "; ") + p;
        fail(cni::kLimitedConnectivity, msg);
    }
    return 0;
}

std::map<std::string, std::string> environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return env;
}

// Errors are written in the config's version when it can be read at all (the CNI config's own
// key, not the control API's).
void detect_version(const std::string& config) {
    if (json j = json::parse(config, nullptr, false);
        j.is_object() && j.contains("cniVersion") && j["cniVersion"].is_string() &&
        cni::version_supported(j["cniVersion"].get<std::string>()))
        g_version = j["cniVersion"].get<std::string>();
}

}  // namespace

int main() {
    std::map<std::string, std::string> env = environment();
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    detect_version(in);
    auto parsed = cni::parse_cni(env, in);
    if (!parsed) fail(parsed.error());
    const cni::CniRequest& r = *parsed;
    if (r.command == cni::Command::Version) return cmd_version(r);
    std::string socket = r.conf.socket;
    if (socket.empty())
        socket = env.count(api::kSocketEnv) ? env[api::kSocketEnv] : api::kDefaultSocket;
    const Daemon d{api::Client(socket), r.conf.timeout_ms};
    switch (r.command) {
        case cni::Command::Add:
            return cmd_add(d, r);
        case cni::Command::Del:
            return cmd_del(d, r);
        case cni::Command::Check:
            return cmd_check(d, r);
        case cni::Command::Gc:
            return cmd_gc(d, r);
        case cni::Command::Status:
            return cmd_status(d, r);
        case cni::Command::Version:
            break;
    }
    return 0;
}
