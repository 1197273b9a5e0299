#include "base/failpoint.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.hpp"

namespace cnetd::failpoint {

namespace detail {
std::atomic<int> g_state{-1};
}

namespace {

enum class Action { Kill, Sleep, Error };

struct Rule {
    std::string name;  // "*" matches every point
    Action action = Action::Kill;
    long arg = 0;  // sleep milliseconds
    long nth = 0;  // 0: every hit; N: only the N-th hit
};

struct Config {
    std::mutex mu;
    std::vector<Rule> env_rules;       // CNETD_FAILPOINTS
    std::vector<Rule> rules;           // env_rules, then the file's
    std::map<std::string, long> hits;  // per name
    long total = 0;                    // every hit of every name
    long total_fallible = 0;           // hit_error() calls only: what "*=error@N" counts
    std::string log_path;
    std::string file_path;  // CNETD_FAILPOINTS_FILE
    std::string file_text;  // its content when last read ("" also when missing)
    bool trace = false;
};

Config& config() {
    static Config c;
    return c;
}

// One rule, "name=action[@N]"; false when it is not one.
bool parse_rule(const std::string& item, Rule& r) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    r.name = item.substr(0, eq);
    std::string act = item.substr(eq + 1);
    if (size_t at = act.find('@'); at != std::string::npos) {
        char* end = nullptr;
        r.nth = std::strtol(act.c_str() + at + 1, &end, 10);
        if (r.nth <= 0 || *end != '\0') return false;
        act.resize(at);
    }
    if (act == "kill") {
        r.action = Action::Kill;
    } else if (act == "error") {
        r.action = Action::Error;
    } else if (act.rfind("sleep(", 0) == 0 && act.back() == ')') {
        r.action = Action::Sleep;
        r.arg = std::strtol(act.c_str() + 6, nullptr, 10);
    } else {
        return false;
    }
    return true;
}

std::vector<Rule> parse_rules(const std::string& spec) {
    std::vector<Rule> out;
    std::string item;
    for (size_t i = 0; i <= spec.size(); ++i) {
        char ch = i < spec.size() ? spec[i] : ',';
        if (ch == '#') {  // a comment, to the end of the line
            while (i + 1 < spec.size() && spec[i + 1] != '\n') ++i;
            ch = ',';
        }
        if (ch == ',' || ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') {
            Rule r;
            if (!item.empty() && parse_rule(item, r)) out.push_back(std::move(r));
            item.clear();
        } else {
            item += ch;
        }
    }
    return out;
}

void reset_counters(Config& c) {
    c.hits.clear();
    c.total = 0;
    c.total_fallible = 0;
}

void parse_env(Config& c) {
    const char* env = std::getenv("CNETD_FAILPOINTS");
    const char* log = std::getenv("CNETD_FAILPOINTS_LOG");
    const char* trace = std::getenv("CNETD_FAILPOINTS_TRACE");
    const char* file = std::getenv("CNETD_FAILPOINTS_FILE");
    c.log_path = log ? log : "";
    c.trace = trace && std::string(trace) == "1";
    c.file_path = file ? file : "";
    c.file_text.clear();
    c.env_rules = parse_rules(env ? env : "");
    c.rules = c.env_rules;
    reset_counters(c);
    const bool off = c.rules.empty() && !c.trace && c.file_path.empty();
    detail::g_state.store(off ? 0 : 1, std::memory_order_relaxed);
}

// Re-reads CNETD_FAILPOINTS_FILE; new content replaces the file's rules (see the header). The
// content is compared, not the mtime: file times tick by jiffies, so two quick writes could look
// alike.
void refresh_file(Config& c) {
    if (c.file_path.empty()) return;
    std::string text;
    UniqueFd fd(::open(c.file_path.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[512];
    ssize_t n;
    while (fd.valid() && (n = ::read(fd.get(), buf, sizeof buf)) > 0)
        text.append(buf, static_cast<size_t>(n));
    if (text == c.file_text) return;
    c.file_text = std::move(text);
    c.rules = c.env_rules;
    for (auto& r : parse_rules(c.file_text)) c.rules.push_back(std::move(r));
    reset_counters(c);
}

void append_log(const std::string& path, const std::string& line) {
    if (path.empty()) return;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    [[maybe_unused]] ssize_t w = ::write(fd, line.data(), line.size());
    ::fsync(fd);
    ::close(fd);
}

// Counts this hit and returns the rule that lands on it, if any. `fallible`: a hit_error() call,
// the only kind an error rule can land on.
const Rule* match(Config& c, const char* name, bool fallible, long& nth_out) {
    long n_name = ++c.hits[name];
    long n_total = ++c.total;
    long n_fallible = fallible ? ++c.total_fallible : 0;
    if (c.trace) append_log(c.log_path, fmt::format("hit {}\n", name));
    for (const auto& r : c.rules) {
        const bool error = r.action == Action::Error;
        if (error && !fallible) continue;
        const bool star = r.name == "*";
        if (!star && r.name != name) continue;
        long n = !star ? n_name : error ? n_fallible : n_total;
        if (r.nth != 0 && r.nth != n) continue;
        nth_out = n;
        return &r;
    }
    return nullptr;
}

// Returns true when the action is Error.
bool act(const char* name, bool fallible) {
    Config& c = config();
    Rule rule;
    long nth = 0;
    {
        std::lock_guard lk(c.mu);
        if (detail::g_state.load() < 0) parse_env(c);
        if (detail::g_state.load() == 0) return false;
        refresh_file(c);
        const Rule* r = match(c, name, fallible, nth);
        if (!r) return false;
        rule = *r;
    }
    switch (rule.action) {
        case Action::Kill:
            append_log(c.log_path, fmt::format("kill {} {}\n", name, nth));
            ::kill(::getpid(), SIGKILL);
            for (;;) ::pause();
        case Action::Sleep:
            std::this_thread::sleep_for(std::chrono::milliseconds(rule.arg));
            return false;
        case Action::Error:
            append_log(c.log_path, fmt::format("error {} {}\n", name, nth));
            return true;
    }
    return false;
}

}  // namespace

namespace detail {
void hit_slow(const char* name) {
    (void)act(name, false);
}
bool error_slow(const char* name) {
    return act(name, true);
}
}  // namespace detail

void reload_for_test() {
    Config& c = config();
    std::lock_guard lk(c.mu);
    parse_env(c);
}

}  // namespace cnetd::failpoint
