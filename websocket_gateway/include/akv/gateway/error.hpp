// The gateway's own error conditions (category "akv.gateway"); token errors have theirs
// (token.hpp), Redis errors stay akv::error.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace akv::gateway {

enum class gateway_error {
    bad_channel = 1, // empty, too long, control characters or `*`
    bad_message,     // not JSON, not an object, a field missing or of the wrong type
    too_large,       // over options::max_publish or max_frame
    bad_options,     // an options value that cannot work (message names it)
    bad_tls,         // the certificate or key did not load
    bind_failed,     // the address or port cannot be listened on
};

const boost::system::error_category& gateway_category() noexcept;
inline boost::system::error_code make_error_code(gateway_error e) noexcept {
    return {static_cast<int>(e), gateway_category()};
}

} // namespace akv::gateway

template <> struct boost::system::is_error_code_enum<akv::gateway::gateway_error> : std::true_type {};
