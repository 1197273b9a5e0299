#include "daemon/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include <boost/asio/post.hpp>
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

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(local::socket sock, Handlers& handlers) : sock_(std::move(sock)), handlers_(handlers) {}

    void start() { read(); }

private:
    void read() {
        parser_.emplace();
        parser_->body_limit(api::kMaxBodyBytes);
        parser_->header_limit(static_cast<std::uint32_t>(api::kMaxHeaderBytes));
        http::async_read(
            sock_, buf_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
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
        keep_alive_ = msg.keep_alive();
        ApiRequest req{std::string(msg.method_string()), std::string(msg.target()),
                       std::move(msg.body())};
        log::debug("api: {} {}", req.method, req.target);
        // The reply may come from the worker thread: hop back to this session's executor.
        handlers_.handle(req, [self = shared_from_this()](ApiResponse resp) {
            asio::post(self->sock_.get_executor(),
                       [self, resp = std::move(resp)]() mutable { self->write(std::move(resp)); });
        });
    }

    void answer_and_close(int status, std::string message) {
        keep_alive_ = false;
        write(error_response(status, Error::invalid(std::move(message))));
    }

    void write(ApiResponse resp) {
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(11);
        res->result(static_cast<unsigned>(resp.status));
        res->set(http::field::server, "cnetd");
        if (!resp.allow.empty()) res->set(http::field::allow, resp.allow);
        if (!resp.body.is_null()) {
            res->set(http::field::content_type, "application/json");
            res->body() = resp.body.dump() + "\n";
        }
        res->keep_alive(keep_alive_);
        res->prepare_payload();
        http::async_write(sock_, *res,
                          [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                              if (ec) return;
                              if (self->keep_alive_) return self->read();
                              beast::error_code ignored;
                              self->sock_.shutdown(local::socket::shutdown_send, ignored);
                          });
    }

    local::socket sock_;
    Handlers& handlers_;
    beast::flat_buffer buf_;
    std::optional<http::request_parser<http::string_body>> parser_;
    bool keep_alive_ = true;
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

}  // namespace

Server::Server(asio::io_context& io, Handlers& handlers)
    : io_(io), handlers_(handlers), acceptor_(io) {}

Server::~Server() {
    close();
}

Result<void> Server::listen(const std::string& path) {
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        return Error::invalid(fmt::format("socket path {} is longer than {} bytes", path,
                                          sizeof(sockaddr_un::sun_path) - 1));
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return Error::conflict(fmt::format("bind {}: exists and is not a socket", path));
        if (socket_answers(path))
            return Error::conflict(
                fmt::format("bind {}: another cnetd is already running there", path));
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return Error::sys(errno, fmt::format("remove stale socket {}", path));
        log::info("removed stale socket {}", path);
    }

    boost::system::error_code ec;
    acceptor_.open(local(), ec);
    if (ec)
        return Error(ErrorKind::Internal, fmt::format("open socket: {}", ec.message()), ec.value());
    // umask is process-wide; done before bind so the socket is born 0660 (no chmod window).
    mode_t old = ::umask(0117);
    acceptor_.bind(local::endpoint(path), ec);
    ::umask(old);
    if (ec) {
        acceptor_.close();
        return Error(ErrorKind::Internal, fmt::format("bind {}: {}", path, ec.message()),
                     ec.value());
    }
    path_ = path;
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        close();
        return Error(ErrorKind::Internal, fmt::format("listen on {}: {}", path, ec.message()),
                     ec.value());
    }
    accept();
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

void Server::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, local::socket sock) {
        if (ec == asio::error::operation_aborted) return;  // close()
        if (ec) {
            // EMFILE and friends: log and keep accepting rather than going deaf.
            log::warn("accept on {}: {}", path_, ec.message());
        } else {
            std::make_shared<Session>(std::move(sock), handlers_)->start();
        }
        if (acceptor_.is_open()) accept();
    });
}

}  // namespace cnetd::daemon
