#include "dns/wire.hpp"

#include <algorithm>
#include <utility>

namespace cnetd::dns {

namespace {

constexpr size_t kHeader = 12;
constexpr size_t kMaxName = 255;  // RFC 1035 2.3.4, wire form
constexpr size_t kMaxLabel = 63;
constexpr size_t kOptSize = 11;  // root name, type, class, ttl, rdlength 0
constexpr size_t kRrFixed = 10;  // type, class, ttl, rdlength

uint16_t get16(std::span<const uint8_t> p, size_t at) {
    return static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
}

void put16(std::vector<uint8_t>& out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
    put16(out, static_cast<uint16_t>(v >> 16));
    put16(out, static_cast<uint16_t>(v));
}

char lower(uint8_t c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

// Presentation form of one label byte (RFC 4343, as ldns prints): '.' and the characters special
// to zone files are escaped with '\', non-printable bytes as \DDD, so distinct wire names stay
// distinct names. Returns the bytes it takes; appends them when `out` is given.
size_t presentation(uint8_t c, std::string* out) {
    bool special = c == '.' || c == ';' || c == '(' || c == ')' || c == '\\' || c == '"' ||
                   c == '@' || c == '$';
    bool unprintable = c < 0x21 || c > 0x7e;
    if (!out) return special ? 2 : unprintable ? 4 : 1;
    if (special) {
        *out += '\\';
        *out += static_cast<char>(c);
    } else if (unprintable) {
        *out += '\\';
        *out += static_cast<char>('0' + c / 100);
        *out += static_cast<char>('0' + c / 10 % 10);
        *out += static_cast<char>('0' + c % 10);
    } else {
        *out += lower(c);
    }
    return 0;
}

// Checks the uncompressed name at `at`: the offset past it and the length of its presentation
// form, or {0, 0} when it is malformed (a pointer, a reserved label type, too long, cut off).
std::pair<size_t, size_t> measure_question_name(std::span<const uint8_t> p, size_t at) {
    size_t wire = 0, text = 0;
    for (;;) {
        if (at >= p.size()) return {0, 0};
        uint8_t len = p[at];
        wire += 1 + len;
        if (len > kMaxLabel || wire > kMaxName) return {0, 0};  // also rejects pointers (0xC0)
        if (len == 0) return {at + 1, text};
        if (at + 1 + len > p.size()) return {0, 0};
        text += text ? 1 : 0;
        for (size_t i = 0; i < len; ++i) text += presentation(p[at + 1 + i], nullptr);
        at += 1 + len;
    }
}

// Reads the question's name at `at` into `name` (presentation form, lower-cased, one allocation
// at most: none for names that fit std::string's inline buffer); the offset past it, 0 if bad.
size_t read_question_name(std::span<const uint8_t> p, size_t at, std::string& name) {
    auto [end, text] = measure_question_name(p, at);
    if (end == 0) return 0;
    name.reserve(text);
    while (p[at] != 0) {
        if (!name.empty()) name += '.';
        for (size_t i = 0; i < p[at]; ++i) presentation(p[at + 1 + i], &name);
        at += 1 + p[at];
    }
    return end;
}

// Skips a name that may end in a compression pointer (records after the question); 0 when bad.
size_t skip_name(std::span<const uint8_t> p, size_t at) {
    size_t wire = 0;
    for (;;) {
        if (at >= p.size()) return 0;
        uint8_t len = p[at];
        if ((len & 0xC0) == 0xC0) return at + 2 <= p.size() ? at + 2 : 0;
        wire += 1 + len;
        if (len > kMaxLabel || wire > kMaxName) return 0;
        if (len == 0) return at + 1;
        at += 1 + len;
    }
}

// Skips `count` resource records from `at`, noting an OPT record in `q`; 0 when malformed.
size_t skip_records(std::span<const uint8_t> p, size_t at, size_t count, bool additional,
                    Query& q) {
    for (size_t i = 0; i < count; ++i) {
        size_t name_at = at;
        at = skip_name(p, at);
        if (at == 0 || at + kRrFixed > p.size()) return 0;
        uint16_t type = get16(p, at);
        size_t rdlen = get16(p, at + 8);
        if (type == kTypeOpt) {
            // RFC 6891: only in the additional section, once, owned by the root.
            if (!additional || q.edns || p[name_at] != 0) return 0;
            q.edns = true;
            size_t size = std::max<size_t>(512, get16(p, at + 2));
            q.udp_size = static_cast<uint16_t>(std::min(size, kMaxUdpAnswer));
        }
        at += kRrFixed + rdlen;
        if (at > p.size()) return 0;
    }
    return at;
}

// The wire form of a name we built ourselves ("web.mynet"), checked by name_wire_size().
void put_name(std::vector<uint8_t>& out, std::string_view name) {
    while (!name.empty()) {
        size_t dot = name.find('.');
        std::string_view label = name.substr(0, dot);
        out.push_back(static_cast<uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        name.remove_prefix(dot == std::string_view::npos ? name.size() : dot + 1);
    }
    out.push_back(0);
}

// The wire size of a name put_name() can encode, 0 when it cannot (an empty or long label).
size_t name_wire_size(std::string_view name) {
    if (name.empty()) return 1;
    size_t label = 0;
    for (char c : name) {
        if (c != '.') {
            ++label;
            continue;
        }
        if (label == 0 || label > kMaxLabel) return 0;
        label = 0;
    }
    if (label == 0 || label > kMaxLabel || name.size() + 2 > kMaxName) return 0;
    return name.size() + 2;
}

void put_header(std::vector<uint8_t>& out, const Query& q, Rcode rcode, bool tc, uint16_t ancount) {
    put16(out, q.id);
    out.push_back(
        static_cast<uint8_t>(0x80 | (q.opcode & 0x0F) << 3 | (tc ? 0x02 : 0) | (q.rd ? 0x01 : 0)));
    out.push_back(static_cast<uint8_t>(0x80 | (static_cast<uint8_t>(rcode) & 0x0F)));  // RA
    put16(out, 1);
    put16(out, ancount);
    put16(out, 0);
    put16(out, q.edns ? 1 : 0);
}

void put_rr_head(std::vector<uint8_t>& out, uint16_t type, uint32_t ttl, uint16_t rdlen) {
    put16(out, 0xC00C);  // the owner is the question's name, always at offset 12
    put16(out, type);
    put16(out, kClassIn);
    put32(out, ttl);
    put16(out, rdlen);
}

void put_answers(std::vector<uint8_t>& out, const Records& recs, uint32_t ttl) {
    for (const auto& a : recs.a) {
        put_rr_head(out, kTypeA, ttl, 4);
        put32(out, a.value());
    }
    for (const auto& a : recs.aaaa) {
        put_rr_head(out, kTypeAaaa, ttl, 16);
        out.insert(out.end(), a.bytes().begin(), a.bytes().end());
    }
    for (const auto& n : recs.ptr) {
        size_t size = name_wire_size(n);
        if (size == 0) continue;  // not encodable: left out, as in answer_count()
        put_rr_head(out, kTypePtr, ttl, static_cast<uint16_t>(size));
        put_name(out, n);
    }
}

size_t answer_count(const Records& recs, size_t& bytes) {
    size_t n = recs.a.size() + recs.aaaa.size();
    bytes = recs.a.size() * (2 + kRrFixed + 4) + recs.aaaa.size() * (2 + kRrFixed + 16);
    for (const auto& p : recs.ptr) {
        size_t size = name_wire_size(p);
        if (size == 0) continue;
        ++n;
        bytes += 2 + kRrFixed + size;
    }
    return n;
}

}  // namespace

std::optional<Query> parse_query(std::span<const uint8_t> pkt) {
    if (pkt.size() < kHeader + 5) return std::nullopt;
    if (pkt[2] & 0x80) return std::nullopt;  // a response, not a query
    if (get16(pkt, 4) != 1 || get16(pkt, 6) != 0) return std::nullopt;
    Query q;
    q.id = get16(pkt, 0);
    q.opcode = (pkt[2] >> 3) & 0x0F;
    q.rd = pkt[2] & 0x01;
    size_t at = read_question_name(pkt, kHeader, q.name);
    if (at == 0 || at + 4 > pkt.size()) return std::nullopt;
    q.qtype = get16(pkt, at);
    q.qclass = get16(pkt, at + 2);
    q.question_end = at + 4;
    at = skip_records(pkt, q.question_end, get16(pkt, 8), false, q);
    if (at != 0) at = skip_records(pkt, at, get16(pkt, 10), true, q);
    if (at != pkt.size()) return std::nullopt;  // malformed records or trailing bytes
    return q;
}

size_t build_response(const Query& q, std::span<const uint8_t> pkt, Rcode rcode,
                      const Records& recs, uint32_t ttl, size_t limit, std::vector<uint8_t>& out) {
    out.clear();
    size_t answer_bytes = 0;
    size_t count = answer_count(recs, answer_bytes);
    size_t question =
        q.question_end > kHeader && q.question_end <= pkt.size() ? q.question_end - kHeader : 0;
    size_t fixed = kHeader + question + (q.edns ? kOptSize : 0);
    bool tc = count > 0xFFFF || fixed + answer_bytes > limit;
    out.reserve(tc ? fixed : fixed + answer_bytes);
    put_header(out, q, rcode, tc, tc ? 0 : static_cast<uint16_t>(count));
    if (question == 0) out[5] = 0;  // no question to copy: QDCOUNT 0
    out.insert(out.end(), pkt.begin() + kHeader, pkt.begin() + kHeader + question);
    if (!tc) put_answers(out, recs, ttl);
    if (q.edns) {  // our OPT: the size we accept over UDP, no extended rcode, version 0
        out.push_back(0);
        put16(out, kTypeOpt);
        put16(out, static_cast<uint16_t>(kMaxUdpAnswer));
        put32(out, 0);
        put16(out, 0);
    }
    return out.size();
}

std::optional<ReplyHeader> parse_reply_header(std::span<const uint8_t> pkt) {
    if (pkt.size() < kHeader) return std::nullopt;
    ReplyHeader h;
    h.id = get16(pkt, 0);
    h.qr = pkt[2] & 0x80;
    h.tc = pkt[2] & 0x02;
    h.rcode = static_cast<Rcode>(pkt[3] & 0x0F);
    return h;
}

bool reply_matches(std::span<const uint8_t> query, const Query& q, std::span<const uint8_t> reply) {
    size_t end = q.question_end;
    if (end <= kHeader + 4 || end > query.size() || end > reply.size()) return false;
    if (get16(reply, 0) != q.id || !(reply[2] & 0x80) || get16(reply, 4) != 1) return false;
    // The query's name is well formed (parse_query): walk its labels so that only label bytes
    // are compared case-insensitively, never length, type or class bytes.
    size_t at = kHeader;
    while (at < end - 4 && query[at] != 0) {
        size_t len = query[at];
        if (reply[at] != len || at + 1 + len > end - 4) return false;
        for (size_t i = at + 1; i <= at + len; ++i)
            if (lower(reply[i]) != lower(query[i])) return false;
        at += 1 + len;
    }
    if (at != end - 5 || reply[at] != 0) return false;
    return std::equal(query.begin() + end - 4, query.begin() + end, reply.begin() + end - 4);
}

void set_id(std::span<uint8_t> pkt, uint16_t id) {
    if (pkt.size() < 2) return;
    pkt[0] = static_cast<uint8_t>(id >> 8);
    pkt[1] = static_cast<uint8_t>(id);
}

namespace {

std::optional<Ipv4> reverse_v4(std::string_view name) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {  // labels are the octets, least significant first
        size_t dot = name.find('.');
        std::string_view label = name.substr(0, dot);
        if (label.empty() || label.size() > 3 || dot == std::string_view::npos) return {};
        if (label.size() > 1 && label[0] == '0') return {};
        uint32_t octet = 0;
        for (char c : label) {
            if (c < '0' || c > '9') return {};
            octet = octet * 10 + static_cast<uint32_t>(c - '0');
        }
        if (octet > 255) return {};
        v |= octet << (8 * i);
        name.remove_prefix(dot + 1);
    }
    if (name != "in-addr.arpa") return {};
    return Ipv4(v);
}

int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<Ipv6> reverse_v6(std::string_view name) {
    constexpr std::string_view kZone = "ip6.arpa";
    if (name.size() != 32 * 2 + kZone.size() || name.substr(64) != kZone) return {};
    std::array<uint8_t, 16> b{};
    for (size_t i = 0; i < 32; ++i) {  // nibbles, least significant first
        int n = nibble(name[2 * i]);
        if (n < 0 || name[2 * i + 1] != '.') return {};
        size_t pos = 31 - i;
        b[pos / 2] |= static_cast<uint8_t>(pos % 2 ? n : n << 4);
    }
    return Ipv6(b);
}

}  // namespace

std::variant<std::monostate, Ipv4, Ipv6> parse_reverse_name(std::string_view name) {
    if (auto v4 = reverse_v4(name)) return *v4;
    if (auto v6 = reverse_v6(name)) return *v6;
    return std::monostate{};
}

}  // namespace cnetd::dns
