#include "inbox.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace akv::gateway::detail {

std::string inbox_registry::add(std::shared_ptr<inbox> in) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        throw std::runtime_error("streaming session: no random bytes for its key");
    static constexpr char hex[] = "0123456789abcdef";
    std::string key;
    for (unsigned char b : bytes) {
        key += hex[b >> 4];
        key += hex[b & 15];
    }
    std::lock_guard lock(mutex_);
    inboxes_.emplace(key, std::move(in));
    return key;
}

void inbox_registry::remove(const std::string& key) {
    std::lock_guard lock(mutex_);
    inboxes_.erase(key);
}

std::shared_ptr<inbox> inbox_registry::find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = inboxes_.find(key);
    return it == inboxes_.end() ? nullptr : it->second;
}

} // namespace akv::gateway::detail
