// Failpoints: named places in the code where a test can make the daemon die (SIGKILL), stall or
// fail, to prove that every crash point leaves state the next start can reconcile.
//
// Compiled in always; when CNETD_FAILPOINTS is unset a hit costs one load of a static flag (the
// environment is read once, on the first hit). Syntax (comma-separated rules):
//   name=kill            SIGKILL the process at that point
//   name=sleep(MS)       sleep MS milliseconds there (e.g. to SIGTERM the daemon mid-operation)
//   name=error           hit_error() returns an error (ErrorKind::Internal) there
//   *=kill@N             SIGKILL at the N-th hit of ANY failpoint (counting from 1): a test walks N
//                        over a workload to kill at every point it passes
//   name=kill@N          SIGKILL at the N-th hit of that point
// CNETD_FAILPOINTS_LOG=PATH appends "kill <name> <N>\n" to PATH right before a kill (and, with
// CNETD_FAILPOINTS_TRACE=1, "hit <name>\n" on every hit), so a harness can count what it covered.
//
// Names are "<layer>.<operation>.<before|after>", e.g. "kernel.create_veth.after",
// "store.journal.append.before", "fw.add_ports.after".
// Threading: hit() may be called from any thread (the counter is atomic).
#pragma once

#include <atomic>

#include "base/error.hpp"

namespace cnetd::failpoint {

namespace detail {
// -1: not read yet, 0: no failpoints configured, 1: configured.
extern std::atomic<int> g_state;
void hit_slow(const char* name);
bool error_slow(const char* name);
}  // namespace detail

inline bool enabled() noexcept {
    int s = detail::g_state.load(std::memory_order_relaxed);
    if (s == 0) return false;
    return true;  // 1, or -1: the slow path reads the environment once
}

// Passes through, kills the process, or sleeps, as configured for `name`.
inline void hit(const char* name) {
    if (enabled()) detail::hit_slow(name);
}

// Like hit(), and returns an error when `name` is configured as "error".
inline Result<void> hit_error(const char* name) {
    if (enabled() && detail::error_slow(name)) {
        return Error::internal(fmt::format("failpoint {}: injected error", name));
    }
    return ok();
}

// Test hook: re-reads CNETD_FAILPOINTS and resets the hit counters.
void reload_for_test();

}  // namespace cnetd::failpoint
