// Routing and handling of API requests (docs/api.md): path + method → a read from the published
// snapshot, or a job for the kernel worker.
//
// Routes: one declarative table, Handlers::table() in daemon/handlers.cpp (method, path pattern,
// auth class, handler): a new API route is one row there plus its handler. A path no pattern
// matches is a 404; a path some pattern matches with another method is a 405 whose Allow lists
// the methods of every matching row in table order (HEAD after GET).
//
// Threading: handle() runs on the io thread. Reads (ping, info, networks, ports, netns, dns) are
// answered synchronously and never wait for the worker. The exceptions are GET /v1/firewall and
// GET /v1/cni/status/{network}, which read the kernel (nftables table, bridge links) and so run on
// the worker, as Read-priority jobs (worker.hpp): never ahead of a queued mutation. They are
// shared: every identical read that arrives while a dump is queued or running gets that dump's
// answer, and a completed dump answers further identical reads for up to `read_cache_age` as long
// as no mutation has started since it ran (Worker::mutations_started), so a read never shows
// state older than a mutation whose answer its client had already seen. Read-only clients in a
// loop thus cost the worker at most one dump per route per `read_cache_age`. The daemon runs with
// age 0 (sharing only): the kernel may change behind its back, and CNI STATUS must see that.
// HEAD is GET without the body: same routes, status and headers (the server drops the body).
// Mutations are validated on the io thread (a bad body never reaches the worker), then posted to
// the worker; their reply comes from the worker thread, so the Reply callback must hop to its own
// executor (the server's session does). Errors: each answer is either a success body or
// {"message","kind"} with the status from the ErrorKind (api::http_status); 404 for unknown paths,
// 405 (with Allow) for a wrong method, 503 when the worker no longer accepts jobs (shutting down).
// No exception escapes handle().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/clock.hpp"
#include "base/error.hpp"
#include "daemon/auth.hpp"
#include "daemon/cluster.hpp"
#include "daemon/dns_server.hpp"
#include "daemon/events.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

using json = nlohmann::json;
class DaemonMetrics;  // daemon/metrics.hpp

struct ApiRequest {
    std::string method;  // "GET", ...
    std::string target;  // "/v1/networks/bridge" (a query string is ignored)
    std::string body;
};

struct ApiResponse {
    int status = 200;
    json body;          // null: no body (204)
    std::string allow;  // for 405: the methods the path accepts
    // A streaming answer (GET /v1/events): when set, the server subscribes with its wake-up
    // (posting to the session) once it is ready to write, sends the status and headers with
    // chunked application/jsonl and then each line as it comes, until the subscription ends. An
    // error (e.g. the subscriber cap) is answered as a normal error response instead.
    using Subscribe =
        std::function<Result<std::shared_ptr<EventLog::Subscription>>(std::function<void()> wake)>;
    Subscribe stream{};
    // A text answer instead of JSON (GET /metrics): set content_type, and `text` is the body
    // as is (`body` is then ignored).
    std::string text = {};  // (initializers: the rows that list the first three fields stay valid)
    std::string content_type = {};
};

// Static facts for GET /v1/info.
struct DaemonInfo {
    std::string version;
    std::string netns_dir;
    std::string state_dir;
    std::string socket;
    std::string started_at;  // RFC 3339, UTC
};

ApiResponse error_response(const Error& e);
ApiResponse error_response(int status, const Error& e);
// error_response with "CniCode" too, the CNI error code cnetd-cni prints (the CNI routes):
// NotFound 3, InvalidArgument/Conflict 7, Unavailable 11, anything else 100.
ApiResponse cni_error_response(const Error& e);
ApiResponse cni_error_response(int status, const Error& e);

// One row of the route table, as tests and docs see it.
struct RouteInfo {
    std::string method;   // "GET", "POST" or "DELETE" (every GET route serves HEAD too)
    std::string pattern;  // "/v1/networks/{name}/connect": "{...}" matches one path segment
    Access access;        // the auth class the route needs (daemon/auth.hpp)
    bool cni;             // its errors carry "CniCode" (cni_error_response)
};

class Handlers {
public:
    using Reply = std::function<void(ApiResponse)>;

    // Borrows the worker, which must outlive every handle() call and every pending reply.
    Handlers(Worker& worker, DaemonInfo info,
             std::chrono::milliseconds read_cache_age = std::chrono::milliseconds(500));
    ~Handlers();

    // Calls `reply` exactly once (unless the worker is stopped with the job still queued: then the
    // job and its reply are dropped, which only happens at shutdown).
    void handle(const ApiRequest& req, Reply reply);
    // After a config reload (SIGHUP): changed keys that wait for a restart ("bip: a -> b"), shown
    // by GET /v1/info as PendingRestart. Called on the io thread, like handle().
    void set_reload_status(std::vector<std::string> pending_restart, std::string reloaded_at);
    // The embedded resolver (daemon/dns_server.hpp), borrowed: it must outlive every handle() call
    // and every pending reply. With it, connect answers, network inspect and the CNI ADD/CHECK
    // answers carry each endpoint's "ResolvConf" and "Dns" (DnsServer::endpoint_dns), and GET
    // /v1/dns answers its status(); without it (nullptr, the default) those fields are left out
    // and GET /v1/dns is a 503 "embedded DNS not running". Any thread.
    void set_dns(const DnsServer* dns) { dns_.store(dns); }
    // This node's cluster membership (daemon/cluster.hpp; the daemon's ClusterAgent), borrowed like
    // the resolver. With it: POST /v1/networks with "Driver": "overlay" and DELETE of a network
    // whose scope is global go to the cluster (run on the handlers' own cluster thread, one at a
    // time: they wait for etcd and for this node's realization, never on the io thread or the
    // worker), GET /v1/nodes answers its nodes() and GET /v1/info carries "Cluster". Without it
    // (nullptr, the default: no `cluster:` config) an overlay create is a 400 naming the config
    // section and GET /v1/nodes a 400 saying the node is in no cluster. Any thread.
    void set_cluster(Cluster* cluster) { cluster_.store(cluster); }
    // The daemon's event log (daemon/events.hpp), borrowed like the resolver: GET /v1/events
    // streams from it, and the netns create/remove jobs publish to it. Without it (nullptr, the
    // default) GET /v1/events is a 503. Any thread.
    void set_events(EventLog* events) { events_.store(events); }
    // The metrics (daemon/metrics.hpp), borrowed like the resolver. With them: every answered
    // request is counted by method, route PATTERN and status, the create/remove/connect/
    // disconnect jobs (and CNI ADD/DEL) time their engine call, and GET /metrics answers the
    // text exposition. Without (nullptr, the default) GET /metrics is a 503. Any thread.
    void set_metrics(DaemonMetrics* metrics) { metrics_.store(metrics); }
    // How long the cluster's create/remove may take (a client's default timeout is 30 s).
    static constexpr std::chrono::milliseconds kClusterTimeout{20'000};

    // The shared kernel reads, for tests and diagnostics (any thread).
    struct ReadStats {
        std::size_t waiting = 0;  // readers waiting for a dump queued or running now
        uint64_t dumps = 0;       // dumps run
        uint64_t cached = 0;      // reads answered from a completed dump without the worker
    };
    ReadStats read_stats() const;

    // The route table, in matching order (pure; any thread).
    static std::vector<RouteInfo> routes();

private:
    // The path segments the pattern's "{...}" matched, in order (already %-decoded).
    using Args = std::vector<std::string>;
    using Handler = void (Handlers::*)(const ApiRequest&, const Args&, Reply);
    struct Route;
    static const std::vector<Route>& table();

    void post_job(Reply reply, std::function<ApiResponse(Backend&)> job);
    // Answers `reply` with the result of `dump` (a Read job on the worker), shared with every other
    // read of the same `key` (see the file comment).
    void shared_read(const std::string& key, Reply reply,
                     std::function<ApiResponse(Backend&)> dump);

    // The route handlers (one per table row). Snapshot reads answer at once; the rest post a job.
    void get_ping(const ApiRequest&, const Args&, Reply reply);
    void get_info(const ApiRequest&, const Args&, Reply reply);
    void get_firewall(const ApiRequest&, const Args&, Reply reply);
    void get_ports(const ApiRequest&, const Args&, Reply reply);
    void list_networks(const ApiRequest&, const Args&, Reply reply);
    void create_network(const ApiRequest& req, const Args&, Reply reply);
    void get_network(const ApiRequest&, const Args& args, Reply reply);
    void remove_network(const ApiRequest&, const Args& args, Reply reply);
    void connect(const ApiRequest& req, const Args& args, Reply reply);
    void disconnect(const ApiRequest& req, const Args& args, Reply reply);
    void list_netns(const ApiRequest&, const Args&, Reply reply);
    void create_netns(const ApiRequest& req, const Args&, Reply reply);
    void remove_netns(const ApiRequest&, const Args& args, Reply reply);
    void get_dns(const ApiRequest&, const Args&, Reply reply);
    void list_nodes(const ApiRequest&, const Args&, Reply reply);
    void get_events(const ApiRequest& req, const Args&, Reply reply);
    void get_metrics(const ApiRequest&, const Args&, Reply reply);
    // `reply` wrapped so that its answer is counted under `route` (when metrics are set).
    Reply counted(const ApiRequest& req, const std::string& route, Reply reply);
    // Runs `call` (a blocking Cluster call) on the cluster thread and replies with its answer.
    void post_cluster(Reply reply, std::function<ApiResponse()> call);
    // The CNI routes (daemon/handlers_cni.cpp).
    void cni_add(const ApiRequest& req, const Args&, Reply reply);
    void cni_del(const ApiRequest& req, const Args&, Reply reply);
    void cni_check(const ApiRequest& req, const Args&, Reply reply);
    void cni_gc(const ApiRequest& req, const Args&, Reply reply);
    void cni_status(const ApiRequest&, const Args& args, Reply reply);

    Worker& worker_;
    DaemonInfo info_;
    std::vector<std::string> pending_restart_;
    std::string reloaded_at_;
    std::chrono::milliseconds read_cache_age_;
    struct ReadCache;
    std::shared_ptr<ReadCache> reads_;  // shared with the jobs in flight
    std::atomic<const DnsServer*> dns_{nullptr};
    std::atomic<Cluster*> cluster_{nullptr};
    std::atomic<EventLog*> events_{nullptr};
    std::atomic<DaemonMetrics*> metrics_{nullptr};
    class ClusterThread;
    std::mutex cluster_thread_mu_;
    std::unique_ptr<ClusterThread> cluster_thread_;  // made at the first cluster mutation
};

using cnetd::now_rfc3339;  // base/clock.hpp

}  // namespace cnetd::daemon
