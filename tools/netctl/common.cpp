#include <cstdio>
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// The client sets errno only when the daemon could not be reached (see api/client.hpp); a 503
// answer from a running daemon is a request error.
bool unreachable(const Error& e) {
    return e.kind() == ErrorKind::Unavailable && e.error_number() != 0;
}

}  // namespace

int fail(const Error& e) {
    std::fprintf(stderr, "netctl: %s\n", e.message().c_str());
    return unreachable(e) ? kExitUnreachable : kExitRequest;
}

int usage(const std::string& message) {
    std::fprintf(stderr, "netctl: %s\n", message.c_str());
    return kExitUsage;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> width(header.size());
    for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (size_t i = 0; i < cells.size(); ++i) {
            out += cells[i];
            if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 3, ' ');
        }
        std::cout << out << '\n';
    };
    line(header);
    for (const auto& r : rows) line(r);
}

void print_json(const json& j) {
    std::cout << j.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void print_warnings(const std::vector<std::string>& warnings) {
    for (const auto& line : warnings) std::cout << "warning: " << line << '\n';
}

int show(const Context& ctx, const std::string& path,
         const std::function<void(const json&)>& print) {
    auto r = ctx.client().request("GET", path);
    if (!r) return fail(r.error());
    if (ctx.json)
        print_json(*r);
    else
        print(*r);
    return kExitOk;
}

int send(const Context& ctx, const char* method, const std::string& path, const json& body,
         const std::function<void(const json&)>& print) {
    auto r = ctx.client().request(method, path, body);
    if (!r) return fail(r.error());
    if (ctx.json)
        print_json(*r);
    else if (print)
        print(*r);
    return kExitOk;
}

std::optional<int> each_name(const Context& ctx, const std::vector<std::string>& names,
                             const char* method,
                             const std::function<std::string(const std::string&)>& path_of,
                             const std::function<void(const std::string&, json)>& on_ok,
                             ErrorList& errs) {
    auto client = ctx.client();
    for (const auto& name : names) {
        auto r = client.request(method, path_of(name));
        if (!r) {
            if (unreachable(r.error())) return fail(r.error());
            errs.add(r.error());
            continue;
        }
        on_ok(name, std::move(r).value());
    }
    return std::nullopt;
}

int finish(const ErrorList& errs) {
    return errs.empty() ? kExitOk : fail(errs.combined(""));
}

int remove_each(const Context& ctx, const std::vector<std::string>& names,
                const std::function<std::string(const std::string&)>& path_of) {
    ErrorList errs;
    json removed = json::array();
    auto on_ok = [&](const std::string& name, const json&) {
        removed.push_back(name);
        if (!ctx.json) std::cout << name << '\n';
    };
    if (auto rc = each_name(ctx, names, "DELETE", path_of, on_ok, errs)) return *rc;
    if (ctx.json) print_json(removed);
    return finish(errs);
}

}  // namespace cnetd::netctl
