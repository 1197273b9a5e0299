// Failpoints: named places in the code where a test can make the daemon die (SIGKILL), stall or
// fail, to prove that every crash point leaves state the next start can reconcile, and that every
// failed step leaves state exactly as before the request.
//
// Compiled in always; when neither CNETD_FAILPOINTS nor CNETD_FAILPOINTS_FILE is set a hit costs
// one load of a static flag (the environment is read once, on the first hit). Syntax (rules
// separated by commas, spaces or newlines; unknown rules are ignored):
//   name=kill            SIGKILL the process at that point
//   name=sleep(MS)       sleep MS milliseconds there (e.g. to SIGTERM the daemon mid-operation)
//   name=error           hit_error() returns an error (ErrorKind::Internal) there; hit() ignores it
//   *=kill@N             SIGKILL at the N-th hit of ANY failpoint (counting from 1, hit() and
//                        hit_error() alike): a test walks N over a workload to kill at every point
//   name=kill@N          SIGKILL at the N-th hit of that point
//   *=error@N            the N-th hit_error() call of ANY point returns an injected error. Only
//                        hit_error() calls count (plain hit() points cannot fail), so N = 1, 2, ...
//                        fails each fallible step of a request in turn: the kernel wrappers'
//                        "<layer>.<op>.before" points (core/failpoint_wrappers.hpp: the call is
//                        then not made) and the store's "store.journal.append.error" (the save).
//   name=error@N         the N-th hit of that point returns an injected error
// The first matching rule wins.
//
// CNETD_FAILPOINTS_LOG=PATH appends "kill <name> <N>\n" to PATH right before a kill, "error <name>
// <N>\n" when an error is injected (and, with CNETD_FAILPOINTS_TRACE=1, "hit <name>\n" on every
// hit), so a harness can tell what it covered.
//
// Arming at run time (tests): CNETD_FAILPOINTS_FILE=PATH makes every hit read PATH (a few
// syscalls, test-only); when its content differs from the last read, its rules replace the file's
// previous ones (those of CNETD_FAILPOINTS, if any, stay in front) and every hit counter restarts
// from 0. A missing or empty file arms nothing; "#" starts a comment to the end of the line (to
// re-arm the same rules, change a comment: "*=error@3 # 17"). So a test can arm "*=error@N" right
// before one request of a running daemon, without a restart.
//
// Names are "<layer>.<operation>.<before|after>", e.g. "kernel.create_veth.after",
// "store.journal.append.before", "fw.add_ports.after".
// Threading: hit() may be called from any thread (the state is behind a mutex).
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

// Like hit(), and returns an error when an error rule lands on `name` (see the syntax above).
inline Result<void> hit_error(const char* name) {
    if (enabled() && detail::error_slow(name)) {
        return Error::internal(fmt::format("failpoint {}: injected error", name));
    }
    return ok();
}

// Test hook: re-reads CNETD_FAILPOINTS (and the file) and resets the hit counters.
void reload_for_test();

}  // namespace cnetd::failpoint
