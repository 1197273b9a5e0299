// The fixture most integration tests share: one daemon (paths in a temp dir), a fresh network
// namespace per test, "outside" namespaces behind veths, and netctl helpers that assert as they go.
//
// Header-only on purpose: it is gtest code, and harness.{hpp,cpp} stays free of gtest.
// Threading: the test's main thread only (SetUp unshares that thread's network namespace).
#pragma once

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace cnetd::it {

// The outside world most tests use: namespace kWanNs behind the host's wan0, host kHostWan,
// outside kWanIp (TEST-NET-2; with IPv6 also 2001:db8:1::1 and ::2). See DaemonTest::add_wan().
inline constexpr const char* kWanNs = "cnetd-it-wan";
inline constexpr const char* kHostWan = "198.51.100.1";
inline constexpr const char* kWanIp = "198.51.100.2";

class DaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        sh({"ip", "link", "set", "lo", "up"});
    }
    // Deletes the outside namespaces the test added (a subclass calls it last from its own
    // TearDown, after stopping servers that run inside them).
    void TearDown() override {
        for (const auto& name : outsides_) run({"ip", "netns", "del", name});
        outsides_.clear();
    }

    // An "outside" namespace, /run/netns/`name` (so `ip netns` and nsenter find it), behind the
    // veth `host_if` (host side) / eth0 (inside): host `net24`.1/24, outside `net24`.2/24, e.g.
    // net24 = "198.51.100". With `net6` ("2001:db8:1::") also `net6`1/64 and `net6`2/64 (no DAD).
    // `default_route`: the outside routes everything via the host (needed to reach containers
    // and published ports on other addresses of the host).
    // TearDown() deletes it.
    void add_outside(const std::string& name, const std::string& host_if, const std::string& net24,
                     const std::string& net6 = "", bool default_route = true) {
        sh({"ip", "netns", "add", name});
        outsides_.push_back(name);
        sh({"ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name});
        sh({"ip", "addr", "add", net24 + ".1/24", "dev", host_if});
        if (!net6.empty()) sh({"ip", "-6", "addr", "add", net6 + "1/64", "dev", host_if, "nodad"});
        sh({"ip", "link", "set", host_if, "up"});
        const std::string path = netns_path(name);
        in_ns(path, {"ip", "addr", "add", net24 + ".2/24", "dev", "eth0"});
        if (!net6.empty())
            in_ns(path, {"ip", "-6", "addr", "add", net6 + "2/64", "dev", "eth0", "nodad"});
        in_ns(path, {"ip", "link", "set", "eth0", "up"});
        in_ns(path, {"ip", "link", "set", "lo", "up"});
        if (default_route) {
            in_ns(path, {"ip", "route", "add", "default", "via", net24 + ".1"});
            if (!net6.empty())
                in_ns(path, {"ip", "-6", "route", "add", "default", "via", net6 + "1"});
        }
    }
    static std::string netns_path(const std::string& name) { return "/run/netns/" + name; }
    // The wan: add_outside(kWanNs, "wan0", "198.51.100", ipv6 ? "2001:db8:1::" : "", ...).
    void add_wan(bool ipv6 = false, bool default_route = true) {
        add_outside(kWanNs, "wan0", "198.51.100", ipv6 ? "2001:db8:1::" : "", default_route);
    }
    static std::string wan_path() { return netns_path(kWanNs); }
    // sh() inside the wan.
    static void wan(std::vector<std::string> argv) { in_ns(wan_path(), std::move(argv)); }

    // Runs argv; the test fails (here) unless it exits 0.
    static void sh(const std::vector<std::string>& argv) {
        CmdResult r = run(argv);
        ASSERT_EQ(r.status, 0) << join(argv) << ": " << r.err;
    }
    // sh() inside the network namespace file `path`.
    static void in_ns(const std::string& path, std::vector<std::string> argv) {
        argv.insert(argv.begin(), {"nsenter", "--net=" + path});
        sh(argv);
    }
    static std::string join(const std::vector<std::string>& v) {
        std::string out;
        for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
        return out;
    }

    // The daemon's netns file of container `name`.
    std::string ns(const std::string& name) const { return d.netns_dir() + "/" + name; }
    // Starts the daemon (with `config` as its YAML when given); the test stops here on failure.
    void start(const std::string& config = "") {
        if (!config.empty()) d.write_config(config);
        std::string log;
        ASSERT_TRUE(d.start(&log)) << log;
    }
    // netctl args... expected to succeed (stdout) or to fail (stderr).
    std::string ok(const std::vector<std::string>& args) {
        CmdResult r = d.netctl(args);
        EXPECT_EQ(r.status, 0) << "netctl " << join(args) << ": " << r.err
                               << "\n--- cnetd log ---\n"
                               << d.log();
        return r.out;
    }
    std::string fails(const std::vector<std::string>& args) {
        CmdResult r = d.netctl(args);
        EXPECT_NE(r.status, 0) << "netctl " << join(args) << " succeeded: " << r.out;
        return r.err;
    }
    // Container `name`'s namespace dies behind cnetd's back, as `ip netns del` does it: its file
    // is unmounted and unlinked (the GC watch and start-up reconciliation see it gone).
    void drop_netns(const std::string& name) {
        ASSERT_EQ(umount2(ns(name).c_str(), MNT_DETACH), 0) << name << ": " << strerror(errno);
        ASSERT_EQ(unlink(ns(name).c_str()), 0) << name << ": " << strerror(errno);
    }
    // netns create + network connect (with extra connect arguments such as -p ...).
    void container(const std::string& name, const std::string& network = "bridge",
                   std::vector<std::string> extra = {}) {
        ok({"netns", "create", name});
        std::vector<std::string> args{"network", "connect", network, name};
        args.insert(args.end(), extra.begin(), extra.end());
        ok(args);
    }

    Daemon d;

private:
    std::vector<std::string> outsides_;  // added by add_outside(), deleted by TearDown()
};

}  // namespace cnetd::it
