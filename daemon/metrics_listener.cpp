#include "daemon/metrics_listener.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/log.hpp"
#include "obs/metrics.hpp"

namespace cnetd::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct MetricsListener::State {
    explicit State(asio::io_context& io, Scrape s) : acceptor(io), scrape(std::move(s)) {}
    tcp::acceptor acceptor;
    Scrape scrape;
    std::size_t active = 0;
};

namespace {

// One connection: read one request, answer it, close.
class ScrapeSession : public std::enable_shared_from_this<ScrapeSession> {
public:
    ScrapeSession(tcp::socket sock, std::shared_ptr<MetricsListener::State> st)
        : sock_(std::move(sock)), timer_(sock_.get_executor()), st_(std::move(st)) {
        ++st_->active;
    }
    ~ScrapeSession() { --st_->active; }

    void start() {
        timer_.expires_after(MetricsListener::kReadTimeout);  // the whole exchange
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->sock_.close();  // pending reads/writes end with an error
        });
        http::async_read(sock_, buf_, req_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (ec) {
                                 self->timer_.cancel();
                                 return;
                             }
                             self->answer();
                         });
    }

private:
    void answer() {
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(11);
        res->set(http::field::server, "cnetd");
        res->keep_alive(false);
        const std::string target(req_.target());
        const std::string path = target.substr(0, target.find('?'));
        const bool get = req_.method() == http::verb::get || req_.method() == http::verb::head;
        if (path != "/metrics") {
            res->result(http::status::not_found);
            res->set(http::field::content_type, "text/plain");
            res->body() = "404 not found: this listener serves GET /metrics only\n";
        } else if (!get) {
            res->result(http::status::method_not_allowed);
            res->set(http::field::allow, "GET, HEAD");
            res->set(http::field::content_type, "text/plain");
            res->body() = "405 method not allowed: GET /metrics only\n";
        } else {
            res->result(http::status::ok);
            res->set(http::field::content_type, obs::Metrics::kContentType);
            res->body() = st_->scrape();
        }
        res->prepare_payload();
        if (req_.method() == http::verb::head) res->body().clear();  // Content-Length kept
        http::async_write(sock_, *res,
                          [self = shared_from_this(), res](beast::error_code, std::size_t) {
                              beast::error_code ignored;
                              self->sock_.shutdown(tcp::socket::shutdown_both, ignored);
                              self->timer_.cancel();
                          });
    }

    tcp::socket sock_;
    asio::steady_timer timer_;
    std::shared_ptr<MetricsListener::State> st_;
    beast::flat_buffer buf_{8192};
    http::request<http::empty_body> req_;
};

void accept(const std::shared_ptr<MetricsListener::State>& st) {
    st->acceptor.async_accept([st](beast::error_code ec, tcp::socket sock) {
        if (ec == asio::error::operation_aborted || !st->acceptor.is_open()) return;
        if (!ec) {
            if (st->active >= MetricsListener::kMaxConnections) {
                sock.close();  // over the limit: refused at once, nothing read
            } else {
                std::make_shared<ScrapeSession>(std::move(sock), st)->start();
            }
        }
        accept(st);
    });
}

}  // namespace

Result<std::pair<std::string, unsigned short>> split_host_port(const std::string& address,
                                                               const std::string& key) {
    auto bad = [&](const std::string& why) {
        return Error::invalid(fmt::format("{}: \"{}\": {}", key, address, why));
    };
    std::string host, port;
    if (!address.empty() && address[0] == '[') {
        auto close = address.find("]:");
        if (close == std::string::npos) return bad("expected [IPv6]:port");
        host = address.substr(1, close - 1);
        port = address.substr(close + 2);
    } else {
        auto colon = address.rfind(':');
        if (colon == std::string::npos) return bad("expected host:port");
        host = address.substr(0, colon);
        port = address.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos)
        return bad("the port must be a number from 0 to 65535");
    const unsigned long p = std::stoul(port);
    if (p > 65535) return bad("the port must be a number from 0 to 65535");
    beast::error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) return bad(fmt::format("\"{}\" is not an IP address", host));
    return std::pair{host, static_cast<unsigned short>(p)};
}

MetricsListener::MetricsListener(asio::io_context& io, Scrape scrape)
    : st_(std::make_shared<State>(io, std::move(scrape))) {}

MetricsListener::~MetricsListener() {
    close();
}

Result<void> MetricsListener::listen(const std::string& address) {
    CNETD_TRY_ASSIGN(auto hp, split_host_port(address, "metrics-address"));
    beast::error_code ec;
    const tcp::endpoint ep(asio::ip::make_address(hp.first), hp.second);
    st_->acceptor.open(ep.protocol(), ec);
    if (!ec) st_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) st_->acceptor.bind(ep, ec);
    if (!ec) st_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        beast::error_code ignored;
        st_->acceptor.close(ignored);
        return Error::sys(ec.value(), fmt::format("metrics-address: listen on {}", address));
    }
    accept(st_);
    log::info("metrics: serving GET /metrics on {}", address);
    return ok();
}

unsigned short MetricsListener::port() const {
    beast::error_code ec;
    auto ep = st_->acceptor.local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void MetricsListener::close() {
    beast::error_code ignored;
    st_->acceptor.close(ignored);
}

}  // namespace cnetd::daemon
