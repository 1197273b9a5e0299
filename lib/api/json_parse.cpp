#include "api/json_parse.hpp"

#include <string>
#include <vector>

namespace cnetd::api {
namespace {

using json = nlohmann::json;

// nlohmann's DOM builder with the path of the value being read tracked alongside, so a parse
// error can name its field. Only events are forwarded; the builder does the building.
class PathSax {
public:
    explicit PathSax(json& out) : dom_(out, /*allow_exceptions=*/false) {}

    bool null() { return value(dom_.null()); }
    bool boolean(bool v) { return value(dom_.boolean(v)); }
    bool number_integer(json::number_integer_t v) { return value(dom_.number_integer(v)); }
    bool number_unsigned(json::number_unsigned_t v) { return value(dom_.number_unsigned(v)); }
    bool number_float(json::number_float_t v, const json::string_t& s) {
        return value(dom_.number_float(v, s));
    }
    bool string(json::string_t& v) { return value(dom_.string(v)); }
    bool binary(json::binary_t& v) { return value(dom_.binary(v)); }
    bool start_object(std::size_t n) {
        frames_.push_back({false, {}, 0});
        return dom_.start_object(n);
    }
    bool key(json::string_t& k) {
        frames_.back().key = k;
        return dom_.key(k);
    }
    bool end_object() {
        frames_.pop_back();
        return value(dom_.end_object());
    }
    bool start_array(std::size_t n) {
        frames_.push_back({true, {}, 0});
        return dom_.start_array(n);
    }
    bool end_array() {
        frames_.pop_back();
        return value(dom_.end_array());
    }
    bool parse_error(std::size_t /*position*/, const std::string& token,
                     const nlohmann::detail::exception& e) {
        id_ = e.id;
        token_ = token;
        what_ = std::string(json_exception_text(e));
        failed_path_ = path(PathStyle::Quoted);
        failed_plain_ = path(PathStyle::Plain);
        return false;
    }

    // The error after sax_parse returned false.
    Error error(PathStyle style) const {
        const std::string& where = style == PathStyle::Quoted ? failed_path_ : failed_plain_;
        // 406: "number overflow parsing '1e999'". Syntax errors (1xx) carry line and column,
        // which say more than a path in a document that does not parse.
        if (id_ != 406) return Error::invalid(what_);
        std::string number = token_;
        if (number.size() > 40)
            number = number.substr(0, 20) + "..." + number.substr(number.size() - 10);
        std::string msg =
            fmt::format("number {} is out of range (magnitude above 1.8e308)", number);
        return Error::invalid(where.empty() ? msg : fmt::format("{}: {}", where, msg));
    }

private:
    struct Frame {
        bool array;
        std::string key;    // objects: the key just read
        std::size_t index;  // arrays: the element being read
    };

    // A value ended: in an array, the next one has the next index.
    bool value(bool ok) {
        if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
        return ok;
    }

    std::string path(PathStyle style) const {
        std::string out;
        for (const auto& f : frames_) {
            if (f.array) {
                out += fmt::format("[{}]", f.index);
            } else if (style == PathStyle::Quoted) {
                out += fmt::format("{}\"{}\"", out.empty() ? "" : ".", f.key);
            } else {
                out += fmt::format("{}{}", out.empty() ? "" : ".", f.key);
            }
        }
        return out;
    }

    nlohmann::detail::json_sax_dom_parser<json> dom_;
    std::vector<Frame> frames_;
    int id_ = 0;
    std::string token_, what_, failed_path_, failed_plain_;
};

}  // namespace

std::string_view json_exception_text(const std::exception& e) {
    std::string_view what = e.what();
    if (what.rfind("[json.exception.", 0) == 0) {
        if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    }
    return what;
}

Result<json> parse_json(std::string_view text, PathStyle style) {
    json out;
    PathSax sax(out);
    try {
        if (!json::sax_parse(text, &sax)) return sax.error(style);
    } catch (const std::exception& e) {
        // Not expected from sax_parse with a non-throwing handler; bad_alloc is the one candidate.
        return Error::invalid(fmt::format("JSON: {}", json_exception_text(e)));
    }
    return out;
}

}  // namespace cnetd::api
