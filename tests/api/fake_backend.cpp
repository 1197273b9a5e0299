#include "fake_backend.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace cnetd::testing {

FakeFirewall::FakeFirewall(bool with_monitor) {
    if (!with_monitor) return;
    // A socket pair rather than a pipe: handle_events() needs recv(MSG_PEEK).
    int p[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p) == 0) {
        sock_r_.reset(p[0]);
        sock_w_.reset(p[1]);
    }
}

std::thread::id FakeFirewall::handled_on() const {
    std::lock_guard lk(mu_);
    return handled_on_;
}

Result<bool> FakeFirewall::handle_events() {
    {
        std::lock_guard lk(mu_);
        handled_on_ = std::this_thread::get_id();
    }
    ++handled_;
    // 'x' first in the socket: fail and leave everything unread, as a broken socket would.
    char c = 0;
    if (::recv(sock_r_.get(), &c, 1, MSG_PEEK) == 1 && c == 'x')
        return Error::sys(ENOBUFS, "read nftables events");
    bool repaired = false;
    char buf[64];
    ssize_t n;
    while ((n = ::read(sock_r_.get(), buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; ++i) repaired = repaired || buf[i] == 'r';
    if (repaired) ++repairs_;
    return repaired;
}

FakeBackend::FakeBackend(std::string netns_dir, bool firewall_monitor)
    : netns_dir_(std::move(netns_dir)), fw_(firewall_monitor) {
    core::Network def;
    def.id = random_hex(64);
    def.name = "bridge";
    def.bridge = "docker0";
    def.subnet = Ipv4Cidr(Ipv4(0xAC110000), 16);
    def.gateway = Ipv4(0xAC110001);
    def.is_default = true;
    def.dns = false;  // the default network never has the embedded resolver
    def.created = "2024-01-01T00:00:00Z";
    nets_.push_back(def);
    fw_.on_show = [this] {
        log("show");
        gate();
    };
}

void FakeBackend::log(std::string call) {
    std::lock_guard lk(mu_);
    calls_.push_back(std::move(call));
}

std::vector<std::string> FakeBackend::calls() const {
    std::lock_guard lk(mu_);
    return calls_;
}

void FakeBackend::hold_next() {
    std::lock_guard lk(mu_);
    hold_ = true;
    entered_ = released_ = false;
}

bool FakeBackend::wait_entered() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(5), [&] { return entered_; });
}

void FakeBackend::release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
}

void FakeBackend::gate() {
    std::unique_lock lk(mu_);
    if (!hold_) return;
    hold_ = false;
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return released_; });
}

core::Network* FakeBackend::find(const std::string& key) {
    for (auto& n : nets_)
        if (n.name == key || n.id == key) return &n;
    for (auto& n : nets_)  // unique id prefix, as the engine allows (ambiguity ignored here)
        if (!key.empty() && n.id.rfind(key, 0) == 0) return &n;
    return nullptr;
}

Result<core::Network> FakeBackend::create_network(const core::CreateNetworkRequest& req) {
    gate();
    return add_network(req);
}

Result<core::Network> FakeBackend::add_network(const core::CreateNetworkRequest& req) {
    if (find(req.name)) return Error::conflict(fmt::format("network {} already exists", req.name));
    auto subnet = Ipv4Cidr::parse_network(req.subnet);
    if (!subnet) return std::move(subnet).error().wrap("subnet");
    core::Network n;
    n.id = random_hex(64);
    n.name = req.name;
    n.subnet = *subnet;
    n.gateway = Ipv4(subnet->network().value() + 1);
    if (!req.ip_range.empty()) {
        auto r = Ipv4Cidr::parse_network(req.ip_range);
        if (!r) return std::move(r).error().wrap("ip_range");
        n.ip_range = *r;
    }
    auto it = req.options.find(core::kOptBridgeName);
    n.bridge = it != req.options.end() ? it->second : "br-" + n.id.substr(0, 12);
    n.options = req.options;
    n.internal = req.internal;
    // The engine's rule (core/model.hpp): user-defined networks resolve names unless the option
    // turns it off.
    auto dns = req.options.find(core::kOptEnableDns);
    n.dns = dns == req.options.end() || dns->second != "false";
    n.created = "2024-01-02T00:00:00Z";
    nets_.push_back(n);
    std::sort(nets_.begin(), nets_.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return n;
}

Result<void> FakeBackend::remove_network(const std::string& key) {
    gate();
    auto* n = find(key);
    if (!n) return Error::not_found(fmt::format("network {} not found", key));
    if (n->is_default)
        return Error::invalid("bridge is a pre-defined network and cannot be removed");
    nets_.erase(nets_.begin() + (n - nets_.data()));
    return ok();
}

Result<core::Endpoint> FakeBackend::connect(const core::ConnectRequest& req) {
    gate();
    return attach(req);
}

Result<core::Endpoint> FakeBackend::attach(const core::ConnectRequest& req) {
    auto* n = find(req.network);
    if (!n) return Error::not_found(fmt::format("network {} not found", req.network));
    core::Endpoint ep;
    ep.id = random_hex(64);
    ep.name = req.name.empty() ? req.target : req.name;
    ep.netns_path = req.target[0] == '/' ? req.target : netns_dir_ + "/" + req.target;
    ep.host_ifname = "veth" + random_hex(7);
    ep.ifname = req.ifname.empty() ? "eth0" : req.ifname;
    ep.container_id = req.container_id;
    ep.aliases = req.aliases;
    ep.mac = Mac::random_local();
    if (!req.ipv4.empty()) {
        auto ip = Ipv4::parse(req.ipv4);
        if (!ip) return std::move(ip).error().wrap("IPv4Address");
        ep.address = Ipv4Cidr(*ip, n->subnet.prefix());
    } else {
        ep.address = Ipv4Cidr(Ipv4(n->subnet.network().value() + next_host_++), n->subnet.prefix());
    }
    // Ports as the engine does them (minus the kernel): publish specs parsed with `publish[i]` in
    // errors, host ports from a real PortAllocator, all or nothing.
    std::vector<core::PortRequest> reqs = req.ports;
    for (size_t i = 0; i < req.publish.size(); ++i) {
        auto parsed = core::parse_port_spec(req.publish[i]);
        if (!parsed) return std::move(parsed).error().wrap(fmt::format("publish[{}]", i));
        reqs.insert(reqs.end(), parsed->begin(), parsed->end());
    }
    for (const auto& r : reqs) {
        auto b = ports_.allocate(r);
        if (!b) {
            for (const auto& done : ep.ports) ports_.release(done);
            return std::move(b).error();
        }
        ep.ports.insert(ep.ports.end(), b->begin(), b->end());
    }
    n->endpoints.put(ep);
    return ep;
}

Result<void> FakeBackend::disconnect(const std::string& network, const std::string& target) {
    gate();
    auto* n = find(network);
    if (!n) return Error::not_found(fmt::format("network {} not found", network));
    for (const auto& [id, ep] : n->endpoints) {
        if (ep.name == target || ep.netns_path == target) {
            erase_endpoint(*n, id);
            return ok();
        }
    }
    return Error::not_found(fmt::format("{} is not connected to network {}", target, network));
}

Result<std::string> FakeBackend::create_netns(const std::string& name) {
    log("create_netns " + name);
    gate();
    std::string path = netns_dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return Error::sys(errno, fmt::format("create netns {}", path));
    ::close(fd);
    return path;
}

Result<void> FakeBackend::remove_netns(const std::string& name) {
    log("remove_netns " + name);
    gate();
    std::string path = netns_dir_ + "/" + name;
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return Error::not_found(fmt::format("netns {} not found", name));
        return Error::sys(errno, fmt::format("remove netns {}", path));
    }
    return ok();
}

Result<core::Network> FakeBackend::add_overlay_network(const core::OverlayNetworkDef& def,
                                                       const core::OverlayLocal& local) {
    gate();
    if (find(def.name)) return Error::conflict(fmt::format("network {} already exists", def.name));
    core::Network n;
    n.id = def.id;
    n.name = def.name;
    n.driver = "overlay";
    n.subnet = local.block;
    n.gateway = Ipv4(local.block.network().value() + 1);
    n.bridge = "br-" + n.id.substr(0, 12);
    n.options = def.options;
    n.internal = def.internal;
    n.dns = def.dns;
    n.created = def.created;
    n.overlay = core::Overlay{def.subnet, def.block_prefix, def.vni,     "vx-" + n.id.substr(0, 12),
                              {},         local.node,       local.local, local.port,
                              {}};
    nets_.push_back(n);
    std::sort(nets_.begin(), nets_.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return n;
}

std::vector<core::Network> FakeBackend::networks() const {
    return nets_;
}

void FakeBackend::set_coexistence(std::vector<std::string> warnings) {
    std::lock_guard lk(mu_);
    coexist_ = std::move(warnings);
}

Result<std::vector<std::string>> FakeBackend::check_coexistence() {
    ++coexist_checks_;
    std::lock_guard lk(mu_);
    return coexist_;
}

void FakeBackend::erase_endpoint(core::Network& n, std::string id) {
    auto it = n.endpoints.find(id);
    if (it == n.endpoints.end()) return;
    for (const auto& b : it->second.ports) ports_.release(b);
    n.endpoints.erase(it);
}

const core::Endpoint* FakeBackend::find_attachment(const core::Network& n,
                                                   const std::string& container_id,
                                                   const std::string& ifname) const {
    for (const auto& [id, ep] : n.endpoints)
        if (ep.container_id == container_id && ep.ifname == ifname) return &ep;
    return nullptr;
}

Result<core::Endpoint> FakeBackend::cni_add(const core::CreateNetworkRequest& net,
                                            const core::ConnectRequest& att) {
    log(fmt::format("cni_add {}/{}", att.container_id, att.ifname));
    gate();
    core::Network* n = find(net.name);
    const bool created = n == nullptr;
    if (created) {
        CNETD_TRY(add_network(net));
        n = find(net.name);
    } else if (n->subnet.str() != net.subnet) {
        return Error::conflict(
            fmt::format("network {} has subnet {}, not {}", net.name, n->subnet.str(), net.subnet));
    }
    if (const core::Endpoint* ep = find_attachment(*n, att.container_id, att.ifname)) {
        if (ep->netns_path == att.target) return *ep;  // a runtime's retry
        return Error::conflict(fmt::format("{}/{} is attached in {} already", att.container_id,
                                           att.ifname, ep->netns_path));
    }
    core::ConnectRequest req = att;
    req.network = net.name;
    auto ep = attach(req);
    if (!ep && created) nets_.erase(nets_.begin() + (find(net.name) - nets_.data()));
    return ep;
}

Result<bool> FakeBackend::cni_del(const std::string& network, const std::string& container_id,
                                  const std::string& ifname) {
    log(fmt::format("cni_del {}/{}", container_id, ifname));
    gate();
    core::Network* n = find(network);
    const core::Endpoint* ep = n ? find_attachment(*n, container_id, ifname) : nullptr;
    if (!ep) return false;
    erase_endpoint(*n, ep->id);
    return true;
}

Result<core::Endpoint> FakeBackend::cni_check(const std::string& network,
                                              const std::string& container_id,
                                              const std::string& ifname, const std::string& netns) {
    log(fmt::format("cni_check {}/{}", container_id, ifname));
    core::Network* n = find(network);
    const core::Endpoint* ep = n ? find_attachment(*n, container_id, ifname) : nullptr;
    if (!ep)
        return Error::not_found(
            fmt::format("no attachment {}/{} on network {}", container_id, ifname, network));
    if (ep->netns_path != netns || ::access(netns.c_str(), F_OK) != 0)
        return Error(ErrorKind::Kernel, fmt::format("{}/{}: netns {} is not the attachment's {}",
                                                    container_id, ifname, netns, ep->netns_path));
    return *ep;
}

Result<std::vector<std::string>> FakeBackend::cni_gc(
    const std::string& network, const std::vector<std::pair<std::string, std::string>>& keep) {
    log("cni_gc " + network);
    gate();
    std::vector<std::string> removed;
    core::Network* n = find(network);
    if (!n) return removed;
    std::vector<std::string> doomed;
    for (const auto& [id, ep] : n->endpoints) {
        if (ep.container_id.empty()) continue;  // made by connect: never collected
        const auto key = std::make_pair(ep.container_id, ep.ifname);
        if (std::find(keep.begin(), keep.end(), key) != keep.end()) continue;
        doomed.push_back(id);
        removed.push_back(ep.container_id + "/" + ep.ifname);
    }
    for (const auto& id : doomed) erase_endpoint(*n, id);
    return removed;
}

void FakeBackend::set_cni_problems(std::vector<std::string> problems) {
    std::lock_guard lk(mu_);
    cni_problems_ = std::move(problems);
}

std::vector<std::string> FakeBackend::cni_status(const std::string& network) {
    log("cni_status " + network);
    std::lock_guard lk(mu_);
    return cni_problems_;
}

Result<std::vector<std::string>> FakeBackend::collect_garbage() {
    log("collect_garbage");
    std::vector<std::string> removed;
    for (auto& n : nets_) {
        std::vector<std::string> dead;
        for (const auto& [id, ep] : n.endpoints)
            if (::access(ep.netns_path.c_str(), F_OK) != 0) dead.push_back(id);
        for (const auto& id : dead) {
            removed.push_back(n.name + "/" + n.endpoints.at(id).name);
            erase_endpoint(n, id);
        }
    }
    return removed;
}

Result<void> FakeBackend::reconfigure(const std::optional<core::DefaultNetworkSpec>&,
                                      const core::EngineOptions&, bool) {
    log("reconfigure");
    if (reconfigure_error) return *reconfigure_error;
    return ok();
}

}  // namespace cnetd::testing
