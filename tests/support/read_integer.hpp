// The integer at a key, read with GET through `conn`: how the fault tests check that every
// acknowledged INCR is there.
#pragma once

#include <akv/connection.hpp>

#include <boost/asio/io_context.hpp>

#include <string>

namespace akv::test {

long long read_integer(boost::asio::io_context& io, connection& conn, const std::string& key);

} // namespace akv::test
