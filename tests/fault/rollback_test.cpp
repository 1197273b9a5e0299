// A failed request changes nothing (issue 15): for every mutating API route, the real daemon is
// made to fail at each fallible step in turn — every kernel and firewall call of the request
// (core/failpoint_wrappers.hpp, the ".before" points: the call is then not made) and the save
// (store.journal.append.error, store.journal.torn) — by arming "*=error@N" for N = 1, 2, ...
// through CNETD_FAILPOINTS_FILE (base/failpoint.hpp) right before the request, until the request
// succeeds with nothing injected. No restart is needed: the daemon keeps running.
//
// For each (route, N) where the API answered an error, everything a request may touch is
// compared before and after, and must be identical:
//   - links of the host namespace and of every namespace file (name, kind, master, up, mtu, mac),
//     their addresses (IPv6 link-locals aside), IPv4 and IPv6 routes of every table;
//   - the sets and maps of `table inet cnetd` with their elements, and its rules (handles aside);
//   - the daemon's state as the API shows it (GET /v1/networks) and as the state files load
//     (state.json + state.journal read by store::FileStateStore, as the daemon would at start).
// A point whose failure the request tolerates (it succeeds anyway: a gratuitous ARP, a neighbour
// flush) is listed, not compared. Prints the (route, point) pairs covered and asserts a floor.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "api/client.hpp"
#include "harness.hpp"
#include "store/file_store.hpp"

using namespace cnetd::it;
using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// One mutating route: `setup` makes its precondition and `teardown` removes whatever the route
// and setup left (both unarmed, around every point); `request` answers true when the API said
// success, with the error text in `err` otherwise.
struct Route {
    std::string name;
    std::function<void()> setup;
    std::function<bool(std::string& err)> request;
    std::function<void()> teardown;
};

class Rollback : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).status, 0);
        rules_ = d.dir() + "/failpoints";
        log_ = d.dir() + "/failpoints.log";
        setenv("CNETD_FAILPOINTS_FILE", rules_.c_str(), 1);
        setenv("CNETD_FAILPOINTS_LOG", log_.c_str(), 1);
        ASSERT_TRUE(d.start()) << d.log();
        unsetenv("CNETD_FAILPOINTS_FILE");
        unsetenv("CNETD_FAILPOINTS_LOG");
    }

    // --- arming ----------------------------------------------------------------------------------
    // The rules file is replaced by rename; the comment makes every version distinct.
    void write_rules(const std::string& rules) {
        std::ofstream(rules_ + ".tmp") << rules << " # " << ++generation_ << "\n";
        fs::rename(rules_ + ".tmp", rules_);
    }
    void arm(long n) {
        std::ofstream(log_, std::ios::trunc).close();
        write_rules("*=error@" + std::to_string(n));
    }
    void disarm() { write_rules(""); }
    // The point the armed request failed at ("" when nothing was injected).
    std::string injected() const {
        std::istringstream in(slurp(log_));
        std::string line, last;
        while (std::getline(in, line))
            if (line.rfind("error ", 0) == 0) last = line.substr(6, line.rfind(' ') - 6);
        return last;
    }

    // --- requests --------------------------------------------------------------------------------
    bool netctl(const std::vector<std::string>& args, std::string& err) const {
        CmdResult r = d.netctl(args);
        err = r.err;
        return r.status == 0;
    }
    // Unarmed set-up steps must work; teardown steps may find nothing to remove.
    void must(const std::vector<std::string>& args) const {
        CmdResult r = d.netctl(args);
        ASSERT_EQ(r.status, 0) << json(args).dump() << ": " << r.err << "\n" << d.log();
    }
    void quietly(const std::vector<std::string>& args) const { (void)d.netctl(args); }
    bool api(const std::string& method, const std::string& target, const json& body,
             std::string& err) const {
        auto r = cnetd::api::Client(d.socket()).raw(method, target, body.dump());
        if (!r.ok()) return err = r.error().message(), false;
        err = r->body;
        return r->status >= 200 && r->status < 300;
    }
    std::string ns(const std::string& name) const { return d.netns_dir() + "/" + name; }
    // SIGHUP with `yaml` as the config; true when the live part applied (or there was none).
    bool reload(const std::string& yaml, std::string& err) {
        const size_t from = d.log().size();
        d.write_config(yaml);
        ::kill(d.pid(), SIGHUP);
        // The summary ("info: reload: applied: ...") is logged when the file is read; the live
        // part runs later on the worker and ends in "reload: live changes in effect" or
        // "error: reload: ...". Waiting for the summary alone raced the worker.
        auto done = [&] {
            const std::string l = d.log().substr(from);
            if (l.find("error: reload: ") != std::string::npos) return true;
            const size_t s = l.find("info: reload: ");
            if (s == std::string::npos) return false;
            if (l.find("info: reload: applied: ", s) == std::string::npos) return true;
            return l.find("reload: live changes in effect", s) != std::string::npos;
        };
        for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(10ms);
        const std::string log = d.log().substr(from);
        const size_t e = log.find("error: reload: ");
        if (e == std::string::npos) return true;
        err = log.substr(e, log.find('\n', e) - e);
        return false;
    }

    // --- what must not change --------------------------------------------------------------------
    // Retired veth pairs are deleted in batches soon after a disconnect (Kernel::retire_veth):
    // wait until every host veth is on a bridge again, so a deletion still under way is not
    // taken for a change.
    void settle() const {
        for (int i = 0; i < 100; ++i) {
            json l = ip_json({"link", "show", "type", "veth"});
            bool busy = false;
            for (const auto& x : l)
                if (x.is_object() && !x.contains("master")) busy = true;
            if (!busy) return;
            std::this_thread::sleep_for(20ms);
        }
    }
    // Links (name, kind, master, up, mtu, mac), addresses (IPv6 link-locals aside) and IPv4 and
    // IPv6 routes of every table, of the host ("") or of a namespace file: one `sh` for the four
    // `ip -j` dumps.
    static json net_state(const std::string& netns) {
        std::vector<std::string> argv;
        if (!netns.empty()) argv = {"nsenter", "--net=" + netns};
        argv.insert(argv.end(), {"sh", "-c",
                                 "ip -j -d link show && echo @@ && ip -j addr show && echo @@ && "
                                 "ip -j -4 route show table all && echo @@ && "
                                 "ip -j -6 route show table all"});
        CmdResult r = run(argv);
        std::vector<json> parts;
        std::istringstream in(r.out + "@@\n");
        std::string part;
        for (std::string line; std::getline(in, line);) {
            if (line != "@@") {
                part += line;
                continue;
            }
            parts.push_back(part.empty() ? json::array() : json::parse(part, nullptr, false));
            part.clear();
        }
        if (r.status != 0 || parts.size() != 4) return {{"error", r.err}, {"out", r.out}};
        return {{"links", links(parts[0])},
                {"addrs", addrs(parts[1])},
                {"routes", routes(parts[2], parts[3])}};
    }
    static json links(const json& dump) {
        json out = json::object();
        for (const auto& x : dump) {
            if (!x.is_object() || !x.contains("ifname")) continue;
            const json flags = x.value("flags", json::array());
            out[x["ifname"].get<std::string>()] = {
                {"kind", x.contains("linkinfo") ? x["linkinfo"].value("info_kind", "") : ""},
                {"master", x.value("master", "")},
                {"up", std::find(flags.begin(), flags.end(), "UP") != flags.end()},
                {"mtu", x.value("mtu", 0)},
                {"mac", x.value("address", "")}};
        }
        return out;
    }
    static json addrs(const json& dump) {
        json out = json::object();
        for (const auto& x : dump) {
            if (!x.is_object() || !x.contains("ifname")) continue;
            std::set<std::string> a;
            for (const auto& i : x.value("addr_info", json::array())) {
                if (i.value("family", "") == "inet6" && i.value("scope", "") == "link") continue;
                a.insert(i.value("local", "") + "/" + std::to_string(i.value("prefixlen", 0)) +
                         " " + i.value("scope", ""));
            }
            out[x["ifname"].get<std::string>()] = a;
        }
        return out;
    }
    static json routes(const json& v4, const json& v6) {
        std::set<std::string> out;
        for (const json* dump : {&v4, &v6}) {
            for (auto r : *dump) {
                if (!r.is_object()) continue;
                const std::string dst = r.value("dst", "");
                if (dst.rfind("fe80:", 0) == 0 || dst == "ff00::/8") continue;  // link-locals
                r.erase("flags");  // "linkdown" follows the carrier of a bridge's first port
                r.erase("expires");
                out.insert(r.dump());
            }
        }
        return out;
    }
    static json firewall() {
        CmdResult r = run({"nft", "-j", "list", "table", "inet", "cnetd"});
        if (r.status != 0) return {{"error", r.err}};
        json t = json::parse(r.out, nullptr, false), out = json::object();
        for (const auto& o : t.value("nftables", json::array())) {
            for (const char* kind : {"set", "map"}) {
                if (!o.contains(kind)) continue;
                std::set<std::string> elems;
                for (const auto& e : o[kind].value("elem", json::array())) elems.insert(e.dump());
                out[std::string(kind) + " " + o[kind].value("name", "")] = elems;
            }
            if (o.contains("rule")) {
                json rule = o["rule"];
                rule.erase("handle");
                out["rules " + rule.value("chain", "")].push_back(rule.dump());
            }
            if (o.contains("chain")) out["chain " + o["chain"].value("name", "")] = true;
        }
        return out;
    }
    // The state files as the daemon would load them: loaded from a copy (load() may cut a torn
    // tail) and written out afresh as one snapshot, its sequence number aside.
    json stored() const {
        const std::string copy = d.dir() + "/state-copy", fresh = d.dir() + "/state-fresh";
        std::error_code ec;
        fs::remove_all(copy, ec);
        fs::remove_all(fresh, ec);
        fs::create_directories(copy);
        for (const char* f : {"state.json", "state.journal"})
            if (fs::exists(d.state_dir() + "/" + f))
                fs::copy_file(d.state_dir() + "/" + f, copy + "/" + f);
        cnetd::store::FileStateStore from(copy), to(fresh);
        auto nets = from.load();
        if (!nets) return {{"load error", nets.error().message()}};
        if (auto i = to.init(); !i.ok()) return {{"init error", i.error().message()}};
        if (auto s = to.save(*nets); !s.ok()) return {{"save error", s.error().message()}};
        json j = json::parse(slurp(fresh + "/state.json"), nullptr, false);
        if (!j.is_object()) return {{"parse error", slurp(fresh + "/state.json")}};
        j.erase("seq");
        j["networks"] = by_name(j["networks"], "name");
        return j;
    }
    // An array of networks as an object keyed by name, so a difference names its network.
    static json by_name(const json& nets, const char* key) {
        json out = json::object();
        for (const auto& n : nets)
            if (n.is_object()) out[n.value(key, "?")] = n;
        return out;
    }
    json snapshot() const {
        settle();
        json s;
        s["host"] = net_state("");
        std::vector<std::string> files;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(d.netns_dir(), ec))
            files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        for (const auto& f : files) s["netns"][f] = net_state(f);
        s["nft"] = firewall();
        std::string err;
        auto r = cnetd::api::Client(d.socket()).request("GET", "/v1/networks");
        s["api"] = r.ok() ? by_name(*r, "Name") : json{{"error", r.error().message()}};
        s["stored"] = stored();
        return s;
    }
    // Every path at which two snapshots differ, "host.addrs.br4: [..] -> (absent)", one a line.
    static void diff_into(const std::string& path, const json& a, const json& b, std::string& out) {
        if (a == b) return;
        if (a.is_object() && b.is_object()) {
            std::set<std::string> keys;
            for (const auto& [k, v] : a.items()) keys.insert(k);
            for (const auto& [k, v] : b.items()) keys.insert(k);
            for (const auto& k : keys)
                diff_into(path + "." + k, a.value(k, json()), b.value(k, json()), out);
            return;
        }
        if (a.is_array() && b.is_array()) {  // sets (sorted): what went, what came
            json gone = json::array(), came = json::array();
            for (const auto& x : a)
                if (std::find(b.begin(), b.end(), x) == b.end()) gone.push_back(x);
            for (const auto& x : b)
                if (std::find(a.begin(), a.end(), x) == a.end()) came.push_back(x);
            out +=
                "  " + path.substr(1) + ": lost " + gone.dump() + ", gained " + came.dump() + "\n";
            return;
        }
        auto text = [](const json& j) {
            std::string t = j.is_null() ? "(absent)" : j.dump();
            return t.size() > 400 ? t.substr(0, 400) + "..." : t;
        };
        out += "  " + path.substr(1) + ": " + text(a) + "\n    -> " + text(b) + "\n";
    }
    static std::string diff(const json& before, const json& after) {
        std::string out;
        diff_into("", before, after, out);
        return out;
    }

    // --- the walk --------------------------------------------------------------------------------
    // Fails `route` at N = 1, 2, ... until it succeeds with nothing injected.
    // Without a set-up, a point that changed nothing leaves the next one's "before" as it found
    // it (its teardown has nothing to remove): that snapshot is reused.
    void walk(const Route& route) {
        json reuse;
        for (long n = 1; n <= kMaxPoints; ++n) {
            if (route.setup) route.setup();
            if (::testing::Test::HasFatalFailure()) return;
            const json before = reuse.is_null() ? snapshot() : reuse;
            reuse = json();
            arm(n);
            std::string err;
            const bool ok = route.request(err);
            disarm();
            const std::string point = injected();
            if (point.empty()) {
                EXPECT_TRUE(ok) << route.name << ": failed with nothing injected: " << err;
                route.teardown();
                return;
            }
            const std::string pair = route.name + " @ " + point;
            ++injections_;
            if (ok) {
                tolerated_.insert(pair);
            } else {
                json after = snapshot();
                const std::string why = diff(before, after);
                if (why.empty() && !route.setup) reuse = std::move(after);
                EXPECT_EQ(why, "")
                    << pair << " (N=" << n << "): the failed request (" << err << ") changed:\n"
                    << why;
                (why.empty() ? covered_ : broken_).insert(pair);
            }
            route.teardown();
        }
        ADD_FAILURE() << route.name << ": still failing at N=" << kMaxPoints;
    }

    // A pair counts as broken when any of its hits (a step may run several times) changed
    // something.
    void report(size_t floor) {
        for (const auto& p : broken_) covered_.erase(p);
        std::printf(
            "[ rollback ] %ld injected failures; %zu (route, point) pairs failed and left "
            "everything as it was, %zu did not, %zu tolerated (the request succeeds anyway)\n",
            injections_, covered_.size(), broken_.size(), tolerated_.size());
        for (const auto& p : covered_) std::printf("[ rollback ]   ok        %s\n", p.c_str());
        for (const auto& p : broken_) std::printf("[ rollback ]   CHANGED   %s\n", p.c_str());
        for (const auto& p : tolerated_) std::printf("[ rollback ]   tolerated %s\n", p.c_str());
        EXPECT_GE(covered_.size() + broken_.size(), floor);
    }

    static constexpr long kMaxPoints = 60;
    // (route, point) pairs that must fail and be compared: 82 on the code of December 2026.
    static constexpr size_t kFloor = 75;
    Daemon d;
    std::string rules_, log_;
    long generation_ = 0;
    long injections_ = 0;  // every N that failed a step (a point may be hit several times)
    std::set<std::string> covered_, broken_, tolerated_;
};

}  // namespace

namespace {

TEST_F(Rollback, EveryMutatingRouteAtEveryPoint) {
    const auto t0 = std::chrono::steady_clock::now();
    // The base every route starts from: namespaces, a dual-stack network with options, b on the
    // default network (so it has a default route), c on both networks publishing on IPv4 and IPv6
    // (so the maps have elements), a CNI network with one attachment (pod0 in q).
    for (const char* n : {"a", "b", "c", "p", "q"}) must({"netns", "create", n});
    must({"network", "create", "dual", "--subnet", "10.20.0.0/24", "--subnet", "fd00:20::/64", "-o",
          "com.docker.network.bridge.name=brdual", "-o", "com.docker.network.driver.mtu=1400"});
    must({"network", "connect", "bridge", "b"});
    must({"network", "connect", "bridge", "c", "-p", "8080:80"});
    must({"network", "connect", "dual", "c", "-p", "8081:80"});
    auto cni_add = [&](const std::string& net, const std::string& bridge, const std::string& subnet,
                       const std::string& pod, const std::string& netns, int port) {
        json body = {
            {"Network", {{"Name", net}, {"Subnet", subnet}, {"Bridge", bridge}, {"IpMasq", true}}},
            {"ContainerID", pod},
            {"IfName", "eth0"},
            {"Netns", ns(netns)},
            {"PortMappings", {{{"HostPort", port}, {"ContainerPort", 80}, {"Protocol", "tcp"}}}}};
        return [=, this](std::string& err) { return api("POST", "/v1/cni/add", body, err); };
    };
    auto cni_del = [&](const std::string& net, const std::string& pod) {
        json body = {{"Network", net}, {"ContainerID", pod}, {"IfName", "eth0"}};
        return [=, this](std::string& err) { return api("POST", "/v1/cni/del", body, err); };
    };
    auto ignore = [](const std::function<bool(std::string&)>& f) {
        return [f] {
            std::string err;
            (void)f(err);
        };
    };
    std::string err;
    ASSERT_TRUE(cni_add("pods", "cni0", "10.88.0.0/24", "pod0", "q", 8090)(err)) << err;
    ASSERT_EQ(injected(), "");

    const std::function<void()> nothing;  // no set-up
    auto cmd = [this](std::vector<std::string> args) {
        return [this, args](std::string& e) { return netctl(args, e); };
    };
    auto quiet = [this](std::vector<std::string> args) { return [this, args] { quietly(args); }; };
    auto setup = [this](std::vector<std::vector<std::string>> steps) {
        return [this, steps] {
            for (const auto& s : steps) must(s);
        };
    };
    const std::vector<Route> routes = {
        {"network create (v4, options)", nothing,
         cmd({"network", "create", "net4", "--subnet", "10.30.0.0/24", "--gateway", "10.30.0.254",
              "-o", "com.docker.network.bridge.name=br4", "-o",
              "com.docker.network.driver.mtu=1400", "-o",
              "com.docker.network.bridge.enable_icc=false"}),
         quiet({"network", "rm", "net4"})},
        {"network create (dual-stack)", nothing,
         cmd({"network", "create", "net6", "--subnet", "10.31.0.0/24", "--subnet", "fd00:31::/64",
              "-o", "com.docker.network.bridge.name=br6"}),
         quiet({"network", "rm", "net6"})},
        // Fails today at the save (store.journal.*): the bridge and its firewall elements are
        // gone, the network stays in memory and in the state files (Engine::remove_network
        // deletes first and keeps the network when the save fails).
        {"network rm", setup({{"network", "create", "gone", "--subnet", "10.32.0.0/24"}}),
         cmd({"network", "rm", "gone"}), quiet({"network", "rm", "gone"})},
        {"connect (-p v4+v6)", nothing,
         cmd({"network", "connect", "dual", "a", "-p", "8082:80", "-p", "8083:53/udp"}),
         quiet({"network", "disconnect", "dual", "a"})},
        {"connect (--ip)", nothing,
         cmd({"network", "connect", "bridge", "a", "--ip", "172.17.0.50"}),
         quiet({"network", "disconnect", "bridge", "a"})},
        // b is on bridge already: the dual-stack network wins its default routes (Docker's rule),
        // and a failure after the route was taken must put bridge's route back (the undo log).
        {"connect (second interface)", nothing, cmd({"network", "connect", "dual", "b"}),
         quiet({"network", "disconnect", "dual", "b"})},
        // Write-ahead: a disconnect whose save fails is not applied at all.
        {"disconnect (published ports)",
         setup({{"network", "connect", "dual", "a", "-p", "8084:80"}}),
         cmd({"network", "disconnect", "dual", "a"}),
         quiet({"network", "disconnect", "dual", "a"})},
        {"netns create", nothing, cmd({"netns", "create", "x"}), quiet({"netns", "rm", "x"})},
        // The file is unmounted first while the namespace is held open; the endpoints' removal
        // is saved once, and a failed save mounts the file back (Engine::remove_netns).
        {"netns rm (with endpoints)",
         setup({{"netns", "create", "y"},
                {"network", "connect", "bridge", "y", "-p", "8085:80"},
                {"network", "connect", "dual", "y"}}),
         cmd({"netns", "rm", "y"}), quiet({"netns", "rm", "y"})},
        {"CNI ADD (creates the network)", nothing,
         cni_add("pods-new", "cni1", "10.89.0.0/24", "pod1", "p", 8086),
         [=, this] {
             ignore(cni_del("pods-new", "pod1"))();
             quietly({"network", "rm", "pods-new"});
         }},
        {"CNI ADD", nothing, cni_add("pods", "cni0", "10.88.0.0/24", "pod1", "p", 8087),
         ignore(cni_del("pods", "pod1"))},
        // CNI DEL and GC take the disconnect's write-ahead path (Engine::detach_endpoints).
        {"CNI DEL", ignore(cni_add("pods", "cni0", "10.88.0.0/24", "pod1", "p", 8087)),
         cni_del("pods", "pod1"), ignore(cni_del("pods", "pod1"))},
        // The live part of a reload (mtu, icc of the default network). Each point asks for
        // another MTU (FailedReloadAppliesWhenRetried checks the retry of the same values).
        {"SIGHUP reload (mtu, icc)", nothing,
         [this](std::string& e) {
             return reload("mtu: " + std::to_string(1400 - generation_) + "\nicc: false\n", e);
         },
         [this] {
             std::string e;
             EXPECT_TRUE(reload("", e)) << e;
         }},
        {"CNI GC", ignore(cni_add("pods", "cni0", "10.88.0.0/24", "pod1", "p", 8087)),
         [this](std::string& e) {
             json body = {{"Network", "pods"},
                          {"Valid", {{{"ContainerID", "pod0"}, {"IfName", "eth0"}}}}};
             return api("POST", "/v1/cni/gc", body, e);
         },
         ignore(cni_del("pods", "pod1"))},
    };
    for (const auto& r : routes) {
        walk(r);
        if (HasFatalFailure()) break;
    }
    report(kFloor);
    std::printf("[ rollback ] %zu routes in %.0f s\n", routes.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

namespace {

// A reload whose live part failed (and was rolled back) must apply when retried with the same
// file: the daemon takes a reload's config as its own only once the worker applied it
// (daemon.cpp; it used to record it first, and the retry found "no changes").
TEST_F(Rollback, FailedReloadAppliesWhenRetried) {
    std::string err;
    arm(1);  // the first step of the reload: the bridge's new MTU
    EXPECT_FALSE(reload("mtu: 1400\n", err));
    disarm();
    EXPECT_EQ(injected(), "kernel.ensure_bridge.before");
    EXPECT_EQ(net_state("")["links"]["docker0"]["mtu"], 1500);
    EXPECT_TRUE(reload("mtu: 1400\n", err)) << err;
    EXPECT_EQ(net_state("")["links"]["docker0"]["mtu"], 1400) << d.log();
}

}  // namespace
