// The control server: an Asio unix-stream acceptor and Beast HTTP/1.1 sessions with keep-alive.
//
// Threading: all of it runs on the one thread running the io_context; Handlers' replies that come
// from the kernel worker are posted back to the session's executor before touching the socket.
// Limits: headers over api::kMaxHeaderBytes → 431, bodies over api::kMaxBodyBytes → 413, an
// unparsable request → 400; each of these closes the connection after the answer.
// Ownership: borrows the io_context and the Handlers (both must outlive the server and every
// session; sessions keep themselves alive with shared_ptr while I/O is pending).
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "base/error.hpp"
#include "daemon/handlers.hpp"

namespace cnetd::daemon {

class Server {
public:
    Server(boost::asio::io_context& io, Handlers& handlers);
    ~Server();

    // Binds and listens on `path` with mode 0660 (set by the umask around bind(), so the socket is
    // never reachable with wider permissions). A leftover socket file is probed: if something
    // answers there, another cnetd is running → Conflict, and the file is left alone; otherwise
    // it is unlinked. A non-socket file at `path` is refused. Errors name the path.
    // Call before running the io_context (changes the process umask briefly; call while no other
    // thread creates files).
    Result<void> listen(const std::string& path);
    // Stops accepting and unlinks the socket file (if we created it). Sessions in progress are not
    // interrupted; the io_context's owner stops them. Idempotent.
    void close();

private:
    void accept();

    boost::asio::io_context& io_;
    Handlers& handlers_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    std::string path_;
};

}  // namespace cnetd::daemon
