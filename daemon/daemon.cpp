#include "daemon/daemon.hpp"

#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "api/client.hpp"
#include "base/log.hpp"
#include "config/config.hpp"
#include "daemon/engine_backend.hpp"
#include "daemon/firewall_monitor.hpp"
#include "daemon/handlers.hpp"
#include "daemon/server.hpp"
#include "daemon/worker.hpp"

#ifndef CNETD_VERSION
#define CNETD_VERSION "unknown"
#endif

namespace cnetd::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/cnetd/cnetd.yaml";

void notify(const char* state) {
#ifdef HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
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
    if (!socket.empty()) cfg.socket = socket;
    if (!state_dir.empty()) cfg.state_dir = state_dir;
    if (!netns_dir.empty()) cfg.netns_dir = netns_dir;
    if (!log_level.empty()) cfg.log_level = log_level;
    auto level = parse_level(cfg.log_level);
    if (!level) {
        std::fprintf(stderr, "cnetd: %s\n", level.error().message().c_str());
        return 1;
    }
    log::set_level(*level);
    for (const auto& w : cfg.warnings) log::warn("config {}: {}", config_path, w);

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
    if (api::Client(cfg.socket).request("GET", "/v1/ping").ok()) {
        log::error("start-up failed: another cnetd is already running on {}", cfg.socket);
        return 1;
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

    boost::asio::io_context io(1);
    Handlers handlers(
        worker, DaemonInfo{CNETD_VERSION, cfg.netns_dir, cfg.state_dir, cfg.socket, now_rfc3339()});
    Server server(io, handlers);
    if (auto r = server.listen(cfg.socket); !r) {
        log::error("start-up failed: {}", r.error().message());
        fw_monitor.stop();
        worker.stop();
        return 1;
    }

    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        log::info("received {}, shutting down (networks stay in place)",
                  sig == SIGTERM ? "SIGTERM" : "SIGINT");
        notify("STOPPING=1");
        server.close();     // stop accepting, remove the socket file
        fw_monitor.stop();  // before the worker: it polls the worker's backend's socket
        worker.stop();      // the job in flight finishes; queued ones are dropped
        io.stop();
    });

    log::info("cnetd {} listening on {}", CNETD_VERSION, cfg.socket);
    notify("READY=1");
    io.run();
    server.close();
    log::info("cnetd stopped");
    return 0;
}

}  // namespace cnetd::daemon
