#include "base/clock.hpp"

#include <ctime>

#include <fmt/format.h>

namespace cnetd {

std::string rfc3339(std::chrono::system_clock::time_point t) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(t);
    const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t - secs).count();
    const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:09d}Z", buf, nanos);
}

}  // namespace cnetd
