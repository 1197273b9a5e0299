// RAII owner of a file descriptor, and of C library handles.
#pragma once

#include <unistd.h>

#include <memory>
#include <utility>

namespace cnetd {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

// One deleter template, a named alias per C type:  using NlSock = CHandle<nl_sock, nl_socket_free>;
template <auto FreeFn>
struct CFree {
    template <class T>
    void operator()(T* p) const noexcept {
        if (p) FreeFn(p);
    }
};
template <class T, auto FreeFn>
using CHandle = std::unique_ptr<T, CFree<FreeFn>>;

}  // namespace cnetd
