// Batch builders: intent -> one nftables transaction (see ruleset.hpp for the contract).
#include <algorithm>

#include "firewall/elements.hpp"
#include "firewall/layout.hpp"
#include "firewall/ruleset.hpp"

namespace cnetd::firewall {
namespace {

using namespace detail;

void add_elements(nft::Batch& b, std::string_view table, const SetElems& se, bool add) {
    const nft::ElementsSpec spec{kFamily, std::string(table), se.set, se.elems};
    if (add)
        b.add_elements(spec, se.text);
    else
        b.delete_elements(spec, se.text);
}

// Packs elements into messages of at most kMaxElemsPerMsg elements per set: one message per
// mapping would make a 10,000-port rebuild 10,000 messages. A message's description keeps the
// first few items' text (an error names the message; see docs/firewall.md).
class ElemPacker {
public:
    ElemPacker(nft::Batch& b, std::string_view table, bool add) : b_(b), table_(table), add_(add) {}
    void put(SetElems se) {
        Chunk* c = nullptr;
        for (auto& x : chunks_)
            if (std::string_view(x.se.set) == se.set) c = &x;
        if (!c) {
            chunks_.push_back(Chunk{SetElems{se.set, {}, {}}, {}});
            c = &chunks_.back();
        }
        for (auto& e : se.elems) {
            if (c->se.elems.size() >= kMaxElemsPerMsg) flush(*c);
            c->se.elems.push_back(std::move(e));
        }
        c->texts.push_back(se.text.substr(2, se.text.size() - 4));
    }
    // Writes the open chunks (one per set, in order of first use).
    void finish() {
        for (auto& c : chunks_) flush(c);
    }

private:
    struct Chunk {
        SetElems se;
        std::vector<std::string> texts;
    };
    void flush(Chunk& c) {
        if (c.se.elems.empty()) return;
        std::string t;
        for (size_t i = 0; i < c.texts.size() && i < 3; ++i) t += (i ? ", " : "") + c.texts[i];
        if (c.texts.size() > 3) t += fmt::format(", ... ({} mappings)", c.texts.size());
        c.se.text = "{ " + t + " }";
        add_elements(b_, table_, c.se, add_);
        c.se.elems.clear();
        c.texts.clear();
    }
    nft::Batch& b_;
    std::string_view table_;
    bool add_;
    std::vector<Chunk> chunks_;
};

// The fixed part of the table: "add table; delete table; add table" (the delete never fails,
// and drops every old object in the same transaction that creates the new ones), then the sets
// and maps, the base chains and their rules.
nft::Batch build_layout(std::string_view table) {
    nft::Batch b;
    const nft::TableSpec t = table_spec(table);
    b.add_table(t);
    b.delete_table(t);
    b.create_table(t);
    uint32_t set_id = 0;  // the kernel requires a transaction-local id per new set
    for (const auto& d : set_defs()) b.create_set(set_spec(table, d, ++set_id));
    for (const auto& d : chain_defs()) b.create_chain(chain_spec(table, d));
    for (const auto& d : rule_defs()) b.add_rule(rule_spec(table, d), d.nft);
    return b;
}

}  // namespace

SelfKey self_key(const PortForward& p) {
    SelfKey k{static_cast<uint8_t>(p.family), {}};
    const auto a = container_addr(p);
    std::copy(a.begin(), a.end(), k.second.begin());
    return k;
}

// ---- public ---------------------------------------------------------------------------------

nft::Batch build_network(std::string_view table, const NetworkRules& n, bool add) {
    nft::Batch b;
    for (const auto& se : network_elements(n)) add_elements(b, table, se, add);
    return b;
}

nft::Batch build_ports(std::string_view table, const std::vector<PortForward>& ports, bool add,
                       const std::vector<NetworkRules>& nets) {
    nft::Batch b;
    ElemPacker pack(b, table, add);
    for (const auto& p : ports) {
        pack.put(port_elements(p));
        if (auto r = routed_elements(p, nets)) pack.put(std::move(*r));
    }
    pack.finish();
    return b;
}

nft::Batch build_hairpin_self(std::string_view table, const std::vector<PortForward>& ports,
                              bool add) {
    nft::Batch b;
    ElemPacker pack(b, table, add);
    for (const auto& p : distinct_self(ports)) pack.put(self_element(p));
    pack.finish();
    return b;
}

nft::Batch build_rebuild(std::string_view table, const std::vector<NetworkRules>& nets,
                         const std::vector<PortForward>& ports, BridgeNf bnf) {
    nft::Batch b = build_layout(table);
    for (const auto& n : nets) b.append(build_network(table, n, true));
    b.append(build_ports(table, ports, true, nets));
    b.append(build_hairpin_self(table, ports, true));
    if (auto u = unbridged_elements(bnf)) add_elements(b, table, *u, true);
    return b;
}

}  // namespace cnetd::firewall
