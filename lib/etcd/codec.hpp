// The pure half of the etcd client: request bodies for etcd 3.4's JSON gateway and the decoding of
// its answers, with no I/O (client.cpp moves the bytes). Tested without a server
// (tests/etcd/codec_test.cpp) and fuzzed (tests/fuzz/fuzz_etcd.cpp).
//
// Wire rules (grpc-gateway with OrigName, no EmitDefaults): keys and values are base64, int64
// fields are JSON strings ("revision":"5"), fields at their default value are left out (a missing
// "count" is 0, a missing event "type" is PUT), enums travel by name ("EQUAL", "DELETE").
//
// Decoders never throw. A malformed answer is ErrorKind::Internal naming the field and what is
// wrong with it ("kvs[0].key: not base64: ..."); the client prefixes the endpoint and the call.
// Threading: pure functions; a WatchStream belongs to one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "etcd/client.hpp"

namespace cnetd::etcd::codec {

// RFC 4648 base64 with padding (what Go's encoding/json writes for []byte).
std::string base64_encode(std::string_view in);
// Strict: padding required, no whitespace. Error: InvalidArgument saying why.
Result<std::string> base64_decode(std::string_view in);

// One endpoint URL split up. validate() and the client use the same parser.
struct Endpoint {
    bool tls = false;
    std::string host;  // without brackets for IPv6
    std::string port;  // "2379" when the URL has none
    std::string url;   // as given (messages name endpoints so)
};
// "http://HOST[:PORT][/]" or "https://...": InvalidArgument naming `field` and the value.
Result<Endpoint> parse_endpoint(std::string_view url, std::string_view field);

// Request bodies (JSON text).
std::string range_request(const std::string& key, const std::string& range_end, bool count_only);
std::string put_request(const std::string& key, const std::string& value, int64_t lease);
std::string delete_request(const std::string& key, const std::string& range_end);
std::string txn_request(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure);
std::string grant_request(int64_t ttl_seconds);
// keepalive, timetolive and revoke all send {"ID":"<id>"}.
std::string lease_id_request(int64_t lease_id);
std::string watch_request(const std::string& key, const std::string& range_end,
                          int64_t start_revision);

// Answers of 200 responses. Errors: Internal naming the field.
Result<RangeResult> parse_range(std::string_view body);
Result<int64_t> parse_put(std::string_view body);     // the header's revision
Result<int64_t> parse_delete(std::string_view body);  // "deleted"
Result<TxnResult> parse_txn(std::string_view body);
Result<Lease> parse_grant(std::string_view body);
// {"result":{...,"TTL":"n"}}: the TTL; NotFound when TTL is absent or <= 0 (the lease is gone).
Result<int64_t> parse_keepalive(std::string_view body, int64_t lease_id);
// {"TTL":"n"}: seconds left; NotFound when TTL is -1 / absent (the lease is gone).
Result<int64_t> parse_time_to_live(std::string_view body, int64_t lease_id);

// An etcd error answer (non-200, {"error","message","code"} with a gRPC code) as our Error:
// NotFound (5), Conflict (6 AlreadyExists, 9 FailedPrecondition, 10 Aborted, 11 OutOfRange),
// InvalidArgument (3), Unavailable (1, 4, 8, 14: "etcdserver: no leader", timeouts), Internal
// otherwise. The message is etcd's own text; a body that is not such an error names the status.
Error error_from_answer(int http_status, std::string_view body);
// True for errors another member may not have (no leader, timeout, unavailable): the client
// tries the next endpoint on those.
bool is_member_error(int http_status, std::string_view body);

// Splits the watch stream (JSON objects one after the other, newline-separated by the gateway
// but any split of the bytes is accepted) and decodes each message.
class WatchStream {
public:
    // Appends bytes; returns the batches completed by them, in order. Messages that carry no
    // information for the caller (the "created" confirmation) are dropped. After an error the
    // stream is unusable. Errors: Internal for malformed text or a message that does not parse,
    // Unavailable (etcd's text) for an {"error":...} message or a cancel other than compaction.
    Result<std::vector<WatchBatch>> feed(std::string_view bytes);

    // Bytes held for an incomplete message (bounded: over kMaxMessage is an error).
    std::size_t pending() const noexcept { return buf_.size(); }
    static constexpr std::size_t kMaxMessage = 64 * 1024 * 1024;

private:
    std::string buf_;          // bytes of the message in progress
    std::size_t scanned_ = 0;  // how far buf_ has been scanned
    int depth_ = 0;
    bool in_string_ = false;
    bool escaped_ = false;
    std::size_t messages_ = 0;  // messages decoded so far (error messages name the index)
};

// One message of the watch stream ({"result":{...}}). `deliver` false for the created
// confirmation. Errors as WatchStream::feed.
struct WatchMessage {
    WatchBatch batch;
    bool deliver = true;
};
Result<WatchMessage> parse_watch_message(std::string_view text);

}  // namespace cnetd::etcd::codec
