// What tests/support/torch_models.py made at build time (AKV_TORCH_MODELS, defined by the
// test targets that use it): model directories and PyTorch's results, read back.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace akv::test::torch_models {

inline std::filesystem::path dir() {
    return AKV_TORCH_MODELS;
}

// A file under dir(), whole.
inline std::string read(const std::filesystem::path& relative) {
    std::ifstream in(dir() / relative, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A file of little-endian T, e.g. values<float>("expected_v1.f32").
template <class T> std::vector<T> values(const std::string& file) {
    const std::string bytes = read(file);
    std::vector<T> v(bytes.size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
    return v;
}

// A model directory as the registry keeps it: model.json and model.pt.
inline std::map<std::string, std::string> files(const std::string& model) {
    std::map<std::string, std::string> out;
    for (const char* name : {"model.json", "model.pt"})
        out[name] = read(std::filesystem::path(model) / name);
    return out;
}

} // namespace akv::test::torch_models
