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

// The conf and the existing network `have` must agree, or the pod would get an address the config
// does not describe. An overlay network's conf may leave the subnet out or give the whole overlay
// subnet; its gateway and bridge are each node's own (not compared: the plugin fills in the bridge
// plugin's default "cni0" when the conf names none).
Result<void> check_cni_config(const CreateNetworkRequest& net, const Network& have,
                              const std::string& frame) {
    auto differs = [&](std::string_view what, const std::string& want, const std::string& got) {
        return Error::conflict(fmt::format(
            "{}: network {} exists with {} {}, the CNI config asks for {}: use another network "
            "name or align the config",
            frame, have.name, what, got, want));
    };
    const Ipv4Cidr have_subnet = have.overlay ? have.overlay->subnet : have.subnet;
    if (!(have.overlay && net.subnet.empty())) {
        auto subnet = Ipv4Cidr::parse_network(net.subnet);
        if (!subnet) return std::move(subnet).error().wrap(frame + ": subnet");
        if (*subnet != have_subnet) return differs("subnet", net.subnet, have_subnet.str());
    }
    if (!have.overlay && !net.gateway.empty() && net.gateway != have.gateway.str())
        return differs("gateway", net.gateway, have.gateway.str());
    if (auto b = net.options.find(kOptBridgeName);
        !have.overlay && b != net.options.end() && b->second != have.bridge)
        return differs("bridge", b->second, have.bridge);
    const std::string range = have.ip_range ? have.ip_range->str() : "";
    if (!net.ip_range.empty() && net.ip_range != range)
        return differs("ip range", net.ip_range, range.empty() ? "(none)" : range);
    return ok();
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
        CNETD_TRY(check_cni_config(net, n->net, frame));
        if (const Endpoint* ep = find_attachment(n->net, att.container_id, att.ifname)) {
            return cni_retry(*n, *ep, att).context(frame);
        }
    } else if (net.driver == "overlay") {
        return Error::not_found(fmt::format(
            "{}: overlay network {} does not exist on this node; a CNI config cannot create one "
            "(netctl network create --driver overlay, with a `cluster:` config)",
            frame, net.name));
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
    const std::string id = found->id, address = found->address.str();
    CNETD_TRY(detach_endpoints({{n->net.id, id}}, "CNI DEL", {}).context(frame));
    log::info("CNI attachment {}/{} removed from {} ({})", container_id, ifname, network, address);
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
    CNETD_TRY_ASSIGN(auto missing, driver_of(n->net).missing(n->net));
    if (missing) return gone(*missing + " is missing");
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
    std::vector<EndpointRef> victims;
    for (const auto& [id, x] : nets_) {
        if (x.net.name != network) continue;
        for (const auto& [eid, ep] : x.net.endpoints) {
            if (ep.container_id.empty()) continue;
            std::pair<std::string, std::string> key{ep.container_id, ep.ifname};
            if (std::find(keep.begin(), keep.end(), key) != keep.end()) continue;
            victims.emplace_back(id, eid);
            removed.push_back(ep.container_id + "/" + ep.ifname);
        }
    }
    // All of them in one save: a failure removes none.
    const std::string frame = fmt::format("CNI GC of {}", network);
    CNETD_TRY(detach_endpoints(victims, frame, {}).context(frame));
    if (!removed.empty())
        log::info("CNI GC of {}: removed {} stale attachment(s)", network, removed.size());
    return removed;
}

std::vector<std::string> Engine::cni_status(const std::string& network) {
    std::vector<std::string> problems;
    for (const auto& [id, x] : nets_) {
        if (x.net.name != network) continue;
        auto missing = driver_of(x.net).missing(x.net);
        if (!missing.ok()) {
            problems.push_back(fmt::format("network {}: {}", network, missing.error().message()));
        } else if (*missing) {
            problems.push_back(fmt::format("{} of network {} is missing", **missing, network));
        }
        // A host veth missing is not a degradation of the network: it is an attachment whose
        // container died without DEL (GC and DEL clean it up), so it does not count here.
    }
    return problems;
}

Result<Endpoint> Engine::cni_retry(const Net& n, const Endpoint& ep, const ConnectRequest& att) {
    auto refuse = [&](const std::string& why) {
        return Error::conflict(fmt::format("container {} already has {} on network {} ({}){}",
                                           att.container_id, att.ifname, n.net.name,
                                           ep.address.str(), why.empty() ? "" : ": " + why));
    };
    // A retry asks for the same thing: the same namespace, no other static address or MAC.
    auto path = resolve_target(att.target);
    if (!path) return refuse(path.error().message());
    auto ns = kernel_.open_netns(*path);
    if (!ns) return refuse(ns.error().message());
    if ((*ns)->id() != ep.netns_id) {
        return refuse(fmt::format("{} is another namespace than its {}", *path, ep.netns_path));
    }
    if (!att.ipv4.empty() && att.ipv4 != ep.address.addr().str())
        return refuse(fmt::format("this ADD asks for {}", att.ipv4));
    if (auto m = Mac::parse(att.mac); !att.mac.empty() && (!m || *m != ep.mac))
        return refuse(fmt::format("this ADD asks for MAC {}", att.mac));
    // Intact in the kernel, or the retry would hand out a result that does not work: a broken
    // attachment is the runtime's to DEL (DEL then ADD rebuilds it), not ours to paper over.
    CNETD_TRY_ASSIGN(auto defect, driver_of(n.net).endpoint_defect(n.net, ep, **ns));
    if (defect) return refuse(*defect + ": DEL it first");
    log::info("CNI ADD {}/{} on {}: a retry of the recorded attachment ({}), answered with it",
              att.container_id, att.ifname, n.net.name, ep.address.str());
    return ep;
}

}  // namespace cnetd::core
