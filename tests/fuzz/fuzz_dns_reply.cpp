// libFuzzer target: lib/dns/wire's handling of upstream replies (parse_reply_header,
// reply_matches, set_id). The input is a reply to a fixed real query (dig's), and also, split at
// its first byte, a query of its own plus a reply. Properties: nothing reads outside either
// buffer (ASan); the header fields are the bytes'; a reply that "matches" has the query's id, QR
// set and the query's question bytes (case-folded); set_id changes only the id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "dns/wire.hpp"

using namespace cnetd::dns;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

// `dig @127.0.0.1 Db.MyNet A` (dig 9.18): RD+AD, EDNS0 1232 with a cookie.
const std::vector<uint8_t> kQuery = {0x67, 0x79, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                     0x00, 0x01, 0x02, 0x44, 0x62, 0x05, 0x4d, 0x79, 0x4e, 0x65,
                                     0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04,
                                     0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00,
                                     0x08, 0xfc, 0x06, 0x41, 0x56, 0x2f, 0x00, 0x7f, 0xf7};

uint8_t fold(uint8_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

void check_reply(std::span<const uint8_t> query, std::span<const uint8_t> reply) {
    auto q = parse_query(query);
    if (!q) return;
    if (!reply_matches(query, *q, reply)) return;
    auto h = parse_reply_header(reply);
    check(h && h->id == q->id && h->qr);
    check(reply.size() >= q->question_end);
    for (size_t i = 12; i < q->question_end; ++i) check(fold(reply[i]) == fold(query[i]));
    for (size_t i = q->question_end - 4; i < q->question_end; ++i) check(reply[i] == query[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> in(data, size);
    auto h = parse_reply_header(in);
    check(h.has_value() == (size >= 12));
    if (h) {
        check(h->id == (data[0] << 8 | data[1]));
        check(h->qr == bool(data[2] & 0x80) && h->tc == bool(data[2] & 0x02));
        check(static_cast<uint8_t>(h->rcode) == (data[3] & 0x0F));
    }
    check_reply(kQuery, in);
    if (size > 0) {
        size_t split = 1 + std::min<size_t>(data[0], size - 1);
        check_reply(in.subspan(1, split - 1), in.subspan(split));
    }
    std::vector<uint8_t> copy(data, data + size);
    set_id(copy, 0xbeef);
    if (size >= 2) {
        check(copy[0] == 0xbe && copy[1] == 0xef);
        check(std::equal(copy.begin() + 2, copy.end(), data + 2));
    } else {
        check(std::equal(copy.begin(), copy.end(), data));
    }
    return 0;
}
