// Process-wide operation statistics that lower layers report and the daemon's metrics read at
// scrape time (lib/obs, docs/observability.md "Metrics"). Lower layers never see Prometheus: they
// bump plain counters here, or call an observer the daemon installed.
//
//   - kernel operation errors by "layer.op" (core/failpoint_wrappers.hpp counts every failed
//     mutating kernel/netns/firewall call): keys are string literals, so the set is bounded by
//     the code (never a label per container or per port);
//   - durations (the state journal's fsync, lib/store): observe("journal_fsync", seconds) calls
//     the observer set by the daemon, if any; without one it costs one atomic load;
//   - plain event counters (the journal's compactions): count("journal_compactions").
//
// Threading: every function may be called from any thread. The counters are behind a mutex that
// is only taken on an error, a compaction or a scrape (never on a successful kernel call).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace cnetd::opstats {

// One more failed operation `op` ("kernel.create_veth"): a string literal (kept by pointer).
void count_error(const char* op);
// One more `what` ("journal_compactions"): a string literal.
void count(const char* what);
// (key, total) of every counter bumped so far, sorted by key.
std::vector<std::pair<std::string, uint64_t>> errors();
std::vector<std::pair<std::string, uint64_t>> counts();
// The total of one count() key, 0 if never bumped.
uint64_t count_of(const char* what);

// The duration observer: called by observe() with the key ("journal_fsync") and the seconds.
// Must be quick and thread-safe. Set once (the daemon at start-up), or cleared with {}.
using Observer = std::function<void(const char* what, double seconds)>;
void set_observer(Observer o);
void observe(const char* what, double seconds);

// Tests: every counter back to zero (the observer is kept).
void reset_for_tests();

}  // namespace cnetd::opstats
