// Private to lib/core's engine_*.cpp files: the undo log and the small helpers they share.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "core/model.hpp"

namespace cnetd::core::detail {

// Undo log for a multi-step change: actions run in reverse order unless committed. Every
// mutating engine call keeps one, so a failure at any step leaves kernel, memory and state file
// as they were.
class Rollback {
public:
    Rollback() = default;
    Rollback(const Rollback&) = delete;
    Rollback& operator=(const Rollback&) = delete;
    ~Rollback() {
        if (committed_) return;
        for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
    }
    void add(std::function<void()> f) { undo_.push_back(std::move(f)); }
    void commit() { committed_ = true; }

private:
    std::vector<std::function<void()>> undo_;
    bool committed_ = false;
};

inline void log_undo_failure(const Result<void>& r, std::string_view what) {
    if (!r.ok()) log::error("rollback: {}: {}", what, r.error().message());
}

// Docker's rule for network names; also used for netns file names and endpoint names.
Result<void> validate_name(std::string_view field, const std::string& name);

int proto_number(Proto p);

using cnetd::now_rfc3339;  // base/clock.hpp: Network::created

}  // namespace cnetd::core::detail

// The engine_*.cpp files use these unqualified (this header is theirs alone).
namespace cnetd::core {
using detail::log_undo_failure;
using detail::proto_number;
using detail::Rollback;
using detail::validate_name;
}  // namespace cnetd::core
