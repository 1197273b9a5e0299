#include "base/log.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

namespace cnetd::log {

namespace {
std::atomic<Level> g_level{Level::Info};
std::atomic<bool> g_journal{false};
}  // namespace

void set_level(Level l) noexcept { g_level = l; }
Level level() noexcept { return g_level; }
void set_journal_prefix(bool on) noexcept { g_journal = on; }

void write(Level l, std::string_view msg) noexcept {
    try {
        const char* tag = l == Level::Debug     ? "debug"
                          : l == Level::Info    ? "info"
                          : l == Level::Warning ? "warning"
                                                : "error";
        std::string line = g_journal ? fmt::format("<{}>{}\n", static_cast<int>(l), msg)
                                     : fmt::format("cnetd[{}]: {}: {}\n", getpid(), tag, msg);
        ssize_t r = ::write(STDERR_FILENO, line.data(), line.size());
        (void)r;
    } catch (...) {
    }
}

}  // namespace cnetd::log
