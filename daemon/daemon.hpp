// cnetd's start-up and main loop (main.cpp only calls run()).
//
// Linear start-up: parse flags → load config (flags override it) → create the state dir and take
// the instance locks (store/lock.hpp: one cnetd per state dir and per network namespace; a loser
// exits 1 naming the holder, having changed nothing) → create the netns and socket directories →
// start the kernel worker (kernel interface, state store, engine.start) →
// start the firewall monitor (coexistence warnings, drift repair; firewall_monitor.hpp) → bind
// the control socket → sd_notify READY=1 → serve until SIGTERM/SIGINT.
// Shutdown: stop accepting, stop the firewall monitor, let the worker finish its job in flight,
// sd_notify STOPPING=1, remove the socket file, exit 0. Bridges, veths and namespaces stay in
// place: containers keep working. Errors: any start-up failure prints one line on stderr (via the
// log) and returns 1; an invalid config returns 1 before anything is created.
#pragma once

namespace cnetd::daemon {

// Returns the process exit code.
int run(int argc, char** argv);

}  // namespace cnetd::daemon
