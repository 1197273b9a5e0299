// Kernel tests for check_coexistence (root): each test unshares a fresh network namespace, builds
// the other software's nftables state with the `nft` CLI and sets net.ipv4.ip_forward itself
// (a new netns may inherit the host's value), then checks what the daemon would warn about.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "firewall/coexist.hpp"

namespace cnetd::firewall {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

void sh(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    ASSERT_NE(p, nullptr) << cmd;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ASSERT_EQ(pclose(p), 0) << cmd << "\n" << out;
}

void set_ip_forward(char v) {
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(write(fd, &v, 1), 1) << strerror(errno);
    close(fd);
}

class Coexist : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
        set_ip_forward('1');
    }
    std::vector<std::string> check(CoexistenceInput in = {}) {
        auto r = check_coexistence(in);
        EXPECT_TRUE(r.ok()) << r.error().message();
        return r.ok() ? *r : std::vector<std::string>{"<error>"};
    }
    static void forward_chain(const std::string& family, const std::string& table,
                              const std::string& chain, const std::string& policy,
                              const std::string& hook = "forward") {
        sh("nft add table " + family + " " + table);
        sh("nft add chain " + family + " " + table + " " + chain + " '{ type filter hook " + hook +
           " priority 0; policy " + policy + "; }'");
    }
};

TEST_F(Coexist, EmptyRulesetHasNothingInTheWay) {
    EXPECT_THAT(check(), IsEmpty());
    CoexistenceInput in;
    in.ip_forward_configured = false;  // ip_forward is 1 here: nothing to say either
    in.bridges = {"docker0"};
    EXPECT_THAT(check(in), IsEmpty());
}

TEST_F(Coexist, IptablesForwardPolicyDropIsReportedWithTheFix) {
    forward_chain("ip", "filter", "FORWARD", "drop");
    CoexistenceInput in;
    in.bridges = {"docker0", "br-0123456789ab"};
    auto w = check(in);
    ASSERT_THAT(w, SizeIs(1));
    EXPECT_THAT(w[0], HasSubstr("table ip filter chain FORWARD (hook forward, policy drop)"));
    EXPECT_THAT(w[0], HasSubstr("iptables -I FORWARD -i docker0 -j ACCEPT && iptables -I FORWARD "
                                "-o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"));
    EXPECT_THAT(w[0], HasSubstr("iptables -I FORWARD -i br-0123456789ab -j ACCEPT"));
}

TEST_F(Coexist, PolicyAcceptOtherHooksAndOtherFamiliesAreFine) {
    forward_chain("ip", "filter", "FORWARD", "accept");
    forward_chain("ip", "filter", "INPUT", "drop", "input");  // the host's business, not ours
    forward_chain("ip6", "filter", "FORWARD", "drop");        // cannot drop IPv4
    forward_chain("bridge", "filter", "FORWARD", "drop");     // switched frames, not routing
    sh("nft add chain ip filter DOCKER-USER");                // a regular chain has no policy
    EXPECT_THAT(check(), IsEmpty());
}

TEST_F(Coexist, NativeInetTableGetsAnNftFix) {
    forward_chain("inet", "firewalld", "filter_FORWARD", "drop");
    CoexistenceInput in;
    in.bridges = {"docker0"};
    auto w = check(in);
    ASSERT_THAT(w, SizeIs(1));
    EXPECT_THAT(w[0], HasSubstr("table inet firewalld chain filter_FORWARD (hook forward, policy "
                                "drop)"));
    EXPECT_THAT(w[0], HasSubstr("nft insert rule inet firewalld filter_FORWARD iifname "
                                "\"docker0\" accept"));
}

TEST_F(Coexist, OwnTableIsIgnoredByName) {
    forward_chain("inet", "cnetd", "forward", "drop");
    EXPECT_THAT(check(), IsEmpty());
    // The skip is by (inet, own_table), not "any table called like that": an `ip cnetd` counts.
    forward_chain("ip", "cnetd", "forward", "drop");
    EXPECT_THAT(check(), SizeIs(1));
    CoexistenceInput other;
    other.own_table = "cnetd-test";
    EXPECT_THAT(check(other), SizeIs(2));
}

TEST_F(Coexist, IpForwardOffWarnsOnlyWhenCnetdLeavesItAlone) {
    set_ip_forward('0');
    CoexistenceInput in;
    in.ip_forward_configured = false;
    auto w = check(in);
    ASSERT_THAT(w, SizeIs(1));
    EXPECT_EQ(w[0],
              "net.ipv4.ip_forward is 0 and ip-forward is false in the config: containers cannot "
              "reach other networks or the outside (set ip-forward: true)");
    in.ip_forward_configured = true;  // cnetd sets it itself
    EXPECT_THAT(check(in), IsEmpty());
}

}  // namespace
}  // namespace cnetd::firewall

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (geteuid() != 0) {
        fprintf(stderr, "coexistence kernel tests need root (run under unshare); skipping\n");
        return 77;
    }
    return RUN_ALL_TESTS();
}
