#include "base/validate.hpp"

#include <fmt/format.h>

namespace cnetd {
namespace {

bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

Result<void> cni_identifier(std::string_view value, std::string_view field, std::string_view what) {
    if (value.empty()) return Error::invalid(fmt::format("{}: {} must not be empty", field, what));
    if (!alnum(value[0]))
        return Error::invalid(fmt::format(
            "{}: {} {} must start with a letter or digit (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)",
            field, what, quote_for_error(value)));
    for (char c : value) {
        if (!alnum(c) && c != '_' && c != '.' && c != '-')
            return Error::invalid(fmt::format(
                "{}: {} {} contains {} (allowed: [a-zA-Z0-9][a-zA-Z0-9_.-]*)", field, what,
                quote_for_error(value), quote_for_error(std::string_view(&c, 1))));
    }
    return ok();
}

}  // namespace

std::string quote_for_error(std::string_view text) {
    constexpr size_t kMax = 64;
    std::string out = "\"";
    for (size_t i = 0; i < text.size() && i < kMax; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    out += '"';
    if (text.size() > kMax) out += fmt::format("... ({} bytes)", text.size());
    return out;
}

Result<void> validate_container_id(std::string_view id, std::string_view field) {
    return cni_identifier(id, field, "container id");
}

Result<void> validate_cni_network_name(std::string_view name, std::string_view field) {
    return cni_identifier(name, field, "network name");
}

}  // namespace cnetd
