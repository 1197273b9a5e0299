#include <cstdio>
#include <iostream>

#include "netctl.hpp"

namespace cnetd::netctl {

int fail(const Error& e) {
    std::fprintf(stderr, "netctl: %s\n", e.message().c_str());
    // The client sets errno only when the daemon could not be reached (see api/client.hpp);
    // a 503 answer from a running daemon is a request error.
    if (e.kind() == ErrorKind::Unavailable && e.error_number() != 0) return kExitUnreachable;
    return kExitRequest;
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

int remove_each(const Context& ctx, const std::vector<std::string>& names,
                const std::function<std::string(const std::string&)>& path_of) {
    ErrorList errs;
    json removed = json::array();
    auto client = ctx.client();
    for (const auto& name : names) {
        auto r = client.request("DELETE", path_of(name));
        if (!r) {
            if (r.error().kind() == ErrorKind::Unavailable && r.error().error_number() != 0)
                return fail(r.error());
            errs.add(r.error());
            continue;
        }
        removed.push_back(name);
        if (!ctx.json) std::cout << name << '\n';
    }
    if (ctx.json) print_json(removed);
    return errs.empty() ? kExitOk : fail(errs.combined(""));
}

}  // namespace cnetd::netctl
