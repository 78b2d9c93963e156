// tar.gz archives of a model's files in memory, through libarchive (private to the library).
#pragma once

#include <akv/kv/model_registry.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace akv::kv::detail {

// A gzip-compressed POSIX tar of m.directories then m.files (metadata and version not included).
std::string pack_archive(const model& m, int compression_level);

// The directories and files of `bytes` into `out`. Throws system_error(error::corrupt_archive),
// naming `what`, for bytes that are not gzip, a damaged tar, an unsafe path, or more than
// `max_unpacked_size` bytes of files.
void unpack_archive(std::string_view bytes, std::uint64_t max_unpacked_size,
                    const std::string& what, model& out);

// Whether `path` is relative, without "." / ".." / empty components: safe to join to a root.
bool is_safe_relative_path(std::string_view path);

} // namespace akv::kv::detail
