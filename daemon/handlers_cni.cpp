// The CNI routes (docs/api.md "CNI attachments"), called by cnetd-cni: /v1/cni/{add,del,check,gc}
// (POST) and /v1/cni/status/{network} (GET). Bodies are strict like every other route (unknown or
// mistyped fields are a 400 naming the field); the engine work runs on the kernel worker. Every
// error body carries "CniCode" too, the CNI error code the plugin prints.
#include <set>

#include "api/protocol.hpp"
#include "base/log.hpp"
#include "daemon/codec.hpp"
#include "daemon/handlers.hpp"

namespace cnetd::daemon {
namespace {

constexpr const char* kOptMtu = "com.docker.network.driver.mtu";

// The CNI code for an error of this route: NotFound 3 (unknown container), bad input and
// conflicts 7 (invalid config), 11 while shutting down, 100 (plugin-specific) for kernel failures.
int cni_code_of(const Error& e) {
    switch (e.kind()) {
        case ErrorKind::NotFound:
            return 3;
        case ErrorKind::InvalidArgument:
        case ErrorKind::Conflict:
            return 7;
        case ErrorKind::Unavailable:
            return 11;
        default:
            return 100;
    }
}

// A strict reader of one JSON object: get_*() record the fields they read, finish() rejects the
// rest by name. The first error wins; later calls are no-ops.
class Fields {
public:
    Fields(const json& j, std::string prefix) : j_(j), prefix_(std::move(prefix)) {}
    std::string str(const char* k, bool required = false) {
        const json* v = find(k, required);
        if (!v) return {};
        if (!v->is_string()) return fail(k, "expected a string"), std::string();
        return v->get<std::string>();
    }
    bool boolean(const char* k, bool dflt) {
        const json* v = find(k, false);
        if (!v) return dflt;
        if (!v->is_boolean()) return fail(k, "expected true or false"), dflt;
        return v->get<bool>();
    }
    unsigned number(const char* k, unsigned max, bool required = false) {
        const json* v = find(k, required);
        if (!v) return 0;
        if (!v->is_number_unsigned() || v->get<uint64_t>() > max)
            return fail(k, fmt::format("expected a whole number 0-{}", max)), 0u;
        return v->get<unsigned>();
    }
    const json* array(const char* k) {
        const json* v = find(k, false);
        if (v && !v->is_array()) return fail(k, "expected an array"), nullptr;
        return v;
    }
    const json* object(const char* k, bool required) {
        const json* v = find(k, required);
        if (v && !v->is_object()) return fail(k, "expected an object"), nullptr;
        return v;
    }
    Result<void> finish() {
        if (err_) return *err_;
        for (const auto& [k, v] : j_.items()) {
            if (!seen_.count(k))
                return Error::invalid(fmt::format("{}unknown field \"{}\"", prefix_, k));
        }
        return ok();
    }
    bool failed() const { return err_.has_value(); }

private:
    const json* find(const char* k, bool required) {
        seen_.insert(k);
        if (err_) return nullptr;
        if (!j_.is_object() || !j_.contains(k)) {
            if (required) fail(k, "required");
            return nullptr;
        }
        return &j_[k];
    }
    void fail(const char* k, std::string why) {
        if (!err_) err_ = Error::invalid(fmt::format("{}\"{}\": {}", prefix_, k, why));
    }
    const json& j_;
    std::string prefix_;
    std::set<std::string> seen_;
    std::optional<Error> err_;
};

struct AddRequest {
    core::CreateNetworkRequest net;
    core::ConnectRequest att;
};

Result<AddRequest> parse_add(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    AddRequest r;
    Fields f(j, "");
    if (const json* n = f.object("Network", true)) {
        Fields nf(*n, "\"Network\".");
        r.net.name = nf.str("Name", true);
        r.net.subnet = nf.str("Subnet", true);
        r.net.gateway = nf.str("Gateway");
        r.net.ip_range = nf.str("IPRange");
        std::string bridge = nf.str("Bridge");
        unsigned mtu = nf.number("Mtu", 65535);
        bool masq = nf.boolean("IpMasq", false);
        bool icc = nf.boolean("Icc", true);
        CNETD_TRY(nf.finish());
        if (!bridge.empty()) r.net.options[core::kOptBridgeName] = bridge;
        if (mtu) r.net.options[kOptMtu] = std::to_string(mtu);
        r.net.options[core::kOptEnableIcc] = icc ? "true" : "false";
        r.net.options[core::kOptEnableMasquerade] = masq ? "true" : "false";
    }
    r.att.container_id = f.str("ContainerID", true);
    r.att.ifname = f.str("IfName", true);
    r.att.target = f.str("Netns", true);
    r.att.ipv4 = f.str("IPv4Address");
    r.att.mac = f.str("MacAddress");
    if (const json* pm = f.array("PortMappings")) {
        for (size_t i = 0; i < pm->size(); ++i) {
            const json& e = (*pm)[i];
            std::string pre = fmt::format("\"PortMappings\"[{}].", i);
            if (!e.is_object()) return Error::invalid(pre + ": expected an object");
            Fields pf(e, pre);
            core::PortRequest p;
            auto hp = static_cast<uint16_t>(pf.number("HostPort", 65535, true));
            auto cp = static_cast<uint16_t>(pf.number("ContainerPort", 65535, true));
            std::string proto = pf.str("Protocol");
            std::string host_ip = pf.str("HostIP");
            CNETD_TRY(pf.finish());
            if (hp == 0 || cp == 0) return Error::invalid(pre + " ports must be 1-65535");
            auto pr = core::parse_proto(proto.empty() ? "tcp" : proto);
            if (!pr) return std::move(pr).error().wrap(pre + "\"Protocol\"");
            p.proto = *pr;
            p.host = {hp, hp};
            p.container = {cp, cp};
            if (!host_ip.empty()) {
                auto a = Ipv4::parse(host_ip);
                if (!a) return std::move(a).error().wrap(pre + "\"HostIP\"");
                p.host_ip = *a;
            } else {
                p.host_ip = Ipv4(0);  // CNI: no hostIP means every host address
            }
            r.att.ports.push_back(p);
        }
    }
    CNETD_TRY(f.finish());
    r.att.network = r.net.name;
    return r;
}

struct KeyRequest {
    std::string network, container_id, ifname, netns;
    std::vector<std::pair<std::string, std::string>> valid;
};

Result<KeyRequest> parse_key(std::string_view body, bool need_netns, bool gc) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    KeyRequest r;
    Fields f(j, "");
    r.network = f.str("Network", true);
    if (gc) {
        if (const json* v = f.array("Valid")) {
            for (size_t i = 0; i < v->size(); ++i) {
                std::string pre = fmt::format("\"Valid\"[{}].", i);
                if (!(*v)[i].is_object()) return Error::invalid(pre + ": expected an object");
                Fields af((*v)[i], pre);
                std::string cid = af.str("ContainerID", true), ifname = af.str("IfName", true);
                CNETD_TRY(af.finish());
                r.valid.emplace_back(std::move(cid), std::move(ifname));
            }
        }
    } else {
        r.container_id = f.str("ContainerID", true);
        r.ifname = f.str("IfName", true);
        r.netns = f.str("Netns", need_netns);
    }
    CNETD_TRY(f.finish());
    return r;
}

// What cnetd-cni builds its result from.
json attachment_json(const core::Endpoint& ep, const std::vector<core::Network>& nets) {
    json out = {{"Endpoint", endpoint_to_json(ep)}};
    for (const auto& n : nets) {
        if (!n.endpoints.count(ep.id)) continue;
        out["Network"] = n.name;
        out["Bridge"] = n.bridge;
        out["Subnet"] = n.subnet.str();
        out["Gateway"] = n.gateway.str();
        out["Internal"] = n.internal;
        out["Mtu"] = n.mtu;
    }
    return out;
}

}  // namespace

ApiResponse cni_error_response(const Error& e) {
    return cni_error_response(api::http_status(e.kind()), e);
}

ApiResponse cni_error_response(int status, const Error& e) {
    ApiResponse r = error_response(status, e);
    r.body["CniCode"] = cni_code_of(e);
    return r;
}

void Handlers::cni_status(const ApiRequest&, const Args& args, Reply reply) {
    // Reads the kernel (the bridge link): a shared Read job, never ahead of a mutation.
    shared_read("cni-status/" + args[0], std::move(reply), [net = args[0]](Backend& b) {
        auto problems = b.cni_status(net);
        return ApiResponse{200, {{"Ready", true}, {"Problems", problems}}, {}};
    });
}

void Handlers::cni_add(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = parse_add(req.body);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI ADD")));
    post_job(std::move(reply), [r = std::move(parsed).value()](Backend& b) {
        auto ep = b.cni_add(r.net, r.att);
        if (!ep) return cni_error_response(ep.error());
        log::debug("api: CNI ADD {}/{} to {}: {}", r.att.container_id, r.att.ifname, r.net.name,
                   ep->address.str());
        return ApiResponse{201, attachment_json(*ep, b.networks()), {}};
    });
}

void Handlers::cni_del(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = parse_key(req.body, false, false);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI del")));
    post_job(std::move(reply), [r = std::move(parsed).value()](Backend& b) {
        auto done = b.cni_del(r.network, r.container_id, r.ifname);
        if (!done) return cni_error_response(done.error());
        return ApiResponse{200, {{"Removed", *done}}, {}};
    });
}

void Handlers::cni_check(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = parse_key(req.body, true, false);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI check")));
    post_job(std::move(reply), [r = std::move(parsed).value()](Backend& b) {
        auto ep = b.cni_check(r.network, r.container_id, r.ifname, r.netns);
        if (!ep) return cni_error_response(ep.error());
        return ApiResponse{200, attachment_json(*ep, b.networks()), {}};
    });
}

void Handlers::cni_gc(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = parse_key(req.body, false, true);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI gc")));
    post_job(std::move(reply), [r = std::move(parsed).value()](Backend& b) {
        auto removed = b.cni_gc(r.network, r.valid);
        if (!removed) return cni_error_response(removed.error());
        return ApiResponse{200, {{"Removed", *removed}}, {}};
    });
}

}  // namespace cnetd::daemon
