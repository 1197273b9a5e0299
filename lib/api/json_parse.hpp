// Parsing untrusted JSON text without exceptions, with errors that say where.
//
// nlohmann::json::parse throws more than parse_error: a number beyond a double's range
// (`{"MTU": 1e999}`, or 400 digits) throws out_of_range 406, which a `catch (parse_error&)` lets
// escape (a 500 from the daemon, an abort under the fuzzer). Every JSON entry point of cnetd that
// reads foreign text (the API codec, the CNI plugin's stdin) parses through here instead: nothing
// throws, and an error names the field the bad value sits in.
//
// Used by daemon/codec.cpp and lib/cni (which depend on json_parse_dep only: base + json).
// Threading: pure, thread-safe.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.hpp"

namespace cnetd::api {

// How a field path is written in messages: Quoted as the API codec names fields
// (`"PortBindings"[0]."HostPort"`), Plain as the CNI messages do (`ipam.ranges[0][0].gateway`).
enum class PathStyle { Quoted, Plain };

// Parses `text` as one JSON document; never throws. Errors are ErrorKind::InvalidArgument:
//  - a syntax error: nlohmann's text without its "[json.exception...]" id, e.g.
//    `parse error at line 1, column 9: syntax error while parsing value - invalid literal; ...`
//  - a value that cannot be held (a number beyond ±1.8e308) names its field:
//    `"MTU": number 1e999 is out of range (magnitude above 1.8e308)`; at the top level just the
//    number. Long numbers are shortened in the message ("3333...E694").
Result<nlohmann::json> parse_json(std::string_view text, PathStyle style = PathStyle::Quoted);

// nlohmann's exception text without its "[json.exception.type_error.302] " id.
std::string_view json_exception_text(const std::exception& e);

}  // namespace cnetd::api
