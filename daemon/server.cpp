#include "daemon/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "api/protocol.hpp"
#include "base/fd.hpp"
#include "base/log.hpp"

namespace cnetd::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

// Shared by the server and its sessions through shared_ptr: sessions may outlive the Server (they
// are destroyed with the io_context), and they count themselves in `stats.active`. `mu` guards
// `stats` and `live`: a session is normally destroyed on the io thread, but its last reference can
// be dropped on the kernel worker (the reply callback of a job holds one).
// A session as drain() sees it.
struct Drainable {
    virtual void drain() = 0;

protected:
    ~Drainable() = default;
};

struct Server::Shared {
    ServerOptions opts;
    AuthPolicy policy;
    ServerStats stats;
    bool draining = false;
    std::set<Drainable*> live;                 // sessions add and remove themselves
    std::map<uid_t, std::size_t> per_uid;      // open connections per uid (no zero entries)
    std::shared_ptr<AccessResolver> resolver;  // set by listen()/adopt(); stopped by ~Server
    std::mutex mu;
};

namespace {

std::string seconds_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return fmt::format("{} s", d.count() / 1000);
    return fmt::format("{} ms", d.count());
}

class Session final : public std::enable_shared_from_this<Session>, public Drainable {
public:
    // `quick`: the access the kernel's credentials prove (auth.hpp quick_access), or nullopt when
    // an AccessResolver must decide. The caller checked the slot limits under shared->mu.
    Session(local::socket sock, Handlers& handlers, std::shared_ptr<Server::Shared> shared,
            PeerCred peer, std::optional<Access> quick)
        : sock_(std::move(sock)),
          timer_(sock_.get_executor()),
          handlers_(handlers),
          shared_(std::move(shared)),
          peer_(std::move(peer)),
          access_(quick.value_or(Access::None)),
          from_nss_(!quick),
          unprivileged_(!quick) {
        std::lock_guard lk(shared_->mu);
        ++shared_->stats.active;
        ++shared_->per_uid[peer_.uid];
        if (unprivileged_) ++shared_->stats.unprivileged;
        shared_->live.insert(this);
    }
    ~Session() {
        std::lock_guard lk(shared_->mu);  // also waits for a drain() in progress on this session
        --shared_->stats.active;
        if (auto it = shared_->per_uid.find(peer_.uid);
            it != shared_->per_uid.end() && --it->second == 0)
            shared_->per_uid.erase(it);
        if (unprivileged_) --shared_->stats.unprivileged;
        shared_->live.erase(this);
    }

    void start() {
        if (!from_nss_) return wait_request();
        // Not decided by the kernel's credentials: ask a resolver thread (NSS may block), within
        // read_timeout (a stuck lookup must not hold the slot: the timer closes the connection).
        arm(Phase::Idle, shared_->opts.read_timeout);
        resolve("", "", [self = shared_from_this()](AccessResolver::Answer a) {
            self->on_connection_access(std::move(a));
        });
    }

    // Shutdown: a connection waiting for its next request is closed now; one with a request in
    // progress gets its answer (the worker finishes or refuses the job) and is closed after it.
    void drain() override {
        keep_alive_ = false;
        if (stream_) return end_stream_soon();
        if (busy_ || (phase_ != Phase::Idle && phase_ != Phase::Lingering)) return;
        beast::error_code ignored;
        sock_.cancel(ignored);
        sock_.shutdown(local::socket::shutdown_both, ignored);
        sock_.close(ignored);
        disarm();
    }

private:
    // Streaming: an event stream waiting for its next line (no timer: the idle timeout does not
    // apply; a write in progress is Writing, with the write timeout).
    enum class Phase { Idle, Reading, Writing, Lingering, Streaming };

    // Asks the resolver on its thread; `then` runs on this session's executor. Dropped (the
    // connection then times out) if the resolver is stopped.
    void resolve(std::string method, std::string target,
                 std::function<void(AccessResolver::Answer)> then) {
        auto resolver = shared_->resolver;
        if (!resolver) return;
        auto exec = sock_.get_executor();
        resolver->resolve(peer_, std::move(method), std::move(target), /*fresh=*/true,
                          [exec, then = std::move(then)](AccessResolver::Answer a) mutable {
                              asio::post(exec,
                                         [then = std::move(then), a = std::move(a)]() mutable {
                                             then(std::move(a));
                                         });
                          });
    }

    // Moves this connection between the unprivileged pool and the write pool.
    void set_access(Access a) {
        access_ = a;
        std::lock_guard lk(shared_->mu);
        const bool unpriv = a != Access::Write;
        if (unpriv == unprivileged_) return;
        unprivileged_ = unpriv;
        if (unpriv)
            ++shared_->stats.unprivileged;
        else
            --shared_->stats.unprivileged;
    }

    void deny(const std::string& why, bool close) {
        {
            std::lock_guard lk(shared_->mu);
            ++shared_->stats.denied;
        }
        log::info("api: {} (pid {})", why, peer_.pid);
        if (close) keep_alive_ = false;
        ApiResponse resp;
        resp.status = 403;
        resp.body = json{{"message", why}, {"kind", "permission-denied"}};
        write(std::move(resp));
    }

    void on_connection_access(AccessResolver::Answer a) {
        disarm();
        if (!sock_.is_open()) return;  // timed out or drained meanwhile
        set_access(a.access);
        // No access at all: answered at once, the request (if any) unread, and closed.
        if (a.access == Access::None) return deny(a.denial, /*close=*/true);
        wait_request();
    }

    // Arms the one timer for `phase`; a previous arming is cancelled (its handler sees a stale
    // generation and does nothing).
    void arm(Phase phase, std::chrono::milliseconds after) {
        phase_ = phase;
        const unsigned gen = ++gen_;
        timer_.expires_after(after);
        timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
            if (ec || gen != self->gen_) return;
            self->on_timeout();
        });
    }
    void disarm() {
        ++gen_;
        timer_.cancel();
    }

    void on_timeout() {
        beast::error_code ignored;
        if (phase_ == Phase::Lingering) return close_now();  // not a client's fault
        {
            std::lock_guard lk(shared_->mu);
            ++shared_->stats.timed_out;
        }
        if (phase_ == Phase::Reading) {
            // A slow writer (slowloris): stop reading and tell it why, then close. The answer's
            // write has its own timeout, so a client that does not read it cannot hold us either.
            timed_out_reading_ = true;
            sock_.cancel(ignored);
            return;
        }
        // Idle keep-alive connection, or a client that does not read its answer: just drop it.
        close_now();
    }

    void close_now() {
        beast::error_code ignored;
        sock_.shutdown(local::socket::shutdown_both, ignored);
        sock_.close(ignored);
    }

    // After the last answer (write side already shut: the client sees EOF after it): read and drop
    // what the client still sends for a moment before closing. Closing with unread input would
    // make the kernel reset the connection, and a client still writing its request (one refused
    // with 403 at connect, say) would get EPIPE instead of our answer.
    void linger() {
        static constexpr std::chrono::milliseconds kLinger{500};
        static constexpr std::size_t kLingerBytes = 64 * 1024;
        if (phase_ != Phase::Lingering) arm(Phase::Lingering, kLinger);
        sock_.async_read_some(asio::buffer(drop_),
                              [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                                  self->lingered_ += n;
                                  if (!ec && self->lingered_ <= kLingerBytes) return self->linger();
                                  self->disarm();
                                  self->close_now();
                              });
    }

    // Waits for the first byte of the next request without a parser: until then the connection is
    // idle (idle_timeout); from the first byte the whole request must arrive within read_timeout.
    void wait_request() {
        if (buf_.size() > 0) return read();  // a pipelined request is already here
        arm(Phase::Idle, shared_->opts.idle_timeout);
        sock_.async_wait(
            local::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
                if (ec) return self->disarm();  // closed by the idle timer, or shutting down
                self->read();
            });
    }

    void read() {
        arm(Phase::Reading, shared_->opts.read_timeout);
        parser_.emplace();
        parser_->body_limit(api::kMaxBodyBytes);
        parser_->header_limit(static_cast<std::uint32_t>(api::kMaxHeaderBytes));
        http::async_read(
            sock_, buf_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        disarm();
        head_ = false;
        if (timed_out_reading_)
            return answer_and_close(408,
                                    fmt::format("request not complete within {} of its first byte",
                                                seconds_text(shared_->opts.read_timeout)));
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::bad_descriptor)
            return;  // the client went away between requests: nothing to answer
        if (ec == http::error::body_limit)
            return answer_and_close(
                413, fmt::format("request body larger than {} bytes", api::kMaxBodyBytes));
        if (ec == http::error::header_limit)
            return answer_and_close(
                431, fmt::format("request headers larger than {} bytes", api::kMaxHeaderBytes));
        if (ec)
            return answer_and_close(400, fmt::format("malformed HTTP request: {}", ec.message()));

        auto& msg = parser_->get();
        keep_alive_ = msg.keep_alive() && !shared_->draining;
        head_ = msg.method() == http::verb::head;
        ApiRequest req{std::string(msg.method_string()), std::string(msg.target()),
                       std::move(msg.body())};
        busy_ = true;
        // A mutation from a peer whose access came from NSS: look again (group membership may have
        // changed since it connected), off the io thread.
        if (required_for(req.method) == Access::Write && from_nss_) {
            arm(Phase::Writing, shared_->opts.read_timeout);  // a stuck lookup closes it
            return resolve(req.method, req.target,
                           [self = shared_from_this(), req](AccessResolver::Answer a) mutable {
                               self->on_request_access(std::move(req), std::move(a));
                           });
        }
        dispatch(std::move(req));
    }

    void on_request_access(ApiRequest req, AccessResolver::Answer a) {
        disarm();
        if (!sock_.is_open()) return;
        set_access(a.access);
        if (!allows(a.access, required_for(req.method))) {
            busy_ = false;
            return deny(a.denial, /*close=*/a.access == Access::None);
        }
        dispatch(std::move(req));
    }

    void dispatch(ApiRequest req) {
        if (!allows(access_, required_for(req.method))) {
            // Only after a re-check took the access away; denial_message would need NSS here.
            busy_ = false;
            return deny(fmt::format("permission denied: uid {} may not {} {}", peer_.uid,
                                    req.method, req.target),
                        access_ == Access::None);
        }
        log::debug("api: {} {} (uid {})", req.method, req.target, peer_.uid);
        // The reply may come from the worker thread: hop back to this session's executor.
        // The callback hands its reference over to the posted write, so the session is not kept
        // (and finally destroyed) by the worker's copy of the callback.
        handlers_.handle(req, [self = shared_from_this()](ApiResponse resp) mutable {
            if (!self) return;  // answered twice: a bug elsewhere, never a crash here
            auto exec = self->sock_.get_executor();
            asio::post(exec, [self = std::move(self), resp = std::move(resp)]() mutable {
                self->write(std::move(resp));
            });
        });
    }

    void answer_and_close(int status, std::string message) {
        keep_alive_ = false;
        write(error_response(status, Error::invalid(std::move(message))));
    }

    void write(ApiResponse resp) {
        busy_ = false;
        if (shared_->draining) keep_alive_ = false;
        if (resp.stream && !head_) return start_stream(std::move(resp.stream));
        if (resp.stream) resp.body = nullptr;  // HEAD of a stream: its status and headers only
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(11);
        res->result(static_cast<unsigned>(resp.status));
        res->set(http::field::server, "cnetd");
        if (!resp.allow.empty()) res->set(http::field::allow, resp.allow);
        if (!resp.content_type.empty()) {  // a text answer (GET /metrics)
            res->set(http::field::content_type, resp.content_type);
            res->body() = std::move(resp.text);
        } else if (!resp.body.is_null()) {
            res->set(http::field::content_type, "application/json");
            res->body() =
                resp.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        }
        res->keep_alive(keep_alive_);
        res->prepare_payload();
        if (!head_) return send(std::move(res));
        // HEAD: GET's status and headers, Content-Length included, without the body.
        send(std::make_shared<http::response<http::empty_body>>(res->base()));
    }

    template <class Body>
    void send(std::shared_ptr<http::response<Body>> res) {
        arm(Phase::Writing, shared_->opts.read_timeout);
        http::async_write(sock_, *res,
                          [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                              self->disarm();
                              if (ec) return;
                              if (self->keep_alive_) return self->wait_request();
                              beast::error_code ignored;
                              self->sock_.shutdown(local::socket::shutdown_send, ignored);
                              self->linger();
                          });
    }

    // ---- Event streams (GET /v1/events; ApiResponse::stream) ----
    // The subscription's wake-up posts pump() to this session; a weak reference, so a stream whose
    // client went away does not keep the session alive.
    void start_stream(ApiResponse::Subscribe subscribe) {
        auto exec = sock_.get_executor();
        auto sub = subscribe([weak = weak_from_this(), exec] {
            asio::post(exec, [weak] {
                if (auto self = weak.lock()) self->pump();
            });
        });
        if (!sub) return write(error_response(sub.error()));
        stream_ = std::move(sub).value();
        keep_alive_ = false;
        stream_wire_ = fmt::format(
            "HTTP/1.1 200 OK\r\nServer: cnetd\r\nContent-Type: application/jsonl\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        if (auto until = stream_->until_nano()) {
            const auto left = std::chrono::nanoseconds(
                *until - std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
            until_timer_.expires_after(left);
            until_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
                if (auto self = weak.lock(); self && !ec) self->end_stream_soon();
            });
        }
        if (shared_->draining) stream_ending_ = true;
        watch_stream_peer();
        pump();
    }

    // The client sends nothing on a stream: EOF or an error means it is gone (noticed at once,
    // not only at the next event's write).
    void watch_stream_peer() {
        sock_.async_read_some(asio::buffer(drop_),
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                  if (!ec) return self->watch_stream_peer();
                                  if (self->stream_) self->stop_stream();
                              });
    }

    // Writes what the subscription has queued as one chunk (the last chunk too once it ended),
    // one write at a time: while a write waits for a slow client, lines pile up in the
    // subscription's bounded queue (and overflow there), never here.
    void pump() {
        if (!stream_ || writing_) return;
        std::string out;
        const bool done = stream_->take(out) || stream_ending_;
        if (!out.empty()) stream_wire_ += fmt::format("{:x}\r\n{}\r\n", out.size(), out);
        if (done) {
            stream_wire_ += "0\r\n\r\n";
            stream_->release();
            stream_.reset();
            until_timer_.cancel();
        }
        if (stream_wire_.empty()) {
            phase_ = Phase::Streaming;
            return disarm();
        }
        writing_ = true;
        arm(Phase::Writing, shared_->opts.read_timeout);
        asio::async_write(sock_, asio::buffer(stream_wire_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->disarm();
                              self->writing_ = false;
                              self->stream_wire_.clear();
                              if (ec) return self->stop_stream();
                              if (self->stream_) return self->pump();
                              beast::error_code ignored;  // the last chunk is out
                              self->sock_.shutdown(local::socket::shutdown_send, ignored);
                              self->sock_.cancel(ignored);  // the peer watch; linger reads now
                              self->linger();
                          });
    }

    // Shutdown or `until`: the lines queued so far, then the last chunk.
    void end_stream_soon() {
        stream_ending_ = true;
        asio::post(sock_.get_executor(), [weak = weak_from_this()] {
            if (auto self = weak.lock()) self->pump();
        });
    }

    // The client is gone or too slow to write to: unsubscribe and close.
    void stop_stream() {
        if (stream_) stream_->release();
        stream_.reset();
        until_timer_.cancel();
        disarm();
        close_now();
    }

    local::socket sock_;
    asio::steady_timer timer_;
    asio::steady_timer until_timer_{sock_.get_executor()};
    std::shared_ptr<EventLog::Subscription> stream_;  // set while an event stream is open
    std::string stream_wire_;                         // the bytes of the write in progress
    bool writing_ = false;                            // a stream write is in progress
    bool stream_ending_ = false;                      // shutdown or `until`: end after the queue
    Handlers& handlers_;
    std::shared_ptr<Server::Shared> shared_;
    PeerCred peer_;
    Access access_;
    const bool from_nss_;       // access_ came from an NSS lookup: re-check it for every mutation
    bool unprivileged_;         // counted in stats.unprivileged (not known to have write access)
    bool head_ = false;         // the request being answered is a HEAD
    std::size_t lingered_ = 0;  // bytes dropped after the last answer
    std::array<char, 4096> drop_{};
    beast::flat_buffer buf_;
    std::optional<http::request_parser<http::string_body>> parser_;
    bool keep_alive_ = true;
    bool timed_out_reading_ = false;
    bool busy_ = false;  // a request was handed to the handlers and its answer is not written yet
    Phase phase_ = Phase::Idle;
    unsigned gen_ = 0;
};

// True when something accepts connections at `path` (another daemon is serving it).
bool socket_answers(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

// Removes the private bind directory (and the socket in it, if it is still there) on every exit.
struct TempDir {
    std::string dir, sock;
    ~TempDir() {
        if (!sock.empty()) ::unlink(sock.c_str());
        if (!dir.empty()) ::rmdir(dir.c_str());
    }
};

}  // namespace

Server::Server(asio::io_context& io, Handlers& handlers, ServerOptions options)
    : io_(io), handlers_(handlers), acceptor_(io), shared_(std::make_shared<Shared>()) {
    shared_->opts = std::move(options);
    shared_->policy.owner_uid = ::geteuid();
}

Server::~Server() {
    close();
    // Its threads hold sessions' callbacks: stop them here, not when the last session goes.
    if (shared_->resolver) shared_->resolver->stop();
}

const AuthPolicy& Server::policy() const {
    return shared_->policy;
}

ServerStats Server::stats() const {
    std::lock_guard lk(shared_->mu);
    return shared_->stats;
}

Result<void> Server::resolve_policy() {
    const auto& o = shared_->opts;
    CNETD_TRY_ASSIGN(shared_->policy.write_group,
                     resolve_group("group", o.group, /*missing_ok=*/o.group == "cnetd"));
    CNETD_TRY_ASSIGN(shared_->policy.read_group,
                     resolve_group("read-group", o.read_group, /*missing_ok=*/false));
    if (o.reserved_write_connections >= o.max_connections)
        return Error::invalid(
            fmt::format("reserved-write-connections: {} must be less than max-connections ({})",
                        o.reserved_write_connections, o.max_connections));
    shared_->resolver =
        std::make_shared<AccessResolver>(shared_->policy, o.nss_cache_ttl, o.nss_lookup);
    if (!o.group.empty() && !shared_->policy.write_group.gid)
        log::warn(
            "group {} does not exist: only root may use the control socket (create the "
            "group, or set `group` in the config)",
            o.group);
    return ok();
}

Result<void> Server::listen(const std::string& path) {
    CNETD_TRY(resolve_policy());
    const std::string parent = socket_dir(path);
    TempDir tmp;
    tmp.dir = parent + "/.cnetd-bind-XXXXXX";
    const std::string tmp_sock_name = tmp.dir + "/s";
    for (const std::string* p : {&path, &tmp_sock_name}) {
        if (p->size() >= sizeof(sockaddr_un::sun_path))
            return Error::invalid(
                fmt::format("socket path {} is too long: {} and its temporary bind path {} must "
                            "fit in {} bytes",
                            path, path, tmp_sock_name, sizeof(sockaddr_un::sun_path) - 1));
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return Error::conflict(fmt::format("bind {}: exists and is not a socket", path));
        if (socket_answers(path))
            return Error::conflict(
                fmt::format("bind {}: another cnetd is already running there", path));
        log::info("replacing stale socket {}", path);  // rename() below replaces it atomically
    }

    // A private directory (mkdtemp: 0700, ours) next to the final path, so that rename() stays on
    // one filesystem. Nobody but us can connect to a socket inside it, whatever its mode.
    if (!::mkdtemp(tmp.dir.data())) {
        int err = errno;
        tmp.dir.clear();
        return Error::sys(err,
                          fmt::format("bind {}: create a private directory in {}", path, parent));
    }
    tmp.sock = tmp.dir + "/s";

    boost::system::error_code ec;
    acceptor_.open(local(), ec);
    if (ec)
        return Error(ErrorKind::Internal, fmt::format("open socket: {}", ec.message()), ec.value());
    auto fail = [&](std::string what, int err) {
        acceptor_.close();
        return Error::sys(err, fmt::format("bind {}: {}", path, what));
    };
    acceptor_.bind(local::endpoint(tmp.sock), ec);
    if (ec) return fail("bind", ec.value());
    // Final group and mode while still private; then one rename() publishes it.
    const auto& pol = shared_->policy;
    if (pol.write_group.gid &&
        ::chown(tmp.sock.c_str(), static_cast<uid_t>(-1), *pol.write_group.gid) != 0)
        return fail(fmt::format("chown to group {}", *pol.write_group.gid), errno);
    const mode_t mode = pol.read_group.spec.empty() ? 0660 : 0666;
    if (::chmod(tmp.sock.c_str(), mode) != 0) return fail(fmt::format("chmod {:o}", mode), errno);
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen", ec.value());
    if (::rename(tmp.sock.c_str(), path.c_str()) != 0)
        return fail(fmt::format("move into place from {}", tmp.sock), errno);
    tmp.sock.clear();  // it is `path` now
    path_ = path;
    accept();
    return ok();
}

Result<void> Server::adopt(int fd, const std::string& path) {
    if (auto r = resolve_policy(); !r) {
        ::close(fd);
        return r;
    }
    boost::system::error_code ec;
    acceptor_.assign(local(), fd, ec);
    if (ec) {
        ::close(fd);
        return Error(ErrorKind::Internal,
                     fmt::format("serve on activated socket {}: {}", path, ec.message()),
                     ec.value());
    }
    accept();  // path_ stays empty: close() must not unlink a file the service manager owns
    return ok();
}

void Server::close() {
    boost::system::error_code ignored;
    if (acceptor_.is_open()) acceptor_.close(ignored);
    if (!path_.empty()) {
        ::unlink(path_.c_str());
        path_.clear();
    }
}

void Server::drain() {
    close();
    shared_->draining = true;
    // Under the lock: a session cannot finish its destructor (on whatever thread) meanwhile.
    // Closing a socket runs no handler synchronously, so no session is destroyed inside the loop.
    std::lock_guard lk(shared_->mu);
    for (Drainable* d : shared_->live) d->drain();
}

void Server::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, local::socket sock) {
        if (ec == asio::error::operation_aborted) return;  // close()
        if (ec) {
            // EMFILE and friends: log, and retry a little later rather than spinning or going deaf.
            log::warn("accept on {}: {}", path_, ec.message());
            auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
            t->async_wait([this, t](boost::system::error_code e) {
                if (!e && acceptor_.is_open()) accept();
            });
            return;
        }
        on_accepted(std::move(sock));
        if (acceptor_.is_open()) accept();
    });
}

namespace {

// A short canned 503 without blocking (the socket buffer of a fresh connection has room), then
// close (when `sock` goes out of scope). Reading the request first would let a flood cost more.
void refuse(local::socket& sock, const std::string& message) {
    std::string body = fmt::format("{{\"message\":\"{}\",\"kind\":\"unavailable\"}}\n", message);
    std::string resp = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nServer: cnetd\r\nContent-Type: "
        "application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
    [[maybe_unused]] auto n =
        ::send(sock.native_handle(), resp.data(), resp.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    boost::system::error_code ignored;
    sock.shutdown(local::socket::shutdown_send, ignored);
}

// Why a new connection of `peer` gets no slot, or "" when it gets one; `counter` is the
// ServerStats field of that reason. Under sh.mu.
std::string slot_refusal(const Server::Shared& sh, const PeerCred& peer, bool writer,
                         std::size_t ServerStats::*& counter) {
    const auto& o = sh.opts;
    counter = &ServerStats::refused_limit;
    if (sh.stats.active >= o.max_connections)
        return fmt::format("too many connections: cnetd serves at most {} at a time; retry later",
                           o.max_connections);
    const bool exempt = peer.uid == 0 || peer.uid == sh.policy.owner_uid;
    counter = &ServerStats::refused_per_uid;
    if (auto it = sh.per_uid.find(peer.uid);
        !exempt && it != sh.per_uid.end() && it->second >= o.max_connections_per_uid)
        return fmt::format(
            "too many connections from uid {}: cnetd serves at most {} per uid at a time; retry "
            "later",
            peer.uid, o.max_connections_per_uid);
    const std::size_t shared_slots = o.max_connections - o.reserved_write_connections;
    counter = &ServerStats::refused_reserved;
    if (!writer && sh.stats.unprivileged >= shared_slots)
        return fmt::format(
            "too many connections: the {} slots for peers without write access are taken ({} "
            "are reserved for root and group members); retry later",
            shared_slots, o.reserved_write_connections);
    return {};
}

}  // namespace

void Server::on_accepted(local::socket sock) {
    // getsockopt only: cheap and never blocks, unlike the NSS lookups AccessResolver does.
    auto peer = peer_of(sock.native_handle());
    if (!peer) {
        log::warn("api: {}: connection dropped", peer.error().message());
        return;
    }
    Shared& sh = *shared_;
    const std::optional<Access> quick = quick_access(*peer, sh.policy);
    std::unique_lock lk(sh.mu);
    std::size_t ServerStats::*reason = nullptr;
    if (std::string why = slot_refusal(sh, *peer, quick == Access::Write, reason); !why.empty()) {
        ++sh.stats.refused;
        ++(sh.stats.*reason);
        lk.unlock();
        log::debug("api: uid {} (pid {}): {}", peer->uid, peer->pid, why);
        return refuse(sock, why);
    }
    lk.unlock();  // the session's constructor takes it
    std::make_shared<Session>(std::move(sock), handlers_, shared_, std::move(peer).value(), quick)
        ->start();
}

std::string socket_dir(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace cnetd::daemon
