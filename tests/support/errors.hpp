// Asserting on errors: the error an action throws, and that its message names what it should.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <gtest/gtest.h>

#include <functional>
#include <string_view>
#include <type_traits>

namespace akv::test {

// Runs `action`, which must throw boost::system::system_error, and returns that error.
boost::system::system_error error_of(const std::function<void()>& action);

// The same for a coroutine: co_await error_of([&]() -> awaitable<void> { ... }).
template <class F>
requires std::is_invocable_v<F&> &&(!std::is_void_v<std::invoke_result_t<F&>>)
    boost::asio::awaitable<boost::system::system_error> error_of(F f) {
    try {
        co_await f();
    } catch (const boost::system::system_error& e) {
        co_return e;
    }
    ADD_FAILURE() << "no error was thrown";
    co_return boost::system::system_error(boost::system::error_code{}, "no error");
}

// ::testing is GoogleTest's; inside akv, plain testing:: would name akv::testing (the fixtures).
::testing::AssertionResult contains(std::string_view text, std::string_view part);

} // namespace akv::test
