// Whether a request may be queued at all: one check for both exec paths, a connection's and a
// cluster's (which routes before any connection sees the request). Tested without a socket.
#pragma once

#include <akv/detail/adapt.hpp>
#include <akv/error.hpp>
#include <akv/request.hpp>

#include <boost/system/error_code.hpp>

namespace akv::detail {

// empty_request, incompatible_size (a response whose slots do not match the replies),
// connection_closed once stopped, and not_connected when the request asked to fail rather than
// wait for a connection that is down. Checked in that order.
inline boost::system::error_code admit(const request& req, const request::options& opts,
                                       const reply_adapter& adapter, bool stopped,
                                       bool connected) noexcept {
    if (req.empty()) return error::empty_request;
    if (adapter.slots != static_cast<std::size_t>(-1) && adapter.slots != req.expected_replies())
        return error::incompatible_size;
    if (stopped) return error::connection_closed;
    if (!connected && opts.fail_if_not_connected) return error::not_connected;
    return {};
}

} // namespace akv::detail
