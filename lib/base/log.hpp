// Minimal leveled logger to stderr (journald captures it under systemd; the "<N>" prefix is the
// sd-daemon priority so journald files each line at the right level).
// Threading: safe from any thread; each line is written with one write(2).
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace cnetd::log {

enum class Level { Debug = 7, Info = 6, Warning = 4, Error = 3 };

void set_level(Level l) noexcept;
Level level() noexcept;
// Prefix lines with "<N>" for journald (set when stderr is the journal).
void set_journal_prefix(bool on) noexcept;
void write(Level l, std::string_view msg) noexcept;

template <class... A>
void debug(fmt::format_string<A...> f, A&&... a) {
    if (level() >= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void info(fmt::format_string<A...> f, A&&... a) {
    if (level() >= Level::Info) write(Level::Info, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) {
    if (level() >= Level::Warning) write(Level::Warning, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) {
    write(Level::Error, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace cnetd::log
