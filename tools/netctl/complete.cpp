// netctl __complete: the data behind shell completion (etc/completion/netctl.bash, _netctl).
#include <cstdio>
#include <cstring>

#include "netctl.hpp"

namespace cnetd::netctl {
namespace {

// A completion runs on every <Tab>: a daemon that does not answer at once is left alone.
constexpr std::chrono::milliseconds kCompleteTimeout{500};

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

void emit(const std::string& candidate, const std::string& cur) {
    if (starts_with(candidate, cur)) std::printf("%s\n", candidate.c_str());
}

// The option named `word` ("--subnet", "-o", "--subnet=x") of `at` or of the root (fallthrough).
const CLI::Option* find_option(const CLI::App& root, const CLI::App& at, std::string word) {
    if (auto eq = word.find('='); eq != std::string::npos) word.resize(eq);
    for (const CLI::App* app : {&at, &root})
        for (const CLI::Option* o : app->get_options())
            if (o->nonpositional() && o->check_name(word)) return o;
    return nullptr;
}

void emit_names_of(const CLI::Option& o, const std::string& cur) {
    for (const auto& n : o.get_lnames()) emit("--" + n, cur);
    for (const auto& n : o.get_snames()) emit("-" + n, cur);
}

// Options of `at`, then the root's (valid after any command: fallthrough) but its --help.
void emit_options(const CLI::App& root, const CLI::App& at, const std::string& cur) {
    for (const CLI::Option* o : at.get_options()) emit_names_of(*o, cur);
    if (&at == &root) return;
    for (const CLI::Option* o : root.get_options())
        if (o != root.get_help_ptr()) emit_names_of(*o, cur);
}

// Which daemon names fill positional `name` of command `at`: "networks", "netns" or none.
const char* names_for(const CLI::App& at, const std::string& name) {
    if (name == "NETWORK") return "networks";
    if (name == "TARGET") return "netns";
    // `netns rm NAME`; `netns create NAME` and `network create NAME` take a new name.
    if (name == "NAME" && at.get_name() == "rm" && at.get_parent() &&
        at.get_parent()->get_name() == "netns")
        return "netns";
    return nullptr;
}

// The positional that the word at index `n` (0-based, among positionals) fills, or nullptr.
const CLI::Option* positional_at(const CLI::App& at, int n) {
    for (const CLI::Option* o : at.get_options()) {
        if (!o->get_positional() || o->nonpositional()) continue;
        const int count = o->get_items_expected_max();
        if (n < count) return o;
        n -= count;
    }
    return nullptr;
}

void emit_names(Context& ctx, const char* what, const std::string& cur) {
    api::Client client(ctx.socket, kCompleteTimeout);
    auto r =
        client.request("GET", std::strcmp(what, "networks") == 0 ? "/v1/networks" : "/v1/netns");
    if (!r) return;  // unreachable or slow: offer nothing, say nothing
    try {
        if (std::strcmp(what, "networks") == 0) {
            for (const auto& n : api::read_list<api::Network>(*r)) emit(n.name, cur);
        } else {
            for (const auto& n : api::read_list<api::Netns>(*r)) emit(n.name, cur);
        }
    } catch (const std::exception&) {
        // an answer of another shape (another cnetd version): nothing to offer
    }
}

}  // namespace

void socket_from_args(Context& ctx, int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--socket") == 0 && i + 1 < argc) ctx.socket = argv[++i];
        if (std::strncmp(argv[i], "--socket=", 9) == 0) ctx.socket = argv[i] + 9;
    }
}

int complete_words(CLI::App& root, Context& ctx, const std::vector<std::string>& words) {
    const std::string cur = words.empty() ? "" : words.back();
    CLI::App* at = &root;
    int npos = 0;
    const CLI::Option* pending = nullptr;  // an option whose value the next word is
    for (size_t i = 0; i + 1 < words.size(); ++i) {
        const std::string& w = words[i];
        if (pending) {
            pending = nullptr;
        } else if (w.size() > 1 && w[0] == '-') {
            const CLI::Option* o = find_option(root, *at, w);
            if (o && o->get_expected_max() != 0 && w.find('=') == std::string::npos) pending = o;
        } else {
            auto subs = at->get_subcommands([&](CLI::App* s) { return s->check_name(w); });
            if (npos == 0 && !subs.empty())
                at = subs.front();
            else
                ++npos;
        }
    }
    if (pending) {
        // Only the socket has values to offer: files.
        if (pending->check_name("--socket")) std::printf("%s\n", kCompleteFiles);
        return kExitOk;
    }
    if (!cur.empty() && cur[0] == '-') {
        emit_options(root, *at, cur);
        return kExitOk;
    }
    if (npos == 0)
        for (const CLI::App* s : at->get_subcommands([](CLI::App*) { return true; })) {
            emit(s->get_name(), cur);
            for (const auto& a : s->get_aliases()) emit(a, cur);
        }
    if (const CLI::Option* p = positional_at(*at, npos))
        if (const char* what = names_for(*at, p->get_name())) emit_names(ctx, what, cur);
    return kExitOk;
}

}  // namespace cnetd::netctl
