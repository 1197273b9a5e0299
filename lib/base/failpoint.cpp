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

namespace cnetd::failpoint {

namespace detail {
std::atomic<int> g_state{-1};
}

namespace {

enum class Action { Kill, Sleep, Error };

struct Rule {
    std::string name;  // "*" matches every point
    Action action = Action::Kill;
    long arg = 0;      // sleep milliseconds
    long nth = 0;      // 0: every hit; N: only the N-th hit
};

struct Config {
    std::mutex mu;
    std::vector<Rule> rules;
    std::map<std::string, long> hits;  // per name
    long total = 0;                    // all names
    std::string log_path;
    bool trace = false;
};

Config& config() {
    static Config c;
    return c;
}

void parse(Config& c) {
    c.rules.clear();
    c.hits.clear();
    c.total = 0;
    const char* env = std::getenv("CNETD_FAILPOINTS");
    const char* log = std::getenv("CNETD_FAILPOINTS_LOG");
    const char* trace = std::getenv("CNETD_FAILPOINTS_TRACE");
    c.log_path = log ? log : "";
    c.trace = trace && std::string(trace) == "1";
    std::string spec = env ? env : "";
    size_t pos = 0;
    while (pos < spec.size()) {
        size_t comma = spec.find(',', pos);
        std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? spec.size() : comma + 1;
        size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        Rule r;
        r.name = item.substr(0, eq);
        std::string act = item.substr(eq + 1);
        if (size_t at = act.find('@'); at != std::string::npos) {
            r.nth = std::strtol(act.c_str() + at + 1, nullptr, 10);
            act.resize(at);
        }
        if (act == "kill") {
            r.action = Action::Kill;
        } else if (act == "error") {
            r.action = Action::Error;
        } else if (act.rfind("sleep(", 0) == 0) {
            r.action = Action::Sleep;
            r.arg = std::strtol(act.c_str() + 6, nullptr, 10);
        } else {
            continue;
        }
        c.rules.push_back(std::move(r));
    }
    detail::g_state.store(c.rules.empty() && !c.trace ? 0 : 1, std::memory_order_relaxed);
}

void append_log(const std::string& path, const std::string& line) {
    if (path.empty()) return;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    [[maybe_unused]] ssize_t w = ::write(fd, line.data(), line.size());
    ::fsync(fd);
    ::close(fd);
}

// Returns the action to take for this hit, if any.
const Rule* match(Config& c, const char* name, long& nth_out) {
    long n_name = ++c.hits[name];
    long n_total = ++c.total;
    if (c.trace) append_log(c.log_path, fmt::format("hit {}\n", name));
    for (const auto& r : c.rules) {
        bool star = r.name == "*";
        if (!star && r.name != name) continue;
        long n = star ? n_total : n_name;
        if (r.nth != 0 && r.nth != n) continue;
        nth_out = n;
        return &r;
    }
    return nullptr;
}

// Returns true when the action is Error.
bool act(const char* name) {
    Config& c = config();
    Rule rule;
    long nth = 0;
    {
        std::lock_guard lk(c.mu);
        if (detail::g_state.load() < 0) parse(c);
        if (detail::g_state.load() == 0) return false;
        const Rule* r = match(c, name, nth);
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
            return true;
    }
    return false;
}

}  // namespace

namespace detail {
void hit_slow(const char* name) { (void)act(name); }
bool error_slow(const char* name) { return act(name); }
}  // namespace detail

void reload_for_test() {
    Config& c = config();
    std::lock_guard lk(c.mu);
    parse(c);
}

}  // namespace cnetd::failpoint
