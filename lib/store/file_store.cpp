#include "store/file_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/fd.hpp"

namespace cnetd::store {

using nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;

json ports_json(const std::vector<core::PortBinding>& ports) {
    json out = json::array();
    for (const auto& b : ports) {
        json j = {{"proto", core::to_string(b.proto)},
                  {"host", {b.host.first, b.host.last}},
                  {"container", {b.container.first, b.container.last}}};
        if (b.host_ip) j["host_ip"] = b.host_ip->str();
        out.push_back(j);
    }
    return out;
}

json to_json(const core::Endpoint& e) {
    return {{"id", e.id},
            {"ports", ports_json(e.ports)},
            {"name", e.name},
            {"netns_path", e.netns_path},
            {"netns_dev", e.netns_id.dev},
            {"netns_ino", e.netns_id.ino},
            {"host_ifname", e.host_ifname},
            {"ifname", e.ifname},
            {"mac", e.mac.str()},
            {"address", e.address.str()}};
}

json to_json(const core::Network& n) {
    json eps = json::array();
    for (const auto& [id, e] : n.endpoints) eps.push_back(to_json(e));
    json j = {{"id", n.id},
              {"name", n.name},
              {"bridge", n.bridge},
              {"subnet", n.subnet.str()},
              {"gateway", n.gateway.str()},
              {"mtu", n.mtu},
              {"is_default", n.is_default},
              {"internal", n.internal},
              {"icc", n.icc},
              {"masquerade", n.masquerade},
              {"bridge_adopted", n.bridge_adopted},
              {"created", n.created},
              {"options", n.options},
              {"endpoints", eps}};
    if (n.ip_range) j["ip_range"] = n.ip_range->str();
    if (n.host_ipv4) j["host_ipv4"] = n.host_ipv4->str();
    if (n.host_binding) j["host_binding"] = n.host_binding->str();
    return j;
}

// Field readers throw json exceptions; load() turns them into one error naming the file.
template <class T>
T parsed(Result<T> r, const char* field) {
    if (!r.ok()) throw std::runtime_error(fmt::format("{}: {}", field, r.error().message()));
    return std::move(r).value();
}

core::Endpoint endpoint_from(const json& j) {
    core::Endpoint e;
    e.id = j.at("id").get<std::string>();
    e.name = j.at("name").get<std::string>();
    e.netns_path = j.at("netns_path").get<std::string>();
    e.netns_id.dev = j.at("netns_dev").get<uint64_t>();
    e.netns_id.ino = j.at("netns_ino").get<uint64_t>();
    e.host_ifname = j.at("host_ifname").get<std::string>();
    e.ifname = j.at("ifname").get<std::string>();
    e.mac = parsed(Mac::parse(j.at("mac").get<std::string>()), "mac");
    e.address = parsed(Ipv4Cidr::parse(j.at("address").get<std::string>()), "address");
    for (const auto& pj : j.value("ports", json::array())) {
        core::PortBinding b;
        b.proto = parsed(core::parse_proto(pj.at("proto").get<std::string>()), "proto");
        if (pj.contains("host_ip")) b.host_ip = parsed(Ipv4::parse(pj.at("host_ip").get<std::string>()), "host_ip");
        b.host = {pj.at("host").at(0).get<uint16_t>(), pj.at("host").at(1).get<uint16_t>()};
        b.container = {pj.at("container").at(0).get<uint16_t>(), pj.at("container").at(1).get<uint16_t>()};
        if (b.host.first == 0 || b.host.last < b.host.first || b.container.first == 0 ||
            b.container.size() != b.host.size()) {
            throw std::runtime_error("ports: inconsistent mapping " + pj.dump());
        }
        e.ports.push_back(b);
    }
    return e;
}

core::Network network_from(const json& j) {
    core::Network n;
    n.id = j.at("id").get<std::string>();
    n.name = j.at("name").get<std::string>();
    n.bridge = j.at("bridge").get<std::string>();
    n.subnet = parsed(Ipv4Cidr::parse_network(j.at("subnet").get<std::string>()), "subnet");
    n.gateway = parsed(Ipv4::parse(j.at("gateway").get<std::string>()), "gateway");
    if (j.contains("ip_range")) {
        n.ip_range = parsed(Ipv4Cidr::parse_network(j.at("ip_range").get<std::string>()), "ip_range");
    }
    n.mtu = j.at("mtu").get<unsigned>();
    n.is_default = j.at("is_default").get<bool>();
    n.internal = j.value("internal", false);
    n.icc = j.value("icc", true);
    n.masquerade = j.value("masquerade", true);
    if (j.contains("host_binding")) {
        n.host_binding = parsed(Ipv4::parse(j.at("host_binding").get<std::string>()), "host_binding");
    }
    if (j.contains("host_ipv4")) {
        n.host_ipv4 = parsed(Ipv4::parse(j.at("host_ipv4").get<std::string>()), "host_ipv4");
    }
    n.bridge_adopted = j.at("bridge_adopted").get<bool>();
    n.created = j.at("created").get<std::string>();
    n.options = j.at("options").get<std::map<std::string, std::string>>();
    for (const auto& ej : j.at("endpoints")) {
        core::Endpoint e = endpoint_from(ej);
        n.endpoints.emplace(e.id, std::move(e));
    }
    return n;
}

Result<void> write_all(int fd, const std::string& data, const std::string& path) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t w = ::write(fd, data.data() + off, data.size() - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return Error::sys(errno, "write " + path);
        }
        off += static_cast<size_t>(w);
    }
    return ok();
}

}  // namespace

FileStateStore::FileStateStore(std::string dir) : dir_(std::move(dir)) {}

Result<void> FileStateStore::init() {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
        return Error::sys(errno, "create state dir " + dir_);
    }
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0) return Error::sys(errno, "stat state dir " + dir_);
    if (!S_ISDIR(st.st_mode)) {
        return Error::invalid(fmt::format("state dir {} is not a directory", dir_));
    }
    return ok();
}

Result<std::vector<core::Network>> FileStateStore::load() {
    std::ifstream in(path());
    if (!in) {
        if (errno == ENOENT) return std::vector<core::Network>{};
        return Error::sys(errno, "read " + path());
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<core::Network> out;
    try {
        json j = json::parse(ss.str());
        int version = j.at("version").get<int>();
        if (version != kFormatVersion) {
            return Error::invalid(fmt::format("{}: format version {} is not supported (expected {})",
                                              path(), version, kFormatVersion));
        }
        for (const auto& nj : j.at("networks")) out.push_back(network_from(nj));
    } catch (const std::exception& e) {
        // Never drop or overwrite a state file we cannot read: the daemon refuses to start.
        return Error::invalid(fmt::format("{} is corrupt: {} (move it away to start from scratch)",
                                          path(), e.what()));
    }
    return out;
}

Result<void> FileStateStore::save(const std::vector<core::Network>& networks) {
    json nets = json::array();
    for (const auto& n : networks) nets.push_back(to_json(n));
    std::string data = json{{"version", kFormatVersion}, {"networks", nets}}.dump(1) + "\n";

    const std::string tmp = path() + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return Error::sys(errno, "create " + tmp);
    CNETD_TRY(write_all(fd.get(), data, tmp));
    if (::fsync(fd.get()) != 0) return Error::sys(errno, "fsync " + tmp);
    fd.reset();
    if (::rename(tmp.c_str(), path().c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error::sys(err, "rename " + tmp + " to " + path());
    }
    UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.valid()) ::fsync(dir.get());
    return ok();
}

}  // namespace cnetd::store
