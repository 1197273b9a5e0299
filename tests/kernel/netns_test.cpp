// lib/netns through LinuxKernel: namespace files, their identity and `ip netns` usability.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
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

// cnetd under systemd's ProtectSystem= runs in a mount namespace that is a slave of the host's.
// A netns file mounted there is invisible to the host (the negative control below shows it); made
// through host_mount_namespace() it is mounted in the host's namespace (PID 1's; here: this test
// process's) and visible everywhere, and remove() unmounts it there too.
TEST_F(NetnsTest, FromAPrivateSlaveMountNamespaceTheMountLandsInTheHosts) {
    // This process plays the host (cnetd uses /proc/1/ns/mnt; PID 1 here may be meson).
    const std::string host_ns = "/proc/" + std::to_string(getpid()) + "/ns/mnt";
    auto same = netns::host_mount_namespace(ns_path(""), host_ns);
    ASSERT_TRUE(same.ok()) << same.error().message();
    EXPECT_FALSE(same->valid()) << "the host itself must use its own mount namespace";
    const std::string good = ns_path("hostmnt"), lost = ns_path("lostmnt");
    // On a systemd host every mount is shared (systemd makes / shared at boot); this sandbox was
    // made with --propagation private. Give the netns dir a shared mount of its own, as the host
    // has, so mounts made here propagate into the slave child.
    const std::string dir = ns_path("");
    ASSERT_EQ(::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr), 0) << errno;
    ASSERT_EQ(::mount(nullptr, dir.c_str(), nullptr, MS_SHARED, nullptr), 0) << errno;
    struct Unbind {
        std::string d;
        ~Unbind() { ::umount2(d.c_str(), MNT_DETACH); }
    } unbind{dir};

    // In a child like systemd's service namespace: 1 = wrong setup, 2 = create via host failed,
    // 3 = the local create failed, 4 = the file made via host not visible in the child, 0 = ok.
    auto in_slave_child = [](const std::function<int()>& fn) {
        pid_t pid = fork();
        if (pid == 0) {
            if (::unshare(CLONE_NEWNS) != 0 ||
                ::mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
                _exit(1);
            _exit(fn());
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
    };
    int rc = in_slave_child([&] {
        auto host = netns::host_mount_namespace(ns_path(""), host_ns);
        if (!host.ok() || !host->valid()) return 1;
        if (!netns::create(good, host->get()).ok()) return 2;
        if (!netns::create(lost, -1).ok()) return 3;
        return mounted(good) && mounted(lost) ? 0 : 4;
    });
    ASSERT_EQ(rc, 0);
    EXPECT_TRUE(mounted(good)) << "made through the host's mount namespace: the host sees it";
    EXPECT_FALSE(mounted(lost)) << "made in the slave namespace: the host sees an empty file";
    auto ns = kernel->open_netns(good);
    EXPECT_TRUE(ns.ok()) << ns.error().message();
    ns = Error::internal("closed");
    auto bad = kernel->open_netns(lost);
    EXPECT_FALSE(bad.ok());

    // Removing from the slave namespace through the host's unmounts it for everyone.
    rc = in_slave_child([&] {
        auto host = netns::host_mount_namespace(ns_path(""), host_ns);
        if (!host.ok() || !host->valid()) return 1;
        return netns::remove(good, host->get()).ok() ? 0 : 2;
    });
    ASSERT_EQ(rc, 0);
    EXPECT_FALSE(mounted(good));
    EXPECT_FALSE(std::filesystem::exists(good));
    ASSERT_TRUE(netns::remove(lost).ok());

    // A mount namespace of its own with *private* mounts (a harness, `unshare --mount`): its own
    // peers look there, so netns files stay in it.
    pid_t pid = fork();
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0)
            _exit(1);
        auto host = netns::host_mount_namespace(ns_path(""), host_ns);
        _exit(!host.ok() ? 2 : host->valid() ? 3 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

    // Errors name the path and the step: the file already exists.
    rc = in_slave_child([&] {
        auto host = netns::host_mount_namespace(ns_path(""), host_ns);
        if (!host.ok() || !host->valid()) return 1;
        auto fd = ::open(good.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) return 5;
        ::close(fd);
        auto r = netns::create(good, host->get());
        if (r.ok()) return 2;
        return r.error().message().find("create netns " + good) != std::string::npos ? 0 : 3;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_FALSE(mounted(good));
    ::unlink(good.c_str());
}

// Issue 15 item 13b: like Docker's sandboxes, a namespace made by create_netns has `lo` up, so
// programs inside can bind and reach 127.0.0.1.
TEST_F(NetnsTest, CreatedNamespaceHasLoopbackUp) {
    auto ns = make_ns("lo-up");
    auto lo = ip_json("-n lo-up link show lo");
    ASSERT_EQ(lo.size(), 1u) << lo.dump();
    bool up = false;
    for (const auto& f : lo[0]["flags"]) up = up || f == "UP";
    EXPECT_TRUE(up) << lo.dump();
    auto fd = netns::open(ns_path("lo-up"));
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(tcp_exchange(fd->get(), fd->get(), "127.0.0.1", 8080), "");
}

// Issue 15 item 11: deleting a netns file unmounts only a network namespace. A symlink (to a
// mount elsewhere, or to a real netns file) and a foreign mount in the netns dir are refused and
// left exactly as they were.
TEST_F(NetnsTest, DeleteRefusesSymlinksAndForeignMounts) {
    char tmpl[] = "/tmp/cnetd-victim-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string victim = tmpl;
    ASSERT_EQ(::mount("tmpfs", victim.c_str(), "tmpfs", 0, "size=64k"), 0) << strerror(errno);
    auto refused = [&](const std::string& path) {
        auto r = kernel->delete_netns(path);
        EXPECT_FALSE(r.ok()) << path << " was removed";
        if (r.ok()) return;
        EXPECT_EQ(r.error().kind(), ErrorKind::InvalidArgument) << r.error().message();
        EXPECT_NE(r.error().message().find("refused"), std::string::npos) << r.error().message();
    };

    // A symlink to a directory with a mount: old code's umount2() followed it.
    const std::string link = ns_path("evil");
    ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
    refused(link);
    EXPECT_TRUE(mounted(victim)) << "the symlink's target was unmounted";
    struct stat st {};
    EXPECT_EQ(::lstat(link.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));

    // A symlink to a real namespace file: not ours to remove through that name either.
    ASSERT_TRUE(kernel->create_netns(ns_path("real")).ok());
    const std::string alias = ns_path("alias");
    ASSERT_EQ(::symlink(ns_path("real").c_str(), alias.c_str()), 0);
    refused(alias);
    EXPECT_TRUE(mounted(ns_path("real")));

    // A foreign mount on a file of the netns dir: a bind-mounted regular file...
    const std::string file = victim + "/file";
    std::ofstream(file) << "data";
    const std::string bound = ns_path("bound");
    std::ofstream(bound).flush();
    ASSERT_EQ(::mount(file.c_str(), bound.c_str(), nullptr, MS_BIND, nullptr), 0)
        << strerror(errno);
    refused(bound);
    EXPECT_TRUE(mounted(bound));
    // ...another namespace type (a UTS namespace bind-mounted like a netns file)...
    const std::string uts = ns_path("uts");
    std::ofstream(uts).flush();
    ASSERT_EQ(::mount("/proc/self/ns/uts", uts.c_str(), nullptr, MS_BIND, nullptr), 0);
    refused(uts);
    EXPECT_TRUE(mounted(uts));
    // ...and a tmpfs on a directory.
    const std::string dir = ns_path("dir");
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    ASSERT_EQ(::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k"), 0);
    refused(dir);
    EXPECT_TRUE(mounted(dir));

    // The real namespace file still goes, and so does a plain leftover file.
    EXPECT_TRUE(kernel->delete_netns(ns_path("real")).ok());
    EXPECT_FALSE(mounted(ns_path("real")));
    std::ofstream(ns_path("plain")).flush();
    EXPECT_TRUE(kernel->delete_netns(ns_path("plain")).ok());
    EXPECT_NE(::access(ns_path("plain").c_str(), F_OK), 0);

    for (const auto& m : {bound, uts, dir}) ::umount2(m.c_str(), MNT_DETACH);
    ::rmdir(dir.c_str());
    ::unlink(link.c_str());
    ::unlink(alias.c_str());
    ::umount2(victim.c_str(), MNT_DETACH);
    ::rmdir(victim.c_str());
}

}  // namespace
}  // namespace cnetd::ktest
