#include "api/protocol.hpp"

#include "api/codec.hpp"

#include <string>

namespace cnetd::api {

int http_status(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::InvalidArgument:
            return 400;
        case ErrorKind::NotFound:
            return 404;
        case ErrorKind::Conflict:
            return 409;
        case ErrorKind::Unavailable:
            return 503;
        case ErrorKind::Kernel:
        case ErrorKind::Internal:
            return 500;
    }
    return 500;
}

ErrorKind kind_from_status(int status) noexcept {
    switch (status) {
        case 404:
            return ErrorKind::NotFound;
        case 409:
            return ErrorKind::Conflict;
        case 503:
            return ErrorKind::Unavailable;
        default:
            break;
    }
    if (status >= 400 && status < 500) return ErrorKind::InvalidArgument;
    return ErrorKind::Internal;
}

bool kind_from_string(std::string_view text, ErrorKind& out) noexcept {
    for (auto k : {ErrorKind::InvalidArgument, ErrorKind::NotFound, ErrorKind::Conflict,
                   ErrorKind::Unavailable, ErrorKind::Kernel, ErrorKind::Internal}) {
        if (text == to_string(k)) {
            out = k;
            return true;
        }
    }
    return false;
}

json error_body(const Error& e) {
    return to_json(ErrorBody{e.message(), to_string(e.kind()), std::nullopt});
}

Error error_from_response(int status, std::string_view body) {
    ErrorKind kind = kind_from_status(status);
    // Our own servers always send the error JSON; anything else (a proxy, a bug) is shown as text.
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) {
        if (j.contains("kind") && j["kind"].is_string()) {
            ErrorKind k;
            if (kind_from_string(j["kind"].get<std::string>(), k)) kind = k;
        }
        return Error(kind, j["message"].get<std::string>());
    }
    std::string text(body);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    if (text.empty()) text = fmt::format("HTTP {}", status);
    return Error(kind, std::move(text));
}

}  // namespace cnetd::api
