// What the benchmarks share: running a peer's command and reading what it printed.
#pragma once

#include <array>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace akv::bench {

inline std::string run_command(const std::string& cmd) {
    std::array<char, 4096> buf;
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    if (!pipe) throw std::runtime_error("cannot run: " + cmd);
    while (std::fgets(buf.data(), buf.size(), pipe.get()))
        out += buf.data();
    return out;
}

} // namespace akv::bench
