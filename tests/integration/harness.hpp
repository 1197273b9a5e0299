// Integration harness: runs the real cnetd binary and netctl inside the test's private namespaces.
//
// The test binary is started by meson under `unshare --net --mount --pid --fork --propagation
// private`; every test then unshares a fresh network namespace of its own (SetUp), so each test
// starts from an empty kernel: only `lo`. Paths of the daemon (socket, state, netns dir, config)
// live in a per-test temp dir. Kernel state is read back with `ip -j` and `nsenter`; traffic is
// real TCP between processes that setns() into the namespaces.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cnetd::it {

struct CmdResult {
    int status = -1;  // exit code, or 128+signal
    std::string out;
    std::string err;
};

// Runs argv (no shell), captures stdout and stderr, waits. Kills it after `timeout`.
CmdResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(20));
// `ip -j ...` (optionally inside a netns file via nsenter) parsed as JSON.
nlohmann::json ip_json(const std::vector<std::string>& args, const std::string& netns = "");

// A TCP listener in a namespace that echoes what it reads, in a forked child; stop() kills it.
class EchoServer {
public:
    EchoServer(const std::string& netns_path, const std::string& addr, int port);
    ~EchoServer();
    bool ready() const { return ready_; }

private:
    pid_t pid_ = -1;
    bool ready_ = false;
};

// Connects from `netns_path` ("" = the test's own namespace) to addr:port, sends a line and reads
// the echo back, all within `timeout`. Returns true when the echo came back intact.
bool tcp_echo(const std::string& netns_path, const std::string& addr, int port,
              std::chrono::milliseconds timeout = std::chrono::seconds(3));

// A "who are you" TCP server in a namespace, in a forked child: it answers every connection with
// the peer address it sees ("198.51.100.1\n") and closes it. Shows NAT at work. stop = destructor.
class WhoAmIServer {
public:
    WhoAmIServer(const std::string& netns_path, const std::string& addr, int port);
    ~WhoAmIServer();
    bool ready() const { return ready_; }

private:
    pid_t pid_ = -1;
    bool ready_ = false;
};

// Connects from `netns_path` ("" = the test's own namespace) to a WhoAmIServer and returns the
// address it reported, or "" when no answer came within `timeout` (connect and read together).
std::string tcp_whoami(const std::string& netns_path, const std::string& addr, int port,
                       std::chrono::milliseconds timeout = std::chrono::seconds(2));

// A long-lived TCP connection from a netns to an echo server, kept open by a forked child that
// echoes a numbered message every `period`. check() asks whether every round trip so far worked
// (and the connection was never reset).
class Stream {
public:
    Stream(const std::string& netns_path, const std::string& addr, int port);
    ~Stream();
    // Stops the child and returns {round trips completed, failures}.
    std::pair<int, int> finish();

private:
    pid_t pid_ = -1;
    int result_fd_ = -1;
};

// The daemon under test, with all its paths in a temp dir.
class Daemon {
public:
    Daemon();
    ~Daemon();  // SIGKILLs a still-running daemon and removes the temp dir (unmounting netns files)
    const std::string& dir() const { return dir_; }
    std::string socket() const { return dir_ + "/cnetd.sock"; }
    std::string netns_dir() const { return dir_ + "/netns"; }
    std::string state_dir() const { return dir_ + "/state"; }
    std::string config() const { return dir_ + "/cnetd.yaml"; }
    void write_config(const std::string& yaml);
    // Starts cnetd and waits until its socket answers; returns false (with the log) on failure.
    bool start(std::string* log = nullptr);
    // Starts cnetd expecting it to fail; returns its exit status and stderr.
    CmdResult start_failing();
    // start() runs cnetd through `prefix` (e.g. {"nsenter", "-t", pid, "--net", "--mount", "--"}:
    // a simulated host of tests/integration/cluster.hpp). The prefix must exec cnetd in place so
    // that pid() stays cnetd's.
    void set_exec_prefix(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }
    void kill(int sig);  // sends sig and waits for exit
    pid_t pid() const { return pid_; }
    std::string log() const;
    // netctl --socket <ours> args... (explicit: several daemons may live in one test)
    CmdResult netctl(const std::vector<std::string>& args) const;
    nlohmann::json netctl_json(const std::vector<std::string>& args) const;

private:
    std::string dir_;
    pid_t pid_ = -1;
    std::vector<std::string> prefix_;
};

// Everything of the kernel that a failed request must not change: links, addresses, routes,
// netns files. Compared as JSON text.
std::string kernel_snapshot(const Daemon& d);
// The endpoint called `name` in `netctl network inspect <network>` (its "Containers" entry), or
// null when there is none.
nlohmann::json inspect_endpoint(const Daemon& d, const std::string& network,
                                const std::string& name);
// "" when equal, else the first differing lines of two snapshots, for a readable failure.
std::string snapshot_diff(const std::string& before, const std::string& after);

// A server in a namespace that answers with a fixed tag, in a forked child: over TCP every
// connection gets "<tag>\n" and is closed (read it with tcp_whoami); over UDP every datagram is
// answered with "<tag>" (read it with udp_ask or UdpClient). Tells which container a published
// port led to. stop = destructor.
class TagServer {
public:
    enum class Proto { Tcp, Udp };
    TagServer(const std::string& netns_path, Proto proto, const std::string& addr, int port,
              const std::string& tag);
    ~TagServer();
    bool ready() const { return ready_; }

private:
    pid_t pid_ = -1;
    bool ready_ = false;
};

// Sends one UDP datagram from a fresh socket in `netns_path` ("" = the test's own namespace) to
// addr:port and returns the first answer, or "" when none came within `timeout`.
std::string udp_ask(const std::string& netns_path, const std::string& addr, int port,
                    std::chrono::milliseconds timeout = std::chrono::seconds(1));

// One UDP socket kept open in `netns_path` by a forked child, so that several datagrams share a
// source address and port (the same conntrack flow), as a real long-lived client would.
class UdpClient {
public:
    explicit UdpClient(const std::string& netns_path);
    ~UdpClient();
    bool ready() const { return pid_ > 0; }
    // Sends a datagram to addr:port from the kept socket; the answer, or "" after `timeout`.
    std::string ask(const std::string& addr, int port,
                    std::chrono::milliseconds timeout = std::chrono::seconds(1));
    int local_port() const { return local_port_; }

private:
    pid_t pid_ = -1;
    int cmd_fd_ = -1, res_fd_ = -1;
    int local_port_ = 0;
};

// Tries to bind addr:port (TCP when `tcp`, else UDP) in the test's own namespace and closes the
// socket again; returns 0 on success, else errno (EADDRINUSE when someone holds the port).
int try_bind(bool tcp, const std::string& addr, int port);

}  // namespace cnetd::it
