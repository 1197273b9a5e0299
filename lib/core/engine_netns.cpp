// Network namespace files in the netns dir (engine.hpp): create, remove (with the endpoints in
// them, through the one detach path), list.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "base/log.hpp"
#include "core/engine.hpp"
#include "core/engine_detail.hpp"

namespace cnetd::core {

Result<std::string> Engine::create_netns(const std::string& name) {
    CNETD_TRY(validate_name("name", name));
    std::string path = opts_.netns_dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        return Error::conflict(fmt::format("netns {} already exists ({})", name, path));
    }
    CNETD_TRY(kernel_.create_netns(path).context(fmt::format("create netns {}", name)));
    log::info("netns {} created at {}", name, path);
    return path;
}

Result<void> Engine::remove_netns(const std::string& name) {
    CNETD_TRY(validate_name("name", name));
    std::string path = opts_.netns_dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return Error::not_found(fmt::format("netns {} not found in {}", name, opts_.netns_dir));
    }
    // Refused before anything is disconnected: open_netns() would follow the link to some other
    // namespace (Kernel::delete_netns refuses symlinks too, but only after that).
    if (S_ISLNK(st.st_mode))
        return Error::invalid(
            fmt::format("remove netns {}: {} is a symbolic link, not a network "
                        "namespace file; left alone",
                        name, path));
    // Its endpoints go too, like `docker rm` does, so nothing is leaked: by namespace identity or
    // recorded path, and by id (a name may be another endpoint's).
    std::unique_ptr<Netns> held;
    if (auto ns = kernel_.open_netns(path); ns.ok()) held = std::move(ns).value();
    std::vector<EndpointRef> victims;
    for (const auto& [nid, n] : nets_) {
        for (const auto& [eid, ep] : n.net.endpoints) {
            if (ep.netns_path == path || (held && ep.netns_id == held->id()))
                victims.emplace_back(nid, eid);
        }
    }
    const auto frame = fmt::format("remove netns {}", name);
    if (!held) {  // not a live namespace (a plain file, a dead mount): nothing to mount back
        CNETD_TRY(detach_endpoints(victims, frame, {}).context(frame));
        CNETD_TRY(kernel_.delete_netns(path).context(frame));
        log::info("netns {} removed", name);
        return ok();
    }
    // The file goes first while `held` keeps the namespace alive: a failed unmount changes
    // nothing, and a failed save of the endpoints' removal mounts the file back.
    CNETD_TRY(kernel_.delete_netns(path).context(frame));
    if (auto r = detach_endpoints(victims, frame, {}); !r.ok()) {
        log_undo_failure(kernel_.restore_netns(path, *held), "mount netns file " + path + " again");
        return std::move(r).error().wrap(frame);
    }
    log::info("netns {} removed", name);
    return ok();
}

std::vector<std::string> Engine::list_netns() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(opts_.netns_dir, ec)) {
        if (e.is_regular_file(ec)) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace cnetd::core
