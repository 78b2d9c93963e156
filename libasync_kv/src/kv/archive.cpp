#include "archive.hpp"

#include <akv/error.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <stdexcept>

namespace akv::kv::detail {

namespace {

using archive_ptr = std::unique_ptr<struct archive, int (*)(struct archive*)>;
using entry_ptr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

// Fixed times and owners: the same model packs to the same bytes.
constexpr std::time_t entry_time = 0;

la_ssize_t append_to_string(struct archive*, void* out, const void* buffer, size_t length) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
}

[[noreturn]] void pack_failed(struct archive* a, const std::string& what) {
    const char* message = archive_error_string(a);
    throw std::runtime_error("model archive: " + what + ": " + (message ? message : "failed"));
}

void write_entry(struct archive* a, const std::string& path, mode_t type, const std::string* data) {
    entry_ptr entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), path.c_str());
    archive_entry_set_filetype(entry.get(), type);
    archive_entry_set_perm(entry.get(), type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(entry.get(), data ? static_cast<la_int64_t>(data->size()) : 0);
    archive_entry_set_mtime(entry.get(), entry_time, 0);
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK) pack_failed(a, "header of " + path);
    if (data && !data->empty()) {
        const la_ssize_t n = archive_write_data(a, data->data(), data->size());
        if (n < 0 || static_cast<std::size_t>(n) != data->size()) pack_failed(a, "data of " + path);
    }
}

[[noreturn]] void corrupt(const std::string& what, const std::string& detail) {
    throw_error(error::corrupt_archive, what + ": " + detail);
}

} // namespace

bool is_safe_relative_path(std::string_view path) {
    if (path.empty() || path.front() == '/') return false;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        const std::string_view part = path.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") return false;
        start = end + 1;
    }
    return path.find('\0') == std::string_view::npos;
}

std::string pack_archive(const model& m, int compression_level) {
    archive_ptr a(archive_write_new(), archive_write_free);
    if (!a) throw std::bad_alloc();
    std::string out;
    if (archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK)
        pack_failed(a.get(), "setup");
    const std::string level = "gzip:compression-level=" + std::to_string(compression_level);
    if (archive_write_set_options(a.get(), level.c_str()) != ARCHIVE_OK)
        pack_failed(a.get(), "compression level " + std::to_string(compression_level));
    // No padding of the last block: the archive is as long as its content.
    archive_write_set_bytes_in_last_block(a.get(), 1);
    if (archive_write_open(a.get(), &out, nullptr, append_to_string, nullptr) != ARCHIVE_OK)
        pack_failed(a.get(), "open");
    for (const std::string& dir : m.directories) {
        if (!is_safe_relative_path(dir))
            throw std::invalid_argument("model: directory path \"" + dir + "\" is not relative");
        write_entry(a.get(), dir + "/", AE_IFDIR, nullptr);
    }
    for (const auto& [path, data] : m.files) {
        if (!is_safe_relative_path(path))
            throw std::invalid_argument("model: file path \"" + path + "\" is not relative");
        write_entry(a.get(), path, AE_IFREG, &data);
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) pack_failed(a.get(), "close");
    return out;
}

void unpack_archive(std::string_view bytes, std::uint64_t max_unpacked_size,
                    const std::string& what, model& out) {
    // libarchive would read bytes that are not gzip as an uncompressed tar: insist on gzip.
    if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x1f ||
        static_cast<unsigned char>(bytes[1]) != 0x8b)
        corrupt(what, "not a gzip stream (" + std::to_string(bytes.size()) + " bytes)");
    archive_ptr a(archive_read_new(), archive_read_free);
    if (!a) throw std::bad_alloc();
    archive_read_support_filter_gzip(a.get());
    archive_read_support_format_tar(a.get());
    const auto failed = [&](const std::string& where) {
        const char* message = archive_error_string(a.get());
        corrupt(what, where + ": " + (message ? message : "unreadable"));
    };
    if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) failed("open");
    std::uint64_t unpacked = 0;
    for (;;) {
        archive_entry* entry = nullptr;
        const int r = archive_read_next_header(a.get(), &entry);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK) failed("entry " + std::to_string(out.files.size() + 1));
        std::string path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
        while (!path.empty() && path.back() == '/')
            path.pop_back();
        if (!is_safe_relative_path(path)) corrupt(what, "unsafe entry path \"" + path + "\"");
        const mode_t type = archive_entry_filetype(entry);
        if (type == AE_IFDIR) {
            out.directories.insert(path);
            continue;
        }
        if (type != AE_IFREG) corrupt(what, "entry \"" + path + "\" is not a file or directory");
        std::string data;
        if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0) {
            const auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
            if (unpacked + size > max_unpacked_size)
                corrupt(what, "unpacks to more than max_unpacked_size " +
                                  std::to_string(max_unpacked_size) + " bytes");
            data.reserve(static_cast<std::size_t>(size));
        }
        char buffer[64 * 1024];
        for (;;) {
            const la_ssize_t n = archive_read_data(a.get(), buffer, sizeof buffer);
            if (n < 0) failed("data of \"" + path + "\"");
            if (n == 0) break;
            unpacked += static_cast<std::uint64_t>(n);
            if (unpacked > max_unpacked_size)
                corrupt(what, "unpacks to more than max_unpacked_size " +
                                  std::to_string(max_unpacked_size) + " bytes");
            data.append(buffer, static_cast<std::size_t>(n));
        }
        out.files[path] = std::move(data);
    }
}

} // namespace akv::kv::detail
