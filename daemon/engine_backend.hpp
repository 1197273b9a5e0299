// The production Backend: owns the LinuxKernel, the FileStateStore and the core::Engine built on
// them, and starts the engine (default network, ip_forward).
//
// Threading: create_engine_backend() must run on the kernel worker thread, because LinuxKernel
// binds its netlink socket in, and switches namespaces on, the thread that uses it. Errors: any
// start-up failure comes back framed ("start engine: ...") and nothing is left half built in memory
// (the kernel state the engine created is left in place, as on shutdown).
#pragma once

#include <memory>
#include <optional>

#include "base/error.hpp"
#include "config/config.hpp"
#include "daemon/backend.hpp"

namespace cnetd::daemon {

Result<std::unique_ptr<Backend>> create_engine_backend(const config::Config& cfg);

// The engine options `cfg` gives (without the ULA prefix, which comes from the state dir).
core::EngineOptions engine_options_of(const config::Config& cfg);

// The default network as `cfg` describes it; nullopt for `bridge: none`.
std::optional<core::DefaultNetworkSpec> default_spec_of(const config::Config& cfg);

}  // namespace cnetd::daemon
