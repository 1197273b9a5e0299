// DNS wire format, the small part the embedded resolver needs (RFC 1035, RFC 6891 EDNS0).
//
// Why hand-written and not libldns: the resolver reads only a query's header, its one question and
// an OPT record, builds only A/AAAA/PTR answers, and relays every other message as opaque bytes
// (both reference servers, moby's resolver and aardvark-dns, do the same: ../shared/spec/dns.md).
// ldns_wire2pkt() builds a full packet tree (one malloc per RR and per rdata field) for every
// query; this codec works on the caller's buffer with no allocation on the query path. Every parser
// here has a libFuzzer target (tests/fuzz/fuzz_dns_*.cpp), which also checks it against ldns.
//
// Contract: parsers never read outside the span they are given and never throw; a packet they do
// not accept yields nullopt (the server drops it and counts it). Names are handled in presentation
// form, lower-cased, without the trailing dot ("db.mynet"); the root is "".
// Threading: plain functions on values; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/net.hpp"

namespace cnetd::dns {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypePtr = 12;
inline constexpr uint16_t kTypeMx = 15;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kTypeOpt = 41;
inline constexpr uint16_t kClassIn = 1;

enum class Rcode : uint8_t {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5
};

inline constexpr size_t kMaxUdpAnswer = 4096;  // cap on an EDNS0 size we honour
inline constexpr size_t kMaxTcpMessage = 65535;

// A query as the resolver needs it.
struct Query {
    uint16_t id = 0;
    uint8_t opcode = 0;  // 0 = QUERY; anything else is answered NOTIMP
    bool rd = false;     // recursion desired (copied into the answer)
    std::string name;    // lower-cased presentation form, no trailing dot ("db.mynet")
    uint16_t qtype = 0;
    uint16_t qclass = 0;
    bool edns = false;        // an OPT record was in the additional section
    uint16_t udp_size = 512;  // max(512, the OPT record's payload size), capped at kMaxUdpAnswer
    size_t question_end = 0;  // offset just past the question in the packet (header is 12 bytes)
};

// Parses a query: QR clear, QDCOUNT 1, a well-formed question (labels <= 63, name <= 255 bytes,
// no compression pointers), ANCOUNT 0, and at most one OPT record in the additional section.
// Anything else: nullopt.
std::optional<Query> parse_query(std::span<const uint8_t> pkt);

// The records of a local answer: all of one kind, in the order given (the caller shuffles).
struct Records {
    std::vector<Ipv4> a;
    std::vector<Ipv6> aaaa;
    std::vector<std::string> ptr;  // target names, presentation form without trailing dot
};

// Writes the response to `q` (whose packet is `pkt`) into `out` (cleared first): the header with
// q's id, QR=1, AA=0, RA=1, RD as asked and `rcode`; the question copied from `pkt`; then the
// answers of `recs` with `ttl`, owner names compressed to the question (0xC00C); an OPT record when
// q.edns. If the message would exceed `limit` bytes, no answer is written and TC is set
// (Docker does the same: the client retries over TCP). Returns out.size().
size_t build_response(const Query& q, std::span<const uint8_t> pkt, Rcode rcode,
                      const Records& recs, uint32_t ttl, size_t limit, std::vector<uint8_t>& out);

// An upstream's reply, as far as forwarding needs it.
struct ReplyHeader {
    uint16_t id = 0;
    bool qr = false;
    bool tc = false;
    Rcode rcode = Rcode::NoError;  // low 4 bits of the header's rcode
};
// nullopt when shorter than a header.
std::optional<ReplyHeader> parse_reply_header(std::span<const uint8_t> pkt);
// True when `reply` answers the question of `query` (same id, QR set, same question bytes,
// compared case-insensitively): guards forwarding against stray or spoofed replies.
bool reply_matches(std::span<const uint8_t> query, const Query& q, std::span<const uint8_t> reply);
// Overwrites the 16-bit id of a message of at least 2 bytes.
void set_id(std::span<uint8_t> pkt, uint16_t id);

// "4.3.2.1.in-addr.arpa" → 1.2.3.4; the 32-nibble ip6.arpa form → the IPv6 address; anything
// else (a partial reverse name, another zone) → monostate.
std::variant<std::monostate, Ipv4, Ipv6> parse_reverse_name(std::string_view name);

}  // namespace cnetd::dns
