// Shared fixture and helpers for the kernel tests: a fresh network namespace per test, commands
// (`ip -j`) whose JSON output is the ground truth, and namespace-bound sockets for traffic tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fd.hpp"
#include "base/net.hpp"
#include "core/kernel.hpp"
#include "platform/linux_kernel.hpp"

struct nlattr;

namespace cnetd::ktest {

extern std::string g_netns_dir;  // tmpfs, also reachable as /run/netns

struct CmdResult {
    int status = -1;  // exit code, -1 if it did not exit normally
    std::string out;  // stdout
};
// Runs `cmd` through /bin/sh in the calling thread's namespaces.
CmdResult run(const std::string& cmd);
// Runs an `ip -j ...` command and parses its output; fails the test on a non-zero exit.
nlohmann::json ip_json(const std::string& args);

// Test literals: parsed, or the test aborts (value() of an error throws).
inline Ipv4Cidr cidr(const char* s) { return Ipv4Cidr::parse(s).value(); }
inline Mac mac(const char* s) { return Mac::parse(s).value(); }
// Whether this kernel has IPv6 (some machines boot with ipv6.disable=1).
bool ipv6_enabled();
// Whether `ip -j link` entry `l` lists flag `f` ("UP", "NOARP", ...).
bool has_flag(const nlohmann::json& l, const char* f);
// How many links namespace `ns` ("" = this one) has, by `ip -j link show`.
size_t link_count(const std::string& ns = "");
// A 6-byte MAC attribute as "aa:bb:..", "" when `a` is missing or not 6 bytes (message tests).
std::string mac_of(nlattr* a);

class KernelTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    std::string ns_path(const std::string& name) const { return g_netns_dir + "/" + name; }
    // create_netns + open_netns, asserting success.
    std::unique_ptr<core::Netns> make_ns(const std::string& name);

    std::unique_ptr<platform::LinuxKernel> kernel;
};

// KernelTest with the bridge br0 (192.0.2.1/24, MTU `mtu`) that veths are attached to.
class BridgeKernelTest : public KernelTest {
protected:
    explicit BridgeKernelTest(unsigned mtu = 1500) : mtu_(mtu) {}
    void SetUp() override;

private:
    unsigned mtu_;
};

// A TCP exchange: a listener created inside `server_ns` (fd, or -1 for the current namespace) on
// ip:port, a client created inside `client_ns`; connects, sends, receives, with bounded waits.
// With listen_any the listener binds 0.0.0.0 / [::] (so it can exist where `ip` is not configured).
// `ip` may be IPv4 or IPv6 text. Returns "" on success, else what failed.
std::string tcp_exchange(int client_ns, int server_ns, const std::string& ip, int port,
                         bool listen_any = false);

}  // namespace cnetd::ktest
