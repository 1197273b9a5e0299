// Running the real netctl and cnetd-cni binaries from the API tests (NETCTL_BIN, CNETD_CNI_BIN set
// by meson): one child, its stdin from a string, its stdout and stderr captured through files in
// `dir` (no pipe deadlock), waited for. Not thread-safe per `dir`.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cnetd::testing {

struct Proc {
    int status = -1;  // exit code
    std::string out, err;
    long took_ms = 0;
};

// Runs argv with `env` added to ours and `in` on stdin.
inline Proc run(const std::string& dir, std::vector<std::string> argv,
                const std::vector<std::string>& env, const std::string& in) {
    const std::string fin = dir + "/stdin", fout = dir + "/stdout", ferr = dir + "/stderr";
    std::ofstream(fin) << in;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, fin.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, fout.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, ferr.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> envs = env;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    std::vector<char*> av, ev;
    for (auto& a : argv) av.push_back(a.data());
    av.push_back(nullptr);
    for (auto& e : envs) ev.push_back(e.data());
    ev.push_back(nullptr);
    Proc r;
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = -1;
    EXPECT_EQ(::posix_spawn(&pid, av[0], &fa, nullptr, av.data(), ev.data()), 0) << argv[0];
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    if (pid > 0 && ::waitpid(pid, &st, 0) == pid && WIFEXITED(st)) r.status = WEXITSTATUS(st);
    r.took_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    auto slurp = [](const std::string& p) {
        std::stringstream ss;
        ss << std::ifstream(p).rdbuf();
        return ss.str();
    };
    r.out = slurp(fout);
    r.err = slurp(ferr);
    return r;
}

// The path in environment variable `var`, "" when unset.
inline std::string bin(const char* var) {
    const char* v = std::getenv(var);
    return v ? v : "";
}

}  // namespace cnetd::testing
