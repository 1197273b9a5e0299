#include "daemon/dns_serve.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <deque>
#include <utility>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "base/log.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr int kUdpBatch = 64;  // datagrams read per wake-up before others get their turn
}  // namespace

// One client connection: reads queries one after the other, answers each as soon as it is ready
// (writes queued in order of readiness).
class ServedSandbox::TcpClient : public std::enable_shared_from_this<TcpClient> {
public:
    TcpClient(std::shared_ptr<ServedSandbox> parent, tcp::socket sock)
        : parent_(std::move(parent)), sock_(std::move(sock)), idle_(sock_.get_executor()) {}

    void start() {
        arm_idle();
        read_length();
    }
    void close();

private:
    void arm_idle();
    void read_length();
    void read_body(size_t n);
    void answer(std::span<const uint8_t> msg);
    void write_next();

    std::shared_ptr<ServedSandbox> parent_;
    tcp::socket sock_;
    asio::steady_timer idle_;
    std::array<uint8_t, 2> len_{};
    std::vector<uint8_t> query_;
    std::deque<std::vector<uint8_t>> outq_;  // framed answers; the front one is being written
    size_t pending_ = 0;                     // forwarded queries not answered yet
    bool reading_ = true;                    // false after EOF: close once all is written
    bool closed_ = false;
};

void ServedSandbox::TcpClient::close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    idle_.cancel();
    sock_.close(ignored);
    parent_->clients_.erase(shared_from_this());
}

void ServedSandbox::TcpClient::arm_idle() {
    idle_.expires_after(parent_->limits_.tcp_idle);
    idle_.async_wait([self = shared_from_this()](const error_code& ec) {
        if (ec || self->closed_) return;
        if (self->pending_ > 0 || !self->outq_.empty()) return self->arm_idle();
        self->parent_->counters_.tcp_rejected.fetch_add(1, std::memory_order_relaxed);
        self->close();
    });
}

void ServedSandbox::TcpClient::read_length() {
    asio::async_read(
        sock_, asio::buffer(len_), [self = shared_from_this()](const error_code& ec, size_t) {
            if (self->closed_) return;
            if (ec) {  // EOF (or reset): finish what is pending, then close
                self->reading_ = false;
                if (self->pending_ == 0 && self->outq_.empty()) self->close();
                return;
            }
            const size_t n = size_t{self->len_[0]} << 8 | self->len_[1];
            if (n > self->parent_->limits_.max_tcp_message || n == 0) {
                // Never a real query: close without reading (a 64 KiB body is never buffered).
                self->parent_->counters_.tcp_rejected.fetch_add(1, std::memory_order_relaxed);
                return self->close();
            }
            self->read_body(n);
        });
}

void ServedSandbox::TcpClient::read_body(size_t n) {
    query_.resize(n);
    asio::async_read(
        sock_, asio::buffer(query_), [self = shared_from_this()](const error_code& ec, size_t) {
            if (self->closed_) return;
            if (ec) {
                self->reading_ = false;
                if (self->pending_ == 0 && self->outq_.empty()) self->close();
                return;
            }
            self->arm_idle();
            auto later = [self]() -> QueryHandler::Respond {
                ++self->pending_;
                return [weak = std::weak_ptr<TcpClient>(self)](std::span<const uint8_t> msg) {
                    auto c = weak.lock();
                    if (!c || c->closed_) return;
                    --c->pending_;
                    c->answer(msg);
                };
            };
            auto& out = self->parent_->out_;
            if (self->parent_->handler_.handle(self->parent_->ns_, self->query_, true, out, later))
                self->answer(out);
            self->read_length();
        });
}

void ServedSandbox::TcpClient::answer(std::span<const uint8_t> msg) {
    if (msg.size() > 0xffff) return;
    std::vector<uint8_t> framed;
    framed.reserve(msg.size() + 2);
    framed.push_back(static_cast<uint8_t>(msg.size() >> 8));
    framed.push_back(static_cast<uint8_t>(msg.size()));
    framed.insert(framed.end(), msg.begin(), msg.end());
    outq_.push_back(std::move(framed));
    if (outq_.size() == 1) write_next();
}

void ServedSandbox::TcpClient::write_next() {
    asio::async_write(sock_, asio::buffer(outq_.front()),
                      [self = shared_from_this()](const error_code& ec, size_t) {
                          if (self->closed_) return;
                          if (ec) return self->close();
                          self->outq_.pop_front();
                          if (!self->outq_.empty()) return self->write_next();
                          if (!self->reading_ && self->pending_ == 0) self->close();
                      });
}

ServedSandbox::ServedSandbox(asio::io_context& io, NetnsId ns, std::string path,
                             QueryHandler& handler, DnsAtomicCounters& counters,
                             std::vector<uint8_t>& udp_buf, SandboxLimits limits)
    : io_(io),
      ns_(ns),
      path_(std::move(path)),
      handler_(handler),
      counters_(counters),
      udp_buf_(udp_buf),
      limits_(limits),
      udp_(io),
      tcp_(io) {}

ServedSandbox::~ServedSandbox() = default;

bool ServedSandbox::start(UniqueFd udp_fd, UniqueFd tcp_fd) {
    error_code ec;
    if (udp_fd.valid()) {
        udp_.assign(udp::v4(), udp_fd.get(), ec);
        if (!ec) udp_fd.release();
        if (!ec) udp_.non_blocking(true, ec);
    }
    if (!ec && tcp_fd.valid()) {
        tcp_.assign(tcp::v4(), tcp_fd.get(), ec);
        if (!ec) tcp_fd.release();
    }
    if (ec) {
        log::error("dns: sandbox {}: adopt socket: {}", path_, ec.message());
        return false;
    }
    if (udp_.is_open()) wait_udp();
    if (tcp_.is_open()) accept_tcp();
    return true;
}

void ServedSandbox::close() {
    closed_ = true;
    error_code ignored;
    udp_.close(ignored);
    tcp_.close(ignored);
    for (auto c : std::set<std::shared_ptr<TcpClient>>(clients_)) c->close();
}

void ServedSandbox::wait_udp() {
    udp_.async_wait(udp::socket::wait_read, [self = shared_from_this()](const error_code& ec) {
        if (self->closed_ || ec) return;
        self->read_udp();
        self->wait_udp();
    });
}

void ServedSandbox::read_udp() {
    for (int i = 0; i < kUdpBatch; ++i) {
        udp::endpoint from;
        error_code ec;
        const size_t n = udp_.receive_from(asio::buffer(udp_buf_), from, 0, ec);
        // Woken with nothing to read, or an empty datagram: the engine may have shut the listener
        // down (the next sync drops this sandbox); stop reading rather than spin until then.
        if (((ec && i == 0) || (!ec && n == 0)) && shut_down()) {
            closed_ = true;
            return;
        }
        if (ec) return;  // would_block: drained
        std::weak_ptr<ServedSandbox> weak = weak_from_this();
        auto later = [&weak, &from]() -> QueryHandler::Respond {
            return [weak, from](std::span<const uint8_t> msg) {
                auto s = weak.lock();
                if (!s || s->closed_) return;
                error_code ignored;
                s->udp_.send_to(asio::buffer(msg.data(), msg.size()), from, 0, ignored);
            };
        };
        if (handler_.handle(ns_, {udp_buf_.data(), n}, false, out_, later)) {
            error_code ignored;  // a full socket buffer drops the answer; the client retries
            udp_.send_to(asio::buffer(out_), from, 0, ignored);
        }
    }
}

// The engine shuts its listener down before closing it (the last dns endpoint of the namespace
// went): the UDP socket then stays readable with nothing to read (EAGAIN), which must not become a
// busy loop.
bool ServedSandbox::shut_down() {
    pollfd p{udp_.native_handle(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

void ServedSandbox::accept_tcp() {
    tcp_.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket s) {
        if (self->closed_) return;
        if (ec && ec != asio::error::connection_aborted) {
            // The listener is unusable (shut down by the engine as the namespace's last dns
            // endpoint went, or out of descriptors): stop here; the next sync closes or replaces
            // the sandbox.
            if (ec != asio::error::operation_aborted && ec != asio::error::invalid_argument)
                log::warn("dns: sandbox {}: accept: {}", self->path_, ec.message());
            return;
        }
        if (!ec) {
            if (self->clients_.size() >= self->limits_.max_tcp_clients) {
                self->counters_.tcp_rejected.fetch_add(1, std::memory_order_relaxed);
                error_code ignored;
                s.close(ignored);
            } else {
                auto c = std::make_shared<TcpClient>(self, std::move(s));
                self->clients_.insert(c);
                c->start();
            }
        }
        self->accept_tcp();
    });
}

}  // namespace cnetd::daemon
