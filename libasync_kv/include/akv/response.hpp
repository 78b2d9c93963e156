// Response types: where the replies of a request go.
//
//   akv::response<std::string, int>   one typed slot per command, in order
//   akv::generic_response             any number of commands, each reply as a resp::value tree
//   akv::ignore                       discard the replies (errors included)
#pragma once

#include <akv/resp/value.hpp>
#include <akv/result.hpp>

#include <tuple>
#include <vector>

namespace akv {

// A slot or element type that accepts any reply and keeps nothing.
struct ignore_t {};
inline constexpr ignore_t ignore{};

template <class... Ts> using response = std::tuple<result<Ts>...>;

using generic_response = std::vector<result<resp::value>>;

} // namespace akv
