// Redis Cluster's key -> slot mapping: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384.
// The groundwork of cluster routing; pure, so it is tested against Redis's own answers.
#pragma once

#include <cstdint>
#include <string_view>

namespace akv {

inline constexpr std::uint16_t cluster_slots = 16384;

// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
std::uint16_t crc16(std::string_view bytes) noexcept;

// The part of `key` that is hashed: the text between the first '{' and the next '}' when that
// is not empty, else the whole key ("{user1}:a" and "{user1}:b" share a slot).
std::string_view hash_tag_of(std::string_view key) noexcept;

inline std::uint16_t cluster_slot(std::string_view key) noexcept {
    return crc16(hash_tag_of(key)) % cluster_slots;
}

} // namespace akv
