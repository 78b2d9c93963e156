// A race of two awaitables whose first one may throw.
//
// asio's `a || b` (awaitable_operators) completes with the first branch that finishes without
// an exception: a branch that throws makes it wait for the other one (a handler that failed
// would wait for its timeout; a subscription that closed, for stop()). settled() makes a
// branch's outcome, value or exception, a value, so the race ends with whichever finishes first:
//   auto r = co_await (settled(sub->receive()) || stop_requested());
//   if (r.index() == 0) use(std::get<0>(r).get()); // rethrows what receive() threw
#pragma once

#include <boost/asio/awaitable.hpp>

#include <exception>
#include <utility>

namespace akv::detail {

template <class T> struct settled_result {
    T value{};
    std::exception_ptr failure;

    // The value, or what the awaitable threw.
    T get() && {
        if (failure) std::rethrow_exception(failure);
        return std::move(value);
    }
};

template <> struct settled_result<void> {
    std::exception_ptr failure;

    void get() && {
        if (failure) std::rethrow_exception(failure);
    }
};

inline boost::asio::awaitable<settled_result<void>> settled(boost::asio::awaitable<void> a) {
    settled_result<void> out;
    try {
        co_await std::move(a);
    } catch (...) {
        out.failure = std::current_exception();
    }
    co_return out;
}

template <class T>
boost::asio::awaitable<settled_result<T>> settled(boost::asio::awaitable<T> a) {
    settled_result<T> out;
    try {
        out.value = co_await std::move(a);
    } catch (...) {
        out.failure = std::current_exception();
    }
    co_return out;
}

} // namespace akv::detail
