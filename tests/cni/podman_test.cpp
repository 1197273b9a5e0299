// Real Podman (Debian's podman 4.3 with its CNI backend, crun, conmon) publishing a port through
// cnetd-cni and the real cnetd, inside the test's private namespaces (tests/cni/meson.build wraps
// the binary in unshare; SetUp unshares a fresh netns). Podman reserves every published host port
// itself right after network setup (conmon keeps a listening socket), so this is the check that
// cnetd holds no socket of its own for CNI attachments (docs/cni.md, "Host ports").
//
// What this machine kind needs from Podman (no systemd as PID 1, cgroup v1, no registry): every
// config in the daemon's temp dir through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF /
// CONTAINERS_REGISTRIES_CONF and --root/--runroot (the host's /etc is never touched), a tmpfs over
// /var/lib in this private mount namespace (libcni's cache, Podman's blob cache), cgroupfs with
// cgroups disabled, ulimits pinned to our own (raising them needs CAP_SYS_RESOURCE), the hybrid
// cgroup2 mount hidden, and an image imported from a tarball of busybox-static.
#include <elf.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../integration/fixture.hpp"

namespace cnetd::it {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kBusybox = "/bin/busybox";

// True when `path` is an ELF executable without a program interpreter (statically linked), so
// it runs alone in a rootfs.
bool is_static_elf(const char* path) {
    std::ifstream in(path, std::ios::binary);
    Elf64_Ehdr eh{};
    if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG))
        return false;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        in.seekg(static_cast<std::streamoff>(eh.e_phoff + i * eh.e_phentsize));
        if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) return false;
        if (ph.p_type == PT_INTERP) return false;
    }
    return true;
}

// Our own soft:hard limit, for Podman's default_ulimits: by default Podman raises nofile and
// nproc for root containers, which needs CAP_SYS_RESOURCE (crun: "setrlimit `RLIMIT_NPROC`:
// Operation not permitted" here).
std::string limit(int resource) {
    rlimit l{};
    getrlimit(resource, &l);
    auto text = [](rlim_t v) { return v == RLIM_INFINITY ? std::string("-1") : std::to_string(v); };
    return text(l.rlim_cur) + ":" + text(l.rlim_max);
}

class Podman : public DaemonTest {
protected:
    void SetUp() override {
        for (const char* bin : {"/usr/bin/podman", "/usr/bin/crun", "/usr/bin/conmon"}) {
            if (!fs::exists(bin)) {
                GTEST_SKIP() << bin
                             << " is missing: tools/install-deps.sh installs podman, crun, "
                                "conmon and busybox-static (test-only packages)";
            }
        }
        if (!is_static_elf(kBusybox)) {
            GTEST_SKIP() << kBusybox << " is missing or not static (install busybox-static)";
        }
        DaemonTest::SetUp();
        ASSERT_EQ(mount("tmpfs", "/var/lib", "tmpfs", 0, nullptr), 0) << strerror(errno);
        if (fs::exists("/sys/fs/cgroup/unified/cgroup.controllers")) {  // hybrid cgroup v1+v2
            ASSERT_EQ(mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", 0, nullptr), 0);
        }
        add_wan();
        start();
        write_configs();
    }
    void TearDown() override {
        if (!IsSkipped()) podman({"rm", "-a", "-f", "-t", "0"});  // after a failure: no leftovers
        DaemonTest::TearDown();
    }

    void write_configs() {
        const std::string p = d.dir() + "/podman";
        fs::create_directories(p + "/net.d");
        fs::create_directories(p + "/plugins");
        fs::create_directories(p + "/tmp");
        fs::create_symlink(std::getenv("CNETD_CNI_BIN"), p + "/plugins/cnetd-cni");
        std::ofstream(p + "/containers.conf") << fmt::format(
            "[containers]\ncgroups = \"disabled\"\n"
            "default_ulimits = [\"nofile={}\", \"nproc={}\"]\n"
            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n"
            "runtime = \"crun\"\ntmp_dir = \"{}/tmp\"\n"
            "[network]\nnetwork_backend = \"cni\"\n"
            "cni_plugin_dirs = [\"{}/plugins\", \"/usr/lib/cni\"]\n"
            "network_config_dir = \"{}/net.d\"\ndefault_network = \"cnetd\"\n",
            limit(RLIMIT_NOFILE), limit(RLIMIT_NPROC), p, p, p);
        std::ofstream(p + "/storage.conf") << fmt::format(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/runroot\"\n",
            p);
        std::ofstream(p + "/registries.conf") << "unqualified-search-registries = []\n";
        // docs/cni.md, "Under Podman": the bridge entry with type cnetd-cni, no portmap.
        json entry = {{"type", "cnetd-cni"},
                      {"bridge", "cni-podman0"},
                      {"isGateway", true},
                      {"ipMasq", true},
                      {"hairpinMode", true},
                      {"cnetdSocket", d.socket()},
                      {"capabilities", {{"portMappings", true}, {"ips", true}, {"mac", true}}},
                      {"ipam",
                       {{"type", "host-local"},
                        {"routes", {{{"dst", "0.0.0.0/0"}}}},
                        {"ranges", {{{{"subnet", "10.88.0.0/16"}, {"gateway", "10.88.0.1"}}}}}}}};
        std::ofstream(p + "/net.d/cnetd.conflist")
            << json{{"cniVersion", "0.4.0"}, {"name", "cnetd"}, {"plugins", {entry}}}.dump(2);
        // The image: busybox-static alone, with a page for httpd to serve.
        fs::create_directories(p + "/rootfs/bin");
        fs::create_directories(p + "/rootfs/www");
        fs::copy_file(kBusybox, p + "/rootfs/bin/busybox");
        fs::create_symlink("busybox", p + "/rootfs/bin/httpd");
        std::ofstream(p + "/rootfs/www/index.html") << "hello from podman\n";
        CmdResult r = run({"tar", "-C", p + "/rootfs", "-cf", p + "/busybox.tar", "."});
        ASSERT_EQ(r.status, 0) << r.err;
    }
    CmdResult podman(const std::vector<std::string>& args) const {
        const std::string p = d.dir() + "/podman";
        std::vector<std::string> argv{"env",
                                      "CONTAINERS_CONF=" + p + "/containers.conf",
                                      "CONTAINERS_STORAGE_CONF=" + p + "/storage.conf",
                                      "CONTAINERS_REGISTRIES_CONF=" + p + "/registries.conf",
                                      "podman",
                                      "--root",
                                      p + "/root",
                                      "--runroot",
                                      p + "/runroot"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, std::chrono::seconds(60));
    }
    // GET http://addr:port/ from `netns` ("" = ours): the body, or "" after `tries` attempts
    // 200 ms apart (httpd may still be starting up).
    static std::string http_get(const std::string& netns, const std::string& addr, int port,
                                int tries = 15) {
        std::vector<std::string> argv{"curl", "-s", "--max-time", "1",
                                      fmt::format("http://{}:{}/", addr, port)};
        if (!netns.empty()) argv.insert(argv.begin(), {"nsenter", "--net=" + netns});
        CmdResult r;
        for (int i = 0; i < tries; ++i) {
            if (i) std::this_thread::sleep_for(std::chrono::milliseconds(200));
            r = run(argv);
            if (r.status == 0) break;
        }
        return r.status == 0 ? r.out : "";
    }
};

// `podman run -d -p 8080:80` used to fail ("cannot listen on the TCP port: listen tcp4 :8080:
// bind: address already in use": cnetd held 8080). Now Podman holds the port, cnetd forwards it
// (from the host and from wan), refuses the same port to netctl, and `podman rm -f` releases all.
TEST_F(Podman, RunPublishesAPortAndRmReleasesEverything) {
    CmdResult r = podman({"import", d.dir() + "/podman/busybox.tar", "localhost/cnetd-busybox"});
    ASSERT_EQ(r.status, 0) << r.err;
    r = podman({"run", "-d", "--name", "web", "--network", "cnetd", "-p", "8080:80",
                "localhost/cnetd-busybox", "httpd", "-f", "-p", "80", "-h", "/www"});
    ASSERT_EQ(r.status, 0) << r.err << "\n--- cnetd log ---\n" << d.log();
    EXPECT_EQ(http_get("", "198.51.100.1", 8080), "hello from podman\n");
    EXPECT_EQ(http_get(wan_path(), kHostWan, 8080), "hello from podman\n");
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), EADDRINUSE);  // Podman's (conmon's) reservation
    ok({"netns", "create", "x"});
    EXPECT_NE(fails({"network", "connect", "bridge", "x", "-p", "8080:80"})
                  .find("Bind for 0.0.0.0:8080 failed: port is already allocated"),
              std::string::npos);

    r = podman({"rm", "-f", "-t", "0", "web"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(try_bind(true, "0.0.0.0", 8080), 0);
    EXPECT_TRUE(ip_json({"link", "show", "master", "cni-podman0"}).empty());
    EXPECT_EQ(d.netctl_json({"port", "ls"}).dump().find("8080"), std::string::npos);
    EXPECT_EQ(run({"nft", "list", "table", "inet", "cnetd"}).out.find("8080"), std::string::npos);
    EXPECT_EQ(http_get(wan_path(), kHostWan, 8080, 1), "");
}

}  // namespace
}  // namespace cnetd::it
