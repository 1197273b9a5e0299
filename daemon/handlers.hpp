// Routing and handling of API requests (docs/api.md): path + method → a read from the published
// snapshot, or a job for the kernel worker.
//
// Threading: handle() runs on the io thread. Reads (ping, info, networks, ports, netns) are
// answered synchronously and never wait for the worker. The one exception is GET /v1/firewall: the
// backend's show() reads the kernel's table, so it is a worker job and waits behind mutations.
// Mutations are validated on the io thread (a bad body never reaches the worker), then posted to
// the worker; their reply comes from the worker thread, so the Reply callback must hop to its own
// executor (the server's session does). Errors: each answer is either a success body or
// {"message","kind"} with the status from the ErrorKind (api::http_status); 404 for unknown paths,
// 405 (with Allow) for a wrong method, 503 when the worker no longer accepts jobs (shutting down).
// No exception escapes handle().
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "daemon/worker.hpp"

namespace cnetd::daemon {

using json = nlohmann::json;

struct ApiRequest {
    std::string method;  // "GET", ...
    std::string target;  // "/v1/networks/bridge" (a query string is ignored)
    std::string body;
};

struct ApiResponse {
    int status = 200;
    json body;          // null: no body (204)
    std::string allow;  // for 405: the methods the path accepts
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

class Handlers {
public:
    using Reply = std::function<void(ApiResponse)>;

    // Borrows the worker, which must outlive every handle() call and every pending reply.
    Handlers(Worker& worker, DaemonInfo info);

    // Calls `reply` exactly once (unless the worker is stopped with the job still queued: then the
    // job and its reply are dropped, which only happens at shutdown).
    void handle(const ApiRequest& req, Reply reply);
    // After a config reload (SIGHUP): changed keys that wait for a restart ("bip: a -> b"), shown
    // by GET /v1/info as PendingRestart. Called on the io thread, like handle().
    void set_reload_status(std::vector<std::string> pending_restart, std::string reloaded_at);

private:
    void post_job(Reply reply, std::function<ApiResponse(Backend&)> job);
    ApiResponse get_network(const std::string& name_or_id) const;
    ApiResponse list_netns() const;
    ApiResponse info() const;
    void get_firewall(Reply reply);
    // /v1/cni/... (daemon/handlers_cni.cpp): false when `path` is not a CNI route (reply untouched).
    bool handle_cni(const ApiRequest& req, const std::vector<std::string>& path, Reply& reply);

    Worker& worker_;
    DaemonInfo info_;
    std::vector<std::string> pending_restart_;
    std::string reloaded_at_;
};

// Current time as RFC 3339 UTC with nanoseconds, like Docker's "Created".
std::string now_rfc3339();

}  // namespace cnetd::daemon
