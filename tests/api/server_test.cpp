// The real server, handlers and worker on a temp unix socket, with FakeBackend behind the worker,
// driven through api::Client (and raw Beast where the client is too polite).
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "api/client.hpp"
#include "api_server.hpp"
#include "daemon/firewall_monitor.hpp"
#include "daemon/handlers.hpp"
#include "daemon/server.hpp"
#include "daemon/worker.hpp"
#include "fake_backend.hpp"

namespace cnetd {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using api::json;
using namespace std::chrono_literals;

TEST_F(ApiServer, PingAndInfo) {
    auto ping = client().request("GET", "/v1/ping");
    ASSERT_TRUE(ping.ok()) << ping.error().message();
    EXPECT_EQ(*ping, json({{"ok", true}}));
    auto info = client().request("GET", "/v1/info");
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ((*info)["Version"], "9.9.9");
    EXPECT_EQ((*info)["NetnsDir"], netns_dir_);
    EXPECT_EQ((*info)["Socket"], sock_);
    EXPECT_EQ((*info)["Networks"], 1);
    EXPECT_EQ((*info)["Endpoints"], 0);
}

TEST_F(ApiServer, SocketIsMode0660) {
    struct stat st {};
    ASSERT_EQ(::lstat(sock_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u);
}

TEST_F(ApiServer, NetworkLifecycle) {
    auto c = client();
    auto created = c.request("POST", "/v1/networks",
                             json{{"Name", "web"},
                                  {"Subnet", "10.88.0.0/24"},
                                  {"Options", {{"com.docker.network.bridge.name", "br-web"}}}});
    ASSERT_TRUE(created.ok()) << created.error().message();
    EXPECT_EQ((*created)["Name"], "web");
    EXPECT_EQ((*created)["Options"]["com.docker.network.bridge.name"], "br-web");
    const std::string id = (*created)["Id"];
    ASSERT_EQ(id.size(), 64u);

    auto list = c.request("GET", "/v1/networks");
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0]["Name"], "bridge");
    EXPECT_EQ((*list)[1]["Name"], "web");

    // By name, by id, by unique id prefix.
    for (const std::string& key : {std::string("web"), id, id.substr(0, 12)}) {
        auto one = c.request("GET", "/v1/networks/" + key);
        ASSERT_TRUE(one.ok()) << key << ": " << one.error().message();
        EXPECT_EQ((*one)["Id"], id);
    }

    auto dup = c.request("POST", "/v1/networks", json{{"Name", "web"}, {"Subnet", "10.89.0.0/24"}});
    ASSERT_FALSE(dup.ok());
    EXPECT_EQ(dup.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(dup.error().message(), "network web already exists");

    auto ep = c.request("POST", "/v1/networks/" + id.substr(0, 12) + "/connect",
                        json{{"Target", "a"}, {"Name", "c1"}, {"IPv4Address", "10.88.0.9"}});
    ASSERT_TRUE(ep.ok()) << ep.error().message();
    EXPECT_EQ((*ep)["Network"], "web");  // named even though the path used an id prefix
    EXPECT_EQ((*ep)["Name"], "c1");
    EXPECT_EQ((*ep)["IPv4Address"], "10.88.0.9/24");
    EXPECT_EQ((*ep)["SandboxKey"], netns_dir_ + "/a");

    auto web = c.request("GET", "/v1/networks/web");
    ASSERT_TRUE(web.ok());
    ASSERT_EQ((*web)["Containers"].size(), 1u);
    json entry = (*web)["Containers"][(*ep)["EndpointID"].get<std::string>()];
    EXPECT_EQ(entry["IPv4Address"], "10.88.0.9/24");
    EXPECT_FALSE(entry.contains("Network"));
    EXPECT_EQ((*c.request("GET", "/v1/info"))["Endpoints"], 1);

    auto dc = c.request("POST", "/v1/networks/web/disconnect", json{{"Target", "c1"}});
    ASSERT_TRUE(dc.ok()) << dc.error().message();
    EXPECT_TRUE(dc->is_null());  // 204, no body
    EXPECT_EQ((*c.request("GET", "/v1/networks/web"))["Containers"].size(), 0u);

    auto rm = c.request("DELETE", "/v1/networks/web");
    ASSERT_TRUE(rm.ok()) << rm.error().message();
    auto gone = c.request("GET", "/v1/networks/web");
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(gone.error().message(), "network web not found");
}

TEST_F(ApiServer, EngineErrorsKeepKindAndMessage) {
    auto bad =
        client().request("POST", "/v1/networks", json{{"Name", "x"}, {"Subnet", "10.0.0.1/8"}});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(bad.error().message().rfind("subnet: ", 0), 0u) << bad.error().message();
    auto rm = client().raw("DELETE", "/v1/networks/bridge", "");
    ASSERT_TRUE(rm.ok());
    EXPECT_EQ(rm->status, 400);
    EXPECT_EQ(json::parse(rm->body)["kind"], "invalid-argument");
}

TEST_F(ApiServer, NetnsLifecycleReadsTheDirectory) {
    auto c = client();
    auto made = c.request("POST", "/v1/netns", json{{"Name", "b"}});
    ASSERT_TRUE(made.ok()) << made.error().message();
    EXPECT_EQ(*made, json({{"Name", "b"}, {"Path", netns_dir_ + "/b"}}));
    ASSERT_TRUE(c.request("POST", "/v1/netns", json{{"Name", "a"}}).ok());
    auto ls = c.request("GET", "/v1/netns");
    ASSERT_TRUE(ls.ok());
    EXPECT_EQ(*ls, json::parse(R"([{"Name":"a","Path":")" + netns_dir_ + R"(/a"},
                                   {"Name":"b","Path":")" +
                               netns_dir_ + R"(/b"}])"));
    ASSERT_TRUE(c.request("DELETE", "/v1/netns/a").ok());
    EXPECT_FALSE(std::filesystem::exists(netns_dir_ + "/a"));
    EXPECT_EQ(c.request("GET", "/v1/netns")->size(), 1u);
    auto again = c.request("DELETE", "/v1/netns/a");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind(), ErrorKind::NotFound);
}

TEST_F(ApiServer, MalformedAndWrongBodiesGet400WithPreciseMessages) {
    auto r = client().raw("POST", "/v1/networks", R"({"Name": "web")");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400);
    auto body = json::parse(r->body);
    EXPECT_EQ(body["kind"], "invalid-argument");
    EXPECT_NE(body["message"].get<std::string>().find(
                  "invalid JSON body: parse error at line 1, column 15"),
              std::string::npos)
        << body;

    auto t = client().request("POST", "/v1/networks", json{{"Name", "w"}, {"Subnet", 5}});
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().message(), "\"Subnet\": expected a string, got number");
    auto u = client().request("POST", "/v1/netns", json{{"Name", "a"}, {"Mode", "x"}});
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().message(), "unknown field \"Mode\"");
    EXPECT_FALSE(std::filesystem::exists(netns_dir_ + "/a"));  // nothing reached the backend
}

// A number beyond a double used to escape the codec as nlohmann's out_of_range: 500 "internal
// error". It is the client's mistake: 400 naming the field, and nothing reaches the backend.
TEST_F(ApiServer, NumberOutOfRangeIs400NamingTheField) {
    auto r = client().raw("POST", "/v1/networks", R"({"Name":"x","MTU":1e999})");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 400) << r->body;
    auto body = json::parse(r->body);
    EXPECT_EQ(body["kind"], "invalid-argument");
    EXPECT_EQ(body["message"],
              "create network: invalid JSON body: \"MTU\": number 1e999 is out of range "
              "(magnitude above 1.8e308)");
    auto cni = client().raw("POST", "/v1/cni/add", R"({"Network":{"Name":"p","Mtu":-1e400}})");
    ASSERT_TRUE(cni.ok());
    EXPECT_EQ(cni->status, 400) << cni->body;
    EXPECT_NE(cni->body.find(R"(\"Network\".\"Mtu\": number -1e400 is out of range)"),
              std::string::npos)
        << cni->body;
    auto nets = client().request("GET", "/v1/networks");
    ASSERT_TRUE(nets.ok());
    for (const auto& n : *nets) EXPECT_NE(n["Name"], "x");
}

TEST_F(ApiServer, PublishedPortsShowInConnectInspectAndPortsList) {
    auto c = client();
    auto empty = c.request("GET", "/v1/ports");
    ASSERT_TRUE(empty.ok()) << empty.error().message();
    EXPECT_EQ(*empty, json::array());

    auto a = c.request(
        "POST", "/v1/networks/bridge/connect",
        json{{"Target", "a"},
             {"Publish", {"8080:80", "127.0.0.1:5353:53/udp"}},
             {"PortBindings",
              {{{"HostPort", "8000-8002"}, {"ContainerPort", "90-92"}, {"Proto", "tcp"}}}}});
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ((*a)["Ports"], json::parse(R"({
        "80/tcp": [{"HostIp":"0.0.0.0","HostPort":"8080"}],
        "53/udp": [{"HostIp":"127.0.0.1","HostPort":"5353"}],
        "90/tcp": [{"HostIp":"0.0.0.0","HostPort":"8000"}],
        "91/tcp": [{"HostIp":"0.0.0.0","HostPort":"8001"}],
        "92/tcp": [{"HostIp":"0.0.0.0","HostPort":"8002"}]})"))
        << a->dump();
    const std::string id = (*a)["EndpointID"];
    auto bridge = c.request("GET", "/v1/networks/bridge");
    ASSERT_TRUE(bridge.ok());
    EXPECT_EQ((*bridge)["Containers"][id]["Ports"], (*a)["Ports"]);

    auto ports = c.request("GET", "/v1/ports");
    ASSERT_TRUE(ports.ok()) << ports.error().message();
    ASSERT_EQ(ports->size(), 3u) << ports->dump();
    // PortBindings first, then Publish, as the engine (core::Engine::connect) orders them.
    EXPECT_EQ((*ports)[0]["HostPort"], "8000-8002");  // ranges stay ranges
    EXPECT_EQ((*ports)[0]["ContainerPort"], "90-92");
    EXPECT_EQ((*ports)[1], json({{"Network", "bridge"},
                                 {"Endpoint", "a"},
                                 {"EndpointID", id},
                                 {"Container", "172.17.0.2"},
                                 {"Proto", "tcp"},
                                 {"HostIp", "0.0.0.0"},
                                 {"HostPort", "8080"},
                                 {"ContainerPort", "80"}}));
    EXPECT_EQ((*ports)[2]["HostIp"], "127.0.0.1");
    EXPECT_EQ((*ports)[2]["Proto"], "udp");

    // A taken host port: the backend's Conflict comes back as 409 with Docker's words.
    auto dup = c.raw("POST", "/v1/networks/bridge/connect",
                     json{{"Target", "b"}, {"Publish", {"8080:80"}}}.dump());
    ASSERT_TRUE(dup.ok());
    EXPECT_EQ(dup->status, 409) << dup->body;
    EXPECT_EQ(json::parse(dup->body)["message"],
              "Bind for 0.0.0.0:8080 failed: port is already allocated");
    // A bad spec: the backend names publish[i].
    auto spec = c.request("POST", "/v1/networks/bridge/connect",
                          json{{"Target", "b"}, {"Publish", {"81", "80:x"}}});
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(spec.error().message().rfind("publish[1]: ", 0), 0u) << spec.error().message();
    EXPECT_EQ(c.request("GET", "/v1/ports")->size(), 3u);  // nothing changed

    // Disconnect releases them: the list is empty and the port can be published again.
    ASSERT_TRUE(c.request("POST", "/v1/networks/bridge/disconnect", json{{"Target", "a"}}).ok());
    EXPECT_EQ(*c.request("GET", "/v1/ports"), json::array());
    auto again = c.request("POST", "/v1/networks/bridge/connect",
                           json{{"Target", "b"}, {"Publish", {"8080:80"}}});
    ASSERT_TRUE(again.ok()) << again.error().message();
    auto post = c.raw("POST", "/v1/ports", "");
    ASSERT_TRUE(post.ok());
    EXPECT_EQ(post->status, 405);
}

TEST_F(ApiServer, BadPortFieldsGet400AndNeverReachTheBackend) {
    auto c = client();
    for (auto [body, message] : {
             std::pair{R"({"Target":"a","Publish":"8080:80"})",
                       "\"Publish\": expected an array of strings, got string"},
             {R"({"Target":"a","Publish":[80]})", "\"Publish\"[0]: expected a string, got number"},
             {R"({"Target":"a","PortBindings":[{"ContainerPort":"80","HostPort":"x"}]})",
              "\"PortBindings\"[0].\"HostPort\": \"x\" is not a port (1-65535) or a port range "
              "like 8000-8010"},
             {R"({"Target":"a","PortBindings":[{"HostPort":"80"}]})",
              "\"PortBindings\"[0].\"ContainerPort\": required"},
             {R"({"Target":"a","PortBindings":[{"ContainerPort":"80","Ip":"1.2.3.4"}]})",
              "\"PortBindings\"[0]: unknown field \"Ip\""},
         }) {
        auto r = c.raw("POST", "/v1/networks/bridge/connect", body);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 400) << body;
        EXPECT_EQ(json::parse(r->body)["message"], message) << body;
    }
    auto bridge = c.request("GET", "/v1/networks/bridge");
    ASSERT_TRUE(bridge.ok());
    EXPECT_EQ((*bridge)["Containers"].size(), 0u);  // no endpoint was made
}

TEST_F(ApiServer, RoutingGives404And405) {
    for (auto [method, target] : {std::pair{"GET", "/v2/networks"},
                                  {"GET", "/v1/nope"},
                                  {"GET", "/"},
                                  {"POST", "/v1/networks/web/attach"},
                                  {"GET", "/v1/netns/a/b"},
                                  {"GET", "/v1/networks/%zz"}}) {
        auto r = client().raw(method, target, "");
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 404) << method << " " << target;
        EXPECT_EQ(json::parse(r->body)["kind"], "not-found");
    }
    for (auto [method, target] : {std::pair{"PUT", "/v1/networks"},
                                  {"POST", "/v1/ping"},
                                  {"GET", "/v1/networks/bridge/connect"},
                                  {"GET", "/v1/netns/a"},
                                  {"PATCH", "/v1/networks/bridge"}}) {
        auto r = client().raw(method, target, "");
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->status, 405) << method << " " << target;
    }
    http::request<http::string_body> req{http::verb::put, "/v1/networks", 11};
    req.set(http::field::host, "localhost");
    auto [status, body] = beast_request(req);
    EXPECT_EQ(status, 405);
    EXPECT_EQ(json::parse(body)["message"],
              "method PUT not allowed on /v1/networks (allowed: GET, HEAD, POST)");
    // %-encoded names are decoded: "bri%64ge" is "bridge".
    EXPECT_TRUE(client().request("GET", "/v1/networks/bri%64ge").ok());
}

TEST_F(ApiServer, OversizedBodyGets413AndHugeHeadersGet431) {
    auto r = client().raw("POST", "/v1/networks", std::string(api::kMaxBodyBytes + 1, ' '));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(json::parse(r->body)["message"], "request body larger than 1048576 bytes");

    http::request<http::string_body> req{http::verb::get, "/v1/ping", 11};
    req.set(http::field::host, "localhost");
    req.set("X-Padding", std::string(20 * 1024, 'x'));
    EXPECT_EQ(beast_request(req).first, 431);

    // A body exactly at the limit is read and judged on its content.
    auto at = client().raw("POST", "/v1/networks", std::string(api::kMaxBodyBytes, ' '));
    ASSERT_TRUE(at.ok());
    EXPECT_EQ(at->status, 400);
}

TEST_F(ApiServer, KeepAliveServesSeveralRequestsOnOneConnection) {
    asio::io_context io;
    asio::local::stream_protocol::socket s(io);
    s.connect(asio::local::stream_protocol::endpoint(sock_));
    boost::beast::flat_buffer buf;
    for (const char* target : {"/v1/ping", "/v1/networks", "/v1/info"}) {
        http::request<http::string_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "localhost");
        http::write(s, req);
        http::response<http::string_body> res;
        http::read(s, buf, res);
        EXPECT_EQ(res.result_int(), 200u) << target;
        EXPECT_TRUE(res.keep_alive());
    }
}

TEST_F(ApiServer, ReadsAreAnsweredWhileTheWorkerIsBlocked) {
    fake_->hold_next();
    auto mutation = std::async(std::launch::async, [this] {
        return client().request("POST", "/v1/networks",
                                json{{"Name", "web"}, {"Subnet", "10.88.0.0/24"}});
    });
    ASSERT_TRUE(fake_->wait_entered());  // the create is now stuck inside the worker

    auto reads = std::async(std::launch::async, [this] {
        auto nets = client().request("GET", "/v1/networks");
        auto one = client().request("GET", "/v1/networks/bridge");
        auto info = client().request("GET", "/v1/info");
        auto ns = client().request("GET", "/v1/netns");
        return nets.ok() && one.ok() && info.ok() && ns.ok() ? nets->size() : size_t{999};
    });
    bool answered = reads.wait_for(3s) == std::future_status::ready;
    fake_->release();  // before asserting, so a failure cannot leave the futures hanging
    ASSERT_TRUE(answered) << "GETs waited for the blocked worker";
    EXPECT_EQ(reads.get(), 1u);  // the snapshot predates the blocked create

    auto created = mutation.get();
    ASSERT_TRUE(created.ok()) << created.error().message();
    EXPECT_EQ(client().request("GET", "/v1/networks")->size(), 2u);  // published after the job
}

TEST_F(ApiServer, MutationsAfterWorkerStopGet503) {
    worker_.stop();
    fake_ = nullptr;  // destroyed with the worker's backend
    auto r = client().request("POST", "/v1/netns", json{{"Name", "a"}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
    EXPECT_EQ(r.error().error_number(), 0);  // answered by the daemon, not unreachable
    EXPECT_EQ(r.error().message(), "cnetd is shutting down: request not accepted");
    EXPECT_TRUE(client().request("GET", "/v1/networks").ok());  // reads still work
}

TEST_F(ApiServer, SecondServerOnALiveSocketIsRefused) {
    daemon::Server other(io_, *handlers_);
    auto r = other.listen(sock_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict);
    EXPECT_EQ(r.error().message(), "bind " + sock_ + ": another cnetd is already running there");
    EXPECT_TRUE(client().request("GET", "/v1/ping").ok());  // the live socket was left alone
}

TEST_F(ApiServer, InternalInCreateIsStoredAndShown) {
    auto c = client();
    auto internal =
        c.request("POST", "/v1/networks",
                  json{{"Name", "back"}, {"Subnet", "10.90.0.0/24"}, {"Internal", true}});
    ASSERT_TRUE(internal.ok()) << internal.error().message();
    EXPECT_EQ((*internal)["Internal"], true);
    EXPECT_EQ((*c.request("GET", "/v1/networks/back"))["Internal"], true);

    auto plain = c.request("POST", "/v1/networks",
                           json{{"Name", "front"},
                                {"Subnet", "10.91.0.0/24"},
                                {"Options", {{"com.docker.network.bridge.enable_icc", "false"}}}});
    ASSERT_TRUE(plain.ok()) << plain.error().message();
    EXPECT_EQ((*plain)["Internal"], false);  // absent means false
    // Options are passed through to the engine and shown as it stored them.
    EXPECT_EQ((*plain)["Options"]["com.docker.network.bridge.enable_icc"], "false");

    auto bad = c.request("POST", "/v1/networks",
                         json{{"Name", "x"}, {"Subnet", "10.92.0.0/24"}, {"Internal", "yes"}});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(bad.error().message(), "\"Internal\": expected a boolean, got string");
    EXPECT_FALSE(c.request("GET", "/v1/networks/x").ok());  // never reached the backend
}

TEST_F(ApiServer, InfoShowsTheFirewallFromTheSnapshot) {
    auto info = client().request("GET", "/v1/info");
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ((*info)["Firewall"], json({{"Backend", "nftables"},
                                         {"Repairs", 0},
                                         {"LastRepair", ""},
                                         {"Warnings", json::array()}}));

    // Like every read, it does not wait for a blocked worker.
    fake_->hold_next();
    auto mutation = std::async(std::launch::async, [this] {
        return client().request("POST", "/v1/netns", json{{"Name", "a"}});
    });
    ASSERT_TRUE(fake_->wait_entered());
    auto during =
        std::async(std::launch::async, [this] { return client().request("GET", "/v1/info"); });
    bool answered = during.wait_for(3s) == std::future_status::ready;
    fake_->release();
    EXPECT_TRUE(answered) << "GET /v1/info waited for the blocked worker";
    EXPECT_TRUE(mutation.get().ok());
}

TEST_F(ApiServer, FirewallRouteShowsTheBackendFromTheWorker) {
    auto fw = client().request("GET", "/v1/firewall");
    ASSERT_TRUE(fw.ok()) << fw.error().message();
    EXPECT_EQ((*fw)["Backend"], "nftables");
    EXPECT_EQ((*fw)["Table"], "inet cnetd");
    EXPECT_EQ((*fw)["InSync"], true);
    EXPECT_EQ((*fw)["Repairs"], 0);
    EXPECT_EQ((*fw)["LastRepair"], "");
    EXPECT_EQ((*fw)["Warnings"], json::array());
    EXPECT_EQ((*fw)["Text"], "table inet cnetd {\n}\n# kernel: matches\n");

    // InSync follows the kernel line of show(). The text is changed by a job, i.e. on the worker.
    std::promise<void> changed;
    ASSERT_TRUE(worker_.post([&](daemon::Backend&) {
        fake_->fake_firewall().show_text = "table inet cnetd {\n}\n# kernel: differs: no table\n";
        changed.set_value();
    }));
    changed.get_future().wait();
    fw = client().request("GET", "/v1/firewall");
    ASSERT_TRUE(fw.ok()) << fw.error().message();
    EXPECT_EQ((*fw)["InSync"], false);

    auto wrong = client().raw("DELETE", "/v1/firewall", "");
    ASSERT_TRUE(wrong.ok());
    EXPECT_EQ(wrong->status, 405);
}

TEST_F(ApiServer, FirewallRouteWaitsForTheWorker) {
    // Documented: show() reads the kernel, so GET /v1/firewall queues behind a running mutation.
    fake_->hold_next();
    auto mutation = std::async(std::launch::async, [this] {
        return client().request("POST", "/v1/netns", json{{"Name", "a"}});
    });
    ASSERT_TRUE(fake_->wait_entered());
    auto fw =
        std::async(std::launch::async, [this] { return client().request("GET", "/v1/firewall"); });
    bool early = fw.wait_for(300ms) == std::future_status::ready;
    fake_->release();
    EXPECT_FALSE(early) << "GET /v1/firewall was answered while the worker was busy";
    auto r = fw.get();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ((*r)["Backend"], "nftables");
    EXPECT_TRUE(mutation.get().ok());
}

// Sends `raw` on one connection and reads until the server closes it (each request here ends
// with Connection: close on the last one).
std::string round_trip(const std::string& sock, const std::string& raw) {
    asio::io_context io;
    asio::local::stream_protocol::socket s(io);
    s.connect(asio::local::stream_protocol::endpoint(sock));
    asio::write(s, asio::buffer(raw));
    std::string out;
    boost::system::error_code ec;
    char buf[4096];
    for (;;) {
        std::size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) break;
        out.append(buf, n);
    }
    return out;
}

// "Content-Length: 12" of the response head starting at `pos`.
std::string header(const std::string& resp, std::size_t pos, const std::string& name) {
    const std::size_t end = resp.find("\r\n\r\n", pos);
    const std::size_t h = resp.find("\r\n" + name + ": ", pos);
    if (h == std::string::npos || h > end) return "";
    const std::size_t v = h + 4 + name.size();
    return resp.substr(v, resp.find("\r\n", v) - v);
}

TEST_F(ApiServer, HeadAnswersEveryGetRouteWithItsHeadersAndNoBody) {
    // HEAD then GET of the same target pipelined on one connection: the HEAD answer must end with
    // its headers (the GET's status line follows at once) and announce the GET body's length.
    for (const char* target :
         {"/v1/ping", "/v1/info", "/v1/networks", "/v1/networks/bridge", "/v1/networks/nope",
          "/v1/ports", "/v1/netns", "/v1/firewall", "/v1/dns", "/v1/cni/status/pods", "/v1/nope",
          "/v1/networks/bridge/connect"}) {
        const std::string t = target;
        const std::string all =
            round_trip(sock_, "HEAD " + t + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + t +
                                  " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        const std::size_t head_end = all.find("\r\n\r\n");
        ASSERT_NE(head_end, std::string::npos) << t << ": " << all;
        const std::size_t get_at = head_end + 4;
        ASSERT_EQ(all.compare(get_at, 9, "HTTP/1.1 "), 0) << t << ": HEAD sent a body: " << all;
        EXPECT_EQ(all.substr(9, 3), all.substr(get_at + 9, 3)) << t << ": same status";
        const std::size_t get_body = all.find("\r\n\r\n", get_at) + 4;
        // An error message that names the method names the one the client used: "HEAD" is one
        // byte longer than "GET".
        const bool names_method = all.find("GET ", get_body) != std::string::npos;
        EXPECT_EQ(header(all, 0, "Content-Length"),
                  std::to_string(all.size() - get_body + (names_method ? 1 : 0)))
            << t;
        EXPECT_EQ(header(all, 0, "Content-Type"), header(all, get_at, "Content-Type")) << t;
        EXPECT_EQ(header(all, 0, "Allow"), header(all, get_at, "Allow")) << t;
    }
    // A POST-only route names HEAD as the method refused; GET routes list HEAD as allowed.
    auto all = round_trip(sock_,
                          "HEAD /v1/networks/bridge/connect HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n");
    EXPECT_EQ(all.substr(9, 3), "405") << all;
    EXPECT_EQ(header(all, 0, "Allow"), "POST");
    auto wrong = client().raw("DELETE", "/v1/ping", "");
    ASSERT_TRUE(wrong.ok());
    EXPECT_EQ(json::parse(wrong->body)["message"],
              "method DELETE not allowed on /v1/ping (allowed: GET, HEAD)");
}

// Polls `pred` every 5 ms for up to 5 s.
template <class Pred>
bool eventually(Pred pred) {
    for (int i = 0; i < 1000; ++i) {
        if (pred()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return pred();
}

TEST_F(ApiServer, AMutationRunsBeforeKernelReadsQueuedAheadOfIt) {
    // The worker is busy with a mutation; 40 kernel reads (GET /v1/firewall, GET
    // /v1/cni/status/...) queue up, then a second mutation arrives. When the worker frees up the
    // mutation must run first, and the reads of one route share one dump.
    fake_->hold_next();
    auto first = std::async(std::launch::async, [this] {
        return client().request("POST", "/v1/netns", json{{"Name", "first"}});
    });
    ASSERT_TRUE(fake_->wait_entered());
    std::vector<std::future<Result<json>>> reads;
    for (int i = 0; i < 20; ++i) {
        reads.push_back(std::async(std::launch::async,
                                   [this] { return client().request("GET", "/v1/firewall"); }));
        reads.push_back(std::async(
            std::launch::async, [this] { return client().request("GET", "/v1/cni/status/pods"); }));
    }
    ASSERT_TRUE(eventually([&] { return handlers_->read_stats().waiting == 40; }))
        << handlers_->read_stats().waiting;
    auto queued = [this] { return worker_.queued().mutations + worker_.queued().reads; };
    EXPECT_EQ(queued(), 2u);  // one dump per route
    auto second = std::async(std::launch::async, [this] {
        return client().request("POST", "/v1/netns", json{{"Name", "second"}});
    });
    ASSERT_TRUE(eventually([&] { return queued() == 3; }));
    fake_->release();

    ASSERT_TRUE(first.get().ok());
    auto made = second.get();
    ASSERT_TRUE(made.ok()) << made.error().message();
    for (size_t i = 0; i < reads.size(); ++i) {
        auto r = reads[i].get();
        if (i % 2 == 0) {
            ASSERT_TRUE(r.ok()) << r.error().message();
            EXPECT_EQ((*r)["Backend"], "nftables");
        } else {
            ASSERT_TRUE(r.ok()) << r.error().message();  // answered by the read job
            EXPECT_EQ(*r, json({{"Ready", true}, {"Problems", json::array()}}));
        }
    }
    auto calls = fake_->calls();
    ASSERT_EQ(calls.size(), 4u);
    std::sort(calls.begin() + 2, calls.end());  // the two reads run in their arrival order
    EXPECT_EQ(calls, (std::vector<std::string>{"create_netns first", "create_netns second",
                                               "cni_status pods", "show"}));
    EXPECT_EQ(handlers_->read_stats().dumps, 2u);
}

TEST_F(ApiServer, AMutationPostedWhileAReadBlocksRunsBeforeTheNextRead) {
    // A firewall dump is stuck in the kernel (the fake's show() blocks). Reads of another route
    // queue, then a mutation: it runs as soon as the dump ends, before those reads. Firewall reads
    // arriving meanwhile share the dump in progress.
    fake_->hold_next();
    auto stuck =
        std::async(std::launch::async, [this] { return client().request("GET", "/v1/firewall"); });
    ASSERT_TRUE(fake_->wait_entered());
    std::vector<std::future<Result<json>>> status, fw;
    for (int i = 0; i < 10; ++i) {
        status.push_back(std::async(
            std::launch::async, [this] { return client().request("GET", "/v1/cni/status/pods"); }));
        fw.push_back(std::async(std::launch::async,
                                [this] { return client().request("GET", "/v1/firewall"); }));
    }
    ASSERT_TRUE(eventually([&] { return handlers_->read_stats().waiting == 21; }));
    auto made = std::async(std::launch::async, [this] {
        return client().request("POST", "/v1/netns", json{{"Name", "a"}});
    });
    ASSERT_TRUE(
        eventually([&] { return worker_.queued().mutations + worker_.queued().reads == 2; }));
    fake_->release();
    ASSERT_TRUE(stuck.get().ok());
    ASSERT_TRUE(made.get().ok());
    for (auto& f : fw) EXPECT_TRUE(f.get().ok());
    for (auto& f : status) EXPECT_TRUE(f.get().ok());
    EXPECT_EQ(fake_->calls(),
              (std::vector<std::string>{"show", "create_netns a", "cni_status pods"}));
}

TEST_F(ApiServer, AKernelReadIsReusedUntilAMutationStarts) {
    auto shows = [this] {
        auto c = fake_->calls();
        return std::count(c.begin(), c.end(), "show");
    };
    ASSERT_TRUE(client().request("GET", "/v1/firewall").ok());
    ASSERT_TRUE(client().request("GET", "/v1/firewall").ok());
    EXPECT_EQ(shows(), 1);  // the second read is answered from the first dump (within 500 ms)
    EXPECT_EQ(handlers_->read_stats().cached, 1u);
    // A mutation's answer seen, the next read dumps again: it never shows older state.
    ASSERT_TRUE(client().request("POST", "/v1/netns", json{{"Name", "a"}}).ok());
    ASSERT_TRUE(client().request("GET", "/v1/firewall").ok());
    EXPECT_EQ(shows(), 2);
}

// The drift monitor on the fake firewall, whose monitor fd is a socket pair the test writes to.
class FirewallMonitorTest : public ApiServer {
protected:
    FirewallMonitorTest() {
        with_monitor_fd_ = true;
        initial_warnings_ = {"table ip filter chain FORWARD (hook forward, policy drop) drops it"};
    }
    void SetUp() override {
        ApiServer::SetUp();
        if (HasFatalFailure()) return;
        monitor_.emplace(io_, worker_, 100ms);
        auto r = monitor_->start();
        ASSERT_TRUE(r.ok()) << r.error().message();
        ASSERT_TRUE(monitor_->watching());
    }
    void send(char c) { ASSERT_EQ(::write(fake_->fake_firewall().write_end(), &c, 1), 1); }
    json firewall_info() { return (*client().request("GET", "/v1/info"))["Firewall"]; }
    // Polls `pred` every 10 ms for up to `limit`; returns the time it took, or nullopt.
    template <class Pred>
    std::optional<std::chrono::milliseconds> wait_until(Pred pred,
                                                        std::chrono::milliseconds limit) {
        auto t0 = std::chrono::steady_clock::now();
        for (;;) {
            auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - t0);
            if (pred()) return took;
            if (took > limit) return std::nullopt;
            std::this_thread::sleep_for(10ms);
        }
    }
};

TEST_F(FirewallMonitorTest, StartupWarningsAreInInfo) {
    EXPECT_EQ(fake_->coexistence_checks(), 1);
    // The start-up job's result is published with the worker's next snapshot: allow it to land.
    ASSERT_TRUE(
        wait_until([&] { return firewall_info()["Warnings"] == json(initial_warnings_); }, 2000ms))
        << firewall_info();
    EXPECT_EQ((*client().request("GET", "/v1/firewall"))["Warnings"], json(initial_warnings_));
    EXPECT_EQ(fake_->fake_firewall().events_handled(), 0);  // nothing readable, no job
}

TEST_F(FirewallMonitorTest, RepairRunsOnTheWorkerAndIsCountedInInfo) {
    fake_->set_coexistence({"net.ipv4.ip_forward is 0"});
    send('r');
    auto took = wait_until([&] { return firewall_info()["Repairs"] == 1; }, 2000ms);
    ASSERT_TRUE(took) << "no repair within 2 s: " << firewall_info();
    EXPECT_LT(*took, 1000ms);
    json fw = firewall_info();
    EXPECT_TRUE(std::regex_match(fw["LastRepair"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)")))
        << fw;
    EXPECT_EQ(fake_->fake_firewall().handled_on(), worker_thread_);
    EXPECT_EQ(fake_->fake_firewall().events_handled(), 1);
    // The coexistence check ran again after the repair and its new list replaced the old one.
    EXPECT_EQ(fake_->coexistence_checks(), 2);
    EXPECT_EQ(fw["Warnings"], json::array({"net.ipv4.ip_forward is 0"}));

    // Our own notifications: handled, not a repair, no new coexistence check.
    send('n');
    ASSERT_TRUE(wait_until([&] { return fake_->fake_firewall().events_handled() == 2; }, 2000ms));
    std::this_thread::sleep_for(50ms);  // let the job's publication land
    EXPECT_EQ(firewall_info()["Repairs"], 1);
    EXPECT_EQ(fake_->coexistence_checks(), 2);

    send('r');
    ASSERT_TRUE(wait_until([&] { return firewall_info()["Repairs"] == 2; }, 2000ms));
    EXPECT_EQ(fake_->fake_firewall().events_handled(), 3);  // exactly one job per readable event
}

TEST_F(FirewallMonitorTest, AFailingCheckBacksOffInsteadOfSpinning) {
    send('x');  // handle_events() fails and leaves the socket readable
    std::this_thread::sleep_for(1000ms);
    int calls = fake_->fake_firewall().events_handled();
    // Backoff 100, 200, 400 ms...: 4 or 5 calls in a second; a busy loop would make thousands.
    EXPECT_GE(calls, 2) << "a failed check must be retried";
    EXPECT_LE(calls, 6);
    EXPECT_EQ(firewall_info()["Repairs"], 0);
}

TEST_F(FirewallMonitorTest, StopIsPromptAndFinal) {
    auto t0 = std::chrono::steady_clock::now();
    monitor_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
    EXPECT_FALSE(monitor_->watching());
    send('r');
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(fake_->fake_firewall().events_handled(), 0);
    monitor_->stop();  // idempotent
}

TEST_F(ApiServer, MonitorWithoutAnEventFdOnlyChecksCoexistence) {
    daemon::FirewallMonitor m(io_, worker_);
    auto r = m.start();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(m.watching());
    EXPECT_EQ(fake_->coexistence_checks(), 1);
    m.stop();
}

TEST_F(ApiServer, MonitorNeedsARunningWorker) {
    worker_.stop();
    fake_ = nullptr;  // destroyed with the worker's backend
    daemon::FirewallMonitor m(io_, worker_);
    auto r = m.start();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
    EXPECT_EQ(r.error().message(), "start firewall monitor: the kernel worker is not running");
}

TEST(ApiServerStandalone, StaleSocketIsReplaced) {
    char tmpl[] = "/tmp/cnetd-api-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string dir = tmpl, path = dir + "/s.sock";
    {  // a socket file nobody listens on, as a crashed daemon leaves behind
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);
    }
    asio::io_context io;
    daemon::Worker w;
    daemon::Handlers h(w, {});
    daemon::Server s(io, h);
    auto r = s.listen(path);
    EXPECT_TRUE(r.ok()) << r.error().message();
    s.close();
    EXPECT_FALSE(std::filesystem::exists(path));  // close() removes the socket file

    std::filesystem::create_directories(dir + "/notasocket");
    daemon::Server s2(io, h);
    auto r2 = s2.listen(dir + "/notasocket");
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().message(), "bind " + dir + "/notasocket: exists and is not a socket");
    std::filesystem::remove_all(dir);
}

TEST(ApiClient, UnreachableDaemonIsNamed) {
    api::Client c("/nonexistent/cnetd.sock");
    auto r = c.request("GET", "/v1/ping");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Unavailable);
    EXPECT_EQ(r.error().error_number(), ENOENT);
    EXPECT_EQ(r.error().message(),
              "cannot connect to cnetd at /nonexistent/cnetd.sock: No such file or directory (is "
              "cnetd running?)");
}

}  // namespace
}  // namespace cnetd

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);  // a test writing to a socket the server closed must not die
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
