// lib/dns/wire: golden bytes of real queries (captured from dig 9.18), the responses we build, the
// parser's rejections, forwarding guards, reverse names; and, when libldns is available (tests
// only), a cross-check of every built response against NLnet Labs' parser.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "dns/wire.hpp"

#ifdef CNETD_HAVE_LDNS
#include <ldns/ldns.h>
#endif

namespace dns_wire_test {  // file-local names and using-directives: see "unity" in tests/meson.build

using namespace cnetd;
using namespace cnetd::dns;

namespace {

std::vector<uint8_t> hex(std::string_view s) {
    std::vector<uint8_t> out;
    auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (size_t i = 0; i + 1 < s.size(); i += 2) {
        if (s[i] == ' ') {
            --i;
            continue;
        }
        out.push_back(static_cast<uint8_t>(nib(s[i]) << 4 | nib(s[i + 1])));
    }
    return out;
}

// `dig @127.0.0.1 Db.MyNet A` (dig 9.18.49): RD+AD, EDNS0 with a 1232-byte size and a cookie.
const std::vector<uint8_t> kDigA =
    hex("6779 0120 0001 0000 0000 0001 0244 6205 4d79 4e65 7400 0001 0001"
        "00 0029 04d0 0000 0000 000c 000a 0008 fc06 4156 2f00 7ff7");
// `dig +noedns -x 172.18.0.2`
const std::vector<uint8_t> kDigPtr =
    hex("2744 0120 0001 0000 0000 0000 0132 0130 0231 3803 3137 3207 696e 2d61 6464 7204 6172 7061"
        "00 000c 0001");

Ipv4 v4(const char* s) {
    return *Ipv4::parse(s);
}
Ipv6 v6(const char* s) {
    return *Ipv6::parse(s);
}

uint16_t u16(const std::vector<uint8_t>& p, size_t at) {
    return uint16_t(p[at] << 8 | p[at + 1]);
}

std::vector<uint8_t> with(std::vector<uint8_t> p, size_t at, std::initializer_list<uint8_t> b) {
    for (uint8_t x : b) p[at++] = x;
    return p;
}

}  // namespace

TEST(DnsWire, ParsesDigQuery) {
    auto q = parse_query(kDigA);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->id, 0x6779);
    EXPECT_EQ(q->opcode, 0);
    EXPECT_TRUE(q->rd);
    EXPECT_EQ(q->name, "db.mynet");  // lower-cased
    EXPECT_EQ(q->qtype, kTypeA);
    EXPECT_EQ(q->qclass, kClassIn);
    EXPECT_TRUE(q->edns);
    EXPECT_EQ(q->udp_size, 1232);
    EXPECT_EQ(q->question_end, 12u + 10 + 4);

    auto p = parse_query(kDigPtr);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, "2.0.18.172.in-addr.arpa");
    EXPECT_EQ(p->qtype, kTypePtr);
    EXPECT_FALSE(p->edns);
    EXPECT_EQ(p->udp_size, 512);
}

TEST(DnsWire, BuildsAnswerGoldenBytes) {
    auto q = *parse_query(kDigA);
    Records r;
    r.a = {v4("172.18.0.2"), v4("172.18.0.3")};
    std::vector<uint8_t> out;
    size_t n = build_response(q, kDigA, Rcode::NoError, r, 600, q.udp_size, out);
    EXPECT_EQ(n, out.size());
    // QR RD / RA, 2 answers owned by a pointer to the question (case kept as asked), then our OPT
    // (4096, no options: the client's cookie is not echoed, we do not implement cookies).
    EXPECT_EQ(out, hex("6779 8180 0001 0002 0000 0001 0244 6205 4d79 4e65 7400 0001 0001"
                       "c00c 0001 0001 0000 0258 0004 ac12 0002"
                       "c00c 0001 0001 0000 0258 0004 ac12 0003"
                       "00 0029 1000 0000 0000 0000"));
}

TEST(DnsWire, BuildsPtrAndAaaaWithoutEdns) {
    auto q = *parse_query(kDigPtr);
    auto addr = parse_reverse_name(q.name);
    ASSERT_TRUE(std::holds_alternative<Ipv4>(addr));
    EXPECT_EQ(std::get<Ipv4>(addr), v4("172.18.0.2"));
    Records r;
    r.ptr = {"web.mynet"};
    std::vector<uint8_t> out;
    build_response(q, kDigPtr, Rcode::NoError, r, 600, 512, out);
    std::vector<uint8_t> want(kDigPtr);
    want[2] = 0x81;
    want[3] = 0x80;
    want[7] = 1;
    auto tail = hex("c00c 000c 0001 0000 0258 000b 0377 6562 056d 796e 6574 00");
    want.insert(want.end(), tail.begin(), tail.end());
    EXPECT_EQ(out, want);

    Records six;
    six.aaaa = {v6("fd00::2")};
    build_response(q, kDigPtr, Rcode::NoError, six, 7, 512, out);
    ASSERT_EQ(out.size(), kDigPtr.size() + 12 + 16);
    EXPECT_EQ(u16(out, kDigPtr.size() + 2), kTypeAaaa);
    EXPECT_EQ(out[kDigPtr.size() + 12], 0xfd);
    EXPECT_EQ(out.back(), 2);
}

TEST(DnsWire, RcodesAndEmptyAnswers) {
    auto q = *parse_query(kDigA);
    std::vector<uint8_t> out;
    build_response(q, kDigA, Rcode::NxDomain, {}, 600, 512, out);
    EXPECT_EQ(out[3], 0x83);  // RA + NXDOMAIN
    EXPECT_EQ(u16(out, 6), 0);
    EXPECT_EQ(out.size(), 26u + 11);
    q.rd = false;
    build_response(q, kDigA, Rcode::Refused, {}, 600, 512, out);
    EXPECT_EQ(out[2], 0x80);
    EXPECT_EQ(out[3], 0x85);
}

TEST(DnsWire, TruncatesOverTheLimitWithNoAnswers) {
    auto q = *parse_query(kDigPtr);  // no EDNS: 512 bytes over UDP
    Records r;
    for (uint32_t i = 0; i < 40; ++i) r.a.push_back(Ipv4(0x0A000000 + i));  // 40 * 16 bytes
    std::vector<uint8_t> out;
    build_response(q, kDigPtr, Rcode::NoError, r, 600, q.udp_size, out);
    EXPECT_EQ(out.size(), kDigPtr.size());
    EXPECT_EQ(out[2] & 0x02, 0x02);  // TC: the client retries over TCP
    EXPECT_EQ(u16(out, 6), 0);
    build_response(q, kDigPtr, Rcode::NoError, r, 600, kMaxTcpMessage, out);
    EXPECT_EQ(out[2] & 0x02, 0);
    EXPECT_EQ(u16(out, 6), 40);
    EXPECT_EQ(out.size(), kDigPtr.size() + 40 * 16);
    // Exactly at the limit fits; one byte less truncates.
    size_t exact = out.size();
    build_response(q, kDigPtr, Rcode::NoError, r, 600, exact, out);
    EXPECT_EQ(u16(out, 6), 40);
    build_response(q, kDigPtr, Rcode::NoError, r, 600, exact - 1, out);
    EXPECT_EQ(u16(out, 6), 0);
}

TEST(DnsWire, EdnsSizeIsClampedAndKeptOnTruncation) {
    auto big = with(kDigA, 29, {0xff, 0xff});  // OPT class = 65535
    EXPECT_EQ(parse_query(big)->udp_size, kMaxUdpAnswer);
    auto small = with(kDigA, 29, {0x00, 0x10});  // 16: below 512 means 512
    auto q = *parse_query(small);
    EXPECT_EQ(q.udp_size, 512);
    Records r;
    for (uint32_t i = 0; i < 40; ++i) r.a.push_back(Ipv4(i));
    std::vector<uint8_t> out;
    build_response(q, small, Rcode::NoError, r, 600, q.udp_size, out);
    EXPECT_EQ(out[2] & 0x02, 0x02);
    EXPECT_EQ(u16(out, 10), 1);  // the OPT record stays
    EXPECT_EQ(out.size(), 26u + 11);
}

TEST(DnsWire, RejectsMalformedQueries) {
    EXPECT_FALSE(parse_query({}));
    EXPECT_FALSE(parse_query(std::span(kDigA).first(11)));
    EXPECT_FALSE(parse_query(std::span(kDigA).first(kDigA.size() - 1)));  // cut in the OPT
    EXPECT_FALSE(parse_query(std::span(kDigA).first(25)));                // cut in the question
    EXPECT_FALSE(parse_query(with(kDigA, 2, {0x81})));                    // QR: a response
    EXPECT_FALSE(parse_query(with(kDigA, 4, {0, 2})));                    // two questions
    EXPECT_FALSE(parse_query(with(kDigA, 4, {0, 0})));                    // none
    EXPECT_FALSE(parse_query(with(kDigA, 6, {0, 1})));                    // an answer
    EXPECT_FALSE(parse_query(with(kDigA, 8, {0, 1, 0, 0})));              // OPT in authority
    EXPECT_FALSE(parse_query(with(kDigA, 12, {0xc0, 0x0c})));             // pointer in question
    EXPECT_FALSE(parse_query(with(kDigA, 12, {0x40})));                   // reserved label type
    auto trailing = kDigPtr;
    trailing.push_back(0);
    EXPECT_FALSE(parse_query(trailing));
    auto two_opt = kDigA;
    two_opt[11] = 2;
    two_opt.insert(two_opt.end(), kDigA.begin() + 26, kDigA.end());
    EXPECT_FALSE(parse_query(two_opt));
    auto named_opt = kDigPtr;  // an OPT must be owned by the root
    named_opt[11] = 1;
    for (uint8_t b : hex("0161 00 0029 0200 0000 0000 0000")) named_opt.push_back(b);
    EXPECT_FALSE(parse_query(named_opt));
    named_opt.erase(named_opt.end() - 13, named_opt.end() - 11);  // "a" → the root: accepted
    EXPECT_TRUE(parse_query(named_opt));
}

TEST(DnsWire, NameLimits) {
    auto query = [](const std::vector<uint8_t>& name) {
        auto p = hex("0001 0100 0001 0000 0000 0000");
        p.insert(p.end(), name.begin(), name.end());
        for (uint8_t b : hex("0001 0001")) p.push_back(b);
        return p;
    };
    std::vector<uint8_t> l63(1, 63), l64(1, 64);
    l63.resize(64, 'a');
    l63.push_back(0);
    l64.resize(65, 'a');
    l64.push_back(0);
    EXPECT_EQ(parse_query(query(l63))->name, std::string(63, 'a'));
    EXPECT_FALSE(parse_query(query(l64)));
    std::vector<uint8_t> n255, n257;  // 4 * 63-byte labels = 256 + root: over 255
    for (int i = 0; i < 3; ++i) n255.insert(n255.end(), l63.begin(), l63.end() - 1);
    n255.push_back(61);
    n255.resize(n255.size() + 61, 'b');
    n255.push_back(0);
    ASSERT_EQ(n255.size(), 255u);
    EXPECT_TRUE(parse_query(query(n255)));
    for (int i = 0; i < 4; ++i) n257.insert(n257.end(), l63.begin(), l63.end() - 1);
    n257.push_back(0);
    EXPECT_FALSE(parse_query(query(n257)));
    EXPECT_EQ(parse_query(query({0}))->name, "");  // the root
    // A '.' inside a label, a space and a control byte stay distinct from other names.
    EXPECT_EQ(parse_query(query({3, 'a', '.', 'B', 2, ' ', 1, 0}))->name, "a\\.b.\\032\\001");
}

TEST(DnsWire, ReplyHeaderAndMatching) {
    auto q = *parse_query(kDigA);
    EXPECT_FALSE(parse_reply_header(std::span(kDigA).first(11)));
    auto h = *parse_reply_header(with(kDigA, 2, {0x83, 0x82}));
    EXPECT_EQ(h.id, 0x6779);
    EXPECT_TRUE(h.qr);
    EXPECT_TRUE(h.tc);
    EXPECT_EQ(h.rcode, Rcode::ServFail);

    std::vector<uint8_t> reply;
    build_response(q, kDigA, Rcode::NoError, {}, 600, 512, reply);
    EXPECT_TRUE(reply_matches(kDigA, q, reply));
    // Upstreams may change the case of the name (0x20 randomisation): still a match.
    EXPECT_TRUE(reply_matches(kDigA, q, with(reply, 13, {'d', 'B'})));
    EXPECT_FALSE(reply_matches(kDigA, q, with(reply, 0, {0x67, 0x7a})));  // another id
    EXPECT_FALSE(reply_matches(kDigA, q, with(reply, 2, {0x01})));        // not a reply
    EXPECT_FALSE(reply_matches(kDigA, q, with(reply, 13, {'d', 'c'})));   // another name
    EXPECT_FALSE(reply_matches(kDigA, q, with(reply, 23, {0x1c})));       // AAAA, not A
    EXPECT_FALSE(reply_matches(kDigA, q, with(reply, 4, {0, 0})));        // no question
    EXPECT_FALSE(reply_matches(kDigA, q, std::span(reply).first(25)));
    // Type 65 (HTTPS) vs 97: bytes that differ only in "case" are not letters of a label.
    auto https = with(kDigA, 23, {0x41});
    auto qh = *parse_query(https);
    EXPECT_FALSE(reply_matches(https, qh, with(https, 23, {0x61})));
    EXPECT_TRUE(reply_matches(https, qh, with(https, 2, {0x81})));

    auto id = reply;
    set_id(id, 0xbeef);
    EXPECT_EQ(u16(id, 0), 0xbeef);
    std::vector<uint8_t> one{7};
    set_id(one, 1);  // too short: untouched, no write past the end
    EXPECT_EQ(one[0], 7);
}

TEST(DnsWire, ReverseNames) {
    using V = std::variant<std::monostate, Ipv4, Ipv6>;
    EXPECT_EQ(parse_reverse_name("4.3.2.1.in-addr.arpa"), V(v4("1.2.3.4")));
    EXPECT_EQ(parse_reverse_name("0.0.0.255.in-addr.arpa"), V(v4("255.0.0.0")));
    for (const char* bad :
         {"3.2.1.in-addr.arpa", "5.4.3.2.1.in-addr.arpa", "256.3.2.1.in-addr.arpa",
          "04.3.2.1.in-addr.arpa", "4.3.2.1.in-addr.arpa.x", "4.3.2.1.ip6.arpa",
          "a.3.2.1.in-addr.arpa", "in-addr.arpa", "", "db.mynet"})
        EXPECT_EQ(parse_reverse_name(bad), V()) << bad;
    std::string six = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
    EXPECT_EQ(parse_reverse_name(six), V(v6("fd00::2")));
    std::string upper = six;
    upper[0] = 'A';
    EXPECT_EQ(parse_reverse_name(upper), V(v6("fd00::a")));
    EXPECT_EQ(parse_reverse_name(six.substr(2)), V());  // 31 nibbles: a partial name
    six[2] = 'g';
    EXPECT_EQ(parse_reverse_name(six), V());
}

#ifdef CNETD_HAVE_LDNS
namespace {

struct Pkt {
    ldns_pkt* p = nullptr;
    ~Pkt() { ldns_pkt_free(p); }
};

std::string rdf_str(const ldns_rdf* rdf) {
    char* s = ldns_rdf2str(rdf);
    std::string out = s ? s : "";
    free(s);
    return out;
}

}  // namespace

// Every response we build, read back by libldns: the records, their owner (through the 0xC00C
// pointer), TTL, TC and the OPT record are what we meant.
TEST(DnsWireLdns, ResponsesParseWithLdns) {
    auto q = *parse_query(kDigA);
    Records r;
    r.a = {v4("172.18.0.2"), v4("10.1.2.3")};
    r.aaaa = {v6("fd00::5")};
    r.ptr = {"web.mynet", "x"};
    std::vector<uint8_t> out;
    build_response(q, kDigA, Rcode::NoError, r, 600, 4096, out);
    Pkt pkt;
    ASSERT_EQ(ldns_wire2pkt(&pkt.p, out.data(), out.size()), LDNS_STATUS_OK);
    EXPECT_EQ(ldns_pkt_id(pkt.p), 0x6779);
    EXPECT_TRUE(ldns_pkt_qr(pkt.p));
    EXPECT_TRUE(ldns_pkt_ra(pkt.p));
    EXPECT_TRUE(ldns_pkt_rd(pkt.p));
    EXPECT_FALSE(ldns_pkt_tc(pkt.p));
    EXPECT_TRUE(ldns_pkt_edns(pkt.p));
    EXPECT_EQ(ldns_pkt_edns_udp_size(pkt.p), 4096);
    ldns_rr_list* ans = ldns_pkt_answer(pkt.p);
    ASSERT_EQ(ldns_rr_list_rr_count(ans), 5u);
    const char* want[] = {"172.18.0.2", "10.1.2.3", "fd00::5", "web.mynet.", "x."};
    ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_PTR,
                            LDNS_RR_TYPE_PTR};
    for (size_t i = 0; i < 5; ++i) {
        ldns_rr* rr = ldns_rr_list_rr(ans, i);
        EXPECT_EQ(rdf_str(ldns_rr_owner(rr)), "Db.MyNet.");
        EXPECT_EQ(ldns_rr_get_type(rr), types[i]);
        EXPECT_EQ(ldns_rr_ttl(rr), 600u);
        EXPECT_EQ(rdf_str(ldns_rr_rdf(rr, 0)), want[i]);
    }
}

TEST(DnsWireLdns, TruncatedAndErrorResponsesParseWithLdns) {
    auto q = *parse_query(kDigPtr);
    Records r;
    for (uint32_t i = 0; i < 100; ++i) r.aaaa.push_back(v6("fd00::1"));
    std::vector<uint8_t> out;
    build_response(q, kDigPtr, Rcode::ServFail, r, 600, 512, out);
    Pkt pkt;
    ASSERT_EQ(ldns_wire2pkt(&pkt.p, out.data(), out.size()), LDNS_STATUS_OK);
    EXPECT_TRUE(ldns_pkt_tc(pkt.p));
    EXPECT_FALSE(ldns_pkt_edns(pkt.p));
    EXPECT_EQ(ldns_pkt_get_rcode(pkt.p), LDNS_RCODE_SERVFAIL);
    EXPECT_EQ(ldns_pkt_ancount(pkt.p), 0);
    EXPECT_EQ(rdf_str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(pkt.p), 0))),
              "2.0.18.172.in-addr.arpa.");
}

// The other direction: queries ldns builds (as a stub resolver would) parse here to the same
// name and type.
TEST(DnsWireLdns, LdnsQueriesParse) {
    for (auto [name, type] : {std::pair{"Web.Frontend.", LDNS_RR_TYPE_AAAA},
                              std::pair{"a.b.c.d.e.", LDNS_RR_TYPE_MX}}) {
        ldns_rdf* owner = ldns_dname_new_frm_str(name);
        ldns_pkt* p = ldns_pkt_query_new(owner, type, LDNS_RR_CLASS_IN, LDNS_RD);
        ldns_pkt_set_edns_udp_size(p, 1400);
        uint8_t* wire = nullptr;
        size_t len = 0;
        ASSERT_EQ(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
        auto q = parse_query(std::span<const uint8_t>(wire, len));
        ASSERT_TRUE(q) << name;
        std::string lower(name);
        for (char& c : lower) c = static_cast<char>(std::tolower(c));
        lower.pop_back();
        EXPECT_EQ(q->name, lower);
        EXPECT_EQ(q->qtype, type);
        EXPECT_TRUE(q->edns);
        EXPECT_EQ(q->udp_size, 1400);
        free(wire);
        ldns_pkt_free(p);
    }
}
#endif

}  // namespace dns_wire_test
