// RESP writer: commands (arrays of bulk strings) and any RESP3 value (for servers and tests).
#pragma once

#include <akv/resp/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace akv::resp {

void write_aggregate_header(std::string& out, char marker, std::size_t count);
void write_bulk(std::string& out, std::string_view bytes);
void write_command(std::string& out, std::string_view name); // a command with no argument

// Serializes a value tree exactly (RESP3), e.g. for a test server or a proxy.
void write(std::string& out, const value& v);

} // namespace akv::resp
