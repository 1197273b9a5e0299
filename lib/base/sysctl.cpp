#include "base/sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.hpp"

namespace cnetd::sysctl {
namespace {

Result<void> check_key(const std::string& key, const std::string& what) {
    if (key.empty() || key.front() == '/' || key.find("..") != std::string::npos)
        return Error::invalid(fmt::format("{}: key must be relative to /proc/sys", what));
    return ok();
}

}  // namespace

Result<void> write(const std::string& key, const std::string& value) {
    const std::string what = fmt::format("write sysctl {}={}", key, value);
    CNETD_TRY(check_key(key, what));
    UniqueFd fd(::open(("/proc/sys/" + key).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return Error::sys(errno, what);
    ssize_t n;
    do n = ::write(fd.get(), value.data(), value.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) return Error::sys(errno, what);
    if (static_cast<size_t>(n) != value.size()) return Error::sys(EIO, what);
    return ok();
}

Result<std::string> read(const std::string& key) {
    const std::string what = fmt::format("read sysctl {}", key);
    CNETD_TRY(check_key(key, what));
    UniqueFd fd(::open(("/proc/sys/" + key).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return Error::sys(errno, what);
    std::string out;
    char buf[256];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::sys(errno, what);
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

}  // namespace cnetd::sysctl
