// lib/netns through LinuxKernel: namespace files, their identity and `ip netns` usability.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "kernel_fixture.hpp"
#include "netns/netns.hpp"

namespace cnetd::ktest {
namespace {

bool mounted(const std::string& path) {
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream ls(line);
        std::string id, parent, devno, root, mnt;
        ls >> id >> parent >> devno >> root >> mnt;
        if (mnt == path) return true;
    }
    return false;
}

using NetnsTest = KernelTest;

TEST_F(NetnsTest, CreateOpenDelete) {
    const std::string path = ns_path("nsa");
    ASSERT_TRUE(kernel->create_netns(path).ok());
    EXPECT_TRUE(mounted(path));

    // `ip netns` sees it by name (the dir is /run/netns) and inside there is only lo.
    auto links = ip_json("-n nsa link show");
    ASSERT_EQ(links.size(), 1u) << links.dump();
    EXPECT_EQ(links[0]["ifname"], "lo");
    auto exec = run("ip netns exec nsa ip -j link show");
    EXPECT_EQ(exec.status, 0);
    EXPECT_EQ(nlohmann::json::parse(exec.out).size(), 1u);

    // Opening gives the same namespace identity as the file's nsfs inode, and a socket inside it
    // (free_ifname dumps through it) sees none of our links.
    auto ns = kernel->open_netns(path);
    ASSERT_TRUE(ns.ok()) << ns.error().message();
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ((*ns)->id().ino, st.st_ino);
    EXPECT_EQ((*ns)->id().dev, st.st_dev);
    // hostx0/hostx1 exist in the test's namespace only.
    ASSERT_EQ(run("ip link add hostx0 type veth peer name hostx1").status, 0);
    auto name = (*ns)->free_ifname("hostx");
    ASSERT_TRUE(name.ok());
    EXPECT_EQ(*name, "hostx0");
    auto self = netns::open_current();
    ASSERT_TRUE(self.ok());
    EXPECT_NE(netns::identity(self->get())->ino, (*ns)->id().ino);

    ASSERT_TRUE(kernel->delete_netns(path).ok());
    EXPECT_FALSE(mounted(path));
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    EXPECT_TRUE(kernel->delete_netns(path).ok()) << "delete must be idempotent";
}

TEST_F(NetnsTest, CreateOnExistingPathFailsAndKeepsFile) {
    const std::string path = ns_path("taken");
    ASSERT_TRUE(kernel->create_netns(path).ok());
    auto again = kernel->create_netns(path);
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message().find("File exists"), std::string::npos)
        << again.error().message();
    EXPECT_TRUE(mounted(path)) << "the failed create must not touch the existing namespace";
}

TEST_F(NetnsTest, OpenRegularFileIsNotANetns) {
    const std::string path = ns_path("plain");
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ::close(fd);
    auto ns = kernel->open_netns(path);
    ASSERT_FALSE(ns.ok());
    EXPECT_EQ(ns.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(ns.error().message(), "\"" + path + "\" is not a network namespace");
    // Another namespace type is not a network namespace either.
    auto uts = kernel->open_netns("/proc/self/ns/uts");
    ASSERT_FALSE(uts.ok());
    EXPECT_NE(uts.error().message().find("is not a network namespace"), std::string::npos);
}

TEST_F(NetnsTest, OpenMissingIsNotFound) {
    auto ns = kernel->open_netns(ns_path("missing"));
    ASSERT_FALSE(ns.ok());
    EXPECT_EQ(ns.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(ns.error().message(),
              "open netns " + ns_path("missing") + ": No such file or directory");
}

TEST_F(NetnsTest, ScopedNetnsSwitchesAndRestores) {
    ASSERT_TRUE(kernel->create_netns(ns_path("nsb")).ok());
    auto target = netns::open(ns_path("nsb"));
    ASSERT_TRUE(target.ok());
    auto before = netns::identity(netns::open_current()->get());
    {
        auto scope = netns::ScopedNetns::enter(target->get(), "nsb");
        ASSERT_TRUE(scope.ok());
        EXPECT_EQ(*netns::identity(netns::open_current()->get()), *netns::identity(target->get()));
    }
    EXPECT_EQ(*netns::identity(netns::open_current()->get()), *before);
}

}  // namespace
}  // namespace cnetd::ktest
