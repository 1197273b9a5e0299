// netctl __complete: the data behind shell completion (etc/completion/netctl.bash).
#include <cstdio>
#include <cstring>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// A completion runs on every <Tab>: a daemon that does not answer at once is left alone.
constexpr std::chrono::milliseconds kCompleteTimeout{500};

// `skip`: an option not to print (the root's --help when a subcommand's own is printed).
void print_options(const CLI::App& app, const CLI::Option* skip = nullptr) {
    for (const CLI::Option* o : app.get_options()) {
        if (o == skip || (o->get_positional() && !o->nonpositional())) continue;
        const char* kind = o->get_expected_max() == 0 ? "opt" : "val";
        for (const auto& n : o->get_lnames()) std::printf("%s --%s\n", kind, n.c_str());
        for (const auto& n : o->get_snames()) std::printf("%s -%s\n", kind, n.c_str());
    }
}

}  // namespace

void socket_from_args(Context& ctx, int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--socket") == 0 && i + 1 < argc) ctx.socket = argv[++i];
        if (std::strncmp(argv[i], "--socket=", 9) == 0) ctx.socket = argv[i] + 9;
    }
}

void complete_words(CLI::App& app, const std::vector<std::string>& path) {
    CLI::App* at = &app;
    for (const auto& word : path) {
        auto subs = at->get_subcommands([&](CLI::App* s) { return s->check_name(word); });
        if (subs.empty()) return;  // an unknown word: nothing is known to follow it
        at = subs.front();
    }
    for (const CLI::App* s : at->get_subcommands([](CLI::App*) { return true; })) {
        std::printf("sub %s\n", s->get_name().c_str());
        for (const auto& a : s->get_aliases()) std::printf("sub %s\n", a.c_str());
    }
    if (at != &app) print_options(*at);
    // fallthrough: the global options are valid after any command.
    print_options(app, at != &app ? app.get_help_ptr() : nullptr);
    for (const CLI::Option* o : at->get_options()) {
        if (!o->get_positional()) continue;
        std::printf("pos %s%s\n", o->get_name().c_str(),
                    o->get_items_expected_max() > 1 ? " *" : "");
    }
}

int complete_names(Context& ctx, std::string_view what) {
    const char* path = what == "networks" ? "/v1/networks"
                       : what == "netns"  ? "/v1/netns"
                                          : nullptr;
    if (!path) return kExitUsage;
    api::Client client(ctx.socket, kCompleteTimeout);
    auto r = client.request("GET", path);
    if (!r) return kExitUnreachable;
    try {
        if (what == "networks") {
            for (const auto& n : api::read_list<api::Network>(*r))
                std::printf("%s\n", n.name.c_str());
        } else {
            for (const auto& n : api::read_list<api::Netns>(*r))
                std::printf("%s\n", n.name.c_str());
        }
    } catch (const std::exception&) {
        return kExitRequest;  // an answer of another shape (another version): nothing to offer
    }
    return kExitOk;
}

}  // namespace cnetd::netctl
