#include "daemon/dns_forward.hpp"

#include <array>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "base/log.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

DnsCounters DnsAtomicCounters::load() const {
    constexpr auto r = std::memory_order_relaxed;
    DnsCounters c;
    c.queries_udp = queries_udp.load(r);
    c.queries_tcp = queries_tcp.load(r);
    c.answered_local = answered_local.load(r);
    c.forwarded = forwarded.load(r);
    c.upstream_failures = upstream_failures.load(r);
    c.servfail = servfail.load(r);
    c.refused = refused.load(r);
    c.malformed = malformed.load(r);
    c.tcp_rejected = tcp_rejected.load(r);
    return c;
}

// One forwarded query: its tries, one server at a time. Every handler carries the number of the
// try it belongs to (`gen`); a handler of an earlier try (cancelled, or late) does nothing.
class Forwarder::Exchange : public std::enable_shared_from_this<Exchange> {
public:
    Exchange(Forwarder& f, std::span<const uint8_t> query, const dns::Query& q, bool tcp, Done done)
        : f_(f),
          query_(query.begin(), query.end()),
          q_(q),
          client_id_(q.id),
          tcp_(tcp),
          servers_(f.servers_),
          deadline_(Clock::now() + f.budget_),
          done_(std::move(done)),
          timer_(f.io_),
          udp_(f.io_),
          tcp_sock_(f.io_) {
        q_.id = static_cast<uint16_t>(f.rng_());
        dns::set_id(query_, q_.id);
    }

    void next_try();

private:
    void fail_try();
    void finish(std::vector<uint8_t> reply);
    void start_udp(const udp::endpoint& server);
    void on_udp_readable(uint64_t gen, const error_code& ec);
    void start_tcp(const udp::endpoint& server);
    void read_tcp_length(uint64_t gen);
    // The reply of this try: the answer, the next server, or (UDP, truncated) TCP to this one.
    void on_reply(std::span<const uint8_t> reply, bool over_tcp);
    void close_sockets() {
        error_code ignored;
        udp_.close(ignored);
        tcp_sock_.close(ignored);
    }

    Forwarder& f_;
    std::vector<uint8_t> query_;  // the id is ours, not the client's
    dns::Query q_;
    const uint16_t client_id_;
    const bool tcp_;
    const std::shared_ptr<const std::vector<udp::endpoint>> servers_;
    const Clock::time_point deadline_;
    Done done_;
    size_t index_ = 0;  // the server being tried
    uint64_t gen_ = 0;  // the try under way
    bool finished_ = false;
    asio::steady_timer timer_;
    udp::socket udp_;
    tcp::socket tcp_sock_;
    std::array<uint8_t, 2> len_{};
    std::vector<uint8_t> tcp_reply_;
};

void Forwarder::Exchange::next_try() {
    close_sockets();
    const uint64_t gen = ++gen_;
    const Clock::time_point now = Clock::now();
    if (!servers_ || index_ >= servers_->size() || now >= deadline_) return finish({});
    const auto share = (deadline_ - now) / static_cast<long>(servers_->size() - index_);
    timer_.expires_after(share);
    timer_.async_wait([self = shared_from_this(), gen](const error_code& ec) {
        if (ec || gen != self->gen_ || self->finished_) return;
        self->fail_try();  // this server's share is spent
    });
    const udp::endpoint& server = (*servers_)[index_];
    if (tcp_) {
        start_tcp(server);
    } else {
        start_udp(server);
    }
}

void Forwarder::Exchange::fail_try() {
    f_.counters_.upstream_failures.fetch_add(1, std::memory_order_relaxed);
    ++index_;
    next_try();
}

void Forwarder::Exchange::finish(std::vector<uint8_t> reply) {
    if (finished_) return;
    finished_ = true;
    ++gen_;
    timer_.cancel();
    close_sockets();
    if (!reply.empty()) dns::set_id(reply, client_id_);
    f_.in_flight_.fetch_sub(1, std::memory_order_relaxed);
    Done done = std::move(done_);
    done(std::move(reply));
}

void Forwarder::Exchange::start_udp(const udp::endpoint& server) {
    error_code ec;
    udp_.open(server.protocol(), ec);
    if (!ec) udp_.connect(server, ec);  // a fresh socket: a random source port for each query
    if (!ec) udp_.non_blocking(true, ec);
    if (!ec) udp_.send(asio::buffer(query_), 0, ec);
    if (ec) {
        log::debug("dns: forward to {}: {}", server.address().to_string(), ec.message());
        return fail_try();
    }
    udp_.async_wait(udp::socket::wait_read,
                    [self = shared_from_this(), gen = gen_](const error_code& ec) {
                        self->on_udp_readable(gen, ec);
                    });
}

void Forwarder::Exchange::on_udp_readable(uint64_t gen, const error_code& wait_ec) {
    if (gen != gen_ || finished_) return;
    if (wait_ec) return fail_try();
    error_code ec;
    const size_t n = udp_.receive(asio::buffer(f_.udp_buf_), 0, ec);
    if (ec == asio::error::would_block ||
        (!ec && !dns::reply_matches(query_, q_, {f_.udp_buf_.data(), n}))) {
        // Nothing yet, or a datagram that is not the reply (stray, late or spoofed): keep waiting.
        udp_.async_wait(udp::socket::wait_read,
                        [self = shared_from_this(), gen](const error_code& ec) {
                            self->on_udp_readable(gen, ec);
                        });
        return;
    }
    if (ec) return fail_try();  // e.g. ICMP port unreachable: ECONNREFUSED
    on_reply({f_.udp_buf_.data(), n}, false);
}

void Forwarder::Exchange::start_tcp(const udp::endpoint& server) {
    const tcp::endpoint to(server.address(), server.port());
    tcp_sock_.async_connect(to, [self = shared_from_this(), gen = gen_](const error_code& ec) {
        if (gen != self->gen_ || self->finished_) return;
        if (ec) return self->fail_try();
        const size_t n = self->query_.size();
        self->len_ = {static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
        std::array<asio::const_buffer, 2> out{asio::buffer(self->len_), asio::buffer(self->query_)};
        asio::async_write(self->tcp_sock_, out, [self, gen](const error_code& ec, size_t) {
            if (gen != self->gen_ || self->finished_) return;
            if (ec) return self->fail_try();
            self->read_tcp_length(gen);
        });
    });
}

void Forwarder::Exchange::read_tcp_length(uint64_t gen) {
    asio::async_read(tcp_sock_, asio::buffer(len_),
                     [self = shared_from_this(), gen](const error_code& ec, size_t) {
                         if (gen != self->gen_ || self->finished_) return;
                         const size_t n = size_t{self->len_[0]} << 8 | self->len_[1];
                         if (ec || n < 12) return self->fail_try();
                         self->tcp_reply_.resize(n);
                         asio::async_read(self->tcp_sock_, asio::buffer(self->tcp_reply_),
                                          [self, gen](const error_code& ec, size_t) {
                                              if (gen != self->gen_ || self->finished_) return;
                                              if (ec || !dns::reply_matches(self->query_, self->q_,
                                                                            self->tcp_reply_))
                                                  return self->fail_try();
                                              self->on_reply(self->tcp_reply_, true);
                                          });
                     });
}

void Forwarder::Exchange::on_reply(std::span<const uint8_t> reply, bool over_tcp) {
    const auto h = dns::parse_reply_header(reply);
    if (!h) return fail_try();
    if (h->tc && !over_tcp) {
        // Truncated: ask this server again over TCP, within what is left of its share (same
        // try: the share's timer stays armed).
        error_code ignored;
        udp_.close(ignored);
        return start_tcp((*servers_)[index_]);
    }
    if (h->rcode == dns::Rcode::ServFail || h->rcode == dns::Rcode::Refused) return fail_try();
    finish(std::vector<uint8_t>(reply.begin(), reply.end()));
}

Forwarder::Forwarder(asio::io_context& io, DnsAtomicCounters& counters, size_t max_in_flight,
                     std::chrono::milliseconds budget)
    : io_(io),
      counters_(counters),
      max_in_flight_(max_in_flight),
      budget_(budget),
      servers_(std::make_shared<const std::vector<udp::endpoint>>()),
      rng_(std::random_device{}()),
      udp_buf_(65536) {}

Forwarder::~Forwarder() = default;

void Forwarder::set_servers(std::vector<udp::endpoint> servers) {
    servers_ = std::make_shared<const std::vector<udp::endpoint>>(std::move(servers));
}

bool Forwarder::forward(std::span<const uint8_t> query, const dns::Query& q, bool tcp, Done done) {
    if (in_flight_.load(std::memory_order_relaxed) >= max_in_flight_) return false;
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    counters_.forwarded.fetch_add(1, std::memory_order_relaxed);
    auto ex = std::make_shared<Exchange>(*this, query, q, tcp, std::move(done));
    // Posted: `done` never runs inside forward() (its caller may still be using its buffers).
    asio::post(io_, [ex] { ex->next_try(); });
    return true;
}

}  // namespace cnetd::daemon
