// cnetd's start-up and main loop (main.cpp only calls run()).
//
// Linear start-up, one named step each in daemon.cpp: parse_flags → read_config (flags override
// the file) → prepare_host: create the state dir and take the instance locks (store/lock.hpp: one
// cnetd per state dir and per network namespace; a loser exits 1 naming the holder, having changed
// nothing), take a socket-activated socket, raise RLIMIT_NOFILE, create the netns and socket
// directories, refuse when another cnetd answers on the socket → Daemon::start: the kernel worker
// (kernel interface, state store, engine.start), the firewall monitor (coexistence warnings, drift
// repair; firewall_monitor.hpp) and the netns GC watch (gc_watch.hpp), the [::1] relay, bind the
// control socket → Daemon::serve: SIGTERM/SIGINT and SIGHUP (reload) handlers, sd_notify READY=1,
// run the io_context until shutdown.
// Threads: the io thread (main: the control socket, the relay, the fd watches of the firewall
// monitor and the GC watch, signals) and the kernel worker; no thread per watch.
// Shutdown: stop accepting, stop the watches, let the worker finish its job in flight,
// sd_notify STOPPING=1, remove the socket file, exit 0. Bridges, veths and namespaces stay in
// place: containers keep working. Errors: any start-up failure prints one line on stderr (via the
// log) and returns 1; an invalid config returns 1 before anything is created.
#pragma once

namespace cnetd::daemon {

// Returns the process exit code.
int run(int argc, char** argv);

}  // namespace cnetd::daemon
