// CNI attachments (engine.hpp, "CNI attachments"): the daemon side of cnetd-cni. An attachment is
// an ordinary endpoint that carries the runtime's key (container id, ifname); CNI networks are
// ordinary networks, created from the plugin config on first ADD.
#include <algorithm>

#include "base/log.hpp"
#include "core/engine.hpp"

namespace cnetd::core {
namespace {

const Endpoint* find_attachment(const Network& n, const std::string& cid,
                                const std::string& ifname) {
    for (const auto& [id, ep] : n.endpoints)
        if (!ep.container_id.empty() && ep.container_id == cid && ep.ifname == ifname) return &ep;
    return nullptr;
}

}  // namespace

Result<Endpoint> Engine::cni_add(const CreateNetworkRequest& net, const ConnectRequest& att) {
    const std::string frame =
        fmt::format("CNI ADD {}/{} to {}", att.container_id, att.ifname, net.name);
    if (att.container_id.empty() || att.ifname.empty()) {
        return Error::invalid(frame + ": container id and ifname are required");
    }
    Net* n = nullptr;
    for (auto& [id, x] : nets_)
        if (x.net.name == net.name) n = &x;
    bool created = false;
    if (n) {
        // The conf and the existing network must agree, or the pod would get an address the
        // config does not describe.
        const Network& have = n->net;
        auto differs = [&](std::string_view what, const std::string& want, const std::string& got) {
            return Error::conflict(fmt::format(
                "{}: network {} exists with {} {}, the CNI config asks for {}: use another network "
                "name or align the config",
                frame, have.name, what, got, want));
        };
        auto subnet = Ipv4Cidr::parse_network(net.subnet);
        if (!subnet) return std::move(subnet).error().wrap(frame + ": subnet");
        if (*subnet != have.subnet) return differs("subnet", net.subnet, have.subnet.str());
        if (!net.gateway.empty() && net.gateway != have.gateway.str())
            return differs("gateway", net.gateway, have.gateway.str());
        if (auto b = net.options.find(kOptBridgeName);
            b != net.options.end() && b->second != have.bridge)
            return differs("bridge", b->second, have.bridge);
        const std::string range = have.ip_range ? have.ip_range->str() : "";
        if (!net.ip_range.empty() && net.ip_range != range)
            return differs("ip range", net.ip_range, range.empty() ? "(none)" : range);
        if (const Endpoint* ep = find_attachment(have, att.container_id, att.ifname)) {
            return Error::conflict(fmt::format("{}: container {} already has {} on network {} ({})",
                                               frame, att.container_id, att.ifname, have.name,
                                               ep->address.str()));
        }
    } else {
        auto made = create_network(net);
        if (!made) return std::move(made).error().wrap(frame + ": create network");
        CNETD_TRY_ASSIGN(n, lookup(made->id));
        created = true;
    }
    ConnectRequest req = att;
    req.network = n->net.id;
    if (req.name.empty()) req.name = att.container_id;
    auto ep = attach(*n, req);
    if (!ep) {
        if (created) {
            const std::string id = n->net.id;
            if (auto r = remove_network(id); !r.ok())
                log::error("{}: remove the network created for it: {}", frame, r.error().message());
        }
        return std::move(ep).error().wrap(frame);
    }
    return ep;
}

Result<bool> Engine::cni_del(const std::string& network, const std::string& container_id,
                             const std::string& ifname) {
    const std::string frame = fmt::format("CNI DEL {}/{} from {}", container_id, ifname, network);
    Net* n = nullptr;
    for (auto& [id, x] : nets_)
        if (x.net.name == network) n = &x;
    if (!n) return false;
    const Endpoint* found = find_attachment(n->net, container_id, ifname);
    if (!found) return false;
    Endpoint ep = *found;
    // The host side goes with a vanished netns; an absent link counts as done. The pair leaves
    // service now and is deleted in a batch soon after (Kernel::retire_veth), so an ADD of the
    // same ifname may follow at once.
    std::unique_ptr<Netns> ns;
    if (auto o = kernel_.open_netns(ep.netns_path); o.ok() && (*o)->id() == ep.netns_id)
        ns = std::move(o).value();
    CNETD_TRY(kernel_.retire_veth(ep.host_ifname, ns.get(), ep.ifname).context(frame));
    unpublish(n->net, ep);
    n->ipam.release(ep.address.addr());
    if (ep.address6 && n->ipam6) n->ipam6->release(ep.address6->addr());
    n->net.endpoints.erase(ep.id);
    CNETD_TRY(persist().context(frame + ": save state"));
    log::info("CNI attachment {}/{} removed from {} ({})", container_id, ifname, network,
              ep.address.str());
    return true;
}

Result<Endpoint> Engine::cni_check(const std::string& network, const std::string& container_id,
                                   const std::string& ifname, const std::string& netns) {
    const std::string frame = fmt::format("CNI CHECK {}/{} on {}", container_id, ifname, network);
    const Net* n = nullptr;
    for (const auto& [id, x] : nets_)
        if (x.net.name == network) n = &x;
    if (!n) return Error::not_found(fmt::format("{}: no network {}", frame, network));
    const Endpoint* ep = find_attachment(n->net, container_id, ifname);
    if (!ep) {
        return Error::not_found(fmt::format("{}: container {} has no {} on network {}", frame,
                                            container_id, ifname, network));
    }
    auto gone = [&](std::string what) { return Error(ErrorKind::Kernel, frame + ": " + what); };
    CNETD_TRY_ASSIGN(LinkKind br, kernel_.link_kind(n->net.bridge));
    if (br != LinkKind::Bridge) return gone(fmt::format("bridge {} is missing", n->net.bridge));
    CNETD_TRY_ASSIGN(LinkKind veth, kernel_.link_kind(ep->host_ifname));
    if (veth == LinkKind::Absent) {
        return gone(fmt::format("host interface {} is missing", ep->host_ifname));
    }
    auto ns = kernel_.open_netns(netns);
    if (!ns) return std::move(ns).error().wrap(frame);
    if ((*ns)->id() != ep->netns_id) {
        return gone(fmt::format("{} is not the namespace the attachment was made in ({})", netns,
                                ep->netns_path));
    }
    if (!n->ipam.in_use(ep->address.addr())) {
        return gone(fmt::format("address {} is not reserved", ep->address.str()));
    }
    return *ep;
}

Result<std::vector<std::string>> Engine::cni_gc(
    const std::string& network, const std::vector<std::pair<std::string, std::string>>& keep) {
    std::vector<std::string> removed;
    std::vector<std::pair<std::string, std::string>> victims;
    for (const auto& [id, x] : nets_) {
        if (x.net.name != network) continue;
        for (const auto& [eid, ep] : x.net.endpoints) {
            if (ep.container_id.empty()) continue;
            std::pair<std::string, std::string> key{ep.container_id, ep.ifname};
            if (std::find(keep.begin(), keep.end(), key) == keep.end()) victims.push_back(key);
        }
    }
    ErrorList errors;
    for (const auto& [cid, ifname] : victims) {
        auto r = cni_del(network, cid, ifname);
        if (!r.ok()) {
            errors.add(std::move(r).error());
        } else {
            removed.push_back(cid + "/" + ifname);
        }
    }
    if (!errors.empty()) return errors.combined(fmt::format("CNI GC of {}", network));
    if (!removed.empty())
        log::info("CNI GC of {}: removed {} stale attachment(s)", network, removed.size());
    return removed;
}

std::vector<std::string> Engine::cni_status(const std::string& network) {
    std::vector<std::string> problems;
    for (const auto& [id, x] : nets_) {
        if (x.net.name != network) continue;
        auto br = kernel_.link_kind(x.net.bridge);
        if (!br.ok() || *br != LinkKind::Bridge) {
            problems.push_back(
                fmt::format("bridge {} of network {} is missing", x.net.bridge, network));
        }
        // A host veth missing is not a degradation of the network: it is an attachment whose
        // container died without DEL (GC and DEL clean it up), so it does not count here.
    }
    return problems;
}

}  // namespace cnetd::core
