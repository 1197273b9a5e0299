#include "daemon/relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "base/fd.hpp"
#include "base/log.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using boost::system::error_code;

namespace {

constexpr size_t kTcpBuffer = 32 * 1024;  // per direction and connection
// The largest datagram. One buffer per listener, shared by its flows: they read it in turn on the
// one io thread (a flow waits for readability, then recv()s synchronously), so a flow costs a
// socket and a timer, not a buffer.
constexpr size_t kUdpBuffer = 64 * 1024;

asio::ip::address_v6 to_asio(const Ipv6& a) {
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), a.bytes().data(), 16);
    return asio::ip::address_v6(b);
}

}  // namespace

// What sync() hands to the io thread: the whole wanted set (by socket inode), with a dup of each
// socket the io thread has not been given yet.
struct Relay::Change {
    struct Entry {
        core::LoopbackRelay binding;  // binding.fd: unused here
        UniqueFd fd;                  // invalid: already handed over earlier
    };
    std::map<uint64_t, Entry> wanted;
};

class Relay::Listener {
public:
    virtual ~Listener() = default;
    virtual void close() = 0;
    virtual size_t active() const = 0;
    virtual bool tcp() const = 0;
};

namespace {

std::string name_of(const core::LoopbackRelay& b) {
    return fmt::format("[::1]:{}->[{}]:{}/{} ({})", b.host_port, b.container_ip.str(),
                       b.container_port, core::to_string(b.proto), b.endpoint);
}

// What a listener serves (the binding, its container endpoint, the limits) and how it takes the
// engine's socket over: shared by the tcp and udp listeners.
template <class Protocol>
struct Served {
    Served(core::LoopbackRelay binding, const RelayLimits& limits)
        : b_(std::move(binding)),
          target_(to_asio(b_.container_ip), b_.container_port),
          limits_(limits) {}

    // Adopts `fd` (a dup of the hold) into `sock`; false (logged) when that fails.
    template <class Socket>
    bool adopt(Socket& sock, UniqueFd fd) const {
        error_code ec;
        sock.assign(Protocol::v6(), fd.get(), ec);
        if (ec) {
            log::error("relay {}: adopt socket: {}", name_of(b_), ec.message());
            return false;
        }
        fd.release();
        return true;
    }

    core::LoopbackRelay b_;
    typename Protocol::endpoint target_;
    RelayLimits limits_;
};

// --- tcp -------------------------------------------------------------------------------------

class TcpListener;

class TcpConn : public std::enable_shared_from_this<TcpConn> {
public:
    TcpConn(tcp::socket client, std::weak_ptr<TcpListener> parent)
        : client_(std::move(client)), up_(client_.get_executor()), parent_(std::move(parent)) {}

    void start(const tcp::endpoint& target) {
        error_code ec;
        up_.open(tcp::v6(), ec);
        if (ec) return finish();
        up_.async_connect(target, [self = shared_from_this()](const error_code& ec) {
            if (self->done_) return;
            if (ec) return self->finish();
            error_code ignored;
            self->client_.set_option(tcp::no_delay(true), ignored);
            self->up_.set_option(tcp::no_delay(true), ignored);
            self->bufs_[0].resize(kTcpBuffer);
            self->bufs_[1].resize(kTcpBuffer);
            self->pump(self->client_, self->up_, 0);
            self->pump(self->up_, self->client_, 1);
        });
    }

    void finish();

private:
    void pump(tcp::socket& from, tcp::socket& to, int i) {
        from.async_read_some(asio::buffer(bufs_[i]), [self = shared_from_this(), &from, &to, i](
                                                         const error_code& ec, size_t n) {
            if (self->done_) return;
            if (ec == asio::error::eof) {
                // Half-close: pass the FIN on, keep relaying the other direction.
                error_code ignored;
                to.shutdown(tcp::socket::shutdown_send, ignored);
                if (--self->open_dirs_ == 0) self->finish();
                return;
            }
            if (ec) return self->finish();
            asio::async_write(to, asio::buffer(self->bufs_[i].data(), n),
                              [self, &from, &to, i](const error_code& ec, size_t) {
                                  if (self->done_) return;
                                  if (ec) return self->finish();
                                  self->pump(from, to, i);
                              });
        });
    }

    tcp::socket client_;
    tcp::socket up_;
    std::weak_ptr<TcpListener> parent_;
    std::array<std::vector<char>, 2> bufs_;
    int open_dirs_ = 2;
    bool done_ = false;
};

class TcpListener final : public Relay::Listener,
                          Served<tcp>,
                          public std::enable_shared_from_this<TcpListener> {
public:
    TcpListener(asio::io_context& io, core::LoopbackRelay b, const RelayLimits& limits)
        : Served(std::move(b), limits), acceptor_(io), retry_(io) {}

    bool start(UniqueFd fd) {
        if (!adopt(acceptor_, std::move(fd))) return false;
        error_code ec;
        acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            log::error("relay {}: listen: {}", name_of(b_), ec.message());
            return false;
        }
        accept();
        return true;
    }

    void close() override {
        closed_ = true;
        error_code ignored;
        acceptor_.close(ignored);
        retry_.cancel();
        auto conns = std::move(conns_);
        for (auto& c : conns) c->finish();
    }
    size_t active() const override { return conns_.size(); }
    bool tcp() const override { return true; }
    void forget(const std::shared_ptr<TcpConn>& c) { conns_.erase(c); }

private:
    void accept() {
        acceptor_.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket s) {
            if (self->closed_) return;
            if (ec) return self->accept_failed(ec);
            if (self->conns_.size() >= self->limits_.max_tcp_connections) {
                if (!self->limit_logged_)
                    log::warn("relay {}: {} connections open (the limit): refusing new ones",
                              name_of(self->b_), self->conns_.size());
                self->limit_logged_ = true;
                error_code ignored;
                s.close(ignored);
            } else {
                self->limit_logged_ = false;
                auto c = std::make_shared<TcpConn>(std::move(s), self);
                self->conns_.insert(c);
                c->start(self->target_);
            }
            self->accept();
        });
    }

    void accept_failed(const error_code& ec) {
        if (ec == asio::error::operation_aborted) return;
        if (ec == asio::error::invalid_argument || ec == asio::error::bad_descriptor) {
            // The engine's hold shut the socket down: the mapping is gone; sync() closes us.
            log::debug("relay {}: listener shut down", name_of(b_));
            return;
        }
        if (ec == asio::error::connection_aborted) return accept();
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: try again shortly instead of spinning.
        log::warn("relay {}: accept: {}; retrying in 100 ms", name_of(b_), ec.message());
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([self = shared_from_this()](const error_code& ec) {
            if (!ec && !self->closed_) self->accept();
        });
    }

    tcp::acceptor acceptor_;
    asio::steady_timer retry_;
    std::set<std::shared_ptr<TcpConn>> conns_;
    bool closed_ = false;
    bool limit_logged_ = false;
};

void TcpConn::finish() {
    if (done_) return;
    done_ = true;
    error_code ignored;
    client_.close(ignored);
    up_.close(ignored);
    if (auto p = parent_.lock()) p->forget(shared_from_this());
}

// --- udp -------------------------------------------------------------------------------------

class UdpListener;

class UdpFlow : public std::enable_shared_from_this<UdpFlow> {
public:
    UdpFlow(asio::io_context& io, udp::endpoint client, std::weak_ptr<UdpListener> parent,
            std::chrono::milliseconds idle)
        : up_(io), idle_timer_(io), client_(client), parent_(std::move(parent)), idle_(idle) {}

    bool start(const udp::endpoint& target) {
        error_code ec;
        up_.open(udp::v6(), ec);
        if (!ec) up_.connect(target, ec);
        if (!ec) up_.non_blocking(true, ec);
        if (ec) return false;
        touch();
        receive();
        arm_idle();
        return true;
    }
    // To the container (drops on a full socket buffer, as the network would).
    void send(const char* data, size_t n) {
        error_code ignored;
        up_.send(asio::buffer(data, n), 0, ignored);
        touch();
    }
    void close() {
        if (closed_) return;
        closed_ = true;
        error_code ignored;
        up_.close(ignored);
        idle_timer_.cancel();
    }

private:
    void touch() { last_ = std::chrono::steady_clock::now(); }
    void receive();
    void arm_idle();

    udp::socket up_;
    asio::steady_timer idle_timer_;
    udp::endpoint client_;
    std::weak_ptr<UdpListener> parent_;
    std::chrono::milliseconds idle_;
    std::chrono::steady_clock::time_point last_;
    bool closed_ = false;
};

class UdpListener final : public Relay::Listener,
                          Served<udp>,
                          public std::enable_shared_from_this<UdpListener> {
public:
    UdpListener(asio::io_context& io, core::LoopbackRelay b, const RelayLimits& limits)
        : Served(std::move(b), limits), io_(io), sock_(io) {}

    bool start(UniqueFd fd) {
        if (!adopt(sock_, std::move(fd))) return false;
        // The hold's drop-all filter kept datagrams off the socket until now.
        int unused = 0;
        if (::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_DETACH_FILTER, &unused,
                         sizeof unused) != 0 &&
            errno != ENOENT) {
            log::error("relay {}: detach filter: {}", name_of(b_), std::strerror(errno));
            return false;
        }
        error_code ec;
        sock_.non_blocking(true, ec);  // replies are sent inline: never block the io thread
        buf_.resize(kUdpBuffer);
        flow_buf_.resize(kUdpBuffer);
        receive();
        return true;
    }

    void close() override {
        closed_ = true;
        error_code ignored;
        sock_.close(ignored);
        auto flows = std::move(flows_);
        for (auto& [ep, f] : flows) f->close();
    }
    size_t active() const override { return flows_.size(); }
    bool tcp() const override { return false; }

    std::vector<char>& buffer() { return flow_buf_; }  // shared by the flows (see kUdpBuffer)
    // A datagram from the container, for `client`.
    void reply(const udp::endpoint& client, const char* data, size_t n) {
        error_code ignored;
        sock_.send_to(asio::buffer(data, n), client, 0, ignored);
    }
    void forget(const udp::endpoint& client, const UdpFlow* f) {
        auto it = flows_.find(client);
        if (it != flows_.end() && it->second.get() == f) flows_.erase(it);
    }

private:
    void receive() {
        sock_.async_receive_from(asio::buffer(buf_), sender_,
                                 [self = shared_from_this()](const error_code& ec, size_t n) {
                                     if (self->closed_) return;
                                     if (ec == asio::error::operation_aborted) return;
                                     if (ec == asio::error::connection_refused)
                                         return self->receive();
                                     if (ec) {
                                         log::warn("relay {}: receive: {}", name_of(self->b_),
                                                   ec.message());
                                         return;
                                     }
                                     // The engine's hold shut the socket down (no sender): the
                                     // mapping is gone.
                                     if (n == 0 && self->sender_.port() == 0) return;
                                     self->deliver(n);
                                     self->receive();
                                 });
    }

    void deliver(size_t n) {
        auto it = flows_.find(sender_);
        if (it == flows_.end()) {
            if (flows_.size() >= limits_.max_udp_flows) {
                if (!limit_logged_)
                    log::warn(
                        "relay {}: {} flows open (the limit): dropping datagrams of new "
                        "clients",
                        name_of(b_), flows_.size());
                limit_logged_ = true;
                return;
            }
            limit_logged_ = false;
            auto f = std::make_shared<UdpFlow>(io_, sender_, weak_from_this(), limits_.udp_idle);
            if (!f->start(target_)) return;
            it = flows_.emplace(sender_, std::move(f)).first;
        }
        it->second->send(buf_.data(), n);
    }

    asio::io_context& io_;
    udp::socket sock_;
    std::vector<char> buf_;       // client -> container (the pending async receive's)
    std::vector<char> flow_buf_;  // container -> client, read synchronously by the flows
    udp::endpoint sender_;
    std::map<udp::endpoint, std::shared_ptr<UdpFlow>> flows_;
    bool closed_ = false;
    bool limit_logged_ = false;
};

void UdpFlow::receive() {
    up_.async_wait(udp::socket::wait_read, [self = shared_from_this()](const error_code& ec) {
        if (self->closed_) return;
        if (ec == asio::error::operation_aborted) return;
        auto parent = self->parent_.lock();
        if (ec || !parent) {
            self->close();
            if (parent) parent->forget(self->client_, self.get());
            return;
        }
        std::vector<char>& buf = parent->buffer();
        for (;;) {  // drain what is queued (non-blocking socket)
            error_code rec;
            const size_t n = self->up_.receive(asio::buffer(buf), 0, rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) break;
            // ICMP port unreachable from the container (nothing listens yet): keep the flow.
            if (rec == asio::error::connection_refused) continue;
            if (rec) {
                self->close();
                parent->forget(self->client_, self.get());
                return;
            }
            parent->reply(self->client_, buf.data(), n);
            self->touch();
        }
        self->receive();
    });
}

void UdpFlow::arm_idle() {
    idle_timer_.expires_at(last_ + idle_);
    idle_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
        if (ec || self->closed_) return;
        if (std::chrono::steady_clock::now() < self->last_ + self->idle_) return self->arm_idle();
        self->close();
        if (auto parent = self->parent_.lock()) parent->forget(self->client_, self.get());
    });
}

}  // namespace

// --- Relay -----------------------------------------------------------------------------------

Relay::Relay(asio::io_context& io, Worker& worker, RelayLimits limits)
    : io_(io), worker_(worker), limits_(limits) {
    worker_.set_publish_hook([this](Backend& b) {
        sync(b.loopback_relays());
    });
    // Start-up's publication happened before the hook existed: an empty job publishes again.
    worker_.post([](Backend&) {});
}

Relay::~Relay() {
    worker_.set_publish_hook({});
    for (auto& [ino, l] : listeners_) l->close();
    listeners_.clear();
}

void Relay::sync(const std::vector<core::LoopbackRelay>& bindings) {
    try {
        auto change = std::make_shared<Change>();
        bool fresh = false;
        for (const auto& b : bindings) {
            if (b.fd < 0) continue;
            struct stat st {};
            if (::fstat(b.fd, &st) != 0) continue;
            const uint64_t ino = st.st_ino;
            Change::Entry e{b, UniqueFd()};
            if (!sent_.count(ino)) {
                e.fd = UniqueFd(::fcntl(b.fd, F_DUPFD_CLOEXEC, 0));
                if (!e.fd.valid()) {
                    log::error("relay {}: dup: {}", name_of(b), std::strerror(errno));
                    continue;
                }
                fresh = true;
            }
            change->wanted.emplace(ino, std::move(e));
        }
        if (!fresh && change->wanted.size() == sent_.size()) return;  // nothing changed
        sent_.clear();
        for (const auto& [ino, e] : change->wanted) sent_.insert(ino);
        asio::post(io_, [this, change] { apply(*change); });
    } catch (const std::exception& e) {
        log::error("relay: sync: {}", e.what());
    }
}

void Relay::apply(Change& change) {
    // Runs as an io_context handler: nothing may escape (it would stop the daemon's loop).
    try {
        size_t closed = 0, opened = 0;
        for (auto it = listeners_.begin(); it != listeners_.end();) {
            if (change.wanted.count(it->first)) {
                ++it;
                continue;
            }
            it->second->close();
            it = listeners_.erase(it);
            ++closed;
        }
        for (auto& [ino, e] : change.wanted) {
            if (listeners_.count(ino) || !e.fd.valid()) continue;
            const core::LoopbackRelay& b = e.binding;
            std::shared_ptr<Listener> l;
            bool started = false;
            if (b.proto == core::Proto::Tcp) {
                auto t = std::make_shared<TcpListener>(io_, b, limits_);
                started = t->start(std::move(e.fd));
                l = t;
            } else if (b.proto == core::Proto::Udp) {
                auto u = std::make_shared<UdpListener>(io_, b, limits_);
                started = u->start(std::move(e.fd));
                l = u;
            }
            if (!started) continue;
            log::debug("relay {}: listening", name_of(b));
            listeners_.emplace(ino, std::move(l));
            ++opened;
        }
        log::info("relay: {} [::1] port(s) served ({} opened, {} closed)", listeners_.size(),
                  opened, closed);
    } catch (const std::exception& e) {
        log::error("relay: apply: {}", e.what());
    }
}

RelayStats Relay::stats() const {
    RelayStats s;
    s.listeners = listeners_.size();
    for (const auto& [ino, l] : listeners_)
        (l->tcp() ? s.tcp_connections : s.udp_flows) += l->active();
    return s;
}

}  // namespace cnetd::daemon
