// The control server: an Asio unix-stream acceptor and Beast HTTP/1.1 sessions with keep-alive.
//
// Threading: all of it runs on the one thread running the io_context; Handlers' replies that come
// from the kernel worker are posted back to the session's executor before touching the socket.
// Authorization (daemon/auth.hpp): every accepted connection's SO_PEERCRED decides what it may
// do. A peer with no access at all is answered 403 {"message": "permission denied: uid ... may
// not use the control socket: ... requires ...", "kind": "permission-denied"} at once, without
// reading its request, and closed. A request a reader may not make (a mutation) gets 403 naming
// it and never reaches the handlers. Group lookups (NSS) never run on the io thread: root, the
// daemon's uid and members of `group` by primary or supplementary gid are decided from the
// kernel's credentials alone; every other peer waits (at most read_timeout) for an
// AccessResolver thread. Such a peer's access is looked up afresh for every mutation it sends on
// a keep-alive connection.
// Connection slots: beyond max_connections open connections a new one gets 503 and is closed; a
// uid other than root and the daemon's own may hold at most max_connections_per_uid (then 503);
// and peers not known to have write access (readers, and peers whose access is still being
// looked up) share max_connections - reserved_write_connections slots, so the last
// reserved_write_connections are always free for root and the `group` (a stranger or reader
// flood cannot lock root's netctl, cnetd-cni or the systemd ping out).
// Limits (ServerOptions): headers over api::kMaxHeaderBytes → 431, bodies over api::kMaxBodyBytes
// → 413, an unparsable request → 400, a request not complete within read_timeout of its first
// byte → 408; each of these closes the connection after the answer. A connection with no request
// for idle_timeout is closed; an answer the client does not read within read_timeout is dropped
// with the connection. HEAD answers carry GET's status and headers (Content-Length too) but no
// body. None of these waits blocks the thread, so a slow or stuck client delays nobody else.
// Ownership: borrows the io_context and the Handlers (both must outlive the server and every
// session; sessions keep themselves alive with shared_ptr while I/O is pending).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "base/error.hpp"
#include "daemon/auth.hpp"
#include "daemon/handlers.hpp"

namespace cnetd::daemon {

struct ServerOptions {
    // Config `group` / `read-group`: a group name or a numeric gid. `group` also becomes the
    // socket file's group. The default "cnetd" may be missing (then only root, and the daemon's
    // own uid, get in, with a warning); any other group that does not exist is a start-up error
    // (Docker's rule for its `group`).
    std::string group = "cnetd";
    std::string read_group;
    std::size_t max_connections = 1024;
    // Config `max-connections-per-uid`: open connections per uid (root and the daemon's own uid
    // are exempt). Config `reserved-write-connections`: slots only peers with write access get;
    // must be < max_connections.
    std::size_t max_connections_per_uid = 64;
    std::size_t reserved_write_connections = 32;
    // How long an NSS lookup of a uid decides its new connections (mutations always look afresh).
    std::chrono::milliseconds nss_cache_ttl{std::chrono::seconds(5)};
    AccessResolver::Lookup nss_lookup;  // empty: lookup_user (NSS); tests script it
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
    std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};  // and write timeout
};

// Live counters, for tests and GET /v1/info.
struct ServerStats {
    std::size_t active = 0;         // open connections
    std::size_t refused = 0;        // connections turned away with 503 (any slot limit), of which:
    std::size_t refused_limit = 0;  // max_connections reached
    std::size_t refused_per_uid = 0;   // the uid's max_connections_per_uid reached
    std::size_t refused_reserved = 0;  // only reserved_write_connections slots were left
    std::size_t denied = 0;            // connections and requests answered 403
    std::size_t unprivileged = 0;      // open connections not known to have write access
    std::size_t timed_out = 0;         // connections closed by idle/read/write timeouts
};

class Server {
public:
    Server(boost::asio::io_context& io, Handlers& handlers, ServerOptions options = {});
    ~Server();

    // Binds and listens on `path`. A leftover socket file is probed: if something answers there,
    // another cnetd is running → Conflict, and the file is left alone; otherwise it is replaced.
    // A non-socket file at `path` is refused. Errors name the path. Call before running the
    // io_context.
    // The socket file appears atomically with its final owner, group and mode: it is bound inside
    // a fresh 0700 directory next to `path` (nobody else can even reach it there), chown'ed to
    // `group` and chmod'ed (0660, or 0666 when a read-group is set: then SO_PEERCRED is the only
    // gate), and rename()d into place, which also replaces a stale socket in one step. No umask
    // games, so other threads creating files meanwhile are unaffected.
    // The groups are resolved here: an unknown group is an error naming the key.
    Result<void> listen(const std::string& path);
    // Serves on an already bound, listening unix stream socket (socket activation: systemd's
    // cnetd.socket owns the socket file). Takes ownership of `fd`; close() closes it but never
    // unlinks the file (the service manager keeps it across restarts). `path` is for logs only.
    // The socket's mode and group are the unit's (SocketMode=0660, SocketGroup=); SO_PEERCRED
    // authorization applies the same way.
    Result<void> adopt(int fd, const std::string& path);
    // Stops accepting and unlinks the socket file (if we created it). Sessions in progress are not
    // interrupted; the io_context's owner stops them. Idempotent. (The destructor also stops the
    // access resolver's threads, waiting for an NSS lookup in progress.)
    void close();
    // Shutdown (SIGTERM): close(), then every connection waiting for a request is closed at once
    // and every other one after the answer to its request in progress (no keep-alive). The
    // answers still need the io_context to run: its owner runs it until stats().active is 0.
    void drain();

    // The policy the groups resolved to (valid after listen() or adopt()).
    const AuthPolicy& policy() const;
    ServerStats stats() const;  // io thread only (or while the io_context is not running)

    struct Shared;  // state the sessions share with the server (outlives either)

private:
    Result<void> resolve_policy();
    void accept();
    void on_accepted(boost::asio::local::stream_protocol::socket sock);

    boost::asio::io_context& io_;
    Handlers& handlers_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    std::string path_;
    std::shared_ptr<Shared> shared_;
};

// The directory a control socket path lives in: "." for a bare name, "/" for "/name". The server
// binds there (through a private directory); the daemon creates it at start-up.
std::string socket_dir(const std::string& path);

}  // namespace cnetd::daemon
