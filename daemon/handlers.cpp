#include "daemon/handlers.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "api/codec.hpp"
#include "api/protocol.hpp"
#include "base/log.hpp"
#include "base/validate.hpp"
#include "daemon/codec.hpp"
#include "daemon/metrics.hpp"
#include "store/file_store.hpp"

namespace cnetd::daemon {
namespace {

// "/v1/networks/a%20b?x=1" → {"v1", "networks", "a b"}. False on a bad %-escape.
bool split_path(std::string_view target, std::vector<std::string>& out) {
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    std::string seg;
    auto flush = [&] {
        if (!seg.empty()) out.push_back(std::move(seg));
        seg.clear();
    };
    for (size_t i = 0; i < target.size(); ++i) {
        char c = target[i];
        if (c == '/') {
            flush();
        } else if (c == '%') {
            if (i + 2 >= target.size()) return false;
            int hi = hex_value(target[i + 1]), lo = hex_value(target[i + 2]);
            if (hi < 0 || lo < 0) return false;
            seg += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            seg += c;
        }
    }
    flush();
    return true;
}

Error shutting_down_not_started() {
    return Error(ErrorKind::Unavailable,
                 "cnetd is shutting down: request not started, nothing changed; retry once it is "
                 "back");
}

Error shutting_down_not_accepted() {
    return Error(ErrorKind::Unavailable, "cnetd is shutting down: request not accepted");
}

ApiResponse no_such_endpoint(const ApiRequest& req) {
    return error_response(
        Error::not_found(fmt::format("no such API endpoint: {} {}", req.method, req.target)));
}

// `allow`: the methods the path takes ("GET, HEAD, POST"). On a CNI route the body carries the
// CniCode too, as every answer of those routes does.
ApiResponse method_not_allowed(const ApiRequest& req, std::string allow, bool cni) {
    Error e = Error::invalid(
        fmt::format("method {} not allowed on {} (allowed: {})", req.method, req.target, allow));
    ApiResponse r = cni ? cni_error_response(405, e) : error_response(405, e);
    r.allow = std::move(allow);
    return r;
}

// Splits "/v1/networks/{name}" into its segments (as split_path splits a target).
std::vector<std::string> segments_of(std::string_view pattern) {
    std::vector<std::string> out;
    split_path(pattern, out);
    return out;
}

bool is_param(const std::string& segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Whether `path` has the pattern's shape; the "{...}" segments go to `args`.
bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
             std::vector<std::string>& args) {
    if (pattern.size() != path.size()) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (is_param(pattern[i]))
            args.push_back(path[i]);
        else if (pattern[i] != path[i])
            return false;
    }
    return true;
}

const core::Network* find_in(const std::vector<core::Network>& nets, const std::string& key,
                             Result<void>& err) {
    for (const auto& n : nets)
        if (n.name == key || n.id == key) return &n;
    const core::Network* found = nullptr;
    if (!key.empty()) {
        for (const auto& n : nets) {
            if (n.id.compare(0, key.size(), key) != 0) continue;
            if (found) {
                err = Error::invalid(
                    fmt::format("network {} is ambiguous: several ids start with it", key));
                return nullptr;
            }
            found = &n;
        }
    }
    if (!found) err = Error::not_found(fmt::format("network {} not found", key));
    return found;
}

// The driver whose networks the cluster makes (core::Network::overlay).
constexpr std::string_view kOverlayDriver = "overlay";

Error no_cluster_for_overlay() {
    return Error::invalid("overlay networks need a `cluster:` section in the config");
}

api::NodeStatus to_api(const NodeStatus& n) {
    return {n.name, n.address, n.blocks, n.ttl_left, n.last_seen, n.self};
}

api::ClusterStatus to_api(const ClusterStatus& c) {
    return {c.node,       c.advertise_address, c.etcd,     c.etcd_reachable,
            c.etcd_error, c.unreachable_since, c.lease_id, c.lease_ttl_left,
            c.pending,    c.networks,          c.peers};
}

// netns create/remove (from the jobs, before their replies: a client that got its answer and
// then asks with `since` sees the event).
void publish_netns_event(EventLog* events, const char* action, const std::string& name,
                         const std::string& path) {
    if (!events) return;
    Event e;
    e.type = "netns";
    e.action = action;
    e.actor_id = name;
    e.attributes = {{"name", name}, {"path", path}};
    events->publish(std::move(e));
}

// The method as a metrics label: the methods the API knows, anything else "other" (a client
// chooses the method: it must not make a label value of its own).
const char* method_label(const std::string& m) {
    for (const char* known : {"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH"})
        if (m == known) return known;
    return "other";
}

}  // namespace

// The cluster's blocking calls (create/remove of overlay networks wait for etcd and for this
// node's realization), one at a time in arrival order, off the io thread and the worker. Jobs
// still queued at destruction are answered "shutting down"; the running one finishes first.
class Handlers::ClusterThread {
public:
    struct Job {
        std::function<void()> run, cancel;
    };
    ClusterThread() : thread_([this] { loop(); }) {}
    ~ClusterThread() {
        std::deque<Job> left;
        {
            std::lock_guard lk(mu_);
            stop_ = true;
            left.swap(queue_);
        }
        cv_.notify_one();
        thread_.join();
        for (auto& j : left) j.cancel();
    }
    void post(Job j) {
        {
            std::lock_guard lk(mu_);
            queue_.push_back(std::move(j));
        }
        cv_.notify_one();
    }

private:
    void loop() {
        for (;;) {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            Job j = std::move(queue_.front());
            queue_.pop_front();
            lk.unlock();
            j.run();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    bool stop_ = false;
    std::thread thread_;  // last: starts once the rest is built
};

ApiResponse error_response(const Error& e) {
    return error_response(api::http_status(e.kind()), e);
}

ApiResponse error_response(int status, const Error& e) {
    ApiResponse r;
    r.status = status;
    r.body = api::error_body(e);
    return r;
}

// The shared kernel reads (see shared_read). `mu` guards everything; replies are called outside it.
struct Handlers::ReadCache {
    struct Entry {
        std::vector<Reply> waiters;  // non-empty: a dump for this key is queued or running
        bool cached = false;         // `response` holds a completed dump's answer
        uint64_t mutations = 0;      // Worker::mutations_started() when it ran
        std::chrono::steady_clock::time_point at;  // when it started
        ApiResponse response;
    };
    static constexpr std::size_t kMaxIdleEntries = 256;  // keys are client-chosen (network names)
    std::mutex mu;
    std::map<std::string, Entry> entries;
    uint64_t dumps = 0, cached = 0;

    // Takes the waiters of `key` (under the lock) so they can be answered outside it.
    std::vector<Reply> take(const std::string& key) {
        std::lock_guard lk(mu);
        std::vector<Reply> out;
        if (auto it = entries.find(key); it != entries.end()) out.swap(it->second.waiters);
        return out;
    }
};

Handlers::Handlers(Worker& worker, DaemonInfo info, std::chrono::milliseconds read_cache_age)
    : worker_(worker),
      info_(std::move(info)),
      read_cache_age_(read_cache_age),
      reads_(std::make_shared<ReadCache>()) {}

Handlers::~Handlers() = default;

Handlers::ReadStats Handlers::read_stats() const {
    std::lock_guard lk(reads_->mu);
    ReadStats st{0, reads_->dumps, reads_->cached};
    for (const auto& [k, e] : reads_->entries) st.waiting += e.waiters.size();
    return st;
}

void Handlers::shared_read(const std::string& key, Reply reply,
                           std::function<ApiResponse(Backend&)> dump) {
    auto cache = reads_;
    {
        std::unique_lock lk(cache->mu);
        auto& e = cache->entries[key];
        // A dump is queued or running: it started after every mutation this client has seen
        // answered (the worker runs one job at a time), so its answer is current enough.
        if (!e.waiters.empty()) return e.waiters.push_back(std::move(reply));
        if (e.cached && e.mutations == worker_.mutations_started() &&
            std::chrono::steady_clock::now() - e.at < read_cache_age_) {
            ++cache->cached;
            ApiResponse r = e.response;
            lk.unlock();
            return reply(std::move(r));
        }
        e.waiters.push_back(std::move(reply));
        if (cache->entries.size() > ReadCache::kMaxIdleEntries) {
            std::erase_if(cache->entries, [](const auto& kv) { return kv.second.waiters.empty(); });
        }
    }
    Worker* w = &worker_;
    bool queued = worker_.post(
        [cache, key, dump = std::move(dump), w](Backend& b) {
            const uint64_t mutations = w->mutations_started();
            const auto at = std::chrono::steady_clock::now();
            ApiResponse resp;
            try {
                resp = dump(b);
            } catch (const std::exception& e) {
                resp = error_response(Error::internal(fmt::format("internal error: {}", e.what())));
            }
            std::vector<Reply> waiters;
            {
                std::lock_guard lk(cache->mu);
                auto& e = cache->entries[key];
                waiters.swap(e.waiters);
                ++cache->dumps;
                e.cached = resp.status == 200;  // failures are retried by the next read
                e.mutations = mutations;
                e.at = at;
                e.response = resp;
            }
            for (auto& r : waiters) r(resp);
        },
        [cache, key] {
            for (auto& r : cache->take(key)) r(error_response(shutting_down_not_started()));
        },
        Worker::Priority::Read);
    if (!queued) {
        for (auto& r : cache->take(key)) r(error_response(shutting_down_not_accepted()));
    }
}

void Handlers::post_job(Reply reply, std::function<ApiResponse(Backend&)> job) {
    // The reply is shared: the worker calls it, but if post() refuses, we call it here.
    auto shared_reply = std::make_shared<Reply>(std::move(reply));
    bool queued = worker_.post(
        [this, shared_reply, job = std::move(job)](Backend& b) {
            auto resp = std::make_shared<ApiResponse>();
            try {
                *resp = job(b);
            } catch (const std::exception& e) {
                *resp =
                    error_response(Error::internal(fmt::format("internal error: {}", e.what())));
            }
            // Answered once the snapshot with this change is out: a GET right after sees it.
            worker_.after_publish([shared_reply, resp] { (*shared_reply)(std::move(*resp)); });
        },
        [shared_reply] { (*shared_reply)(error_response(shutting_down_not_started())); });
    if (!queued) (*shared_reply)(error_response(shutting_down_not_accepted()));
}

// The route table: the one place a new API route goes (method, pattern, auth class, CNI errors,
// handler). Rows are tried in order; "{...}" matches one path segment, handed to the handler.
struct Handlers::Route {
    RouteInfo info;
    Handler handler;
    std::vector<std::string> segments = segments_of(info.pattern);
};

const std::vector<Handlers::Route>& Handlers::table() {
    constexpr Access R = Access::Read, W = Access::Write;
    // clang-format off
    static const std::vector<Route> routes{
        {{"GET",    "/v1/ping",                        R, false}, &Handlers::get_ping},
        {{"GET",    "/v1/info",                        R, false}, &Handlers::get_info},
        {{"GET",    "/v1/firewall",                    R, false}, &Handlers::get_firewall},
        {{"GET",    "/v1/ports",                       R, false}, &Handlers::get_ports},
        {{"GET",    "/v1/networks",                    R, false}, &Handlers::list_networks},
        {{"POST",   "/v1/networks",                    W, false}, &Handlers::create_network},
        {{"GET",    "/v1/networks/{name}",             R, false}, &Handlers::get_network},
        {{"DELETE", "/v1/networks/{name}",             W, false}, &Handlers::remove_network},
        {{"POST",   "/v1/networks/{name}/connect",     W, false}, &Handlers::connect},
        {{"POST",   "/v1/networks/{name}/disconnect",  W, false}, &Handlers::disconnect},
        {{"GET",    "/v1/netns",                       R, false}, &Handlers::list_netns},
        {{"POST",   "/v1/netns",                       W, false}, &Handlers::create_netns},
        {{"DELETE", "/v1/netns/{name}",                W, false}, &Handlers::remove_netns},
        {{"GET",    "/v1/dns",                         R, false}, &Handlers::get_dns},
        {{"GET",    "/v1/nodes",                       R, false}, &Handlers::list_nodes},
        {{"GET",    "/v1/events",                      R, false}, &Handlers::get_events},
        {{"POST",   "/v1/cni/add",                     W, true},  &Handlers::cni_add},
        {{"POST",   "/v1/cni/del",                     W, true},  &Handlers::cni_del},
        {{"POST",   "/v1/cni/check",                   W, true},  &Handlers::cni_check},
        {{"POST",   "/v1/cni/gc",                      W, true},  &Handlers::cni_gc},
        {{"GET",    "/v1/cni/status/{network}",        R, true},  &Handlers::cni_status},
        {{"GET",    "/metrics",                        R, false}, &Handlers::get_metrics},
    };
    // clang-format on
    return routes;
}

std::vector<RouteInfo> Handlers::routes() {
    std::vector<RouteInfo> out;
    for (const Route& r : table()) out.push_back(r.info);
    return out;
}

void Handlers::handle(const ApiRequest& req, Reply reply) {
    try {
        static const std::string kUnmatched = "unmatched";  // the route label of a 404
        std::vector<std::string> path;
        if (!split_path(req.target, path))
            return counted(req, kUnmatched, std::move(reply))(no_such_endpoint(req));
        // HEAD is routed as GET (the server sends the answer without its body); error messages
        // still name the method the client used.
        const std::string m = req.method == "HEAD" ? std::string("GET") : req.method;
        std::string allow;
        bool cni = false;
        const std::string* route = &kUnmatched;  // the first pattern the path matched
        for (const Route& r : table()) {
            Args args;
            if (!matches(r.segments, path, args)) continue;
            if (r.info.method == m)
                return (this->*r.handler)(req, args,
                                          counted(req, r.info.pattern, std::move(reply)));
            if (allow.empty()) route = &r.info.pattern;
            allow += (allow.empty() ? "" : ", ") + r.info.method;
            if (r.info.method == "GET") allow += ", HEAD";
            cni = cni || r.info.cni;
        }
        if (allow.empty()) return counted(req, kUnmatched, std::move(reply))(no_such_endpoint(req));
        counted(req, *route, std::move(reply))(method_not_allowed(req, std::move(allow), cni));
    } catch (const std::exception& e) {
        // Only allocation failures or JSON type bugs can land here; never let them kill the loop.
        reply(error_response(Error::internal(fmt::format("internal error: {}", e.what()))));
    }
}

Handlers::Reply Handlers::counted(const ApiRequest& req, const std::string& route, Reply reply) {
    DaemonMetrics* m = metrics_.load();
    if (!m) return reply;
    // `route` is a table row's pattern (static) or the static "unmatched": kept by pointer.
    return [m, method = method_label(req.method), route = &route,
            reply = std::move(reply)](ApiResponse resp) {
        m->metrics().api_request(method, *route, resp.status);
        reply(std::move(resp));
    };
}

void Handlers::get_metrics(const ApiRequest&, const Args&, Reply reply) {
    DaemonMetrics* m = metrics_.load();
    if (!m) {
        return reply(
            error_response(503, Error(ErrorKind::Unavailable, "metrics are not collected")));
    }
    ApiResponse r;
    r.text = m->scrape();
    r.content_type = obs::Metrics::kContentType;
    reply(std::move(r));
}

void Handlers::get_ping(const ApiRequest&, const Args&, Reply reply) {
    reply({200, api::to_json(api::Ping{}), {}});
}

void Handlers::get_ports(const ApiRequest&, const Args&, Reply reply) {
    reply({200, ports_to_json(worker_.snapshot()->networks), {}});
}

void Handlers::list_networks(const ApiRequest&, const Args&, Reply reply) {
    auto snap = worker_.snapshot();
    const auto roles = core::gateway_roles(snap->networks);
    const DnsServer* dns = dns_.load();
    std::vector<api::Network> out;
    for (const auto& n : snap->networks) out.push_back(to_api(n, &roles, dns));
    reply({200, api::to_json(out), {}});
}

void Handlers::post_cluster(Reply reply, std::function<ApiResponse()> call) {
    auto shared_reply = std::make_shared<Reply>(std::move(reply));
    auto run = [shared_reply, call = std::move(call)] {
        ApiResponse resp;
        try {
            resp = call();
        } catch (const std::exception& e) {
            resp = error_response(Error::internal(fmt::format("internal error: {}", e.what())));
        }
        (*shared_reply)(std::move(resp));
    };
    auto cancel = [shared_reply] { (*shared_reply)(error_response(shutting_down_not_started())); };
    std::lock_guard lk(cluster_thread_mu_);
    if (!cluster_thread_) cluster_thread_ = std::make_unique<ClusterThread>();
    cluster_thread_->post({std::move(run), std::move(cancel)});
}

void Handlers::create_network(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = parse_create_network(req.body);
    if (!parsed) return reply(error_response(parsed.error()));
    if (parsed->driver == kOverlayDriver) {
        Cluster* cluster = cluster_.load();
        if (!cluster) return reply(error_response(no_cluster_for_overlay()));
        return post_cluster(std::move(reply), [cluster, r = std::move(parsed).value()] {
            auto n = cluster->create_network(r, kClusterTimeout);
            if (!n) return error_response(n.error());
            log::debug("api: created overlay network {} ({})", n->name, n->subnet.str());
            return ApiResponse{201, network_to_json(*n), {}};
        });
    }
    post_job(std::move(reply), [r = std::move(parsed).value(), m = metrics_.load()](Backend& b) {
        auto n = timed_op(m, obs::Op::CreateNetwork, "api", [&] { return b.create_network(r); });
        if (!n) return error_response(n.error());
        log::debug("api: created network {} ({}) on {}", n->name, n->subnet.str(), n->bridge);
        return ApiResponse{201, network_to_json(*n), {}};
    });
}

void Handlers::get_network(const ApiRequest&, const Args& args, Reply reply) {
    auto snap = worker_.snapshot();
    Result<void> err;
    const core::Network* n = find_in(snap->networks, args[0], err);
    if (!n) return reply(error_response(err.error()));
    const auto roles = core::gateway_roles(snap->networks);
    reply({200, network_to_json(*n, &roles, dns_.load()), {}});
}

void Handlers::remove_network(const ApiRequest&, const Args& args, Reply reply) {
    // A global (overlay) network is removed cluster-wide; the cluster refuses it while any node
    // has endpoints on it. Without a cluster (config changed) it is removed here only.
    if (Cluster* cluster = cluster_.load()) {
        auto snap = worker_.snapshot();
        Result<void> err;
        const core::Network* n = find_in(snap->networks, args[0], err);
        if (n && n->overlay) {
            return post_cluster(std::move(reply), [cluster, name = n->name] {
                auto r = cluster->remove_network(name, kClusterTimeout);
                if (!r) return error_response(r.error());
                log::debug("api: removed overlay network {}", name);
                return ApiResponse{204, nullptr, {}};
            });
        }
    }
    post_job(std::move(reply), [name = args[0], m = metrics_.load()](Backend& b) {
        auto r = timed_op(m, obs::Op::RemoveNetwork, "api", [&] { return b.remove_network(name); });
        if (!r) return error_response(r.error());
        log::debug("api: removed network {}", name);
        return ApiResponse{204, nullptr, {}};
    });
}

void Handlers::connect(const ApiRequest& req, const Args& args, Reply reply) {
    auto parsed = parse_connect(req.body, args[0]);
    if (!parsed) return reply(error_response(parsed.error()));
    post_job(std::move(reply), [r = std::move(parsed).value(), dns = dns_.load(),
                                m = metrics_.load()](Backend& b) {
        auto ep = timed_op(m, obs::Op::Attach, "api", [&] { return b.connect(r); });
        if (!ep) return error_response(ep.error());
        // The request may name the network by id prefix: answer with its name.
        for (const auto& n : b.networks()) {
            if (!n.endpoints.count(ep->id)) continue;
            log::debug("api: connected {} ({}) to {} as {}", ep->name, ep->netns_path, n.name,
                       ep->address.str());
            return ApiResponse{201, connected_to_json(*ep, n, dns), {}};
        }
        return ApiResponse{201, endpoint_to_json(*ep, r.network), {}};  // never: it was just made
    });
}

void Handlers::disconnect(const ApiRequest& req, const Args& args, Reply reply) {
    auto parsed = parse_disconnect(req.body);
    if (!parsed) return reply(error_response(parsed.error()));
    post_job(std::move(reply), [name = args[0], target = std::move(parsed).value(),
                                m = metrics_.load()](Backend& b) {
        auto r = timed_op(m, obs::Op::Detach, "api", [&] { return b.disconnect(name, target); });
        if (!r) return error_response(r.error());
        log::debug("api: disconnected {} from {}", target, name);
        return ApiResponse{204, nullptr, {}};
    });
}

void Handlers::list_netns(const ApiRequest&, const Args&, Reply reply) {
    // Read from the directory, not the worker: it is the truth, and reads must not queue.
    std::vector<std::string> names;
    if (DIR* d = ::opendir(info_.netns_dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            struct stat st {};
            std::string path = info_.netns_dir + "/" + name;
            if (::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
            names.push_back(std::move(name));
        }
        ::closedir(d);
    } else if (errno != ENOENT) {
        return reply(
            error_response(Error::sys(errno, fmt::format("list netns dir {}", info_.netns_dir))));
    }
    std::sort(names.begin(), names.end());
    std::vector<api::Netns> out;
    for (const auto& n : names) out.push_back({n, info_.netns_dir + "/" + n});
    reply({200, api::to_json(out), {}});
}

void Handlers::create_netns(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = parse_create_netns(req.body);
    if (!parsed) return reply(error_response(parsed.error()));
    post_job(std::move(reply), [this, name = std::move(parsed).value()](Backend& b) {
        auto path = b.create_netns(name);
        if (!path) return error_response(path.error());
        log::debug("api: created netns {}", *path);
        publish_netns_event(events_.load(), "create", name, *path);
        return ApiResponse{201, api::to_json(api::Netns{name, *path}), {}};
    });
}

void Handlers::remove_netns(const ApiRequest&, const Args& args, Reply reply) {
    post_job(std::move(reply), [this, name = args[0]](Backend& b) {
        auto r = b.remove_netns(name);
        if (!r) return error_response(r.error());
        log::debug("api: removed netns {}", name);
        publish_netns_event(events_.load(), "remove", name, info_.netns_dir + "/" + name);
        return ApiResponse{204, nullptr, {}};
    });
}

// Streams are subscribed by the server once it can write (ApiResponse::stream); the cap is
// checked there, in the same step as the subscription, so a burst cannot pass it.
void Handlers::get_events(const ApiRequest& req, const Args&, Reply reply) {
    EventLog* events = events_.load();
    if (!events)
        return reply(error_response(Error(ErrorKind::Unavailable, "event log not running")));
    auto q = req.target.find('?');
    auto filter = parse_event_query(q == std::string::npos ? "" : req.target.substr(q + 1));
    if (!filter) return reply(error_response(filter.error()));
    ApiResponse r;
    r.stream = [events, f = std::move(filter).value()](
                   std::function<void()> wake) -> Result<std::shared_ptr<EventLog::Subscription>> {
        if (events->subscribers() >= EventLog::kMaxSubscribers)
            return Error(ErrorKind::Unavailable,
                         fmt::format("too many event subscribers: cnetd serves at most {} GET "
                                     "/v1/events streams at a time; retry later",
                                     EventLog::kMaxSubscribers));
        return events->subscribe(f, std::move(wake));
    };
    reply(std::move(r));
}

void Handlers::set_reload_status(std::vector<std::string> pending_restart,
                                 std::string reloaded_at) {
    pending_restart_ = std::move(pending_restart);
    reloaded_at_ = std::move(reloaded_at);
}

void Handlers::get_info(const ApiRequest&, const Args&, Reply reply) {
    auto snap = worker_.snapshot();
    api::Info info;
    info.version = info_.version;
    info.netns_dir = info_.netns_dir;
    info.state_dir = info_.state_dir;
    info.socket = info_.socket;
    info.networks = snap->networks.size();
    for (const auto& n : snap->networks) info.endpoints += n.endpoints.size();
    info.started_at = info_.started_at;
    info.last_reload = reloaded_at_;
    info.pending_restart = pending_restart_;
    // Why the state store refuses mutations (store/file_store.hpp), "" while writable.
    info.state_read_only = store::read_only_reason();
    info.firewall = {snap->firewall.backend, snap->firewall.repairs, snap->firewall.last_repair,
                     snap->firewall.warnings};
    if (const Cluster* cluster = cluster_.load()) info.cluster = to_api(cluster->status());
    reply({200, api::to_json(info), {}});
}

void Handlers::get_dns(const ApiRequest&, const Args&, Reply reply) {
    const DnsServer* dns = dns_.load();
    if (!dns)
        return reply(
            error_response(503, Error(ErrorKind::Unavailable, "embedded DNS not running")));
    reply({200, api::to_json(to_api(dns->status())), {}});
}

void Handlers::list_nodes(const ApiRequest&, const Args&, Reply reply) {
    const Cluster* cluster = cluster_.load();
    if (!cluster) {
        return reply(error_response(
            Error::invalid("this node is in no cluster: the config has no `cluster:` section")));
    }
    std::vector<api::NodeStatus> out;
    for (const auto& n : cluster->nodes()) out.push_back(to_api(n));
    reply({200, api::to_json(out), {}});
}

void Handlers::get_firewall(const ApiRequest&, const Args&, Reply reply) {
    // show() dumps the kernel's table, so it runs on the worker, as a shared Read job. LastRepair
    // and Warnings come from the snapshot: every mutation before this one, repairs included, has
    // published by the time it runs.
    Worker* w = &worker_;
    shared_read("firewall", std::move(reply), [w](Backend& b) {
        firewall::Backend& fw = b.firewall();
        auto text = fw.show();
        if (!text) return error_response(std::move(text).error().wrap("show firewall"));
        auto snap = w->snapshot();
        const bool none = fw.name() == "none";
        // show() ends with "# kernel: matches" or "# kernel: differs: <why>" (firewall.hpp);
        // "none" has nothing to be out of sync with.
        const bool in_sync = none || text->find("# kernel: matches") != std::string::npos;
        const api::FirewallShow show{
            fw.name(),    b.firewall_table(),         in_sync,
            fw.repairs(), snap->firewall.last_repair, snap->firewall.warnings,
            *text};
        return ApiResponse{200, api::to_json(show), {}};
    });
}

}  // namespace cnetd::daemon
