#include "daemon/events.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <deque>
#include <set>

#include <nlohmann/json.hpp>

#include "base/log.hpp"
#include "base/validate.hpp"

namespace cnetd::daemon {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int64_t kNanos = 1'000'000'000;

int64_t now_nano() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The filter keys GET /v1/events takes, and the event types cnetd publishes.
const std::set<std::string>& filter_keys() {
    static const std::set<std::string> k{"type", "event", "network", "container"};
    return k;
}
const std::set<std::string>& event_types() {
    static const std::set<std::string> t{"network", "port", "firewall", "netns", "gc", "reload"};
    return t;
}

// application/x-www-form-urlencoded value: %XX and '+' (a space).
Result<std::string> url_decode(std::string_view param, std::string_view in) {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out += ' ';
        } else if (in[i] != '%') {
            out += in[i];
        } else {
            const int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
            const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return Error::invalid(fmt::format("{}: bad %-escape in \"{}\"", param, in));
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        }
    }
    return out;
}

// Digits only, into `v`; false on anything else or overflow.
bool parse_digits(std::string_view s, int64_t& v) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size() && v >= 0;
}

// ".123" → 123000000 ns (at most 9 digits).
bool parse_fraction(std::string_view frac, int64_t& ns) {
    if (frac.empty() || frac.size() > 9) return false;
    int64_t v = 0;
    if (!parse_digits(frac, v)) return false;
    for (size_t i = frac.size(); i < 9; ++i) v *= 10;
    ns = v;
    return true;
}

// RFC 3339: 2026-12-04T11:00:00[.nnn](Z|+hh:mm|-hh:mm).
std::optional<int64_t> parse_rfc3339(std::string_view s) {
    int Y, M, D, h, m, sec;
    int n = 0;
    const std::string str(s);
    if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 ||
        n != 19)
        return std::nullopt;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
    std::string_view rest = s.substr(19);
    int64_t frac = 0;
    if (!rest.empty() && rest[0] == '.') {
        size_t end = 1;
        while (end < rest.size() && std::isdigit(static_cast<unsigned char>(rest[end]))) ++end;
        if (!parse_fraction(rest.substr(1, end - 1), frac)) return std::nullopt;
        rest = rest.substr(end);
    }
    int64_t offset = 0;
    if (rest == "Z" || rest == "z") {
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        int64_t oh = 0, om = 0;
        if (!parse_digits(rest.substr(1, 2), oh) || !parse_digits(rest.substr(4, 2), om) ||
            oh > 23 || om > 59)
            return std::nullopt;
        offset = (oh * 3600 + om * 60) * (rest[0] == '+' ? 1 : -1);
    } else {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    const int64_t secs = static_cast<int64_t>(::timegm(&tm)) - offset;
    return secs * kNanos + frac;
}

// Unix seconds ("1733310000", "1733310000.5") or RFC 3339, in ns. Errors name the parameter.
Result<int64_t> parse_time(std::string_view param, std::string_view v) {
    const size_t dot = v.find('.');
    int64_t secs = 0, frac = 0;
    if (parse_digits(v.substr(0, dot), secs) &&
        (dot == std::string_view::npos || parse_fraction(v.substr(dot + 1), frac)) &&
        secs < INT64_MAX / kNanos)
        return secs * kNanos + frac;
    if (auto t = parse_rfc3339(v)) return *t;
    return Error::invalid(
        fmt::format("{}: \"{}\" is not a time: expected Unix seconds (1733310000 or "
                    "1733310000.123456789) or RFC 3339 (2026-12-04T11:00:00Z)",
                    param, v));
}

// Docker's `filters`: {"key": ["v", ...]}, or the older {"key": {"v": true}}.
Result<std::map<std::string, std::vector<std::string>>> parse_filters(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object())
        return Error::invalid(
            fmt::format("filters: \"{}\" is not a JSON object of string lists (e.g. "
                        "{{\"type\":[\"network\"]}})",
                        text));
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [key, vals] : j.items()) {
        if (!filter_keys().count(key))
            return Error::invalid(fmt::format(
                "filters: unknown key \"{}\" (expected type, event, network or container)", key));
        auto& list = out[key];
        if (vals.is_array()) {
            for (const auto& v : vals) {
                if (!v.is_string())
                    return Error::invalid(
                        fmt::format("filters: {}: {} is not a string", key, v.dump()));
                list.push_back(v.get<std::string>());
            }
        } else if (vals.is_object()) {
            for (const auto& [v, on] : vals.items())
                if (on.is_boolean() && on.get<bool>()) list.push_back(v);
        } else {
            return Error::invalid(
                fmt::format("filters: {}: {} is not a list of strings", key, vals.dump()));
        }
        if (key == "type") {
            for (const auto& t : list)
                if (!event_types().count(t))
                    return Error::invalid(fmt::format(
                        "filters: type: unknown event type \"{}\" (expected network, port, "
                        "firewall, netns, gc or reload)",
                        t));
        }
    }
    return out;
}

// Docker's FuzzyMatch: equal, or a prefix (ids are given abbreviated).
bool fuzzy(const std::vector<std::string>& vals, const std::string& s) {
    if (s.empty()) return false;
    return std::any_of(vals.begin(), vals.end(),
                       [&](const std::string& v) { return s.compare(0, v.size(), v) == 0; });
}

std::string attribute(const Event& e, const char* key) {
    auto it = e.attributes.find(key);
    return it == e.attributes.end() ? std::string() : it->second;
}

}  // namespace

std::string to_json_line(const Event& e) {
    ojson attrs = ojson::object();
    for (const auto& [k, v] : e.attributes) attrs[k] = v;
    ojson j;
    j["Type"] = e.type;
    j["Action"] = e.action;
    j["Actor"] = ojson{{"ID", e.actor_id}, {"Attributes", std::move(attrs)}};
    j["scope"] = e.scope;
    j["time"] = e.time_nano / kNanos;
    j["timeNano"] = e.time_nano;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool EventFilter::matches(const Event& e) const {
    if (since_nano && e.time_nano < *since_nano) return false;
    if (until_nano && e.time_nano > *until_nano) return false;
    for (const auto& [key, vals] : filters) {
        if (vals.empty()) continue;
        bool ok = false;
        if (key == "type") {
            ok = std::count(vals.begin(), vals.end(), e.type) > 0;
        } else if (key == "event") {
            ok = std::count(vals.begin(), vals.end(), e.action) > 0;
        } else if (key == "network") {
            if (e.type == "network" || e.type == "port")
                ok = fuzzy(vals, e.actor_id) || fuzzy(vals, attribute(e, "name"));
            else
                ok = fuzzy(vals, attribute(e, "network"));
        } else if (key == "container") {
            ok = fuzzy(vals, attribute(e, "container"));
        }
        if (!ok) return false;
    }
    return true;
}

Result<EventFilter> parse_event_query(const std::string& query) {
    EventFilter f;
    std::string_view q = query;
    if (auto pos = q.find('?'); pos != std::string_view::npos) q = q.substr(pos + 1);
    std::set<std::string> seen;
    while (!q.empty()) {
        const size_t amp = q.find('&');
        std::string_view item = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        const std::string key(item.substr(0, eq));
        CNETD_TRY_ASSIGN(std::string value,
                         url_decode(key, eq == std::string_view::npos ? "" : item.substr(eq + 1)));
        if (!seen.insert(key).second)
            return Error::invalid(fmt::format("{}: given more than once", key));
        if (key == "filters") {
            if (value.empty()) continue;
            CNETD_TRY_ASSIGN(f.filters, parse_filters(value));
        } else if (key == "since" || key == "until") {
            CNETD_TRY_ASSIGN(int64_t t, parse_time(key, value));
            (key == "since" ? f.since_nano : f.until_nano) = t;
        } else {
            return Error::invalid(fmt::format(
                "unknown query parameter \"{}\" (expected filters, since or until)", key));
        }
    }
    if (f.since_nano && f.until_nano && *f.until_nano < *f.since_nano)
        return Error::invalid("until: earlier than since");
    return f;
}

// ---- EventLog ----

// One subscriber's queue, shared by its Subscription handle and the log's list. Guarded by
// State::mu.
struct EventLog::Subscription::Impl {
    EventFilter filter;
    std::function<void()> wake;
    std::deque<std::shared_ptr<const std::string>> queue;
    std::string last_line;  // the final error line of a dropped subscriber
    bool ended = false;
};

struct EventLog::State {
    std::size_t ring_cap, queue_cap;
    std::mutex publish_mu;  // serializes publishers (seq order = ring order = queue order)
    mutable std::mutex mu;  // everything below
    std::deque<Event> ring;
    std::vector<std::shared_ptr<Subscription::Impl>> subs;
    std::function<void(const Event&)> tap;
    uint64_t seq = 0;
    uint64_t dropped = 0;
    bool closed = false;

    // Under mu: ends `s` (after `last` if given) and removes it from the list.
    void end(const std::shared_ptr<Subscription::Impl>& s, std::string last) {
        s->ended = true;
        s->last_line = std::move(last);
        subs.erase(std::remove(subs.begin(), subs.end(), s), subs.end());
    }
};

EventLog::Subscription::Subscription(std::shared_ptr<State> st, std::shared_ptr<Impl> impl,
                                     std::optional<int64_t> until)
    : st_(std::move(st)), impl_(std::move(impl)), until_(until) {}

EventLog::Subscription::~Subscription() {
    release();
}

bool EventLog::Subscription::take(std::string& out) {
    std::lock_guard lk(st_->mu);
    for (const auto& line : impl_->queue) out += *line;
    impl_->queue.clear();
    if (!impl_->ended) return false;
    out += impl_->last_line;
    impl_->last_line.clear();
    return true;
}

void EventLog::Subscription::release() {
    std::lock_guard lk(st_->mu);
    impl_->wake = nullptr;
    if (!impl_->ended) st_->end(impl_, "");
}

EventLog::EventLog(std::size_t ring, std::size_t queue) : st_(std::make_shared<State>()) {
    st_->ring_cap = ring;
    st_->queue_cap = queue;
}

EventLog::~EventLog() {
    close();
}

void EventLog::set_tap(std::function<void(const Event&)> tap) {
    std::lock_guard lk(st_->mu);
    st_->tap = std::move(tap);
}

void EventLog::publish(Event e) {
    std::lock_guard plk(st_->publish_mu);
    std::function<void(const Event&)> tap;
    {
        std::lock_guard lk(st_->mu);
        if (e.time_nano == 0) e.time_nano = now_nano();
        e.seq = ++st_->seq;
        st_->ring.push_back(e);
        while (st_->ring.size() > st_->ring_cap) st_->ring.pop_front();
        tap = st_->tap;
    }
    if (tap) tap(e);  // outside mu (it may read the log), inside publish_mu (in order)
    auto line = std::make_shared<const std::string>(to_json_line(e) + "\n");
    std::vector<std::function<void()>> wakes;
    {
        std::lock_guard lk(st_->mu);
        for (auto subs = st_->subs; const auto& s : subs) {
            if (!s->filter.matches(e)) continue;
            if (s->queue.size() >= st_->queue_cap) {
                // Too slow: drop it rather than buffer without bound or wait for it.
                ++st_->dropped;
                st_->end(s, fmt::format("{{\"error\":\"subscriber too slow: {} events queued "
                                        "and not read; stream ended at event {} (reconnect "
                                        "with since={}.{:09d} to resume)\"}}\n",
                                        s->queue.size(), e.seq, e.time_nano / kNanos,
                                        e.time_nano % kNanos));
                log::warn("events: a subscriber read too slowly and was dropped");
            } else {
                s->queue.push_back(line);
                if (s->queue.size() > 1) continue;  // already woken for the earlier lines
            }
            if (s->wake) wakes.push_back(s->wake);
        }
    }
    for (auto& w : wakes) w();
}

std::vector<Event> EventLog::replay(const EventFilter& f) const {
    std::lock_guard lk(st_->mu);
    std::vector<Event> out;
    for (const auto& e : st_->ring)
        if (f.matches(e)) out.push_back(e);
    return out;
}

std::shared_ptr<EventLog::Subscription> EventLog::subscribe(EventFilter f,
                                                            std::function<void()> wake) {
    auto impl = std::make_shared<Subscription::Impl>();
    const std::optional<int64_t> until = f.until_nano;
    std::lock_guard lk(st_->mu);
    if (f.since_nano || f.until_nano) {
        for (const auto& e : st_->ring)
            if (f.matches(e))
                impl->queue.push_back(std::make_shared<std::string>(to_json_line(e) + "\n"));
    }
    impl->filter = std::move(f);
    impl->wake = std::move(wake);
    if (st_->closed || (until && *until <= now_nano()))
        impl->ended = true;
    else
        st_->subs.push_back(impl);
    return std::shared_ptr<Subscription>(new Subscription(st_, std::move(impl), until));
}

void EventLog::close() {
    std::vector<std::function<void()>> wakes;
    {
        std::lock_guard lk(st_->mu);
        st_->closed = true;
        for (auto subs = st_->subs; const auto& s : subs) {
            st_->end(s, "");
            if (s->wake) wakes.push_back(s->wake);
        }
    }
    for (auto& w : wakes) w();
}

std::size_t EventLog::subscribers() const {
    std::lock_guard lk(st_->mu);
    return st_->subs.size();
}

uint64_t EventLog::dropped_subscribers() const {
    std::lock_guard lk(st_->mu);
    return st_->dropped;
}

}  // namespace cnetd::daemon
