// A simulated overlay cluster on one machine (issue 18, docs/overlay.md), inside the test's own
// private namespaces:
//
//   wan netns  eth0 198.51.100.2/24 (default via .1)
//        |
//   the test's netns: wan0 198.51.100.1/24, bridge ul0 192.0.2.1/24 (the underlay "switch" and
//        |            the hosts' router; forwarding on, no NAT: the wan sees the hosts' addresses)
//   host i (i = 1..N): its own network AND mount namespace, held by a sleeping child process:
//        eth0 192.0.2.(10+i)/24 (default via 192.0.2.1), lo up, a tmpfs on /run (etcd's data),
//        /sys remounted for its netns; optionally an etcd member on 192.0.2.(10+i):2379/2380;
//        one cnetd (a Daemon: socket, state and netns dir in its own temp dir) started through
//        `nsenter -t <holder> --net --mount`.
//
// Container namespaces are bind mounts inside the host's mount namespace: the test reaches them
// through /proc/<holder>/root/<netns dir>/<name> (Host::netns), which every harness helper taking
// a netns path (EchoServer, tcp_echo, Stream, ip_json...) accepts as is.
//
// Contract: gtest-free (like harness.hpp); every failure comes back as a message. Create a
// Cluster on the test's main thread after it unshared its network namespace; the destructor
// kills everything it started (by PID) and deletes the wan namespace.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.hpp"

namespace cnetd::it {

inline constexpr const char* kUnderlayGw = "192.0.2.1";  // ul0 in the test's netns
inline constexpr const char* kClusterWanNs = "cnetd-it-cwan";
inline constexpr const char* kClusterWanIp = "198.51.100.2";

// 192.0.2.(10+i): host i's underlay (advertise) address.
std::string host_address(int i);

// Polls `pred` every `period` until it returns true or `timeout` passed; returns its last value.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds period = std::chrono::milliseconds(100));

class Host {
public:
    // Forks the holder (own net + mount namespace, tmpfs /run, sysfs, lo up). ok() says whether
    // it worked.
    explicit Host(int index);
    ~Host();  // kills cnetd, etcd and the holder
    Host(const Host&) = delete;
    Host& operator=(const Host&) = delete;

    bool ok() const { return holder_ > 0; }
    int index() const { return index_; }
    std::string name() const { return "h" + std::to_string(index_); }
    std::string address() const { return host_address(index_); }
    pid_t holder() const { return holder_; }
    // The host's network namespace as a path for setns-based helpers.
    std::string netns_path() const;
    // Container `name`'s namespace file as seen from the test (through the host's mount ns).
    std::string netns(const std::string& container) const;
    // {"nsenter", "-t", holder, "--net", "--mount", "--"}: prefix of commands run on the host.
    std::vector<std::string> enter() const;
    // Runs argv on the host (its net + mount namespaces).
    CmdResult sh(const std::vector<std::string>& argv,
                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
    // Runs argv inside container `name`'s network namespace (on this host).
    CmdResult in_container(const std::string& name, const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

    // cnetd of this host (config: d.write_config before start_cnetd).
    Daemon d;
    bool start_cnetd(std::string* log);
    void kill_cnetd(int sig) { d.kill(sig); }
    CmdResult netctl(const std::vector<std::string>& args) const { return d.netctl(args); }
    nlohmann::json netctl_json(const std::vector<std::string>& args) const {
        return d.netctl_json(args);
    }

    // Starts etcd member "hN" on this host's address (`initial_cluster` as etcd's
    // --initial-cluster; a restart reuses the data in the host's /run). Does not wait: a member
    // of a 3-member cluster answers only once a quorum runs.
    bool start_etcd(const std::string& initial_cluster);
    // Waits (20 s) until the member answers /health; else false with its log in `err`.
    bool wait_etcd(std::string* err);
    void kill_etcd(int sig = 9);
    pid_t etcd_pid() const { return etcd_pid_; }
    std::string etcd_endpoint() const { return "http://" + address() + ":2379"; }
    std::string etcd_log() const;

private:
    int index_;
    pid_t holder_ = -1;
    pid_t etcd_pid_ = -1;
};

struct ClusterOptions {
    int hosts = 3;
    int etcd_members = 3;        // on hosts 1..etcd_members (0: none)
    bool cluster_config = true;  // false: cnetd without `cluster:` (the harness's own checks)
    unsigned lease_ttl = 10;     // cnetd's minimum; short for the TTL checks
    unsigned lease_renew_margin = 5;
    std::string extra_config;  // more top-level YAML for every host
};

class Cluster {
public:
    explicit Cluster(ClusterOptions opt);
    ~Cluster();
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    // Underlay, wan, hosts, etcd members (healthy), then cnetd on every host (start_cnetd:
    // false leaves cnetd to the test). "" on success, else what failed.
    std::string up(bool start_cnetd = true);
    // Builds the namespaces only (underlay, wan, hosts); "" on success.
    std::string build_network();
    // Starts the etcd members; "" when every member answers and the cluster is healthy.
    std::string start_etcd();
    Host& host(int i) { return *hosts_.at(static_cast<size_t>(i - 1)); }
    int size() const { return static_cast<int>(hosts_.size()); }
    const ClusterOptions& options() const { return opt_; }

    // The config of host i: `cluster:` naming every member (when options().cluster_config).
    std::string config_of(int i) const;
    std::vector<std::string> etcd_endpoints() const;
    // etcdctl (API v3) from the test's netns against the members (or `endpoints`).
    CmdResult etcdctl(const std::vector<std::string>& args,
                      const std::vector<std::string>& endpoints = {}) const;
    // Restarts member i with its data (after kill_etcd).
    std::string restart_etcd(int i);
    // `ip -j route show <dst>` on host i (the route to a peer's block), empty array if none.
    nlohmann::json route_on(int i, const std::string& dst) const;
    std::string wan_path() const { return "/run/netns/" + std::string(kClusterWanNs); }

private:
    std::string initial_cluster() const;

    ClusterOptions opt_;
    std::vector<std::unique_ptr<Host>> hosts_;
    bool wan_ = false;
};

}  // namespace cnetd::it
