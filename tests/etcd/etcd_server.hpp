// A real etcd 3.4 server for tests: started by the test inside its private namespace (the test
// binary is PID 1 of fresh net/mount/pid namespaces, see etcd_main.cpp), data in a fresh dir
// under the private tmpfs /run, listening on 127.0.0.1 only, killed by PID at the end.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "etcd/client.hpp"

namespace cnetd::etcd::testing {

class EtcdServer {
public:
    // client_port serves the client API, client_port + 1000 the peer API. `extra`: more flags
    // (TLS files, --experimental-watch-progress-notify-interval).
    explicit EtcdServer(int client_port, std::vector<std::string> extra = {},
                        std::string scheme = "http")
        : port_(client_port), scheme_(std::move(scheme)) {
        char tmpl[] = "/run/etcd-test.XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        const std::string peer = "http://127.0.0.1:" + std::to_string(client_port + 1000);
        std::vector<std::string> args = {
            "etcd",
            "--name=t",
            "--data-dir=" + dir_,
            "--listen-client-urls=" + url(),
            "--advertise-client-urls=" + url(),
            "--listen-peer-urls=" + peer,
            "--initial-advertise-peer-urls=" + peer,
            "--initial-cluster=t=" + peer,
            "--logger=zap",
        };
        args.insert(args.end(), extra.begin(), extra.end());
        args_ = std::move(args);
        spawn();
    }
    ~EtcdServer() { stop(); }

    // SIGKILL, data kept (stop() removes it); restart() starts it again on the same data dir.
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    void restart() {
        kill();
        spawn();
    }

    std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
    pid_t pid() const { return pid_; }

    // Until a range answers (etcd elects itself within a second or two).
    bool wait_ready(const ClientOptions& base = {}) {
        ClientOptions o = base;
        o.endpoints = {url()};
        o.timeout = std::chrono::milliseconds(500);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;  // it exited (bad flags, port taken)
                return false;
            }
            Client c(o);
            if (c.range("ready").ok()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }

    std::string log() const {
        std::string cmd = "tail -20 '" + dir_ + "/log' 2>&1";
        std::string out;
        if (FILE* f = ::popen(cmd.c_str(), "r")) {
            char buf[4096];
            std::size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
            ::pclose(f);
        }
        return out;
    }

    void stop() {
        kill();
        if (!dir_.empty()) {
            std::string cmd = "rm -rf '" + dir_ + "'";
            (void)std::system(cmd.c_str());
            dir_.clear();
        }
    }

private:
    void spawn() {
        pid_ = ::fork();
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& a : args_) argv.push_back(a.data());
            argv.push_back(nullptr);
            // Its log next to its data (shown by log() when a test fails).
            const int fd = ::open((dir_ + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execvp("etcd", argv.data());
            ::_exit(127);
        }
    }

    std::vector<std::string> args_;
    int port_;
    std::string scheme_;
    std::string dir_;
    pid_t pid_ = -1;
};

}  // namespace cnetd::etcd::testing
