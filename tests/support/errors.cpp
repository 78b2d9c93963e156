#include "support/errors.hpp"

namespace akv::test {

boost::system::system_error error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const boost::system::system_error& e) {
        return e;
    }
    ADD_FAILURE() << "no error was thrown";
    return boost::system::system_error(boost::system::error_code{}, "no error");
}

::testing::AssertionResult contains(std::string_view text, std::string_view part) {
    if (text.find(part) != std::string_view::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "\"" << text << "\" does not contain \"" << part << "\"";
}

} // namespace akv::test
