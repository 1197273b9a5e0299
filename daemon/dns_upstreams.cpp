#include "daemon/dns_upstreams.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "daemon/fd_watch.hpp"

namespace cnetd::daemon {
namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {

std::string read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str().substr(0, 64 * 1024);  // a resolv.conf is a few lines; never hold more
}

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

bool same_upstreams(const std::vector<dns::Upstream>& a, const std::vector<dns::Upstream>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].text != b[i].text) return false;
    return true;
}

}  // namespace

bool HostResolv::operator==(const HostResolv& o) const {
    return file == o.file && conf.nameservers == o.conf.nameservers &&
           conf.search == o.conf.search && conf.options == o.conf.options &&
           same_upstreams(upstreams, o.upstreams);
}

HostResolv read_host_resolv(const std::string& etc, const std::string& systemd) {
    HostResolv out;
    out.file = etc;
    out.conf = dns::parse_resolv_conf(read_small_file(etc));
    if (dns::use_systemd_file(out.conf)) {
        out.file = systemd;
        out.conf = dns::parse_resolv_conf(read_small_file(systemd));
    }
    out.upstreams = dns::upstreams(out.conf);
    return out;
}

std::vector<udp::endpoint> upstream_endpoints(const std::vector<dns::Upstream>& ups) {
    std::vector<udp::endpoint> out;
    for (const auto& u : ups) {
        if (const auto* v4 = std::get_if<Ipv4>(&u.addr)) {
            out.emplace_back(asio::ip::address_v4(v4->value()), 53);
            continue;
        }
        const auto& v6 = std::get<Ipv6>(u.addr);
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), v6.bytes().data(), 16);
        unsigned long scope = 0;
        if (!u.zone.empty()) {
            scope = ::if_nametoindex(u.zone.c_str());
            if (scope == 0) {
                log::warn("dns: upstream {}: no interface \"{}\" here: server skipped", u.text,
                          u.zone);
                continue;
            }
        }
        out.emplace_back(asio::ip::address_v6(b, scope), 53);
    }
    return out;
}

struct ResolvWatch::Impl {
    std::unique_ptr<FdWatch> watch;
};

ResolvWatch::ResolvWatch(asio::io_context& io, const std::vector<std::string>& files,
                         std::function<void()> changed)
    : impl_(std::make_shared<Impl>()) {
    UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd.valid()) {
        log::warn("dns: inotify: {}: changes to the host's resolv.conf are not followed",
                  std::strerror(errno));
        return;
    }
    std::set<std::string> dirs;
    for (const auto& f : files) {
        dirs.insert(dir_of(f));
        // /etc/resolv.conf is often a symlink (to systemd-resolved's or NetworkManager's file):
        // its target changes in another directory.
        if (char* real = ::realpath(f.c_str(), nullptr)) {
            dirs.insert(dir_of(real));
            ::free(real);
        }
    }
    constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE;
    for (const auto& d : dirs)
        if (::inotify_add_watch(fd.get(), d.c_str(), kMask) < 0)
            log::debug("dns: not watching {}: {}", d, std::strerror(errno));
    const int raw = fd.get();
    auto weak = std::weak_ptr<Impl>(impl_);
    impl_->watch = std::make_unique<FdWatch>(
        io, std::move(fd), [weak, raw, changed = std::move(changed)](const auto& ec) {
            auto self = weak.lock();
            if (!self || ec) return;
            alignas(inotify_event) std::array<char, 4096> buf;
            while (::read(raw, buf.data(), buf.size()) > 0) {
            }
            changed();
            self->watch->arm();
        });
    impl_->watch->arm();
}

ResolvWatch::~ResolvWatch() {
    if (impl_->watch) impl_->watch->stop();
}

}  // namespace cnetd::daemon
