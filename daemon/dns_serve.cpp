#include "daemon/dns_serve.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <system_error>
#include <utility>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "base/log.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
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
    idle_.expires_after(parent_->shared_.limits.tcp_idle);
    idle_.async_wait([self = shared_from_this()](const error_code& ec) {
        if (ec || self->closed_) return;
        if (self->pending_ > 0 || !self->outq_.empty()) return self->arm_idle();
        self->parent_->shared_.counters.tcp_rejected.fetch_add(1, std::memory_order_relaxed);
        self->close();
    });
}

void ServedSandbox::TcpClient::read_length() {
    asio::async_read(sock_, asio::buffer(len_),
                     [self = shared_from_this()](const error_code& ec, size_t) {
                         if (self->closed_) return;
                         if (ec) {  // EOF (or reset): finish what is pending, then close
                             self->reading_ = false;
                             if (self->pending_ == 0 && self->outq_.empty()) self->close();
                             return;
                         }
                         const size_t n = size_t{self->len_[0]} << 8 | self->len_[1];
                         if (n > self->parent_->shared_.limits.max_tcp_message || n == 0) {
                             // Never a real query: close without reading (a 64 KiB body is never
                             // buffered).
                             self->parent_->shared_.counters.tcp_rejected.fetch_add(
                                 1, std::memory_order_relaxed);
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
            auto& out = self->parent_->shared_.out;
            if (self->parent_->shared_.handler.handle(self->parent_->ns_, self->query_, true, out,
                                                      later))
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

SandboxPoller::SandboxPoller(asio::io_context& io) : ep_(io) {
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "dns: epoll_create1");
    ep_.assign(fd);
    wait();
}

bool SandboxPoller::add(int fd, Watch* w) {
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: a socket not drained is reported again
    ev.data.ptr = w;
    return ::epoll_ctl(ep_.native_handle(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void SandboxPoller::remove(int fd) {
    if (fd >= 0) ::epoll_ctl(ep_.native_handle(), EPOLL_CTL_DEL, fd, nullptr);
}

void SandboxPoller::wait() {
    ep_.async_wait(asio::posix::descriptor::wait_read, [this](const error_code& ec) {
        if (ec == asio::error::operation_aborted) return;
        dispatch();
        wait();
    });
}

// A sandbox closed while handling an event of this batch is removed from the set but still
// alive (its owner drops it from a later handler, never from one of these), so a later event of
// the batch for it finds it closed rather than freed.
void SandboxPoller::dispatch() {
    std::array<epoll_event, 64> evs;
    const int n = ::epoll_wait(ep_.native_handle(), evs.data(), static_cast<int>(evs.size()), 0);
    for (int i = 0; i < n; ++i) {
        const auto* w = static_cast<const Watch*>(evs[static_cast<size_t>(i)].data.ptr);
        w->sandbox->ready(w->tcp);
    }
}

ServedSandbox::ServedSandbox(NetnsId ns, std::string path, SandboxShared& shared)
    : ns_(ns), path_(std::move(path)), shared_(shared) {}

ServedSandbox::~ServedSandbox() {
    if (!closed_) close();
}

bool ServedSandbox::start(UniqueFd udp_fd, UniqueFd tcp_fd) {
    for (UniqueFd* fd : {&udp_fd, &tcp_fd}) {
        // O_NONBLOCK is shared with the engine's descriptor (one open file): set, never cleared.
        if (fd->valid() &&
            ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK) < 0) {
            log::error("dns: sandbox {}: adopt socket: {}", path_, std::strerror(errno));
            return false;
        }
    }
    udp_ = std::move(udp_fd);
    tcp_ = std::move(tcp_fd);
    if ((udp_.valid() && !shared_.poller.add(udp_.get(), &udp_watch_)) ||
        (tcp_.valid() && !shared_.poller.add(tcp_.get(), &tcp_watch_))) {
        log::error("dns: sandbox {}: watch socket: {}", path_, std::strerror(errno));
        close();
        return false;
    }
    return true;
}

void ServedSandbox::close() {
    closed_ = true;
    shared_.poller.remove(udp_.get());
    shared_.poller.remove(tcp_.get());
    udp_.reset();
    tcp_.reset();
    for (auto c : std::set<std::shared_ptr<TcpClient>>(clients_)) c->close();
}

void ServedSandbox::ready(bool tcp) {
    if (closed_) return;
    tcp ? accept_tcp() : read_udp();
}

void ServedSandbox::read_udp() {
    std::vector<uint8_t>& buf = shared_.udp_buf;
    for (int i = 0; i < kUdpBatch; ++i) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = ::recvfrom(udp_.get(), buf.data(), buf.size(), 0,
                                     reinterpret_cast<sockaddr*>(&from), &len);
        // Woken with nothing to read, or an empty datagram: the engine may have shut the listener
        // down (the next sync drops this sandbox); stop watching rather than spin until then.
        if (((n < 0 && i == 0) || n == 0) && shut_down()) {
            shared_.poller.remove(udp_.get());
            shared_.poller.remove(tcp_.get());
            closed_ = true;
            return;
        }
        if (n < 0) return;  // EAGAIN: drained (anything else: the next wake-up tells)
        std::weak_ptr<ServedSandbox> weak = weak_from_this();
        auto later = [&weak, &from]() -> QueryHandler::Respond {
            return [weak, from](std::span<const uint8_t> msg) {
                auto s = weak.lock();
                if (!s || s->closed_) return;
                (void)::sendto(s->udp_.get(), msg.data(), msg.size(), MSG_DONTWAIT,
                               reinterpret_cast<const sockaddr*>(&from), sizeof from);
            };
        };
        std::vector<uint8_t>& out = shared_.out;
        if (shared_.handler.handle(ns_, {buf.data(), static_cast<size_t>(n)}, false, out, later)) {
            // A full socket buffer drops the answer; the client retries.
            (void)::sendto(udp_.get(), out.data(), out.size(), MSG_DONTWAIT,
                           reinterpret_cast<const sockaddr*>(&from), sizeof from);
        }
    }
}

// The engine shuts its listener down before closing it (the last dns endpoint of the namespace
// went): the UDP socket then stays readable with nothing to read (EAGAIN), which must not become a
// busy loop.
bool ServedSandbox::shut_down() const {
    pollfd p{udp_.get(), POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

void ServedSandbox::accept_tcp() {
    const int fd = ::accept4(tcp_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
            return;
        // The listener is unusable (shut down by the engine as the namespace's last dns endpoint
        // went: EINVAL; or out of descriptors): stop watching it, or level-triggered epoll would
        // spin; the next sync closes or replaces the sandbox.
        if (errno != EINVAL) log::warn("dns: sandbox {}: accept: {}", path_, std::strerror(errno));
        shared_.poller.remove(tcp_.get());
        return;
    }
    UniqueFd conn(fd);
    if (clients_.size() >= shared_.limits.max_tcp_clients) {
        shared_.counters.tcp_rejected.fetch_add(1, std::memory_order_relaxed);
        return;  // closed by `conn`
    }
    error_code ec;
    tcp::socket s(shared_.io);
    s.assign(tcp::v4(), conn.get(), ec);
    if (ec) {
        log::warn("dns: sandbox {}: accept: {}", path_, ec.message());
        return;
    }
    conn.release();
    auto c = std::make_shared<TcpClient>(shared_from_this(), std::move(s));
    clients_.insert(c);
    c->start();
}

}  // namespace cnetd::daemon
