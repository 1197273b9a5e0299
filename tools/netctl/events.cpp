// netctl events: the daemon's event stream (GET /v1/events) as `docker events` prints it:
//   2026-12-04T11:00:00.123456789Z network connect <id> (container=c1, name=web, type=bridge)
// --json prints each event's JSON line as it came. Runs until the stream ends (--until, daemon
// shutdown) or Ctrl-C.
#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

struct EventsOptions {
    std::vector<std::string> filters;  // KEY=VALUE
    std::string since, until;
};

// "10m", "1h30m", "90s", "1.5h", "500ms" (Go's durations, as `docker events --since 10m`), in
// ns; nullopt when `s` is not one.
std::optional<int64_t> duration_ns(const std::string& s) {
    // A scan, not <regex>: GCC 12's libstdc++ regex raises -Wmaybe-uninitialized false positives
    // at -O1 and above (the package and sanitizer builds are -Werror), and costs start-up.
    double ns = 0;
    size_t i = 0;
    if (s.empty()) return std::nullopt;
    while (i < s.size()) {
        size_t j = i;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        if (j == i) return std::nullopt;  // every part starts with digits
        if (j < s.size() && s[j] == '.') {
            size_t k = j + 1;
            while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
            if (k == j + 1) return std::nullopt;  // "1." is no number
            j = k;
        }
        const double v = std::stod(s.substr(i, j - i));
        double unit = 0;
        if (s.compare(j, 2, "ms") == 0) {
            unit = 1e6, j += 2;
        } else if (j < s.size() && (s[j] == 'h' || s[j] == 'm' || s[j] == 's')) {
            unit = s[j] == 'h' ? 3600e9 : s[j] == 'm' ? 60e9 : 1e9;
            ++j;
        } else {
            return std::nullopt;
        }
        ns += v * unit;
        i = j;
    }
    return static_cast<int64_t>(ns);
}

// A --since/--until value as the daemon takes it: a duration means that long ago (Docker's
// rule); Unix seconds and RFC 3339 go as given (the daemon checks them and names the option).
std::string time_param(const std::string& v) {
    auto d = duration_ns(v);
    if (!d) return v;
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const int64_t t = now - *d;
    return fmt::format("{}.{:09d}", t / 1'000'000'000, t % 1'000'000'000);
}

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

// The request target; a usage error names a --filter without '='.
Result<std::string> events_target(const EventsOptions& o) {
    json filters = json::object();
    for (const auto& f : o.filters) {
        const auto eq = f.find('=');
        if (eq == std::string::npos || eq == 0)
            return Error::invalid(
                fmt::format("--filter: \"{}\" is not KEY=VALUE (e.g. type=network)", f));
        filters[f.substr(0, eq)].push_back(f.substr(eq + 1));
    }
    std::string q;
    auto add = [&](const char* key, const std::string& v) {
        q += (q.empty() ? "?" : "&") + std::string(key) + "=" + url_encode(v);
    };
    if (!filters.empty()) add("filters", filters.dump());
    if (!o.since.empty()) add("since", time_param(o.since));
    if (!o.until.empty()) add("until", time_param(o.until));
    return "/v1/events" + q;
}

// Docker's rfc3339NanoFixed in local time: 2026-12-04T11:00:00.123456789Z (or +01:00).
std::string event_time(int64_t nano) {
    const std::time_t secs = static_cast<std::time_t>(nano / 1'000'000'000);
    std::tm tm{};
    ::localtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    const long off = tm.tm_gmtoff / 60;
    const std::string zone = off == 0 ? "Z"
                                      : fmt::format("{}{:02d}:{:02d}", off < 0 ? '-' : '+',
                                                    std::abs(off) / 60, std::abs(off) % 60);
    return fmt::format("{}.{:09d}{}", buf, nano % 1'000'000'000, zone);
}

// One event as `docker events` prints it (attributes sorted by key, as Docker does).
std::string event_text(const json& e) {
    std::string out =
        fmt::format("{} {} {} {}", event_time(e.value("timeNano", int64_t{0})), e.value("Type", ""),
                    e.value("Action", ""), e["Actor"].value("ID", ""));
    const json& attrs = e["Actor"].value("Attributes", json::object());
    std::string list;
    for (const auto& [k, v] : attrs.items())  // nlohmann's object: keys sorted
        list += (list.empty() ? "" : ", ") + k + "=" +
                (v.is_string() ? v.get<std::string>() : v.dump());
    if (!list.empty()) out += " (" + list + ")";
    return out;
}

int run_events(const Context& ctx, const EventsOptions& o) {
    auto target = events_target(o);
    if (!target) return usage(target.error().message());
    std::optional<std::string> ended_with;  // the stream's final error line
    auto r = ctx.client().stream(*target, [&](std::string_view line) {
        if (line.empty()) return true;
        auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.contains("error")) {
            ended_with = j["error"].is_string() ? j["error"].get<std::string>() : j.dump();
            if (ctx.json) std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
        } else if (ctx.json || !j.is_object()) {
            std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
        } else {
            std::printf("%s\n", event_text(j).c_str());
        }
        std::fflush(stdout);  // each event as it happens, also into a pipe
        return true;
    });
    if (!r) return fail(r.error());
    if (ended_with)
        return fail(Error(ErrorKind::Unavailable, "event stream ended: " + *ended_with));
    return kExitOk;
}

}  // namespace

void add_events_command(CLI::App& app, Context& ctx, int& rc) {
    auto opts = std::make_shared<EventsOptions>();
    auto* ev = app.add_subcommand("events", summary("events"));
    ev->fallthrough();
    ev->add_option("-f,--filter", opts->filters,
                   "KEY=VALUE, repeatable: type (network, port, firewall, netns, gc, reload), "
                   "event (create, connect, ...), network (id, id prefix or name), container; "
                   "values of one key are ORed, keys ANDed");
    ev->add_option("--since", opts->since,
                   "replay the kept events since T (Unix seconds, RFC 3339, or a duration ago: "
                   "10m, 1h30m), then stream");
    ev->add_option("--until", opts->until,
                   "stop at T (same forms); a past T prints the kept events and exits");
    ev->callback([&ctx, &rc, opts] { rc = run_events(ctx, *opts); });
}

}  // namespace cnetd::netctl
