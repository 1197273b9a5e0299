// The ApiServer fixture shared by the server tests: the real server, handlers and worker on a
// temp unix socket, with testing::FakeBackend behind the worker (one per test, torn down after).
// Tests drive it through client() (api::Client) or beast_request() (raw Beast, any headers).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "api/client.hpp"
#include "daemon/firewall_monitor.hpp"
#include "daemon/handlers.hpp"
#include "daemon/server.hpp"
#include "daemon/worker.hpp"
#include "fake_backend.hpp"
#include "proc.hpp"

namespace cnetd {

class ApiServer : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cnetd-api-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        netns_dir_ = dir_ + "/netns";
        ASSERT_EQ(::mkdir(netns_dir_.c_str(), 0755), 0);
        sock_ = dir_ + "/cnetd.sock";
        auto started = worker_.start([this]() -> Result<std::unique_ptr<daemon::Backend>> {
            auto b = std::make_unique<testing::FakeBackend>(netns_dir_, with_monitor_fd_);
            b->set_coexistence(initial_warnings_);
            fake_ = b.get();
            worker_thread_ = std::this_thread::get_id();
            return std::unique_ptr<daemon::Backend>(std::move(b));
        });
        ASSERT_TRUE(started.ok()) << started.error().message();
        handlers_.emplace(worker_, daemon::DaemonInfo{"9.9.9", netns_dir_, dir_ + "/state", sock_,
                                                      "2024-01-01T00:00:00Z"});
        server_.emplace(io_, *handlers_);
        auto l = server_->listen(sock_);
        ASSERT_TRUE(l.ok()) << l.error().message();
        io_thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        if (fake_) fake_->release();
        if (monitor_) monitor_->stop();  // before the worker, as in the daemon
        worker_.stop();
        io_.stop();
        if (io_thread_.joinable()) io_thread_.join();
        server_.reset();
        std::filesystem::remove_all(dir_);
    }

    api::Client client() const { return api::Client(sock_); }

    // One request through api::Client: the status and the body as JSON (discarded JSON when the
    // body is none); {0, null} when the request failed (also a test failure).
    std::pair<int, api::json> call(const char* method, const std::string& target,
                                   const api::json& body) {
        auto r = client().raw(method, target, body.is_null() ? "" : body.dump());
        EXPECT_TRUE(r.ok()) << r.error().message();
        if (!r) return {0, nullptr};
        return {r->status, api::json::parse(r->body, nullptr, false)};
    }
    // The real netctl (NETCTL_BIN) against this server's socket.
    testing::Proc netctl(std::vector<std::string> args) {
        std::vector<std::string> argv{testing::bin("NETCTL_BIN"), "--socket", sock_};
        argv.insert(argv.end(), args.begin(), args.end());
        return testing::run(dir_, argv, {}, "");
    }

    // One request on a fresh connection with arbitrary headers, answered as raw status + body.
    std::pair<int, std::string> beast_request(
        boost::beast::http::request<boost::beast::http::string_body> req) {
        boost::asio::io_context io;
        boost::asio::local::stream_protocol::socket s(io);
        s.connect(boost::asio::local::stream_protocol::endpoint(sock_));
        req.prepare_payload();
        boost::system::error_code ec;
        boost::beast::http::write(s, req, ec);
        boost::beast::flat_buffer buf;
        boost::beast::http::response<boost::beast::http::string_body> res;
        boost::beast::http::read(s, buf, res, ec);
        if (ec) return {0, ec.message()};
        return {res.result_int(), res.body()};
    }

    std::string dir_, netns_dir_, sock_;
    boost::asio::io_context io_{1};
    daemon::Worker worker_;
    std::optional<daemon::Handlers> handlers_;
    std::optional<daemon::Server> server_;
    std::thread io_thread_;
    testing::FakeBackend* fake_ = nullptr;  // owned by the worker
    std::thread::id worker_thread_;         // the thread the factory (and every job) runs on
    bool with_monitor_fd_ = false;          // FakeFirewall gets a monitor fd (socket pair)
    std::vector<std::string> initial_warnings_;
    std::optional<daemon::FirewallMonitor> monitor_;
};

}  // namespace cnetd
