// Wall-clock time as text, for timestamps users and tools read.
#pragma once

#include <chrono>
#include <string>

namespace cnetd {

// RFC 3339 in UTC with nanoseconds, as Go's time.RFC3339Nano writes it and Docker shows
// `Created` ("2026-12-03T21:30:00.123456789Z"). Never fails; thread-safe (gmtime_r).
std::string rfc3339(std::chrono::system_clock::time_point t);
inline std::string now_rfc3339() {
    return rfc3339(std::chrono::system_clock::now());
}

}  // namespace cnetd
