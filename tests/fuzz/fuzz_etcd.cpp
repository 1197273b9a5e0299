// libFuzzer target: lib/etcd's decoding of etcd's answers (codec.hpp). The first byte picks a
// split point; the rest is fed to the watch stream framer in two pieces and to every answer
// decoder whole. Properties: nothing throws or crashes; every error is Internal, NotFound or
// Unavailable (etcd's own words) with no "[json.exception" marker; the watch stream yields the
// same batches whatever the split; a decoded Range re-encodes to base64 that decodes back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "etcd/codec.hpp"

using namespace cnetd;
using namespace cnetd::etcd;

namespace {

template <class T>
void decoded(const Result<T>& r, std::string_view input) {
    if (r.ok()) return;
    const auto k = r.error().kind();
    if (k != ErrorKind::Internal && k != ErrorKind::NotFound && k != ErrorKind::Unavailable) {
        std::abort();
    }
    if (r.error().message().find("[json.exception") != std::string::npos &&
        input.find("[json.exception") == std::string_view::npos) {
        std::abort();
    }
}

bool same(const std::vector<WatchBatch>& a, const std::vector<WatchBatch>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].revision != b[i].revision || a[i].compacted != b[i].compacted ||
            a[i].compact_revision != b[i].compact_revision ||
            a[i].events.size() != b[i].events.size()) {
            return false;
        }
        for (std::size_t e = 0; e < a[i].events.size(); ++e) {
            if (a[i].events[e].type != b[i].events[e].type ||
                !(a[i].events[e].kv == b[i].events[e].kv)) {
                return false;
            }
        }
    }
    return true;
}

void watch_split(std::string_view text, std::size_t cut) {
    codec::WatchStream whole;
    auto all = whole.feed(text);
    codec::WatchStream parts;
    auto first = parts.feed(text.substr(0, cut));
    decoded(all, text);
    decoded(first, text);
    if (!first.ok()) {
        if (all.ok()) std::abort();  // an error in a prefix is an error of the whole
        return;
    }
    auto second = parts.feed(text.substr(cut));
    decoded(second, text);
    if (all.ok() != second.ok()) std::abort();
    if (!all.ok()) return;
    first->insert(first->end(), second->begin(), second->end());
    if (!same(*all, *first) || whole.pending() != parts.pending()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    watch_split(text, data[0] % (text.size() + 1));

    auto range = codec::parse_range(text);
    decoded(range, text);
    if (range.ok()) {
        for (const auto& kv : range->kvs) {
            auto back = codec::base64_decode(codec::base64_encode(kv.key));
            if (!back.ok() || *back != kv.key) std::abort();
        }
    }
    decoded(codec::parse_txn(text), text);
    decoded(codec::parse_put(text), text);
    decoded(codec::parse_delete(text), text);
    decoded(codec::parse_grant(text), text);
    decoded(codec::parse_keepalive(text, 1), text);
    decoded(codec::parse_time_to_live(text, 1), text);
    decoded(codec::parse_watch_message(text), text);
    (void)codec::error_from_answer(400, text);
    (void)codec::is_member_error(503, text);
    auto ep = codec::parse_endpoint(text, "f");
    if (!ep.ok() && ep.error().kind() != ErrorKind::InvalidArgument) std::abort();
    auto b = codec::base64_decode(text);
    if (b.ok() && codec::base64_encode(*b) != text) std::abort();
    return 0;
}
