#include "base/opstats.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

namespace cnetd::opstats {
namespace {

struct State {
    std::mutex mu;
    // Keyed by content (two literals with the same text are one counter).
    std::map<std::string_view, uint64_t> errors, counts;
    std::shared_ptr<const Observer> observer;  // replaced whole, read under mu
    std::atomic<bool> has_observer{false};
};

State& state() {
    static State* s = new State;  // never destroyed: worker threads may report at exit
    return *s;
}

std::vector<std::pair<std::string, uint64_t>> copy(const std::map<std::string_view, uint64_t>& m) {
    std::vector<std::pair<std::string, uint64_t>> out;
    out.reserve(m.size());
    for (const auto& [k, v] : m) out.emplace_back(std::string(k), v);
    return out;
}

}  // namespace

void count_error(const char* op) {
    State& s = state();
    std::lock_guard lk(s.mu);
    ++s.errors[op];
}

void count(const char* what) {
    State& s = state();
    std::lock_guard lk(s.mu);
    ++s.counts[what];
}

std::vector<std::pair<std::string, uint64_t>> errors() {
    State& s = state();
    std::lock_guard lk(s.mu);
    return copy(s.errors);
}

std::vector<std::pair<std::string, uint64_t>> counts() {
    State& s = state();
    std::lock_guard lk(s.mu);
    return copy(s.counts);
}

uint64_t count_of(const char* what) {
    State& s = state();
    std::lock_guard lk(s.mu);
    auto it = s.counts.find(what);
    return it == s.counts.end() ? 0 : it->second;
}

void set_observer(Observer o) {
    State& s = state();
    std::lock_guard lk(s.mu);
    s.observer = o ? std::make_shared<const Observer>(std::move(o)) : nullptr;
    s.has_observer.store(s.observer != nullptr, std::memory_order_release);
}

void observe(const char* what, double seconds) {
    State& s = state();
    if (!s.has_observer.load(std::memory_order_acquire)) return;
    std::shared_ptr<const Observer> o;
    {
        std::lock_guard lk(s.mu);
        o = s.observer;
    }
    if (o) (*o)(what, seconds);  // outside the lock: the observer may take its own
}

void reset_for_tests() {
    State& s = state();
    std::lock_guard lk(s.mu);
    s.errors.clear();
    s.counts.clear();
}

}  // namespace cnetd::opstats
