// core::StateStore as one JSON file, <state-dir>/state.json.
//
// Crash safety: save() writes state.json.tmp, fsyncs it, renames it over state.json and fsyncs the
// directory, so a crash leaves either the old or the new file, never a torn one. load() reports a
// file that does not parse (naming the file and the JSON error) instead of dropping it.
// Threading: not thread-safe; called from the daemon's kernel worker only.
#pragma once

#include <string>
#include <vector>

#include "core/engine.hpp"

namespace cnetd::store {

class FileStateStore final : public core::StateStore {
public:
    explicit FileStateStore(std::string dir);
    // Creates the directory (mode 0700) if missing.
    Result<void> init();
    Result<std::vector<core::Network>> load() override;
    Result<void> save(const std::vector<core::Network>& networks) override;
    std::string path() const { return dir_ + "/state.json"; }

private:
    std::string dir_;
};

}  // namespace cnetd::store
