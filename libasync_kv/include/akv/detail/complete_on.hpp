// Completing a type-erased handler on the executor it was started from.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <tuple>
#include <utility>

namespace akv::detail {

// Posts the call instead of asking the handler for its associated executor, which for an
// any_completion_handler converts executor types and allocates. Posting, never calling in
// place, keeps a completion from re-entering the connection mid-read.
template <class Signature, class... Args>
void complete_on(const boost::asio::any_io_executor& handler_ex,
                 boost::asio::any_completion_handler<Signature> handler, Args&&... args) {
    boost::asio::post(handler_ex, [h = std::move(handler),
                                   a = std::make_tuple(std::forward<Args>(args)...)]() mutable {
        std::apply([&](auto&&... xs) { std::move(h)(std::move(xs)...); }, std::move(a));
    });
}

} // namespace akv::detail
