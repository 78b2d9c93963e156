// What the subcommand families of akv (stream, blob, model, embedding, monitor) share: the
// command line checked against a table of subcommands, a client run for one command with its
// failures turned into exit statuses, and the table / JSON printing.
#pragma once

#include <akv/client.hpp>
#include <akv/config.hpp>

#include <boost/json/value.hpp>

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace akv::cli {

// Exit statuses, as `akv --help` states them.
inline constexpr int exit_done = 0;
inline constexpr int exit_refused = 1; // no such stream/group/model/key, ...
inline constexpr int exit_usage = 2;   // usage, configuration, input file or connection error

// The server's data says no (the thing named does not exist, ...): exit 1 with the message.
struct refused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct option_spec {
    std::string_view name;    // "--count"
    bool takes_value = false; // "--count N"
    bool repeatable = false;  // "--tag A --tag B"
};

// Positional names in brackets ("[REF]") may be left out; given ones fill them left to right.
struct subcommand_spec {
    std::vector<std::string_view> positional;
    std::vector<option_spec> options;
};

using subcommand_table = std::map<std::string, subcommand_spec, std::less<>>;

struct parsed_args {
    std::string family;                                         // "stream"
    std::string sub;                                            // "groups"
    std::map<std::string, std::string, std::less<>> positional; // by name, brackets removed
    std::multimap<std::string, std::string, std::less<>> options;

    // The positional `name` ("REF" for "[REF]"); nullopt when left out.
    std::optional<std::string> arg(std::string_view name) const;
    bool has(std::string_view option) const { return options.count(option) > 0; }
    std::optional<std::string> value(std::string_view option) const;
    std::vector<std::string> values(std::string_view option) const;
};

// Checks `args` (what follows the family's word) against `table`. Throws std::invalid_argument
// naming the problem: unknown subcommand or option, missing value, wrong number of arguments.
// "--" ends the options (a positional may then start with "--"). A family without subcommands
// (monitor) has the one named "", and its `args` start with "".
parsed_args parse_args(std::string_view family, const subcommand_table& table,
                       const std::vector<std::string>& args);

// Whether `args` asks for help (--help or -h before any "--").
bool wants_help(const std::vector<std::string>& args);

// `text` as a whole number in min..max, else std::invalid_argument naming `what`.
template <class T> T parse_number(std::string_view what, const std::string& text, T min, T max) {
    T v{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
        throw std::invalid_argument(std::string(what) + ": \"" + text +
                                    "\" is not a whole number in " + std::to_string(min) + ".." +
                                    std::to_string(max));
    return v;
}

// Runs `body` on a client of `cfg` and returns its status. What it throws becomes a message on
// stderr ("akv: ...") and a status: refused and the library's "no such ..." and error-reply
// codes 1; std::invalid_argument, files, configuration and connection failures 2.
using client_body = std::function<asio::awaitable<int>(akv::client&)>;
int run_on_client(const akv::config& cfg, const client_body& body);

// The message of a library error, without the generic text and number that system_error
// appends ("stream \"s\": no group \"g\"", not "...: the server answered ... [akv:5]").
std::string describe(const boost::system::system_error& e);

// `s` in double quotes, as messages name things: stream "events".
inline std::string in_quotes(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// Rows of cells, columns padded; with `numbers_right`, cells that start with a digit (and "-")
// are right-aligned from the second column on.
std::string table(const std::vector<std::vector<std::string>>& rows, bool numbers_right);
void print_json(const boost::json::value& v);
// Milliseconds since the epoch as "2024-05-01T12:00:00.123Z".
std::string utc(std::int64_t ms);
// 1536 -> "1.5 KiB".
std::string human_bytes(std::uint64_t bytes);

} // namespace akv::cli
