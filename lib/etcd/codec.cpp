#include "etcd/codec.hpp"

#include <array>
#include <charconv>
#include <limits>

#include <nlohmann/json.hpp>

namespace cnetd::etcd {

// Declared in client.hpp (the client's range_prefix); defined here, with the other pure parts, so
// the codec library (no client) has it.
std::string prefix_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        auto& c = end.back();
        if (static_cast<unsigned char>(c) < 0xff) {
            c = static_cast<char>(static_cast<unsigned char>(c) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key: etcd reads "\0" as "no upper bound"
}

}  // namespace cnetd::etcd

namespace cnetd::etcd::codec {

using json = nlohmann::json;

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

Error bad(std::string_view path, std::string_view what) {
    if (path.empty()) return Error::internal(std::string(what));
    return Error::internal(fmt::format("{}: {}", path, what));
}

std::string join(std::string_view path, std::string_view name) {
    return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
}

// nlohmann's exception text without its "[json.exception.parse_error.101] " id.
std::string_view exception_text(const std::exception& e) {
    std::string_view t = e.what();
    if (!t.empty() && t.front() == '[') {
        const auto close = t.find("] ");
        if (close != std::string_view::npos) t.remove_prefix(close + 2);
    }
    return t;
}

// A JSON object, or Internal. Never throws (a number beyond a double throws out_of_range, not
// parse_error, so every json exception is caught).
Result<json> parse_object(std::string_view text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const std::exception& e) {
        return bad("", fmt::format("not JSON: {}", exception_text(e)));
    }
    if (!j.is_object()) return bad("", fmt::format("not a JSON object but {}", j.type_name()));
    return j;
}

// A member that must be an object when present; nullptr when absent or null.
Result<const json*> member_object(const json& obj, std::string_view name, std::string_view path) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
    if (!it->is_object()) {
        return bad(join(path, name), fmt::format("expected an object, got {}", it->type_name()));
    }
    return &*it;
}

Result<const json*> member_array(const json& obj, std::string_view name, std::string_view path) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
    if (!it->is_array()) {
        return bad(join(path, name), fmt::format("expected an array, got {}", it->type_name()));
    }
    return &*it;
}

// int64 fields: a JSON string of digits (the gateway's form); a JSON integer is accepted too.
// Absent = 0 (proto3 leaves defaults out).
Result<int64_t> member_int(const json& obj, std::string_view name, std::string_view path) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return int64_t{0};
    if (it->is_number_integer()) {
        if (it->is_number_unsigned() &&
            it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return bad(join(path, name), "out of the int64 range");
        }
        return it->get<int64_t>();
    }
    if (!it->is_string()) {
        return bad(join(path, name),
                   fmt::format("expected an int64 as a string, got {}", it->type_name()));
    }
    const auto& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
        const std::string shown = s.size() > 40 ? s.substr(0, 40) + "..." : s;
        return bad(join(path, name), fmt::format("\"{}\" is not an int64", shown));
    }
    return v;
}

Result<bool> member_bool(const json& obj, std::string_view name, std::string_view path) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return false;
    if (!it->is_boolean()) {
        return bad(join(path, name), fmt::format("expected a boolean, got {}", it->type_name()));
    }
    return it->get<bool>();
}

Result<std::string> member_string(const json& obj, std::string_view name, std::string_view path) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return std::string();
    if (!it->is_string()) {
        return bad(join(path, name), fmt::format("expected a string, got {}", it->type_name()));
    }
    return it->get<std::string>();
}

Result<std::string> member_bytes(const json& obj, std::string_view name, std::string_view path) {
    CNETD_TRY_ASSIGN(std::string text, member_string(obj, name, path));
    auto raw = base64_decode(text);
    if (!raw) return bad(join(path, name), fmt::format("not base64: {}", raw.error().message()));
    return std::move(raw).value();
}

Result<int64_t> header_revision(const json& obj) {
    CNETD_TRY_ASSIGN(const json* header, member_object(obj, "header", ""));
    if (header == nullptr) return int64_t{0};
    return member_int(*header, "revision", "header");
}

Result<KeyValue> parse_kv(const json& j, const std::string& path) {
    if (!j.is_object()) return bad(path, fmt::format("expected an object, got {}", j.type_name()));
    KeyValue kv;
    CNETD_TRY_ASSIGN(kv.key, member_bytes(j, "key", path));
    CNETD_TRY_ASSIGN(kv.value, member_bytes(j, "value", path));
    CNETD_TRY_ASSIGN(kv.create_revision, member_int(j, "create_revision", path));
    CNETD_TRY_ASSIGN(kv.mod_revision, member_int(j, "mod_revision", path));
    CNETD_TRY_ASSIGN(kv.version, member_int(j, "version", path));
    CNETD_TRY_ASSIGN(kv.lease, member_int(j, "lease", path));
    return kv;
}

// A RangeResponse object (top level or inside a txn's response_range).
Result<RangeResult> range_from(const json& obj, const std::string& path) {
    RangeResult r;
    CNETD_TRY_ASSIGN(const json* header, member_object(obj, "header", path));
    if (header != nullptr) {
        CNETD_TRY_ASSIGN(r.revision, member_int(*header, "revision", join(path, "header")));
    }
    CNETD_TRY_ASSIGN(r.count, member_int(obj, "count", path));
    CNETD_TRY_ASSIGN(const json* kvs, member_array(obj, "kvs", path));
    if (kvs != nullptr) {
        for (std::size_t i = 0; i < kvs->size(); ++i) {
            CNETD_TRY_ASSIGN(KeyValue kv,
                             parse_kv((*kvs)[i], fmt::format("{}[{}]", join(path, "kvs"), i)));
            r.kvs.push_back(std::move(kv));
        }
    }
    return r;
}

const char* target_name(Compare::Target t) {
    switch (t) {
        case Compare::Target::Version:
            return "VERSION";
        case Compare::Target::Create:
            return "CREATE";
        case Compare::Target::Mod:
            return "MOD";
        case Compare::Target::Value:
            return "VALUE";
        case Compare::Target::Lease:
            return "LEASE";
    }
    return "VERSION";
}

const char* result_name(Compare::Result r) {
    switch (r) {
        case Compare::Result::Equal:
            return "EQUAL";
        case Compare::Result::Greater:
            return "GREATER";
        case Compare::Result::Less:
            return "LESS";
        case Compare::Result::NotEqual:
            return "NOT_EQUAL";
    }
    return "EQUAL";
}

json compare_json(const Compare& c) {
    json j = {{"key", base64_encode(c.key)},
              {"target", target_name(c.target)},
              {"result", result_name(c.result)}};
    switch (c.target) {
        case Compare::Target::Version:
            j["version"] = std::to_string(c.number);
            break;
        case Compare::Target::Create:
            j["create_revision"] = std::to_string(c.number);
            break;
        case Compare::Target::Mod:
            j["mod_revision"] = std::to_string(c.number);
            break;
        case Compare::Target::Value:
            j["value"] = base64_encode(c.value);
            break;
        case Compare::Target::Lease:
            j["lease"] = std::to_string(c.number);
            break;
    }
    return j;
}

json key_range_json(const std::string& key, const std::string& range_end) {
    json j = {{"key", base64_encode(key)}};
    if (!range_end.empty()) j["range_end"] = base64_encode(range_end);
    return j;
}

json op_json(const TxnOp& op) {
    switch (op.kind) {
        case TxnOp::Kind::Put: {
            json put = {{"key", base64_encode(op.key)}, {"value", base64_encode(op.value)}};
            if (op.lease != 0) put["lease"] = std::to_string(op.lease);
            return {{"request_put", put}};
        }
        case TxnOp::Kind::Delete:
            return {{"request_delete_range", key_range_json(op.key, op.range_end)}};
        case TxnOp::Kind::Range:
            return {{"request_range", key_range_json(op.key, op.range_end)}};
    }
    return json::object();
}

ErrorKind kind_of_grpc_code(int64_t code) {
    switch (code) {
        case 5:
            return ErrorKind::NotFound;
        case 6:
        case 9:
        case 10:
        case 11:
            return ErrorKind::Conflict;
        case 3:
            return ErrorKind::InvalidArgument;
        case 1:
        case 4:
        case 8:
        case 14:
            return ErrorKind::Unavailable;
        default:
            return ErrorKind::Internal;
    }
}

}  // namespace

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        out += kB64[n >> 18];
        out += kB64[(n >> 12) & 63];
        out += kB64[(n >> 6) & 63];
        out += kB64[n & 63];
    }
    if (i + 1 == in.size()) {
        const uint32_t n = uint8_t(in[i]) << 16;
        out += kB64[n >> 18];
        out += kB64[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
        out += kB64[n >> 18];
        out += kB64[(n >> 12) & 63];
        out += kB64[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

Result<std::string> base64_decode(std::string_view in) {
    static const std::array<int8_t, 256> table = [] {
        std::array<int8_t, 256> t{};
        t.fill(-1);
        for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kB64[i])] = static_cast<int8_t>(i);
        return t;
    }();
    if (in.size() % 4 != 0) {
        return Error::invalid(fmt::format("length {} is not a multiple of 4", in.size()));
    }
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        const int pad = !last ? 0 : (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=');
        uint32_t n = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = in[i + k];
            const int v = k >= 4 - pad ? 0 : table[static_cast<uint8_t>(c)];
            if (v < 0) {
                return Error::invalid(fmt::format("invalid character at offset {}", i + k));
            }
            n = (n << 6) | static_cast<uint32_t>(v);
        }
        // Bits below the last byte must be zero: one text per value (what Go writes).
        if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
            return Error::invalid(fmt::format("non-zero padding bits at offset {}", i));
        }
        out += static_cast<char>(n >> 16);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(n & 0xff);
    }
    return out;
}

Result<Endpoint> parse_endpoint(std::string_view url, std::string_view field) {
    auto invalid = [&](std::string_view why) {
        return Error::invalid(
            fmt::format("{}: \"{}\" is not an etcd endpoint URL ({}; expected "
                        "http://HOST:PORT or https://HOST:PORT)",
                        field, url, why));
    };
    Endpoint ep;
    ep.url = std::string(url);
    std::string_view rest = url;
    if (rest.rfind("http://", 0) == 0) {
        rest.remove_prefix(7);
    } else if (rest.rfind("https://", 0) == 0) {
        rest.remove_prefix(8);
        ep.tls = true;
    } else {
        return invalid("the scheme must be http or https");
    }
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
        return invalid("only a host and a port may follow the scheme");
    }
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return invalid("unclosed '[' in the host");
        ep.host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty() && rest.front() != ':') return invalid("text after ']'");
        if (!rest.empty()) port = rest.substr(1);
    } else {
        const auto colon = rest.find(':');
        ep.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    }
    if (ep.host.empty()) return invalid("no host");
    if (port.empty()) port = "2379";
    unsigned n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || p != port.data() + port.size() || n == 0 || n > 65535) {
        return invalid(fmt::format("port \"{}\" is not 1..65535", port));
    }
    ep.port = std::string(port);
    return ep;
}

std::string range_request(const std::string& key, const std::string& range_end, bool count_only) {
    json j = key_range_json(key, range_end);
    if (count_only) j["count_only"] = true;
    return j.dump();
}

std::string put_request(const std::string& key, const std::string& value, int64_t lease) {
    TxnOp op{TxnOp::Kind::Put, key, value, lease, ""};
    return op_json(op)["request_put"].dump();
}

std::string delete_request(const std::string& key, const std::string& range_end) {
    return key_range_json(key, range_end).dump();
}

std::string txn_request(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure) {
    json j = json::object();
    auto list = [](const auto& items, auto encode) {
        json a = json::array();
        for (const auto& item : items) a.push_back(encode(item));
        return a;
    };
    if (!compares.empty()) j["compare"] = list(compares, compare_json);
    if (!success.empty()) j["success"] = list(success, op_json);
    if (!failure.empty()) j["failure"] = list(failure, op_json);
    return j.dump();
}

std::string grant_request(int64_t ttl_seconds) {
    return json{{"TTL", std::to_string(ttl_seconds)}}.dump();
}

std::string lease_id_request(int64_t lease_id) {
    return json{{"ID", std::to_string(lease_id)}}.dump();
}

std::string watch_request(const std::string& key, const std::string& range_end,
                          int64_t start_revision) {
    json create = key_range_json(key, range_end);
    create["start_revision"] = std::to_string(start_revision);
    create["progress_notify"] = true;
    return json{{"create_request", create}}.dump();
}

Result<RangeResult> parse_range(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    return range_from(j, "");
}

Result<int64_t> parse_put(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    return header_revision(j);
}

Result<int64_t> parse_delete(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    CNETD_TRY(header_revision(j));
    return member_int(j, "deleted", "");
}

Result<TxnResult> parse_txn(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    TxnResult t;
    CNETD_TRY_ASSIGN(t.revision, header_revision(j));
    CNETD_TRY_ASSIGN(t.succeeded, member_bool(j, "succeeded", ""));
    CNETD_TRY_ASSIGN(const json* responses, member_array(j, "responses", ""));
    if (responses == nullptr) return t;
    for (std::size_t i = 0; i < responses->size(); ++i) {
        const json& op = (*responses)[i];
        const std::string path = fmt::format("responses[{}]", i);
        if (!op.is_object()) {
            return bad(path, fmt::format("expected an object, got {}", op.type_name()));
        }
        CNETD_TRY_ASSIGN(const json* range, member_object(op, "response_range", path));
        if (range == nullptr) continue;
        CNETD_TRY_ASSIGN(RangeResult r, range_from(*range, join(path, "response_range")));
        t.ranges.push_back(std::move(r));
    }
    return t;
}

Result<Lease> parse_grant(std::string_view body) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    CNETD_TRY_ASSIGN(std::string error, member_string(j, "error", ""));
    if (!error.empty()) return Error(ErrorKind::Unavailable, error);
    Lease l;
    CNETD_TRY_ASSIGN(l.id, member_int(j, "ID", ""));
    CNETD_TRY_ASSIGN(l.ttl, member_int(j, "TTL", ""));
    if (l.id == 0) return bad("ID", "missing (no lease was granted)");
    return l;
}

Result<int64_t> parse_keepalive(std::string_view body, int64_t lease_id) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    CNETD_TRY_ASSIGN(const json* result, member_object(j, "result", ""));
    if (result == nullptr) {
        // A stream error object ({"error":{...}}) or something else entirely.
        CNETD_TRY_ASSIGN(const json* err, member_object(j, "error", ""));
        if (err != nullptr) {
            CNETD_TRY_ASSIGN(std::string msg, member_string(*err, "message", "error"));
            CNETD_TRY_ASSIGN(int64_t code, member_int(*err, "grpc_code", "error"));
            return Error(kind_of_grpc_code(code), msg);
        }
        return bad("result", "missing");
    }
    CNETD_TRY_ASSIGN(int64_t ttl, member_int(*result, "TTL", "result"));
    if (ttl <= 0) {
        return Error::not_found(fmt::format(
            "lease {:x} not found (expired or revoked: keepalive answered TTL {})", lease_id, ttl));
    }
    return ttl;
}

Result<int64_t> parse_time_to_live(std::string_view body, int64_t lease_id) {
    CNETD_TRY_ASSIGN(json j, parse_object(body));
    const bool has_ttl = j.contains("TTL");
    CNETD_TRY_ASSIGN(int64_t ttl, member_int(j, "TTL", ""));
    if (!has_ttl || ttl < 0) {
        return Error::not_found(
            fmt::format("lease {:x} not found (expired or revoked: TTL {})", lease_id, ttl));
    }
    return ttl;
}

Error error_from_answer(int http_status, std::string_view body) {
    auto j = parse_object(body);
    if (j) {
        auto msg = member_string(*j, "message", "");
        if (msg && msg->empty()) msg = member_string(*j, "error", "");
        auto code = member_int(*j, "code", "");
        if (msg && code && !msg->empty()) return Error(kind_of_grpc_code(*code), *msg);
    }
    const std::string shown(body.substr(0, 200));
    return Error::internal(fmt::format("HTTP status {} with a body that is not an etcd error: {}",
                                       http_status, shown.empty() ? "(empty)" : shown));
}

bool is_member_error(int http_status, std::string_view body) {
    auto j = parse_object(body);
    if (!j) return http_status >= 500;
    auto code = member_int(*j, "code", "");
    if (!code) return http_status >= 500;
    const int64_t c = *code;
    return c == 1 || c == 4 || c == 8 || c == 14;
}

Result<WatchMessage> parse_watch_message(std::string_view text) {
    CNETD_TRY_ASSIGN(json j, parse_object(text));
    CNETD_TRY_ASSIGN(const json* result, member_object(j, "result", ""));
    if (result == nullptr) {
        CNETD_TRY_ASSIGN(const json* err, member_object(j, "error", ""));
        if (err == nullptr) return bad("result", "missing (neither a result nor an error)");
        CNETD_TRY_ASSIGN(std::string msg, member_string(*err, "message", "error"));
        return Error(ErrorKind::Unavailable,
                     fmt::format("etcd ended the watch: {}", msg.empty() ? "(no message)" : msg));
    }
    WatchMessage m;
    CNETD_TRY_ASSIGN(const json* header, member_object(*result, "header", "result"));
    if (header != nullptr) {
        CNETD_TRY_ASSIGN(m.batch.revision, member_int(*header, "revision", "result.header"));
    }
    CNETD_TRY_ASSIGN(m.batch.compact_revision, member_int(*result, "compact_revision", "result"));
    CNETD_TRY_ASSIGN(bool canceled, member_bool(*result, "canceled", "result"));
    CNETD_TRY_ASSIGN(bool created, member_bool(*result, "created", "result"));
    m.batch.compacted = m.batch.compact_revision != 0;
    if (canceled && !m.batch.compacted) {
        CNETD_TRY_ASSIGN(std::string reason, member_string(*result, "cancel_reason", "result"));
        return Error(ErrorKind::Unavailable,
                     fmt::format("etcd canceled the watch: {}",
                                 reason.empty() ? "(no reason given)" : reason));
    }
    CNETD_TRY_ASSIGN(const json* events, member_array(*result, "events", "result"));
    if (events != nullptr) {
        for (std::size_t i = 0; i < events->size(); ++i) {
            const json& e = (*events)[i];
            const std::string path = fmt::format("result.events[{}]", i);
            if (!e.is_object()) {
                return bad(path, fmt::format("expected an object, got {}", e.type_name()));
            }
            WatchEvent ev;
            CNETD_TRY_ASSIGN(std::string type, member_string(e, "type", path));
            if (type == "DELETE") {
                ev.type = WatchEvent::Type::Delete;
            } else if (!type.empty() && type != "PUT") {
                return bad(join(path, "type"), fmt::format("unknown event type \"{}\"", type));
            }
            CNETD_TRY_ASSIGN(const json* kv, member_object(e, "kv", path));
            if (kv == nullptr) return bad(join(path, "kv"), "missing");
            CNETD_TRY_ASSIGN(ev.kv, parse_kv(*kv, join(path, "kv")));
            m.batch.events.push_back(std::move(ev));
        }
    }
    // The created confirmation's header revision is the store's, not how far the events went:
    // handing it on would tell the caller it had seen changes still to come.
    m.deliver = !(created && m.batch.events.empty() && !m.batch.compacted);
    return m;
}

Result<std::vector<WatchBatch>> WatchStream::feed(std::string_view bytes) {
    std::vector<WatchBatch> out;
    buf_.append(bytes.data(), bytes.size());
    std::size_t start = 0;  // first byte of the message being framed
    for (std::size_t i = scanned_; i < buf_.size(); ++i) {
        const char c = buf_[i];
        if (in_string_) {
            if (escaped_) {
                escaped_ = false;
            } else if (c == '\\') {
                escaped_ = true;
            } else if (c == '"') {
                in_string_ = false;
            }
            continue;
        }
        if (depth_ == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                start = i + 1;
                continue;
            }
            if (c != '{') {
                return bad("", fmt::format("watch stream message {}: unexpected byte 0x{:02x} "
                                           "between messages",
                                           messages_, static_cast<uint8_t>(c)));
            }
        }
        if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if (c == '}' || c == ']') {
            if (--depth_ > 0) continue;
            auto m = parse_watch_message(std::string_view(buf_).substr(start, i + 1 - start));
            if (!m) {
                return std::move(m).error().wrap(fmt::format("watch stream message {}", messages_));
            }
            ++messages_;
            if (m->deliver) out.push_back(std::move(m->batch));
            start = i + 1;
        }
    }
    buf_.erase(0, start);
    scanned_ = buf_.size();
    if (buf_.size() > kMaxMessage) {
        return bad("", fmt::format("watch stream message {} is longer than {} bytes", messages_,
                                   kMaxMessage));
    }
    return out;
}

}  // namespace cnetd::etcd::codec
