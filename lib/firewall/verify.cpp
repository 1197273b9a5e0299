// What the kernel should hold (expected_state), how a dump differs from it (mismatch), and the
// intended table as nft text (render). See ruleset.hpp for the contract.
#include "firewall/elements.hpp"
#include "firewall/layout.hpp"
#include "firewall/ruleset.hpp"

namespace cnetd::firewall {
namespace {

using namespace detail;

// Every element of the intended table, network by network, then the mappings'.
std::vector<SetElems> all_elements(const std::vector<NetworkRules>& nets,
                                   const std::vector<PortForward>& ports, BridgeNf bnf) {
    std::vector<SetElems> out;
    for (const auto& n : nets)
        for (auto& se : network_elements(n)) out.push_back(std::move(se));
    for (auto& se : all_port_elements(nets, ports, bnf)) out.push_back(std::move(se));
    return out;
}

std::vector<std::string> rule_comments(std::string_view chain) {
    std::vector<std::string> out;
    for (const auto& r : rule_defs())
        if (std::string_view(r.chain) == chain) out.push_back(r.comment);
    return out;
}

// The elements of `set` as `nft list` prints them inside "elements = { ... }".
std::string elements_text(std::string_view set, const std::vector<SetElems>& all) {
    std::string out;
    for (const auto& se : all)
        if (std::string_view(se.set) == set)  // strip "{ " and " }"
            out += (out.empty() ? "" : ", ") + se.text.substr(2, se.text.size() - 4);
    return out;
}

}  // namespace

Expected expected_state(std::string_view, const std::vector<NetworkRules>& nets,
                        const std::vector<PortForward>& ports, BridgeNf bnf) {
    Expected e;
    for (const auto& c : chain_defs()) e.chains.push_back({c.name, rule_comments(c.name)});
    for (const auto& s : set_defs()) e.sets.push_back({s.name, 0});
    for (const auto& se : all_elements(nets, ports, bnf))
        for (auto& es : e.sets)
            if (es.name == se.set) es.elements += se.elems.size();
    return e;
}

std::string mismatch(const nft::TableInfo& have, const Expected& want, bool elements) {
    if (!have.exists) return "table missing";
    for (const auto& c : want.chains) {
        if (!have.chain(c.name)) return fmt::format("chain {} missing", c.name);
        const std::vector<std::string> comments = have.rule_comments(c.name);
        if (comments != c.rule_comments)
            return fmt::format("chain {} has {} rules, not our {}", c.name, comments.size(),
                               c.rule_comments.size());
    }
    if (have.chains.size() != want.chains.size())
        return fmt::format("{} chains instead of {}", have.chains.size(), want.chains.size());
    for (const auto& s : want.sets) {
        const nft::SetInfo* h = have.set(s.name);
        if (!h) return fmt::format("set {} missing", s.name);
        if (elements && h->elements != s.elements)
            return fmt::format("set {} has {} elements, not {}", s.name, h->elements, s.elements);
    }
    if (have.sets.size() != want.sets.size())
        return fmt::format("{} sets instead of {}", have.sets.size(), want.sets.size());
    return {};
}

bool matches(const nft::TableInfo& have, const Expected& want, bool elements) {
    return mismatch(have, want, elements).empty();
}

std::string render(std::string_view table, const std::vector<NetworkRules>& nets,
                   const std::vector<PortForward>& ports, BridgeNf bnf) {
    std::string out = fmt::format("table inet {} {{\n", table);
    const std::vector<SetElems> all = all_elements(nets, ports, bnf);
    for (const auto& d : set_defs()) {
        const nft::SetSpec s = set_spec(table, d, 0);
        out += fmt::format("\t{} {} {{\n\t\t{}\n", s.is_map() ? "map" : "set", s.name, s.decl());
        if (const std::string elems = elements_text(d.name, all); !elems.empty())
            out += fmt::format("\t\telements = {{ {} }}\n", elems);
        out += "\t}\n";
    }
    for (const auto& c : chain_defs()) {
        out += fmt::format("\tchain {} {{\n\t\t{}\n", c.name, chain_spec(table, c).hook_text());
        for (const auto& r : rule_defs())
            if (std::string_view(r.chain) == c.name)
                out += fmt::format("\t\t{} comment \"{}\"\n", r.nft, r.comment);
        out += "\t}\n";
    }
    out += "}\n";
    return out;
}

}  // namespace cnetd::firewall
