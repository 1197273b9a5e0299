// The daemon's event log (docs/observability.md, "Events"): what changed, in Docker's event shape,
// for `GET /v1/events` streams and `netctl events`, and as the one tap metrics count from.
//
// Shape (Docker's api/types/events, spec/observability.md):
//   {"Type":"network","Action":"connect","Actor":{"ID":"<network id>","Attributes":{"name":"<net>",
//    "type":"bridge","container":"<container id or name>"}},"scope":"local","time":<s>,
//    "timeNano":<ns>}
// Types and actions: network create|connect|disconnect|destroy (Docker's), and cnetd's own:
// port publish|unpublish, firewall repair, netns create|remove, gc collect, reload
// reload|fail. Attributes are strings only (Docker's rule); each type's set is in the docs.
// Where events come from (never the engine itself: lib/core stays unaware of them):
//   - network and port events: a diff of the worker's snapshot before/after each publication,
//     made in the snapshot hook (before the job's replies: a client that got its connect answer
//     and then asks with `since` sees the event), in a fixed order per publication: network
//     create, connect, port publish; port unpublish, disconnect, network destroy;
//   - netns: the handlers' create/remove jobs; gc: the GC watch's collection; firewall: the drift
//     monitor's repair; reload: the daemon's SIGHUP handling.
//
// Threading: publish() from any thread (the worker mostly); it never blocks on a subscriber: each
// subscriber has a bounded queue, and one that overflows is dropped: its queue gets one final
// error line and then ends. Subscribers are served on their own executor (the server's session);
// replay() is a copy from the ring under the lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"

namespace cnetd::daemon {

struct Event {
    std::string type;      // "network", "port", "firewall", "netns", "gc", "reload"
    std::string action;    // "create", "connect", ...
    std::string actor_id;  // network id, netns name, ...
    std::map<std::string, std::string> attributes;  // Docker's Actor.Attributes
    std::string scope = "local";                    // "global" for overlay networks
    int64_t time_nano = 0;                          // CLOCK_REALTIME, ns
    uint64_t seq = 0;  // set by publish(): 1, 2, ... in publication order
};

// One line of the stream: the event as Docker's JSON object (no trailing newline).
std::string to_json_line(const Event& e);

// Docker's `filters` (JSON object of string arrays) and `since`/`until` (Unix seconds, with an
// optional ".nnnnnnnnn" fraction, or RFC 3339). Keys: type, event (= action), network (id, id
// prefix or name: Actor.ID or Attributes.name of network/port events), container (Attributes
// .container). Values of one key are ORed, keys are ANDed (Docker's rule).
struct EventFilter {
    std::map<std::string, std::vector<std::string>> filters;
    std::optional<int64_t> since_nano, until_nano;
    bool matches(const Event& e) const;
};
// Parses the query string of GET /v1/events ("filters=<urlencoded json>&since=..&until=..").
// Errors name the parameter and the value ("filters: unknown key \"foo\"").
Result<EventFilter> parse_event_query(const std::string& query);

class EventLog {
    struct State;

public:
    static constexpr std::size_t kRing = 256;  // replayed by since/until, as Docker keeps
    static constexpr std::size_t kSubscriberQueue = 1024;  // lines buffered per subscriber
    // Concurrent GET /v1/events streams the daemon serves; beyond it a new one is answered 503
    // (each stream also holds one of the server's connection slots).
    static constexpr std::size_t kMaxSubscribers = 64;

    // A live subscription: lines are pushed by publish(); the session drains them.
    class Subscription {
    public:
        ~Subscription();  // release()
        Subscription(const Subscription&) = delete;
        Subscription& operator=(const Subscription&) = delete;
        // Appends the queued lines (each ending in "\n"; after an overflow the final error line)
        // to `out`. True once the subscription has ended and `out` got its last line: the stream
        // is complete. Any thread; never blocks on a publisher for more than a queue move.
        bool take(std::string& out);
        // The owner is done (client gone): no more lines are queued, `wake` is not called again.
        void release();
        // The filter's `until` (the stream ends then, Docker's rule), if any.
        std::optional<int64_t> until_nano() const { return until_; }

    private:
        friend class EventLog;
        struct Impl;
        Subscription(std::shared_ptr<State> st, std::shared_ptr<Impl> impl,
                     std::optional<int64_t> until);
        std::shared_ptr<State> st_;
        std::shared_ptr<Impl> impl_;
        std::optional<int64_t> until_;
    };

    explicit EventLog(std::size_t ring = kRing, std::size_t queue = kSubscriberQueue);
    ~EventLog();

    // Stamps time (if 0) and seq, keeps it in the ring, calls the tap, queues it to every
    // matching subscriber. Never blocks on a subscriber.
    void publish(Event e);
    // The ring's events matching `f` (since/until applied), oldest first.
    std::vector<Event> replay(const EventFilter& f) const;
    // Subscribes: `wake` is called (from publish()'s thread, without the lock held) when the
    // subscription has new lines or has ended; the caller then drains it. The subscription ends
    // when dropped (overflow), when the log is closed (shutdown) or when released by its owner.
    // With `since` or `until` set, the ring's matching events are queued first, in the same step
    // as the registration (no event is lost or doubled between replay and live); an `until` not
    // in the future ends the subscription right after that replay (Docker's rule). A closed log
    // gives an ended, empty subscription.
    std::shared_ptr<Subscription> subscribe(EventFilter f, std::function<void()> wake);
    // Shutdown: every subscription ends (no error line).
    void close();
    std::size_t subscribers() const;
    uint64_t dropped_subscribers() const;  // overflowed so far
    // Metrics (daemon/metrics.hpp) count events here: called for every published event, on the
    // publisher's thread, before subscribers are queued. Must be quick. Set before use.
    void set_tap(std::function<void(const Event&)> tap);

private:
    std::shared_ptr<State> st_;
};

}  // namespace cnetd::daemon
