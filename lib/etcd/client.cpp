// The transport half of the etcd client: Boost.Beast HTTP/1.1 over TCP or Asio's OpenSSL stream.
//
// Every operation runs asynchronously on a private io_context that the calling thread runs until
// the operation completes; beast::tcp_stream's expiry turns a deadline into beast::error::timeout.
// cancel() posts a handler to those io_contexts (post is thread-safe) that closes the socket on
// the owning thread, so no socket is touched by two threads. The request connection and the
// watch connection are separate (each its own io_context), so a watch on one thread and requests
// on another never share state but the last good endpoint (under a mutex).
#include "etcd/client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/ranges.h>
#include <fstream>
#include <mutex>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "etcd/codec.hpp"
#include "etcd/tls.hpp"

namespace cnetd::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using codec::Endpoint;
using codec::WatchStream;

namespace {

long long ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// Dead peers (a host gone without a FIN) are noticed by TCP keepalive within ~25 s even on a
// watch that legitimately stays silent for minutes.
void set_keepalive(tcp::socket& s) {
    const int on = 1, idle = 10, intvl = 5, cnt = 3;
    const int fd = s.native_handle();
    (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

}  // namespace

// One connection to one endpoint with its own io_context. Owned by one thread; cancel() reaches
// it only through post().
struct Conn {
    asio::io_context io;
    std::unique_ptr<beast::tcp_stream> plain;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
    int endpoint = -1;  // index of the endpoint connected to, -1 when closed
    beast::flat_buffer buf;

    bool open() const { return endpoint >= 0; }
    beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
    void close() {
        if (plain || tls) {
            boost::system::error_code ec;
            tcp().socket().close(ec);
        }
        plain.reset();
        tls.reset();
        buf.clear();
        endpoint = -1;
    }
    // Runs the io_context until the operations started complete (each bounded by the stream's
    // expiry), then makes it reusable.
    void run() {
        io.restart();
        io.run();
    }
    template <class Op>
    boost::system::error_code write(Op&& msg) {
        boost::system::error_code out;
        auto done = [&](boost::system::error_code e, std::size_t) { out = e; };
        if (tls) {
            http::async_write(*tls, msg, done);
        } else {
            http::async_write(*plain, msg, done);
        }
        run();
        return out;
    }
    template <class Parser>
    boost::system::error_code read_header(Parser& p) {
        boost::system::error_code out;
        auto done = [&](boost::system::error_code e, std::size_t) { out = e; };
        if (tls) {
            http::async_read_header(*tls, buf, p, done);
        } else {
            http::async_read_header(*plain, buf, p, done);
        }
        run();
        return out;
    }
    template <class Parser>
    boost::system::error_code read(Parser& p) {
        boost::system::error_code out;
        auto done = [&](boost::system::error_code e, std::size_t) { out = e; };
        if (tls) {
            http::async_read(*tls, buf, p, done);
        } else {
            http::async_read(*plain, buf, p, done);
        }
        run();
        return out;
    }
};

struct Client::Impl {
    ClientOptions opts;
    std::vector<Endpoint> endpoints;  // parsed; empty when the options are invalid
    std::optional<Error> invalid;     // validate()'s verdict, returned by every call
    std::unique_ptr<asio::ssl::context> ssl;
    std::atomic<bool> cancelled{false};
    mutable std::mutex mu;  // guards last_good
    int last_good = -1;
    Conn req;
    Conn watch;
    Conn probe_conn;  // the idle watch's liveness read

    int start_index() const {
        std::lock_guard lock(mu);
        return last_good < 0 ? 0 : last_good;
    }
    void answered(int idx) {
        std::lock_guard lock(mu);
        last_good = idx;
    }
    Error cancelled_error() const {
        return Error(ErrorKind::Unavailable, "etcd: the request was cancelled", ECANCELED);
    }

    Result<void> connect(Conn& c, int idx, Clock::time_point deadline);
    Result<std::string> exchange(Conn& c, int idx, const std::string& target,
                                 const std::string& body, Clock::time_point deadline, int& status);
    Result<std::string> call(const std::string& target, const std::string& body);
    Result<void> probe(int idx, const std::string& key);
    Result<void> open_watch(Conn& c, int idx, const std::string& body,
                            std::optional<http::response_parser<http::buffer_body>>& out);
    Result<void> stream(Conn& c, int idx, http::response_parser<http::buffer_body>& p,
                        const std::string& key,
                        const std::function<bool(const WatchBatch&)>& on_batch,
                        std::chrono::milliseconds idle);
};

namespace {

http::request<http::string_body> make_post(const Endpoint& ep, const std::string& target,
                                           const std::string& body) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    const bool v6 = ep.host.find(':') != std::string::npos;
    req.set(http::field::host,
            v6 ? fmt::format("[{}]:{}", ep.host, ep.port) : fmt::format("{}:{}", ep.host, ep.port));
    req.set(http::field::user_agent, "cnetd-etcd-client");
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    return req;
}

// "connect: Connection refused", "no answer within 3000 ms" for a timeout.
std::string describe(std::string_view phase, const boost::system::error_code& ec,
                     Clock::time_point start, Clock::time_point now) {
    if (ec == beast::error::timeout) {
        return fmt::format("{}: no answer within {} ms", phase, ms_between(start, now));
    }
    return fmt::format("{}: {}", phase, ec.message());
}

}  // namespace

Result<void> Client::Impl::connect(Conn& c, int idx, Clock::time_point deadline) {
    c.close();
    const Endpoint& ep = endpoints[static_cast<std::size_t>(idx)];
    const auto start = Clock::now();
    // Synchronous: an address resolves at once; a host name waits for the system resolver
    // (outside the deadline and cancel(): configure addresses where that matters).
    tcp::resolver resolver(c.io);
    boost::system::error_code ec;
    auto addrs = resolver.resolve(ep.host, ep.port, ec);
    if (ec) return Error(ErrorKind::Unavailable, fmt::format("resolve: {}", ec.message()));
    if (ep.tls) {
        c.tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(c.io, *ssl);
    } else {
        c.plain = std::make_unique<beast::tcp_stream>(c.io);
    }
    c.tcp().expires_at(deadline);
    c.tcp().async_connect(addrs,
                          [&](boost::system::error_code e, const tcp::endpoint&) { ec = e; });
    c.run();
    if (ec || cancelled) {
        c.close();
        if (cancelled) return cancelled_error();
        return Error(ErrorKind::Unavailable, describe("connect", ec, start, Clock::now()));
    }
    set_keepalive(c.tcp().socket());
    if (ep.tls) {
        if (auto r = tls::prepare(*c.tls, ep.host); !r) {
            c.close();
            return r;
        }
        c.tls->async_handshake(asio::ssl::stream_base::client,
                               [&](boost::system::error_code e) { ec = e; });
        c.run();
        if (ec || cancelled) {
            c.close();
            if (cancelled) return cancelled_error();
            return Error(ErrorKind::Unavailable,
                         describe("TLS handshake", ec, start, Clock::now()));
        }
    }
    c.endpoint = idx;
    return ok();
}

// One POST on `c` to endpoint `idx` (connecting if needed): the body of the answer and its
// status, or a transport error (Unavailable). A kept-alive connection the server closed while
// idle fails on first use; that is retried once on a fresh connection (the request was never
// read, so it cannot have been applied).
Result<std::string> Client::Impl::exchange(Conn& c, int idx, const std::string& target,
                                           const std::string& body, Clock::time_point deadline,
                                           int& status) {
    const Endpoint& ep = endpoints[static_cast<std::size_t>(idx)];
    const auto start = Clock::now();
    for (int attempt = 0;; ++attempt) {
        const bool reused = c.open() && c.endpoint == idx;
        if (!reused) CNETD_TRY(connect(c, idx, deadline));
        c.tcp().expires_at(deadline);
        auto req = make_post(ep, target, body);
        auto ec = c.write(req);
        http::response_parser<http::string_body> parser;
        parser.body_limit(codec::WatchStream::kMaxMessage);
        if (!ec) ec = c.read(parser);
        if (cancelled) {
            c.close();
            return cancelled_error();
        }
        if (ec) {
            c.close();
            const bool stale =
                reused && attempt == 0 &&
                (ec == http::error::end_of_stream || ec == asio::error::eof ||
                 ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
            if (stale) continue;
            return Error(ErrorKind::Unavailable, describe(target, ec, start, Clock::now()));
        }
        auto& res = parser.get();
        status = static_cast<int>(res.result_int());
        if (!res.keep_alive()) c.close();
        return std::move(res.body());
    }
}

// Tries each endpoint once, starting from the one that answered last. A transport failure or a
// member-local etcd error (no leader, timeout) moves on to the next; any other answer is final.
Result<std::string> Client::Impl::call(const std::string& target, const std::string& body) {
    if (invalid) return *invalid;
    if (cancelled) return cancelled_error();
    const int n = static_cast<int>(endpoints.size());
    const int first = start_index();
    std::vector<std::string> tried;
    for (int i = 0; i < n; ++i) {
        const int idx = (first + i) % n;
        const auto& url = endpoints[static_cast<std::size_t>(idx)].url;
        int status = 0;
        auto r = exchange(req, idx, target, body, Clock::now() + opts.timeout, status);
        if (!r) {
            if (cancelled) return cancelled_error();
            tried.push_back(fmt::format("{}: {}", url, r.error().message()));
            continue;
        }
        if (status != 200 && codec::is_member_error(status, *r)) {
            tried.push_back(
                fmt::format("{}: {}", url, codec::error_from_answer(status, *r).message()));
            req.close();
            continue;
        }
        answered(idx);
        if (status != 200) {
            return codec::error_from_answer(status, *r).wrap(fmt::format("etcd {}", url));
        }
        return r;
    }
    return Error(ErrorKind::Unavailable,
                 fmt::format("etcd: no endpoint answered: {}", fmt::join(tried, "; ")),
                 EHOSTUNREACH);
}

namespace {

// Decodes an answer; a malformed one is Internal naming the endpoint and the call.
template <class T>
Result<T> decoded(Result<T> r, const std::string& what) {
    if (!r && r.error().kind() == ErrorKind::Internal) {
        return std::move(r).context(fmt::format("etcd: malformed answer to {}", what));
    }
    return r;
}

}  // namespace

// A silent watch is not yet a dead one: etcd 3.4 sends progress notifications only every 10
// minutes by default. After `idle` without a byte the endpoint must answer a linearizable read
// (count_only on the watched key) within the timeout; a member cut off from its quorum cannot,
// and its watch would stay silent forever.
Result<void> Client::Impl::probe(int idx, const std::string& key) {
    int status = 0;
    auto r = exchange(probe_conn, idx, "/v3/kv/range", codec::range_request(key, "", true),
                      Clock::now() + opts.timeout, status);
    probe_conn.close();
    if (!r) return std::move(r).error();
    if (status != 200) return codec::error_from_answer(status, *r);
    return ok();
}

// Connects, sends the watch request and reads the answer's header. A 200 leaves `out` as the
// parser of the streamed body; anything else is the error etcd answered.
Result<void> Client::Impl::open_watch(
    Conn& c, int idx, const std::string& body,
    std::optional<http::response_parser<http::buffer_body>>& out) {
    const auto start = Clock::now();
    const auto deadline = start + opts.timeout;
    CNETD_TRY(connect(c, idx, deadline));
    c.tcp().expires_at(deadline);
    auto req = make_post(endpoints[static_cast<std::size_t>(idx)], "/v3/watch", body);
    auto ec = c.write(req);
    http::response_parser<http::string_body> head;
    head.body_limit(1024 * 1024);
    if (!ec) ec = c.read_header(head);
    if (!ec && head.get().result_int() != 200) ec = c.read(head);  // etcd's error text
    if (cancelled) return cancelled_error();
    if (ec) return Error(ErrorKind::Unavailable, describe("/v3/watch", ec, start, Clock::now()));
    const int status = static_cast<int>(head.get().result_int());
    if (status != 200) return codec::error_from_answer(status, head.get().body());
    c.tcp().expires_never();
    out.emplace(std::move(head));
    out->body_limit(boost::none);  // a stream: unbounded in total, messages are bounded
    return ok();
}

// Reads the stream until the caller, a compaction, cancel(), silence or a break ends it.
Result<void> Client::Impl::stream(Conn& c, int idx, http::response_parser<http::buffer_body>& p,
                                  const std::string& key,
                                  const std::function<bool(const WatchBatch&)>& on_batch,
                                  std::chrono::milliseconds idle) {
    const auto& url = endpoints[static_cast<std::size_t>(idx)].url;
    WatchStream ws;
    std::vector<char> chunk(64 * 1024);
    asio::steady_timer timer(c.io);
    std::optional<Error> silent;
    std::function<void()> arm = [&] {
        timer.expires_after(idle);
        timer.async_wait([&](boost::system::error_code e) {
            if (e || cancelled) return;  // data came (the read cancelled the timer)
            if (auto alive = probe(idx, key); !alive) {
                silent = Error(ErrorKind::Unavailable,
                               fmt::format("etcd {}: the watch was silent for {} ms and the "
                                           "member did not answer a read: {}",
                                           url, idle.count(), alive.error().message()));
                boost::system::error_code ignored;
                c.tcp().socket().close(ignored);
                return;
            }
            arm();
        });
    };
    for (;;) {
        p.get().body().data = chunk.data();
        p.get().body().size = chunk.size();
        boost::system::error_code ec;
        arm();
        auto done = [&](boost::system::error_code e, std::size_t) {
            ec = e;
            timer.cancel();
        };
        if (c.tls) {
            http::async_read_some(*c.tls, c.buf, p, done);
        } else {
            http::async_read_some(*c.plain, c.buf, p, done);
        }
        c.run();
        if (cancelled) return ok();
        if (silent) return *silent;
        if (ec == http::error::need_buffer) ec = {};
        const std::size_t got = chunk.size() - p.get().body().size;
        auto batches = ws.feed(std::string_view(chunk.data(), got));
        if (!batches) return std::move(batches).error().wrap(fmt::format("etcd {}", url));
        for (const auto& b : *batches) {
            if (!on_batch(b) || b.compacted) return ok();
        }
        if (ec) {
            return Error(ErrorKind::Unavailable,
                         fmt::format("etcd {}: the watch stream broke: {}", url, ec.message()));
        }
        if (p.is_done()) {
            return Error(ErrorKind::Unavailable,
                         fmt::format("etcd {}: the watch stream ended", url));
        }
    }
}

Result<void> Client::watch(const std::string& prefix, int64_t start_revision,
                           const std::function<bool(const WatchBatch&)>& on_batch,
                           std::chrono::milliseconds idle) {
    Impl& im = *impl_;
    if (im.invalid) return *im.invalid;
    if (im.cancelled) return im.cancelled_error();
    if (start_revision <= 0) {
        return Error::invalid(
            fmt::format("etcd watch: start revision {} is not > 0", start_revision));
    }
    const std::string body = codec::watch_request(prefix, prefix_end(prefix), start_revision);
    const int n = static_cast<int>(im.endpoints.size());
    const int first = im.start_index();
    std::vector<std::string> tried;
    for (int i = 0; i < n; ++i) {
        const int idx = (first + i) % n;
        std::optional<http::response_parser<http::buffer_body>> parser;
        auto opened = im.open_watch(im.watch, idx, body, parser);
        if (im.cancelled) {
            im.watch.close();
            return ok();
        }
        const auto& url = im.endpoints[static_cast<std::size_t>(idx)].url;
        if (!opened) {
            im.watch.close();
            const Error& e = opened.error();
            // An etcd answer other than a member-local trouble is final (a bad request).
            if (e.kind() != ErrorKind::Unavailable && e.kind() != ErrorKind::Internal) {
                return Error(e).wrap(fmt::format("etcd {}", url));
            }
            tried.push_back(fmt::format("{}: {}", url, e.message()));
            continue;
        }
        im.answered(idx);
        auto r = im.stream(im.watch, idx, *parser, prefix, on_batch, idle);
        im.watch.close();
        return r;
    }
    return Error(ErrorKind::Unavailable,
                 fmt::format("etcd: no endpoint answered: {}", fmt::join(tried, "; ")),
                 EHOSTUNREACH);
}

Client::Client(ClientOptions opts) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    if (auto v = validate(impl_->opts); !v) {
        impl_->invalid = v.error();
        return;
    }
    for (std::size_t i = 0; i < impl_->opts.endpoints.size(); ++i) {
        impl_->endpoints.push_back(
            *codec::parse_endpoint(impl_->opts.endpoints[i], fmt::format("endpoints[{}]", i)));
    }
    if (impl_->opts.tls) {
        auto ctx = tls::make_context(*impl_->opts.tls);
        if (!ctx) {
            impl_->invalid = ctx.error();
            return;
        }
        impl_->ssl = std::move(ctx).value();
    }
}

Client::~Client() = default;

Result<RangeResult> Client::range(const std::string& key, const std::string& range_end,
                                  bool count_only) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/kv/range", codec::range_request(key, range_end, count_only)));
    return decoded(codec::parse_range(body), "/v3/kv/range");
}

Result<int64_t> Client::put(const std::string& key, const std::string& value, int64_t lease) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/kv/put", codec::put_request(key, value, lease)));
    return decoded(codec::parse_put(body), "/v3/kv/put");
}

Result<int64_t> Client::delete_range(const std::string& key, const std::string& range_end) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/kv/deleterange", codec::delete_request(key, range_end)));
    return decoded(codec::parse_delete(body), "/v3/kv/deleterange");
}

Result<TxnResult> Client::txn(const std::vector<Compare>& compares,
                              const std::vector<TxnOp>& success,
                              const std::vector<TxnOp>& failure) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/kv/txn", codec::txn_request(compares, success, failure)));
    return decoded(codec::parse_txn(body), "/v3/kv/txn");
}

Result<Lease> Client::grant(int64_t ttl_seconds) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/lease/grant", codec::grant_request(ttl_seconds)));
    return decoded(codec::parse_grant(body), "/v3/lease/grant");
}

Result<int64_t> Client::keepalive(int64_t lease_id) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/lease/keepalive", codec::lease_id_request(lease_id)));
    return decoded(codec::parse_keepalive(body, lease_id), "/v3/lease/keepalive");
}

Result<int64_t> Client::time_to_live(int64_t lease_id) {
    CNETD_TRY_ASSIGN(std::string body,
                     impl_->call("/v3/lease/timetolive", codec::lease_id_request(lease_id)));
    return decoded(codec::parse_time_to_live(body, lease_id), "/v3/lease/timetolive");
}

Result<void> Client::revoke(int64_t lease_id) {
    auto r = impl_->call("/v3/lease/revoke", codec::lease_id_request(lease_id));
    if (!r) return std::move(r).error();
    return ok();
}

void Client::cancel() {
    impl_->cancelled = true;
    for (Conn* c : {&impl_->req, &impl_->watch, &impl_->probe_conn}) {
        Impl* impl = impl_.get();
        asio::post(c->io, [impl, c] {
            // Runs on the thread running c->io; a stale post after reset_cancel() does nothing.
            if (!impl->cancelled) return;
            if (c->plain || c->tls) {
                boost::system::error_code ec;
                c->tcp().socket().cancel(ec);
                c->tcp().socket().close(ec);
            }
        });
    }
}

void Client::reset_cancel() {
    impl_->cancelled = false;
}

std::string Client::current_endpoint() const {
    std::lock_guard lock(impl_->mu);
    if (impl_->last_good < 0) return "";
    return impl_->endpoints[static_cast<std::size_t>(impl_->last_good)].url;
}

Result<void> validate(const ClientOptions& opts) {
    if (opts.endpoints.empty()) {
        return Error::invalid("cluster.etcd: at least one endpoint is needed");
    }
    for (std::size_t i = 0; i < opts.endpoints.size(); ++i) {
        const std::string field = fmt::format("cluster.etcd[{}]", i);
        CNETD_TRY_ASSIGN(Endpoint ep, codec::parse_endpoint(opts.endpoints[i], field));
        if (ep.tls && !opts.tls) {
            return Error::invalid(fmt::format(
                "cluster.tls: required by the https endpoint {} (\"{}\")", field, ep.url));
        }
    }
    if (opts.timeout.count() <= 0) {
        return Error::invalid(
            fmt::format("etcd timeout: {} ms is not a positive duration", opts.timeout.count()));
    }
    if (opts.tls) CNETD_TRY(tls::check_files(*opts.tls));
    return ok();
}

}  // namespace cnetd::etcd
