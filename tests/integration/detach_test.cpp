// Issue 15 (hardening), the detach path end to end with the real daemon: a disconnect whose save
// fails (the state journal refuses the append) is not applied, and after kill -9 + restart the
// state is what the API last acknowledged; a target naming two endpoints is a 409.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>

#include "fixture.hpp"
#include "harness.hpp"

using namespace cnetd::it;
using nlohmann::json;

namespace {

class Detach : public DaemonTest {
protected:
    void TearDown() override { unsetenv("CNETD_FAILPOINTS"); }
    json containers() {
        json net = d.netctl_json({"network", "inspect", "bridge"});
        if (!net.is_array() || net.empty()) return json::object();
        return net[0].value("Containers", json::object());
    }
    static size_t published_elems() {
        CmdResult r = run({"nft", "-j", "list", "map", "inet", "cnetd", "published"});
        json m = json::parse(r.out, nullptr, false);
        if (r.status != 0 || !m.is_object()) return 0;
        for (const auto& o : m["nftables"])
            if (o.contains("map")) return o["map"].value("elem", json::array()).size();
        return 0;
    }
    static std::vector<std::string> inet(const std::string& netns) {
        std::vector<std::string> out;
        for (const auto& l : ip_json({"-4", "addr", "show"}, netns))
            if (l.value("ifname", "") == "eth0")
                for (const auto& a : l["addr_info"])
                    out.push_back(a["local"].get<std::string>() + "/" +
                                  std::to_string(a["prefixlen"].get<int>()));
        return out;
    }
    // Restarts the daemon with CNETD_FAILPOINTS = `fp` ("" for none).
    void restart(int sig, const std::string& fp = "") {
        d.kill(sig);
        if (fp.empty()) {
            unsetenv("CNETD_FAILPOINTS");
        } else {
            setenv("CNETD_FAILPOINTS", fp.c_str(), 1);
        }
        start();
        unsetenv("CNETD_FAILPOINTS");
    }
};

TEST_F(Detach, DisconnectWhoseSaveFailsIsNotAppliedAndStaysAfterKill9) {
    start();
    container("a", "bridge", {"-p", "8080:80"});
    container("b");
    ASSERT_EQ(containers().size(), 2u);
    // Every journal append fails from now on (a full disk, an I/O error).
    restart(SIGTERM, "store.journal.append.error=error");
    const std::string before = kernel_snapshot(d);
    std::string err = fails({"network", "disconnect", "bridge", "a"});
    EXPECT_NE(err.find("save state"), std::string::npos) << err << "\n--- cnetd log ---\n"
                                                         << d.log();
    // Not applied: the API, the kernel (veth, address, route) and the published port agree.
    EXPECT_EQ(containers().size(), 2u);
    EXPECT_EQ(snapshot_diff(before, kernel_snapshot(d)), "");
    EXPECT_EQ(inet(ns("a")), std::vector<std::string>{"172.17.0.2/16"});
    EXPECT_EQ(published_elems(), 1u);
    // kill -9 + restart: still connected, as the API said.
    restart(SIGKILL);
    EXPECT_EQ(containers().size(), 2u);
    EXPECT_EQ(inet(ns("a")), std::vector<std::string>{"172.17.0.2/16"});
    EXPECT_EQ(published_elems(), 1u);
    // An acknowledged disconnect is final across kill -9 too.
    ok({"network", "disconnect", "bridge", "a"});
    restart(SIGKILL);
    json c = containers();
    ASSERT_EQ(c.size(), 1u) << c.dump();
    EXPECT_TRUE(inet(ns("a")).empty());
    EXPECT_EQ(inet(ns("b")), std::vector<std::string>{"172.17.0.3/16"});
    EXPECT_EQ(published_elems(), 0u);
}

// Endpoint y lives in netns x, endpoint z in netns y: `disconnect y` is a 409 naming both, and
// `netns rm x` takes y (and only y) with it.
TEST_F(Detach, AmbiguousTargetIsA409AndNetnsRmTakesOnlyItsOwn) {
    start();
    ok({"netns", "create", "x"});
    ok({"netns", "create", "y"});
    ok({"network", "connect", "bridge", "x", "--name", "y"});
    ok({"network", "connect", "bridge", "y", "--name", "z"});
    std::string err = fails({"network", "disconnect", "bridge", "y"});
    EXPECT_NE(err.find("endpoint y (netns " + ns("x") + ")"), std::string::npos) << err;
    EXPECT_NE(err.find("endpoint z (netns " + ns("y") + ")"), std::string::npos) << err;
    EXPECT_EQ(containers().size(), 2u);
    ok({"netns", "rm", "x"});
    json c = containers();
    ASSERT_EQ(c.size(), 1u) << c.dump();
    EXPECT_EQ(c.begin().value().value("Name", ""), "z") << c.dump();
    EXPECT_EQ(inet(ns("y")), std::vector<std::string>{"172.17.0.3/16"});
}

}  // namespace
