// base/failpoint: the rule parser, the hit counters behind "*=error@N" / "name=error@N", the log
// lines a harness reads, and re-arming through CNETD_FAILPOINTS_FILE. Its own binary: failpoints
// are process-wide, and these tests arm them (kill rules are not exercised: they would kill us).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/failpoint.hpp"

namespace cnetd {
namespace {

class Failpoint : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cnetd-fp-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        for (const char* v : {"CNETD_FAILPOINTS", "CNETD_FAILPOINTS_LOG", "CNETD_FAILPOINTS_FILE"})
            unsetenv(v);
        failpoint::reload_for_test();
        std::remove((dir_ + "/log").c_str());
        std::remove((dir_ + "/rules").c_str());
        rmdir(dir_.c_str());
    }
    static void arm(const char* spec) {
        setenv("CNETD_FAILPOINTS", spec, 1);
        failpoint::reload_for_test();
    }
    // Which of `names`, hit in order with hit_error(), failed (their indexes, from 1).
    static std::vector<int> failing(const std::vector<const char*>& names) {
        std::vector<int> out;
        for (size_t i = 0; i < names.size(); ++i)
            if (!failpoint::hit_error(names[i]).ok()) out.push_back(static_cast<int>(i) + 1);
        return out;
    }
    // Writes `rules` to a temp file and renames it over the rules file (a new inode).
    void write_rules(const std::string& rules) {
        std::ofstream(dir_ + "/rules.tmp") << rules;
        ASSERT_EQ(std::rename((dir_ + "/rules.tmp").c_str(), (dir_ + "/rules").c_str()), 0);
    }
    std::string log() const {
        std::ifstream in(dir_ + "/log");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    std::string dir_;
};

TEST_F(Failpoint, UnsetIsDisabledAndNeverFails) {
    unsetenv("CNETD_FAILPOINTS");
    failpoint::reload_for_test();
    EXPECT_FALSE(failpoint::enabled());
    EXPECT_TRUE(failpoint::hit_error("a.b.before").ok());
}

TEST_F(Failpoint, StarErrorAtNCountsFallibleHitsOnly) {
    arm("*=error@3");
    EXPECT_TRUE(failpoint::enabled());
    failpoint::hit("x.after");  // plain hits cannot fail and do not count
    failpoint::hit("x.after");
    EXPECT_EQ(failing({"a", "b", "c", "d"}), std::vector<int>{3});
    // Once only: the counter has passed N.
    EXPECT_EQ(failing({"a", "b", "c"}), std::vector<int>{});
}

TEST_F(Failpoint, InjectedErrorNamesThePoint) {
    arm("*=error@1");
    auto r = failpoint::hit_error("kernel.create_veth.before");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::Internal);
    EXPECT_NE(r.error().message().find("kernel.create_veth.before"), std::string::npos)
        << r.error().message();
}

TEST_F(Failpoint, NamedErrorEveryHitOrTheNth) {
    arm("b=error");
    EXPECT_EQ(failing({"a", "b", "a", "b"}), (std::vector<int>{2, 4}));
    arm("b=error@2");
    EXPECT_EQ(failing({"b", "a", "b", "b"}), std::vector<int>{3});
}

TEST_F(Failpoint, MalformedRulesAreIgnoredTheOthersApply) {
    arm("nonsense,=error,a=explode,a=error@x,a=error@0,a=sleep(5,  b=error@1 ,\nc=error");
    EXPECT_EQ(failing({"a", "b", "c", "a"}), (std::vector<int>{2, 3}));
}

TEST_F(Failpoint, FirstMatchingRuleWins) {
    arm("a=sleep(1),a=error");  // the sleep rule takes every hit of a: nothing fails
    EXPECT_EQ(failing({"a", "a"}), std::vector<int>{});
}

TEST_F(Failpoint, LogNamesInjectedErrors) {
    setenv("CNETD_FAILPOINTS_LOG", (dir_ + "/log").c_str(), 1);
    arm("*=error@2");
    EXPECT_EQ(failing({"a.before", "b.before", "c.before"}), std::vector<int>{2});
    EXPECT_EQ(log(), "error b.before 2\n");
}

TEST_F(Failpoint, FileRearmsAndRestartsTheCounters) {
    setenv("CNETD_FAILPOINTS_FILE", (dir_ + "/rules").c_str(), 1);
    unsetenv("CNETD_FAILPOINTS");
    failpoint::reload_for_test();
    EXPECT_TRUE(failpoint::enabled());                   // the file may appear at any time
    EXPECT_EQ(failing({"a", "b"}), std::vector<int>{});  // no file yet: nothing armed
    write_rules("*=error@2\n");
    EXPECT_EQ(failing({"a", "b", "c"}), std::vector<int>{2});
    EXPECT_EQ(failing({"a", "b", "c"}), std::vector<int>{});  // N passed
    write_rules("*=error@1");  // a new version: counting starts again
    EXPECT_EQ(failing({"a", "b"}), std::vector<int>{1});
    EXPECT_EQ(failing({"a"}), std::vector<int>{});
    write_rules("*=error@1 # again");  // the same rules re-armed: a comment changed
    EXPECT_EQ(failing({"a", "b"}), std::vector<int>{1});
    write_rules("");  // disarmed
    EXPECT_EQ(failing({"a", "b"}), std::vector<int>{});
    write_rules("*=error@2");
    ASSERT_EQ(std::remove((dir_ + "/rules").c_str()), 0);  // gone: disarmed too
    EXPECT_EQ(failing({"a", "b"}), std::vector<int>{});
}

TEST_F(Failpoint, FileRulesComeAfterTheEnvironmentsOnes) {
    setenv("CNETD_FAILPOINTS_FILE", (dir_ + "/rules").c_str(), 1);
    write_rules("b=error");
    arm("a=error");
    EXPECT_EQ(failing({"a", "b", "c"}), (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace cnetd
