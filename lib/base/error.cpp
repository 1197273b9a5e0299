#include "base/error.hpp"

#include <cstring>

namespace cnetd {

const char* to_string(ErrorKind k) noexcept {
    switch (k) {
        case ErrorKind::InvalidArgument: return "invalid-argument";
        case ErrorKind::NotFound: return "not-found";
        case ErrorKind::Conflict: return "conflict";
        case ErrorKind::Unavailable: return "unavailable";
        case ErrorKind::Kernel: return "kernel";
        case ErrorKind::Internal: return "internal";
    }
    return "internal";
}

Error Error::sys(int err, std::string_view what) {
    // strerror_r (GNU variant) returns a pointer that may or may not be buf.
    char buf[128];
    const char* text = strerror_r(err, buf, sizeof buf);
    return Error(ErrorKind::Kernel, fmt::format("{}: {}", what, text), err);
}

Error ErrorList::combined(std::string_view frame) const {
    std::string msg;
    for (const auto& e : errors_) {
        if (!msg.empty()) msg += "; ";
        msg += e.message();
    }
    Error out(errors_.empty() ? ErrorKind::Internal : errors_.front().kind(), msg,
              errors_.empty() ? 0 : errors_.front().error_number());
    if (!frame.empty()) out.wrap(frame);
    return out;
}

}  // namespace cnetd
