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

#include <functional>

#include "api/client.hpp"
#include "base/log.hpp"
#include "config/config.hpp"
#include "config/reload.hpp"
#include "daemon/engine_backend.hpp"
#include "daemon/firewall_monitor.hpp"
#include "daemon/gc_watch.hpp"
#include "daemon/handlers.hpp"
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

std::string parent_dir(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

int run(int argc, char** argv) {
    CLI::App app{"cnetd: container networking daemon (Docker's bridge networking)", "cnetd"};
    std::string config_path = kDefaultConfig;
    std::string socket, state_dir, netns_dir, log_level;
    auto* config_opt =
        app.add_option("--config", config_path, "YAML config file")->capture_default_str();
    app.add_option("--socket", socket, "control socket path (overrides config `socket`)");
    app.add_option("--state-dir", state_dir, "state directory (overrides config `state-dir`)");
    app.add_option("--netns-dir", netns_dir,
                   "network namespace directory (overrides config `netns-dir`)");
    app.add_option("--log-level", log_level, "debug, info, warning or error (overrides config)");
    app.set_version_flag("--version", std::string("cnetd ") + CNETD_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "cnetd: %s\n", e.what());
        return 2;
    }

    if (std::getenv("JOURNAL_STREAM")) log::set_journal_prefix(true);

    // A missing default config file means defaults; a missing file named with --config is an error.
    auto loaded = config::load(config_path, config_opt->count() > 0);
    if (!loaded) {
        std::fprintf(stderr, "cnetd: %s\n", loaded.error().message().c_str());
        return 1;
    }
    config::Config cfg = std::move(loaded).value();
    // Command-line flags win over the file, at start and at every reload.
    auto overrides = [&](config::Config& c) {
        if (!socket.empty()) c.socket = socket;
        if (!state_dir.empty()) c.state_dir = state_dir;
        if (!netns_dir.empty()) c.netns_dir = netns_dir;
        if (!log_level.empty()) c.log_level = log_level;
    };
    overrides(cfg);
    auto level = parse_level(cfg.log_level);
    if (!level) {
        std::fprintf(stderr, "cnetd: %s\n", level.error().message().c_str());
        return 1;
    }
    log::set_level(*level);
    for (const auto& w : cfg.warnings) log::warn("config {}: {}", config_path, w);

    // The instance locks (store/lock.hpp), first of all: before any state is read, the kernel is
    // touched or the control socket is pinged or bound, so a second daemon on this state dir or in
    // this network namespace exits here having changed nothing. Held until the process exits.
    if (auto r = make_dirs(cfg.state_dir, 0700); !r) {
        log::error("start-up failed: {}", r.error().message());
        return 1;
    }
    auto instance_lock = store::InstanceLock::acquire(cfg.state_dir);
    if (!instance_lock) {
        log::error("start-up failed: {}", instance_lock.error().message());
        return 1;
    }

    // Socket activation (etc/systemd/cnetd.socket): serve on the socket systemd holds.
    auto activated = systemd::take_listen_socket();
    if (!activated) {
        log::error("start-up failed: {}", activated.error().message());
        return 1;
    }
    if (activated->fd >= 0 && !activated->path.empty()) cfg.socket = activated->path;
    notify("STATUS=starting: loading state and reconciling with the kernel");

    // Every published host port is held by a socket (so no other process can take it): allow as
    // many descriptors as the hard limit permits (systemd's LimitNOFILE sets that).
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log::warn("raise RLIMIT_NOFILE to {}: {}", rl.rlim_max, std::strerror(errno));
        }
    }

    for (auto [dir, mode] :
         {std::pair{cfg.state_dir, mode_t{0700}}, std::pair{cfg.netns_dir, mode_t{0755}},
          std::pair{parent_dir(cfg.socket), mode_t{0755}}}) {
        if (auto r = make_dirs(dir, mode); !r) {
            log::error("start-up failed: {}", r.error().message());
            return 1;
        }
    }

    // Checked before the engine touches the kernel (Server::listen checks again, race-free enough
    // for a second instance started by hand): two daemons must never drive the same bridges.
    // (Not when socket-activated: systemd holds the socket, and our own ping would wait forever.)
    // The ping has a deadline: a listener that accepts but does not answer in 5 s (a stopped
    // cnetd, ETIMEDOUT) or whose queue stays full (EAGAIN) is live too; it must neither hang this
    // start nor be taken over.
    if (activated->fd < 0) {
        auto ping = api::Client(cfg.socket, std::chrono::seconds(5)).request("GET", "/v1/ping");
        if (ping.ok() || ping.error().error_number() == ETIMEDOUT ||
            ping.error().error_number() == EAGAIN) {
            log::error("start-up failed: another cnetd is already running on {}{}", cfg.socket,
                       ping.ok() ? "" : fmt::format(" ({})", ping.error().message()));
            return 1;
        }
    }

    Worker worker;
    if (auto r = worker.start([&cfg] { return create_engine_backend(cfg); }); !r) {
        log::error("start-up failed: {}", r.error().message());
        return 1;
    }
    // Declared after the worker so it is destroyed first: its thread polls a socket the worker's
    // backend owns.
    FirewallMonitor fw_monitor(worker);
    if (auto r = fw_monitor.start(); !r) {
        log::error("start-up failed: {}", r.error().message());
        return 1;
    }
    // Endpoints whose namespace dies are detached promptly (daemon/gc_watch.hpp).
    GcWatch gc_watch(worker, cfg.netns_dir);
    if (auto r = gc_watch.start(); !r) {
        log::error("start-up failed: {}", r.error().message());
        return 1;
    }

    boost::asio::io_context io(1);
    // Ports published on [::1] are relayed in userland, synced after every job (daemon/relay.hpp).
    Relay relay(io, worker);
    // Kernel reads are shared while one is queued or running, never reused after it (age 0): the
    // kernel can change behind the daemon's back (a bridge deleted by hand), and CNI STATUS must
    // see that at once. Mutations still go first (worker.hpp), which is what keeps them fast.
    Handlers handlers(
        worker, DaemonInfo{CNETD_VERSION, cfg.netns_dir, cfg.state_dir, cfg.socket, now_rfc3339()},
        std::chrono::milliseconds(0));
    ServerOptions server_opts;  // who may use the socket, and its limits (docs/security.md)
    server_opts.group = cfg.group;
    server_opts.read_group = cfg.read_group;
    server_opts.max_connections = cfg.max_connections;
    server_opts.max_connections_per_uid = cfg.max_connections_per_uid;
    server_opts.reserved_write_connections = cfg.reserved_write_connections;
    Server server(io, handlers, server_opts);
    if (auto r = activated->fd >= 0 ? server.adopt(activated->fd, cfg.socket)
                                    : server.listen(cfg.socket);
        !r) {
        log::error("start-up failed: {}", r.error().message());
        fw_monitor.stop();
        gc_watch.stop();
        worker.stop();
        return 1;
    }

    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    boost::asio::signal_set hup(io, SIGHUP);
    boost::asio::steady_timer drain_timer(io);
    std::function<void(std::chrono::steady_clock::time_point)> wait_drained =
        [&](std::chrono::steady_clock::time_point deadline) {
            // Every answer written (sessions close after it) or the deadline: then stop.
            if (server.stats().active == 0 || std::chrono::steady_clock::now() >= deadline) {
                if (server.stats().active != 0)
                    log::warn("shutdown: {} connection(s) still open after 5 s, closing them",
                              server.stats().active);
                io.stop();
                return;
            }
            drain_timer.expires_after(std::chrono::milliseconds(10));
            drain_timer.async_wait([&, deadline](const boost::system::error_code& ec) {
                if (!ec) wait_drained(deadline);
            });
        };
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        log::info("received {}, shutting down (networks stay in place)",
                  sig == SIGTERM ? "SIGTERM" : "SIGINT");
        notify("STOPPING=1\nSTATUS=stopping: finishing the operation in flight");
        server.drain();     // no new connections; idle ones closed, busy ones after their answer
        fw_monitor.stop();  // before the worker: it polls the worker's backend's socket
        gc_watch.stop();    // before the worker: it waits for its jobs
        worker.stop();      // the job in flight finishes; queued ones are answered 503 (not run)
        hup.cancel();
        // The answers were posted to this io_context by the worker: let them be written.
        wait_drained(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    });

    // SIGHUP (systemctl reload): re-read the config; apply what can change live in one step on
    // the worker, report the rest as pending a restart (log and GET /v1/info). A config that does
    // not parse changes nothing. systemd hears RELOADING=1 first and READY=1 once the live part
    // is applied (or refused), so `systemctl reload` returns when the reload is done.
    std::function<void()> arm_reload = [&] {
        hup.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            arm_reload();
            notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading {}",
                               monotonic_usec(), config_path));
            auto next = config::load(config_path, config_opt->count() > 0);
            if (!next) {
                log::error("reload: {}; keeping the running config", next.error().message());
                notify("READY=1\nSTATUS=reload failed: " + next.error().message());
                return;
            }
            overrides(*next);
            auto level = parse_level(next->log_level);
            if (!level) {
                log::error("reload: {}; keeping the running config", level.error().message());
                notify("READY=1\nSTATUS=reload failed: " + level.error().message());
                return;
            }
            for (const auto& w : next->warnings) log::warn("config {}: {}", config_path, w);
            const config::ReloadPlan plan = config::diff(cfg, *next);
            const config::Config applied = config::apply_live(cfg, *next);
            std::vector<std::string> pending;
            for (const auto& k : plan.restart) pending.push_back(k.str());
            handlers.set_reload_status(pending, now_rfc3339());
            log::info("reload: {}", plan.summary());
            if (plan.live.empty()) {
                notify("READY=1\nSTATUS=ready: reloaded (nothing to apply live)");
                return;
            }
            log::set_level(*level);
            const auto spec = default_spec_of(applied);
            const core::EngineOptions live = engine_options_of(applied);
            const bool forward = applied.ip_forward;
            // The running config becomes `applied` only once the engine took it (back on this
            // thread): a refused reload leaves it as it was, so the same file can be retried.
            const bool queued = worker.post([spec, live, forward, applied, &io, &cfg](Backend& b) {
                std::string status = "ready: reloaded";
                bool took = true;
                if (auto r = b.reconfigure(spec, live, forward); !r.ok()) {
                    log::error("reload: {}", r.error().message());
                    status = "reload failed: " + r.error().message();
                    took = false;
                }
                if (took) boost::asio::post(io, [&cfg, applied] { cfg = applied; });
                notify("READY=1\nSTATUS=" + status);
            });
            if (!queued) notify("READY=1\nSTATUS=stopping: reload not applied");
        });
    };
    arm_reload();

    log::info("cnetd {} listening on {}{}", CNETD_VERSION, cfg.socket,
              activated->fd >= 0 ? " (socket-activated)" : "");
    // READY=1 from inside the loop, so it is sent only once requests are being served.
    boost::asio::post(io, [&worker] {
        size_t networks = 0, endpoints = 0;
        if (auto snap = worker.snapshot()) {
            networks = snap->networks.size();
            for (const auto& n : snap->networks) endpoints += n.endpoints.size();
        }
        notify(
            fmt::format("READY=1\nSTATUS=ready: {} networks, {} endpoints", networks, endpoints));
    });
    io.run();
    server.close();
    log::info("cnetd stopped");
    return 0;
}

}  // namespace cnetd::daemon
