// A client for etcd 3.4's v3 JSON gateway (grpc-gateway: POST /v3/kv/range, /v3/kv/put,
// /v3/kv/txn, /v3/kv/deleterange, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke,
// /v3/lease/timetolive, /v3/watch). Keys and values travel base64-encoded, int64 fields as JSON
// strings (overlay.md, "etcd JSON gateway").
//
// Why the gateway and not gRPC: etcd's protos need gogoproto and google-api imports that Debian
// does not ship for gRPC 1.51; the gateway is part of etcd-server itself, and Boost.Beast (already
// our HTTP stack) speaks it. One request = one HTTP/1.1 POST on a kept-alive connection.
//
// Endpoints: "http://HOST:PORT" or "https://HOST:PORT" (then ClientOptions::tls is required:
// server verified against `ca` and the endpoint's host name or IP address, client certificate
// `cert`/`key`; note that etcd's gateway dials etcd's own gRPC port with the server certificate,
// so with --client-cert-auth that certificate needs the clientAuth usage too). A request goes to
// the endpoint that answered last; on a connection error or timeout the next one is tried, each at
// most once per request. Errors: Unavailable when no endpoint answered ("etcd: no endpoint
// answered: http://192.0.2.1:2379: connect: Connection refused; ..."), Internal for a malformed
// answer, and etcd's own error (its "error"/"message" text) as Conflict for a failed precondition
// or Unavailable for "etcdserver: no leader" and the like.
//
// Threading: a Client is used by one thread at a time (the daemon's cluster agent thread), except
// cancel(), which any thread may call to abort a blocking request or watch. A Watch owns its own
// connection: the agent runs it on a second thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"

namespace cnetd::etcd {

struct TlsFiles {
    std::string ca;    // PEM CA bundle that signed the servers' certificates
    std::string cert;  // PEM client certificate
    std::string key;   // PEM private key of `cert`
};

struct ClientOptions {
    std::vector<std::string> endpoints;       // "http://192.0.2.1:2379", ...; at least one
    std::optional<TlsFiles> tls;              // required for https endpoints
    std::chrono::milliseconds timeout{3000};  // per request and endpoint (connect + answer)
};

// Checks the options (endpoint URLs parse, https has tls, files readable): InvalidArgument
// naming the field ("cluster.etcd[1]") and the value. Used by the config loader too.
Result<void> validate(const ClientOptions& opts);

struct KeyValue {
    std::string key;
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;
    int64_t lease = 0;
    bool operator==(const KeyValue&) const = default;
};

struct RangeResult {
    std::vector<KeyValue> kvs;  // sorted by key
    int64_t count = 0;          // keys in the range (also with count_only)
    int64_t revision = 0;       // the store's revision when it answered (watch from revision+1)
};

// The first key after every key starting with `prefix` (etcd's range_end for a prefix). Pure
// (defined in codec.cpp).
std::string prefix_end(const std::string& prefix);

struct Compare {
    enum class Target { Version, Create, Mod, Value, Lease };
    enum class Result { Equal, Greater, Less, NotEqual };
    std::string key;
    Target target = Target::Version;
    Result result = Result::Equal;
    int64_t number = 0;  // Version/Create/Mod/Lease
    std::string value;   // Value
};

struct TxnOp {
    enum class Kind { Put, Delete, Range };
    Kind kind = Kind::Put;
    std::string key;
    std::string value;      // Put
    int64_t lease = 0;      // Put: 0 = no lease
    std::string range_end;  // Delete/Range: "" = the key alone
};

struct TxnResult {
    bool succeeded = false;
    int64_t revision = 0;
    std::vector<RangeResult> ranges;  // one per Range op of the branch taken, in order
};

struct Lease {
    int64_t id = 0;
    int64_t ttl = 0;  // seconds granted / left
};

struct WatchEvent {
    enum class Type { Put, Delete };  // Delete includes lease expiry
    Type type = Type::Put;
    KeyValue kv;  // for Delete: key and mod_revision only
};

// One message of the watch stream.
struct WatchBatch {
    int64_t revision = 0;  // header revision
    std::vector<WatchEvent> events;
    // The start revision was compacted away: the caller must list again and watch from the
    // list's revision + 1 (the watch ends after this batch).
    bool compacted = false;
    int64_t compact_revision = 0;
};

class Client {
public:
    explicit Client(ClientOptions opts);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    Result<RangeResult> range(const std::string& key, const std::string& range_end = "",
                              bool count_only = false);
    Result<RangeResult> range_prefix(const std::string& prefix, bool count_only = false) {
        return range(prefix, prefix_end(prefix), count_only);
    }
    // Returns the revision of the put.
    Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0);
    // Returns the number of keys deleted.
    Result<int64_t> delete_range(const std::string& key, const std::string& range_end = "");
    Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                          const std::vector<TxnOp>& failure = {});

    Result<Lease> grant(int64_t ttl_seconds);
    // One keepalive round trip; returns the TTL the lease has again. NotFound when the lease is
    // gone (expired or revoked: etcd answers TTL 0 / no ID).
    Result<int64_t> keepalive(int64_t lease_id);
    // Seconds left; NotFound when the lease is gone.
    Result<int64_t> time_to_live(int64_t lease_id);
    Result<void> revoke(int64_t lease_id);

    // Streams changes of the keys under `prefix` from `start_revision` (> 0) to `on_batch` on
    // the caller's thread until on_batch returns false (then ok), cancel() is called (ok), the
    // stream breaks or no endpoint answers (error: the caller relists and watches again), or a
    // compaction is reported (that batch is delivered with compacted = true, then ok). Batches
    // are events and progress notifications (events empty, revision = how far the watch has
    // seen); etcd's "created" confirmation is not delivered. A silent stream is checked: after
    // `idle` with no byte the member must answer a linearizable read within `timeout` (etcd 3.4
    // sends progress notifications only every 10 minutes by default, and a member cut off from
    // its quorum keeps a watch open but silent); if it does not, Unavailable. TCP keepalive
    // notices a vanished peer.
    Result<void> watch(const std::string& prefix, int64_t start_revision,
                       const std::function<bool(const WatchBatch&)>& on_batch,
                       std::chrono::milliseconds idle = std::chrono::milliseconds(30000));

    // Any thread: aborts the request or watch in progress (it returns an error or ok for a watch)
    // and makes later calls fail until reset_cancel().
    void cancel();
    void reset_cancel();

    // The endpoint that answered last ("" before the first answer).
    std::string current_endpoint() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cnetd::etcd
