#include "core/failpoint_wrappers.hpp"

namespace cnetd::core {

Result<std::unique_ptr<Netns>> FailpointKernel::open_netns(const std::string& path) {
    CNETD_TRY_ASSIGN(auto ns, in_.open_netns(path));
    return std::unique_ptr<Netns>(new FailpointNetns(std::move(ns)));
}

}  // namespace cnetd::core
