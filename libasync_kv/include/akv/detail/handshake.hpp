// The connection's handshake, apart from I/O: the one request a new connection sends first, and
// what its replies mean. Tested with no socket (tests/unit/handshake_test.cpp).
#pragma once

#include <akv/config.hpp>
#include <akv/request.hpp>
#include <akv/response.hpp>

#include <boost/system/error_code.hpp>

#include <string>
#include <string_view>

namespace akv::detail {

class handshake {
public:
    // HELLO 3 (with AUTH and SETNAME when configured), SELECT when db != 0, ROLE when a role is
    // required, then the setup commands (a cluster replica's READONLY): one round trip.
    handshake(const config& cfg, std::string_view required_role, const request& setup);

    const request& get_request() const noexcept { return req_; }

    // What the replies mean: success, auth_failed (wrong password, unknown user, no permission:
    // the caller backs off longest), wrong_role, or handshake_failed for anything else refused.
    // `why` names the command refused and the server's words, or the role found; never the
    // password. `server` is named in a wrong role's message.
    boost::system::error_code judge(const generic_response& replies, const endpoint& server,
                                    std::string& why) const;

private:
    request req_;
    std::string required_role_;
    int db_ = 0;
    std::size_t role_index_ = 0;  // the ROLE reply, when a role is required
    std::size_t setup_index_ = 0; // the first setup command's reply
};

} // namespace akv::detail
