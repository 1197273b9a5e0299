// libFuzzer target: lib/dns/wire's query parser and response builder, differential against libldns
// (NLnet Labs) when the build has it (CNETD_HAVE_LDNS). Properties:
//   - parse_query never reads outside the input (ASan) and a query it accepts has a sane shape;
//   - when ldns also accepts the packet, both see the same question (name compared in wire form:
//     our presentation form, escapes decoded, equals ldns's owner name case-folded), type, class
//     and EDNS size;
//   - every response we build fits the limit, matches its query (reply_matches) and parses with
//     ldns with the answer count and TC bit we wrote.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dns/wire.hpp"

#ifdef CNETD_HAVE_LDNS
#include <ldns/ldns.h>
#endif

using namespace cnetd;
using namespace cnetd::dns;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

uint8_t fold(uint8_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

// Our presentation name back to wire form (labels, lower-cased), decoding "\X" and "\DDD".
std::vector<uint8_t> to_wire(const std::string& name) {
    std::vector<uint8_t> out;
    std::vector<uint8_t> label;
    auto flush = [&] {
        check(!label.empty() && label.size() <= 63);
        out.push_back(static_cast<uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        label.clear();
    };
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (c == '.') {
            flush();
        } else if (c == '\\') {
            check(i + 1 < name.size());
            if (name[i + 1] >= '0' && name[i + 1] <= '9') {
                check(i + 3 < name.size());
                int v = (name[i + 1] - '0') * 100 + (name[i + 2] - '0') * 10 + (name[i + 3] - '0');
                check(v <= 255);
                label.push_back(fold(static_cast<uint8_t>(v)));
                i += 3;
            } else {
                label.push_back(static_cast<uint8_t>(name[++i]));
            }
        } else {
            check(c < 'A' || c > 'Z');  // lower-cased
            label.push_back(static_cast<uint8_t>(c));
        }
    }
    if (!name.empty()) flush();
    out.push_back(0);
    return out;
}

void check_shape(const Query& q, std::span<const uint8_t> pkt) {
    check(q.question_end >= 12 + 5 && q.question_end <= pkt.size());
    check(q.udp_size >= 512 && q.udp_size <= kMaxUdpAnswer);
    check(q.opcode < 16);
    auto wire = to_wire(q.name);
    check(wire.size() <= 255 && wire.size() == q.question_end - 12 - 4);
    for (size_t i = 0; i < wire.size(); ++i) check(wire[i] == fold(pkt[12 + i]));
}

Records records_from(std::span<const uint8_t> pkt, const Query& q) {
    Records r;
    size_t n = pkt.size() % 300;  // sometimes far more than 512 bytes' worth: TC
    for (size_t i = 0; i < n; ++i) r.a.push_back(Ipv4(static_cast<uint32_t>(i * 2654435761u)));
    if (pkt.size() % 3 == 0) r.aaaa.push_back(Ipv6());
    r.ptr.push_back(q.name);  // may not be encodable (escapes, empty): left out, never written
    r.ptr.push_back("web.mynet");
    return r;
}

#ifdef CNETD_HAVE_LDNS
struct Pkt {
    ldns_pkt* p = nullptr;
    ~Pkt() { ldns_pkt_free(p); }
};

void differential(const Query& q, std::span<const uint8_t> pkt) {
    Pkt l;
    if (ldns_wire2pkt(&l.p, pkt.data(), pkt.size()) != LDNS_STATUS_OK) return;
    ldns_rr_list* qs = ldns_pkt_question(l.p);
    check(ldns_rr_list_rr_count(qs) == 1);
    ldns_rr* rr = ldns_rr_list_rr(qs, 0);
    const ldns_rdf* owner = ldns_rr_owner(rr);
    std::vector<uint8_t> theirs(ldns_rdf_data(owner), ldns_rdf_data(owner) + ldns_rdf_size(owner));
    for (auto& c : theirs) c = fold(c);
    check(theirs == to_wire(q.name));
    check(ldns_rr_get_type(rr) == q.qtype);
    check(ldns_rr_get_class(rr) == q.qclass);
    uint16_t size = ldns_pkt_edns_udp_size(l.p);
    if (size > 0)
        check(q.edns && q.udp_size == std::min<size_t>(std::max<size_t>(size, 512), kMaxUdpAnswer));
}

void check_with_ldns(const std::vector<uint8_t>& out, bool tc, uint16_t ancount) {
    Pkt l;
    check(ldns_wire2pkt(&l.p, out.data(), out.size()) == LDNS_STATUS_OK);
    check(ldns_pkt_tc(l.p) == tc);
    check(ldns_pkt_ancount(l.p) == ancount);
    check(ldns_rr_list_rr_count(ldns_pkt_answer(l.p)) == ancount);
    check(ldns_pkt_qdcount(l.p) == 1);
}
#endif

void respond(const Query& q, std::span<const uint8_t> pkt, size_t limit) {
    Records r = records_from(pkt, q);
    std::vector<uint8_t> out;
    size_t n = build_response(q, pkt, Rcode::NoError, r, 600, limit, out);
    check(n == out.size() && n <= limit);
    auto h = parse_reply_header(out);
    check(h && h->qr && h->id == q.id && h->rcode == Rcode::NoError);
    uint16_t ancount = static_cast<uint16_t>(out[6] << 8 | out[7]);
    check(h->tc ? ancount == 0 : ancount >= r.a.size() + r.aaaa.size() + 1);
    check(reply_matches(pkt, q, out));
#ifdef CNETD_HAVE_LDNS
    check_with_ldns(out, h->tc, ancount);
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> pkt(data, size);
    auto q = parse_query(pkt);
    if (!q) return 0;
    check_shape(*q, pkt);
#ifdef CNETD_HAVE_LDNS
    differential(*q, pkt);
#endif
    respond(*q, pkt, q->udp_size);
    respond(*q, pkt, kMaxTcpMessage);
    return 0;
}
