// The CNI routes (docs/api.md "CNI attachments"), called by cnetd-cni: /v1/cni/{add,del,check,gc}
// (POST) and /v1/cni/status/{network} (GET). Bodies are strict like every other route (unknown or
// mistyped fields are a 400 naming the field); the engine work runs on the kernel worker. Every
// error body carries "CniCode" too, the CNI error code the plugin prints.
#include "api/codec.hpp"
#include "api/protocol.hpp"
#include "base/log.hpp"
#include "daemon/codec.hpp"
#include "daemon/handlers.hpp"
#include "daemon/metrics.hpp"

namespace cnetd::daemon {
namespace {

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
        return ApiResponse{200, api::to_json(api::CniStatus{true, b.cni_status(net)}), {}};
    });
}

void Handlers::cni_add(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = api::parse_cni_add(req.body);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI ADD")));
    post_job(std::move(reply), [r = to_core(*parsed), dns = dns_.load(),
                                m = metrics_.load()](Backend& b) {
        auto ep = timed_op(m, obs::Op::Attach, "cni", [&] { return b.cni_add(r.net, r.att); });
        if (!ep) return cni_error_response(ep.error());
        log::debug("api: CNI ADD {}/{} to {}: {}", r.att.container_id, r.att.ifname, r.net.name,
                   ep->address.str());
        return ApiResponse{201, api::to_json(attachment_of(*ep, b.networks(), dns)), {}};
    });
}

void Handlers::cni_del(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = api::parse_cni_key(req.body, false);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI del")));
    post_job(std::move(reply), [r = std::move(parsed).value(), m = metrics_.load()](Backend& b) {
        auto done = timed_op(m, obs::Op::Detach, "cni",
                             [&] { return b.cni_del(r.network, r.container_id, r.ifname); });
        if (!done) return cni_error_response(done.error());
        return ApiResponse{200, api::to_json(api::CniDelResult{*done}), {}};
    });
}

void Handlers::cni_check(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = api::parse_cni_key(req.body, true);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI check")));
    post_job(std::move(reply), [r = std::move(parsed).value(), dns = dns_.load()](Backend& b) {
        auto ep = b.cni_check(r.network, r.container_id, r.ifname, r.netns);
        if (!ep) return cni_error_response(ep.error());
        return ApiResponse{200, api::to_json(attachment_of(*ep, b.networks(), dns)), {}};
    });
}

void Handlers::cni_gc(const ApiRequest& req, const Args&, Reply reply) {
    auto parsed = api::parse_cni_gc(req.body);
    if (!parsed) return reply(cni_error_response(std::move(parsed).error().wrap("CNI gc")));
    post_job(std::move(reply), [r = std::move(parsed).value()](Backend& b) {
        auto removed = b.cni_gc(r.network, r.valid);
        if (!removed) return cni_error_response(removed.error());
        return ApiResponse{200, api::to_json(api::CniGcResult{*removed}), {}};
    });
}

}  // namespace cnetd::daemon
