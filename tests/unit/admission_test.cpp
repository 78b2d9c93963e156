// The one admission check of both exec paths (a connection's and a cluster's), with no socket.
#include <akv/detail/admission.hpp>
#include <akv/response.hpp>

#include <gtest/gtest.h>

namespace {

using akv::detail::admit;

akv::request two_commands() {
    akv::request r;
    r.push("SET", "k", "v");
    r.push("GET", "k");
    return r;
}

} // namespace

TEST(Admission, AWellFormedRequestOnALiveConnectionIsAdmitted) {
    const akv::request req = two_commands();
    akv::response<akv::ignore_t, std::string> resp;
    EXPECT_FALSE(admit(req, req.get_options(), akv::detail::make_adapter(resp), false, true));
}

TEST(Admission, AnEmptyRequestIsRefused) {
    const akv::request req;
    EXPECT_EQ(admit(req, req.get_options(), akv::detail::make_adapter(akv::ignore), false, true),
              akv::error::empty_request);
}

TEST(Admission, AResponseWithTheWrongNumberOfSlotsIsRefused) {
    const akv::request req = two_commands();
    akv::response<std::string> one_slot;
    EXPECT_EQ(admit(req, req.get_options(), akv::detail::make_adapter(one_slot), false, true),
              akv::error::incompatible_size);
    // A generic response takes any number of replies.
    akv::generic_response any;
    EXPECT_FALSE(admit(req, req.get_options(), akv::detail::make_adapter(any), false, true));
}

TEST(Admission, AStoppedConnectionRefusesEverything) {
    const akv::request req = two_commands();
    EXPECT_EQ(admit(req, req.get_options(), akv::detail::make_adapter(akv::ignore), true, true),
              akv::error::connection_closed);
}

TEST(Admission, ADownConnectionRefusesOnlyWhatAskedNotToWait) {
    akv::request req = two_commands();
    const auto adapter = akv::detail::make_adapter(akv::ignore);
    EXPECT_FALSE(admit(req, req.get_options(), adapter, false, false)); // waits for a reconnect
    req.get_options().fail_if_not_connected = true;
    EXPECT_EQ(admit(req, req.get_options(), adapter, false, false), akv::error::not_connected);
}

TEST(Admission, ChecksComeInOrder) {
    // Empty before the size, stopped before down.
    const akv::request empty;
    akv::response<std::string> one_slot;
    EXPECT_EQ(admit(empty, empty.get_options(), akv::detail::make_adapter(one_slot), true, false),
              akv::error::empty_request);
    akv::request req = two_commands();
    req.get_options().fail_if_not_connected = true;
    EXPECT_EQ(admit(req, req.get_options(), akv::detail::make_adapter(akv::ignore), true, false),
              akv::error::connection_closed);
}
