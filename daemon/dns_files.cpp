#include "daemon/dns_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.hpp"
#include "base/log.hpp"

namespace cnetd::daemon {
namespace {

// mkdir -p with 0755 for every directory created (existing ones are left as they are).
bool make_dirs(const std::string& path) {
    for (size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        const std::string part = path.substr(0, pos);
        if (::mkdir(part.c_str(), 0755) == 0) {
            ::chmod(part.c_str(), 0755);  // mkdir's mode passes through the umask
        } else if (errno != EEXIST) {
            log::error("dns: create directory {}: {}", part, std::strerror(errno));
            return false;
        }
    }
    return true;
}

bool write_in_place(const std::string& path, const std::string& content) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd.valid() || ::fchmod(fd.get(), 0644) != 0) {
        log::error("dns: write {}: {}", path, std::strerror(errno));
        return false;
    }
    size_t off = 0;
    while (off < content.size()) {
        const ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log::error("dns: write {}: {}", path, std::strerror(errno));
            return false;
        }
        off += static_cast<size_t>(n);
    }
    return true;
}

void remove_endpoint_dir(const std::string& dir, const std::string& id) {
    const std::string file = dns::endpoint_file(dir, id);
    if (::unlink(file.c_str()) != 0 && errno != ENOENT)
        log::warn("dns: remove {}: {}", file, std::strerror(errno));
    const std::string sub = file.substr(0, file.rfind('/'));
    if (::rmdir(sub.c_str()) != 0 && errno != ENOENT)
        log::warn("dns: remove {}: {}", sub, std::strerror(errno));
}

bool is_endpoint_id(const char* name) {
    size_t n = 0;
    for (; name[n]; ++n)
        if (!((name[n] >= '0' && name[n] <= '9') || (name[n] >= 'a' && name[n] <= 'f')))
            return false;
    return n == 64;
}

}  // namespace

EndpointFiles::EndpointFiles(std::string dir) : dir_(std::move(dir)) {
    set_host({});
}

void EndpointFiles::set_host(dns::ResolvConf host) {
    std::lock_guard lk(mu_);
    host_ = std::move(host);
    prev_gen_ = host_gen_++;
    prev_contents_ = std::move(contents_);
    contents_ = {dns::render_plain_file(host_, false), dns::render_plain_file(host_, true),
                 dns::render_resolver_file(host_), dns::render_resolver_file(host_)};
    write_all();
}

void EndpointFiles::set_wanted(std::vector<Want> want) {
    std::lock_guard lk(mu_);
    const uint64_t mark = ++mark_;
    for (const auto& w : want) {
        Written& e = written_[w.endpoint_id];
        e.mark = mark;
        e.want = static_cast<int8_t>((w.resolver ? 2 : 0) + (w.ipv6 ? 1 : 0));
    }
    for (auto it = written_.begin(); it != written_.end();) {
        if (it->second.mark == mark) {
            ++it;
            continue;
        }
        remove_endpoint_dir(dir_, it->first);
        it = written_.erase(it);
    }
    if (!swept_) sweep();
    write_all();
}

void EndpointFiles::sweep() {
    swept_ = true;
    DIR* d = ::opendir(dir_.c_str());
    if (!d) return;  // not there yet: nothing stale
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d))
        if (is_endpoint_id(e->d_name) && !written_.count(e->d_name)) stale.emplace_back(e->d_name);
    ::closedir(d);
    for (const auto& id : stale) remove_endpoint_dir(dir_, id);
}

const std::string* EndpointFiles::text_of(const Written& w) const {
    if (w.variant < 0) return nullptr;
    if (w.host_gen == host_gen_) return &contents_[size_t(w.variant)];
    if (w.host_gen == prev_gen_) return &prev_contents_[size_t(w.variant)];
    return nullptr;
}

void EndpointFiles::write_all() {
    bool dir_made = false;
    for (auto& [id, done] : written_) {
        const int variant = done.want;
        if (done.variant == variant && done.host_gen == host_gen_) continue;
        // The text on disk is what it should be anyway (the two resolver variants are the same
        // text; a host change may leave the plain files as they were): nothing to write.
        if (const std::string* on_disk = text_of(done);
            on_disk && *on_disk == contents_[size_t(variant)]) {
            done.variant = variant;
            done.host_gen = host_gen_;
            continue;
        }
        const std::string file = dns::endpoint_file(dir_, id);
        if (!dir_made && !make_dirs(dir_)) return;
        dir_made = true;
        if (!make_dirs(file.substr(0, file.rfind('/'))) ||
            !write_in_place(file, contents_[size_t(variant)])) {
            done.variant = -1;  // tried again next time
            continue;
        }
        done.variant = variant;
        done.host_gen = host_gen_;
    }
}

}  // namespace cnetd::daemon
