#include "daemon/daemon.hpp"

#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <vector>

#include "api/client.hpp"
#include "base/log.hpp"
#include "config/config.hpp"
#include "config/reload.hpp"
#include "daemon/cluster_agent.hpp"
#include "daemon/dns_server.hpp"
#include "daemon/engine_backend.hpp"
#include "daemon/events.hpp"
#include "daemon/events_diff.hpp"
#include "daemon/firewall_monitor.hpp"
#include "daemon/gc_watch.hpp"
#include "daemon/handlers.hpp"
#include "daemon/metrics.hpp"
#include "daemon/metrics_listener.hpp"
#include "daemon/relay.hpp"
#include "daemon/server.hpp"
#include "daemon/systemd.hpp"
#include "daemon/worker.hpp"
#include "store/lock.hpp"

#ifndef CNETD_VERSION
#define CNETD_VERSION "unknown"
#endif

namespace cnetd::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/cnetd/cnetd.yaml";

void notify(const std::string& state) {
    systemd::notify(state);  // daemon/systemd.hpp: no-op outside systemd
}

Result<log::Level> parse_level(const std::string& s) {
    if (s == "debug") return log::Level::Debug;
    if (s == "info") return log::Level::Info;
    if (s == "warning" || s == "warn") return log::Level::Warning;
    if (s == "error") return log::Level::Error;
    return Error::invalid(
        fmt::format("log-level: \"{}\": expected debug, info, warning or error", s));
}

// mkdir -p, then the leaf gets exactly `mode` if we created it. An existing directory is kept as is
// (an admin may have chosen its mode).
Result<void> make_dirs(const std::string& path, mode_t mode) {
    if (path.empty()) return Error::invalid("empty directory path");
    for (size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        std::string part = path.substr(0, pos);
        bool leaf = pos == path.size();
        if (::mkdir(part.c_str(), leaf ? mode : 0755) == 0) {
            if (leaf && ::chmod(part.c_str(), mode) != 0)  // mkdir's mode is filtered by umask
                return Error::sys(errno, fmt::format("chmod {}", part));
            continue;
        }
        if (errno != EEXIST) return Error::sys(errno, fmt::format("create directory {}", part));
        struct stat st {};
        if (::stat(part.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return Error(ErrorKind::InvalidArgument,
                         fmt::format("create directory {}: exists and is not a directory", part),
                         ENOTDIR);
    }
    return ok();
}

// CLOCK_MONOTONIC in microseconds, for RELOADING=1 (sd_notify(3): MONOTONIC_USEC=).
uint64_t monotonic_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// The command line. Flags win over the config file, at start and at every reload.
struct Flags {
    std::string config_path = kDefaultConfig;
    bool config_given = false;  // --config named: a missing file is an error, not defaults
    std::string socket, state_dir, netns_dir, log_level;
    std::string resolv_dir = DnsOptions{}.resolv_dir;  // the per-endpoint resolv.conf files

    void apply_to(config::Config& c) const {
        if (!socket.empty()) c.socket = socket;
        if (!state_dir.empty()) c.state_dir = state_dir;
        if (!netns_dir.empty()) c.netns_dir = netns_dir;
        if (!log_level.empty()) c.log_level = log_level;
    }
};

// Parses argv into `f`; an exit code when the process must exit now (--help, --version: 0; a
// usage error: 2, printed).
std::optional<int> parse_flags(int argc, char** argv, Flags& f) {
    CLI::App app{"cnetd: container networking daemon (Docker's bridge networking)", "cnetd"};
    auto* config_opt =
        app.add_option("--config", f.config_path, "YAML config file")->capture_default_str();
    app.add_option("--socket", f.socket, "control socket path (overrides config `socket`)");
    app.add_option("--state-dir", f.state_dir, "state directory (overrides config `state-dir`)");
    app.add_option("--netns-dir", f.netns_dir,
                   "network namespace directory (overrides config `netns-dir`)");
    app.add_option("--log-level", f.log_level, "debug, info, warning or error (overrides config)");
    app.add_option("--resolv-dir", f.resolv_dir,
                   "directory of the resolv.conf files written for containers (docs/dns.md)")
        ->capture_default_str();
    app.set_version_flag("--version", std::string("cnetd ") + CNETD_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "cnetd: %s\n", e.what());
        return 2;
    }
    f.config_given = config_opt->count() > 0;
    return std::nullopt;
}

struct LoadedConfig {
    config::Config cfg;
    log::Level level;
};

// The config file (a missing default file means defaults), the flags over it, its log level.
// Its warnings are left to the caller (start-up logs them at the new level, a reload before).
Result<LoadedConfig> read_config(const Flags& f) {
    auto loaded = config::load(f.config_path, f.config_given);
    if (!loaded) return loaded.error();
    LoadedConfig out{std::move(loaded).value(), log::Level::Info};
    f.apply_to(out.cfg);
    auto level = parse_level(out.cfg.log_level);
    if (!level) return level.error();
    out.level = *level;
    return out;
}

// What start-up holds until the process exits.
struct Host {
    store::InstanceLock lock;
    int activated_fd = -1;  // the socket systemd passed (socket activation), -1 if none
};

// Every published host port is held by a socket (so no other process can take it): allow as many
// descriptors as the hard limit permits (systemd's LimitNOFILE sets that).
void raise_fd_limit() {
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log::warn("raise RLIMIT_NOFILE to {}: {}", rl.rlim_max, std::strerror(errno));
        }
    }
}

// Checked before the engine touches the kernel (Server::listen checks again, race-free enough for
// a second instance started by hand): two daemons must never drive the same bridges. (Not when
// socket-activated: systemd holds the socket, and our own ping would wait forever.) The ping has a
// deadline: a listener that accepts but does not answer in 5 s (a stopped cnetd, ETIMEDOUT) or
// whose queue stays full (EAGAIN) is live too; it must neither hang this start nor be taken over.
Result<void> check_no_other_daemon(const std::string& socket) {
    auto ping = api::Client(socket, std::chrono::seconds(5)).request("GET", "/v1/ping");
    if (ping.ok() || ping.error().error_number() == ETIMEDOUT ||
        ping.error().error_number() == EAGAIN) {
        return Error::conflict(
            fmt::format("another cnetd is already running on {}{}", socket,
                        ping.ok() ? "" : fmt::format(" ({})", ping.error().message())));
    }
    return ok();
}

// Locks, socket activation, descriptor limit, directories and the live-daemon check: everything
// before the kernel is touched. `cfg.socket` becomes the activated socket's path, if any.
Result<Host> prepare_host(config::Config& cfg) {
    // The instance locks (store/lock.hpp), first of all: before any state is read, the kernel is
    // touched or the control socket is pinged or bound, so a second daemon on this state dir or in
    // this network namespace exits here having changed nothing. Held until the process exits.
    if (auto r = make_dirs(cfg.state_dir, 0700); !r) return r.error();
    auto lock = store::InstanceLock::acquire(cfg.state_dir);
    if (!lock) return lock.error();
    // Socket activation (etc/systemd/cnetd.socket): serve on the socket systemd holds.
    auto activated = systemd::take_listen_socket();
    if (!activated) return activated.error();
    if (activated->fd >= 0 && !activated->path.empty()) cfg.socket = activated->path;
    notify("STATUS=starting: loading state and reconciling with the kernel");
    raise_fd_limit();
    for (auto [dir, mode] :
         {std::pair{cfg.state_dir, mode_t{0700}}, std::pair{cfg.netns_dir, mode_t{0755}},
          std::pair{socket_dir(cfg.socket), mode_t{0755}}}) {
        if (auto r = make_dirs(dir, mode); !r) return r.error();
    }
    if (activated->fd < 0) {
        if (auto r = check_no_other_daemon(cfg.socket); !r) return r.error();
    }
    return Host{std::move(lock).value(), activated->fd};
}

// The reload's engine step, on the worker: the new default network, options and ip-forward.
// Returns the STATUS= text for systemd and whether the engine took it.
std::pair<std::string, bool> reconfigure(Backend& b,
                                         const std::optional<core::DefaultNetworkSpec>& spec,
                                         const core::EngineOptions& live, bool forward) {
    if (auto r = b.reconfigure(spec, live, forward); !r.ok()) {
        log::error("reload: {}", r.error().message());
        return {"reload failed: " + r.error().message(), false};
    }
    // The reload's summary is logged when the file is read; this line says it took effect.
    log::info("reload: live changes in effect");
    return {"ready: reloaded", true};
}

// The reload's event (docs/observability.md, "Events"): "reload" when it took effect, "fail"
// with the error when the file or the engine refused it.
void publish_reload(EventLog& events, const std::string& path, const std::string& error,
                    const std::vector<std::string>& pending_restart = {}) {
    Event e;
    e.type = "reload";
    e.action = error.empty() ? "reload" : "fail";
    e.actor_id = path;
    e.attributes["config"] = path;
    if (!error.empty()) e.attributes["error"] = error;
    std::string pending;
    for (const auto& k : pending_restart) pending += (pending.empty() ? "" : ", ") + k;
    if (!pending.empty()) e.attributes["pending-restart"] = pending;
    events.publish(std::move(e));
}

// The netns GC's collection with one "gc collect" event per endpoint removed; their port
// unpublish and disconnect events follow from the snapshot diff of the same job.
void collect_with_events(EventLog& events, Backend& b) {
    for (const std::string& removed : collect_dead_endpoints(b)) {
        const auto slash = removed.find('/');
        Event e;
        e.type = "gc";
        e.action = "collect";
        e.actor_id = removed.substr(slash == std::string::npos ? 0 : slash + 1);
        e.attributes = {{"container", e.actor_id}, {"network", removed.substr(0, slash)}};
        events.publish(std::move(e));
    }
}

// The running daemon: the parts in the order they start (and stop, reversed: the io_context last,
// because the watches, relay and server live on it; the worker after the watches that post to it).
class Daemon {
public:
    Daemon(const Flags& flags, config::Config cfg, int activated_fd)
        : flags_(flags),
          cfg_(std::move(cfg)),
          activated_fd_(activated_fd),
          gc_watch_(io_, worker_, cfg_.netns_dir, std::chrono::seconds(30),
                    std::chrono::milliseconds(100),  // GcWatch's defaults
                    [this](Backend& b) { collect_with_events(events_, b); }) {
        // GC'd endpoints and reloads are counted from the event log (daemon/metrics.hpp), tapped
        // before anything can publish.
        tap_events(events_, metrics_.metrics());
    }

    // The kernel worker, the firewall monitor, the netns GC watch, the relay and the server.
    Result<void> start();
    // Serves until SIGTERM/SIGINT; the process exit code.
    int serve();

private:
    Result<void> start_backend();
    void start_dns();
    void start_cluster();
    Result<void> start_metrics();
    ServerOptions server_options() const;
    void stop_backend();
    void shutdown(int sig);
    void wait_drained(std::chrono::steady_clock::time_point deadline);
    void arm_reload();
    void reload();
    void apply_reload(const config::Config& applied, std::vector<std::string> pending);
    void notify_ready();

    const Flags flags_;
    config::Config cfg_;  // the running config (io thread)
    const int activated_fd_;
    boost::asio::io_context io_{1};
    // Before the worker and the watches that publish to it (destroyed after them).
    EventLog events_;
    SnapshotEvents snapshot_events_{events_};  // worker thread only (the snapshot hook)
    // Before the worker (whose jobs time themselves into it) and everything that reports to it:
    // destroyed last. Made first, so the start-up's journal fsyncs count too.
    DaemonMetrics metrics_{worker_};
    Worker worker_;
    FirewallMonitor fw_monitor_{io_, worker_};
    GcWatch gc_watch_;
    std::optional<Relay> relay_;
    // Before the handlers (which hold a pointer to it): destroyed after them.
    std::optional<DnsServer> dns_;
    // `cluster:` only (daemon/cluster_agent.hpp): after the DNS server it feeds, before the
    // handlers that call it.
    std::optional<ClusterAgent> agent_;
    std::optional<Handlers> handlers_;
    std::optional<Server> server_;
    std::optional<MetricsListener> metrics_listener_;  // config `metrics-address` only
    boost::asio::signal_set signals_{io_, SIGTERM, SIGINT};
    boost::asio::signal_set hup_{io_, SIGHUP};
    boost::asio::steady_timer drain_timer_{io_};
};

Result<void> Daemon::start_backend() {
    const config::Config& cfg = cfg_;
    if (auto r = worker_.start([&cfg] { return create_engine_backend(cfg); }); !r) return r;
    // Drift repair and coexistence warnings (daemon/firewall_monitor.hpp).
    if (auto r = fw_monitor_.start(); !r) return r;
    // Endpoints whose namespace dies are detached promptly (daemon/gc_watch.hpp).
    return gc_watch_.start();
}

ServerOptions Daemon::server_options() const {
    ServerOptions o;  // who may use the socket, and its limits (docs/security.md)
    o.group = cfg_.group;
    o.read_group = cfg_.read_group;
    o.max_connections = cfg_.max_connections;
    o.max_connections_per_uid = cfg_.max_connections_per_uid;
    o.reserved_write_connections = cfg_.reserved_write_connections;
    return o;
}

// The embedded resolver (daemon/dns_server.hpp) on its own thread, synced as the worker's snapshot
// hook: after every mutation's publication and before its replies, so a name answers the moment
// connect returns. A first sync (an empty job) serves the namespaces restored at start-up. A
// config reload (SIGHUP) never touches it: no query is lost across one.
void Daemon::start_dns() {
    DnsOptions opts;
    opts.resolv_dir = flags_.resolv_dir;
    dns_.emplace(std::move(opts));
    start_cluster();  // it feeds the DNS server, and the snapshot hook wakes it
    DnsServer* dns = &*dns_;
    ClusterAgent* agent = agent_ ? &*agent_ : nullptr;
    worker_.set_snapshot_hook([this, dns, agent](const Snapshot& snap, Backend& b) {
        dns->sync(snap.networks, b.dns_sandboxes());
        if (agent) agent->notify();  // endpoint publication (only wakes its thread)
        // Network/port/firewall events (daemon/events_diff.hpp). The worker alone publishes, so
        // its current snapshot is `snap` (held by pointer: no copy).
        snapshot_events_.on_publish(worker_.snapshot());
    });
    worker_.post([](Backend&) {});
}

// The cluster agent (daemon/cluster_agent.hpp) on its own threads, once the worker runs: it never
// waits for etcd, so a node starts with etcd down (its overlay networks come from its state).
void Daemon::start_cluster() {
    if (!cfg_.cluster) return;
    agent_.emplace(*cfg_.cluster, cfg_.state_dir, worker_, &*dns_);
    agent_->start();
}

Result<void> Daemon::start() {
    if (auto r = start_backend(); !r) return r;
    start_dns();
    // Ports published on [::1] are relayed in userland, synced after every job (daemon/relay.hpp).
    relay_.emplace(io_, worker_);
    // Kernel reads are shared while one is queued or running, never reused after it (age 0): the
    // kernel can change behind the daemon's back (a bridge deleted by hand), and CNI STATUS must
    // see that at once. Mutations still go first (worker.hpp), which is what keeps them fast.
    handlers_.emplace(
        worker_,
        DaemonInfo{CNETD_VERSION, cfg_.netns_dir, cfg_.state_dir, cfg_.socket, now_rfc3339()},
        std::chrono::milliseconds(0));
    handlers_->set_dns(&*dns_);                    // inspect/connect resolv.conf facts, GET /v1/dns
    if (agent_) handlers_->set_cluster(&*agent_);  // overlay create/rm, GET /v1/nodes, info
    handlers_->set_events(&events_);               // GET /v1/events, netns events
    handlers_->set_metrics(&metrics_);             // request counts, durations, GET /metrics
    server_.emplace(io_, *handlers_, server_options());
    auto listening = activated_fd_ >= 0 ? server_->adopt(activated_fd_, cfg_.socket)
                                        : server_->listen(cfg_.socket);
    if (listening) listening = start_metrics();
    if (!listening) stop_backend();
    return listening;
}

// What the metrics read at scrape time (daemon/metrics.hpp), and the optional TCP listener.
Result<void> Daemon::start_metrics() {
    metrics_.set_server(&*server_);
    metrics_.set_dns(&*dns_);
    if (agent_) metrics_.set_cluster(&*agent_);
    if (cfg_.metrics_address.empty()) return ok();
    metrics_listener_.emplace(io_, [this] { return metrics_.scrape(); });
    return metrics_listener_->listen(cfg_.metrics_address);
}

// Before the worker: the watches post jobs to it (and the monitor watches a dup of its socket).
void Daemon::stop_backend() {
    if (agent_) agent_->stop();  // its jobs go to the worker
    fw_monitor_.stop();
    gc_watch_.stop();
    worker_.stop();  // the job in flight finishes; queued ones are answered 503 (not run)
    worker_.set_snapshot_hook({});
}

void Daemon::shutdown(int sig) {
    log::info("received {}, shutting down (networks stay in place)",
              sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notify("STOPPING=1\nSTATUS=stopping: finishing the operation in flight");
    server_->drain();  // no new connections; idle ones closed, busy ones after their answer
    events_.close();   // event streams end (the server already ends them: this is for late ones)
    stop_backend();
    hup_.cancel();
    // The answers were posted to this io_context by the worker: let them be written.
    wait_drained(std::chrono::steady_clock::now() + std::chrono::seconds(5));
}

void Daemon::wait_drained(std::chrono::steady_clock::time_point deadline) {
    // Every answer written (sessions close after it) or the deadline: then stop.
    const size_t active = server_->stats().active;
    if (active == 0 || std::chrono::steady_clock::now() >= deadline) {
        if (active != 0)
            log::warn("shutdown: {} connection(s) still open after 5 s, closing them", active);
        io_.stop();
        return;
    }
    drain_timer_.expires_after(std::chrono::milliseconds(10));
    drain_timer_.async_wait([this, deadline](const boost::system::error_code& ec) {
        if (!ec) wait_drained(deadline);
    });
}

// SIGHUP (systemctl reload): re-read the config; apply what can change live in one step on the
// worker, report the rest as pending a restart (log and GET /v1/info). A config that does not
// parse changes nothing. systemd hears RELOADING=1 first and READY=1 once the live part is applied
// (or refused), so `systemctl reload` returns when the reload is done.
void Daemon::arm_reload() {
    hup_.async_wait([this](const boost::system::error_code& ec, int) {
        if (ec) return;
        arm_reload();
        reload();
    });
}

void Daemon::reload() {
    notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading {}", monotonic_usec(),
                       flags_.config_path));
    auto next = read_config(flags_);
    if (!next) {
        log::error("reload: {}; keeping the running config", next.error().message());
        publish_reload(events_, flags_.config_path, next.error().message());
        notify("READY=1\nSTATUS=reload failed: " + next.error().message());
        return;
    }
    for (const auto& w : next->cfg.warnings) log::warn("config {}: {}", flags_.config_path, w);
    const config::ReloadPlan plan = config::diff(cfg_, next->cfg);
    const config::Config applied = config::apply_live(cfg_, next->cfg);
    std::vector<std::string> pending;
    for (const auto& k : plan.restart) pending.push_back(k.str());
    handlers_->set_reload_status(pending, now_rfc3339());
    log::info("reload: {}", plan.summary());
    if (plan.live.empty()) {
        publish_reload(events_, flags_.config_path, "", pending);
        notify("READY=1\nSTATUS=ready: reloaded (nothing to apply live)");
        return;
    }
    log::set_level(next->level);
    apply_reload(applied, pending);
}

// The running config becomes `applied` only once the engine took it (back on the io thread): a
// refused reload leaves it as it was, so the same file can be retried.
void Daemon::apply_reload(const config::Config& applied, std::vector<std::string> pending) {
    const auto spec = default_spec_of(applied);
    const core::EngineOptions live = engine_options_of(applied);
    const bool forward = applied.ip_forward;
    const bool queued = worker_.post([this, spec, live, forward, applied, pending](Backend& b) {
        auto [status, took] = reconfigure(b, spec, live, forward);
        publish_reload(events_, flags_.config_path, took ? "" : status, pending);
        if (took) boost::asio::post(io_, [this, applied] { cfg_ = applied; });
        notify("READY=1\nSTATUS=" + status);
    });
    if (!queued) notify("READY=1\nSTATUS=stopping: reload not applied");
}

// READY=1 from inside the loop, so it is sent only once requests are being served.
void Daemon::notify_ready() {
    boost::asio::post(io_, [this] {
        size_t networks = 0, endpoints = 0;
        if (auto snap = worker_.snapshot()) {
            networks = snap->networks.size();
            for (const auto& n : snap->networks) endpoints += n.endpoints.size();
        }
        notify(
            fmt::format("READY=1\nSTATUS=ready: {} networks, {} endpoints", networks, endpoints));
    });
}

int Daemon::serve() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (!ec) shutdown(sig);
    });
    arm_reload();
    log::info("cnetd {} listening on {}{}", CNETD_VERSION, cfg_.socket,
              activated_fd_ >= 0 ? " (socket-activated)" : "");
    notify_ready();
    io_.run();
    server_->close();
    if (metrics_listener_) metrics_listener_->close();
    metrics_.set_dns(nullptr);
    metrics_.set_cluster(nullptr);
    dns_.reset();  // answered until the control socket closed; its thread is joined here
    log::info("cnetd stopped");
    return 0;
}

}  // namespace

int run(int argc, char** argv) {
    Flags flags;
    if (auto exit_code = parse_flags(argc, argv, flags)) return *exit_code;
    if (std::getenv("JOURNAL_STREAM")) log::set_journal_prefix(true);
    auto loaded = read_config(flags);
    if (!loaded) {
        std::fprintf(stderr, "cnetd: %s\n", loaded.error().message().c_str());
        return 1;
    }
    log::set_level(loaded->level);
    for (const auto& w : loaded->cfg.warnings) log::warn("config {}: {}", flags.config_path, w);
    auto host = prepare_host(loaded->cfg);
    if (!host) {
        log::error("start-up failed: {}", host.error().message());
        return 1;
    }
    Daemon daemon(flags, std::move(loaded->cfg), host->activated_fd);
    if (auto r = daemon.start(); !r) {
        log::error("start-up failed: {}", r.error().message());
        return 1;
    }
    return daemon.serve();
}

}  // namespace cnetd::daemon
