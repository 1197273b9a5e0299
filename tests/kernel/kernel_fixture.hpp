// Shared fixture and helpers for the kernel tests: a fresh network namespace per test, commands
// (`ip -j`) whose JSON output is the ground truth, and namespace-bound sockets for traffic tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fd.hpp"
#include "core/kernel.hpp"
#include "platform/linux_kernel.hpp"

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
