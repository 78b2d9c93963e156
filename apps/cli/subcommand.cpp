#include "subcommand.hpp"

#include <akv/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <iostream>

namespace akv::cli {

std::optional<std::string> parsed_args::arg(std::string_view name) const {
    const auto found = positional.find(name);
    if (found == positional.end()) return std::nullopt;
    return found->second;
}

std::optional<std::string> parsed_args::value(std::string_view option) const {
    const auto found = options.find(option);
    if (found == options.end()) return std::nullopt;
    return found->second;
}

std::vector<std::string> parsed_args::values(std::string_view option) const {
    std::vector<std::string> out;
    const auto [from, to] = options.equal_range(option);
    for (auto it = from; it != to; ++it)
        out.push_back(it->second);
    return out;
}

namespace {

bool optional_name(std::string_view name) {
    return !name.empty() && name.front() == '[';
}

std::string bare_name(std::string_view name) {
    if (!optional_name(name)) return std::string(name);
    return std::string(name.substr(1, name.size() - 2));
}

} // namespace

parsed_args parse_args(std::string_view family, const subcommand_table& table,
                       const std::vector<std::string>& args) {
    parsed_args p;
    p.family = family;
    if (args.empty()) throw std::invalid_argument("no " + p.family + " subcommand given");
    p.sub = args[0];
    const auto found = table.find(p.sub);
    if (found == table.end())
        throw std::invalid_argument("unknown " + p.family + " subcommand \"" + p.sub + "\"");
    const subcommand_spec& spec = found->second;
    const std::string who = p.sub.empty() ? p.family : p.family + " " + p.sub;

    std::vector<std::string> given;
    bool options_done = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (options_done || a.size() < 2 || a.rfind("--", 0) != 0) {
            given.push_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        const auto option = std::find_if(spec.options.begin(), spec.options.end(),
                                         [&](const option_spec& o) { return a == o.name; });
        if (option == spec.options.end())
            throw std::invalid_argument(who + ": unknown option " + a);
        if (!option->repeatable && p.options.count(a) > 0)
            throw std::invalid_argument(who + ": option " + a + " given twice");
        if (!option->takes_value) {
            p.options.emplace(a, "");
        } else if (i + 1 >= args.size()) {
            throw std::invalid_argument(who + ": option " + a + " needs a value");
        } else {
            p.options.emplace(a, args[++i]);
        }
    }

    const std::size_t optional_count =
        std::count_if(spec.positional.begin(), spec.positional.end(), optional_name);
    const std::size_t required = spec.positional.size() - optional_count;
    if (given.size() < required || given.size() > spec.positional.size()) {
        std::string expected;
        for (std::string_view name : spec.positional)
            expected += " " + std::string(name);
        throw std::invalid_argument(
            who + ": expected" + (expected.empty() ? " nothing" : expected) + ", got " +
            std::to_string(given.size()) + " argument" + (given.size() == 1 ? "" : "s"));
    }
    std::size_t extra = given.size() - required; // how many optional ones were given
    std::size_t next = 0;
    for (std::string_view name : spec.positional) {
        if (optional_name(name)) {
            if (extra == 0) continue;
            --extra;
        }
        p.positional[bare_name(name)] = given[next++];
    }
    return p;
}

bool wants_help(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--") return false;
        if (a == "--help" || a == "-h") return true;
    }
    return false;
}

std::string describe(const boost::system::system_error& e) {
    std::string what = e.what();
    if (e.code().category() != akv::error_category()) return what;
    const std::string suffix = ": " + e.code().message();
    const auto at = what.rfind(suffix);
    if (at != std::string::npos && at > 0) what.erase(at);
    return what;
}

namespace {

// Errors that are the data's answer (exit 1), as opposed to not reaching it or a bad
// configuration (exit 2).
bool refused_by_data(const boost::system::error_code& ec) {
    if (ec.category() != akv::error_category()) return false;
    switch (static_cast<akv::error>(ec.value())) {
    case akv::error::server_error:
    case akv::error::type_mismatch:
    case akv::error::unexpected_null:
    case akv::error::object_too_large:
    case akv::error::script_error:
    case akv::error::not_found:
    case akv::error::corrupt_archive:
    case akv::error::unknown_job:
    case akv::error::unknown_queue:
    case akv::error::bad_job:
    case akv::error::job_active:
    case akv::error::unknown_entry:
    case akv::error::not_dead_letter:
        return true;
    default:
        return false;
    }
}

} // namespace

int run_on_client(const akv::config& cfg, const client_body& body) {
    asio::io_context io;
    akv::client cl(io.get_executor(), cfg);
    int status = exit_usage;
    asio::co_spawn(io, cl.run(), [](std::exception_ptr) {});
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                status = co_await body(cl);
            } catch (const refused& e) {
                std::cerr << "akv: " << e.what() << "\n";
                status = exit_refused;
            } catch (const std::filesystem::filesystem_error& e) {
                std::cerr << "akv: " << e.what() << "\n";
                status = exit_usage;
            } catch (const boost::system::system_error& e) {
                if (refused_by_data(e.code())) {
                    std::cerr << "akv: " << describe(e) << "\n";
                    status = exit_refused;
                } else if (e.code().category() == akv::error_category() &&
                           (e.code() == akv::error::invalid_config ||
                            e.code() == akv::error::invalid_url)) {
                    std::cerr << "akv: " << describe(e) << "\n";
                    status = exit_usage;
                } else {
                    const std::string why = cl.last_error_message();
                    std::cerr << "akv: " << (why.empty() ? std::string(e.what()) : why) << "\n";
                    status = exit_usage;
                }
            } catch (const std::exception& e) {
                std::cerr << "akv: " << e.what() << "\n";
                status = exit_usage;
            }
            cl.cancel();
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    return status;
}

std::string table(const std::vector<std::vector<std::string>>& rows, bool numbers_right) {
    std::vector<std::size_t> width;
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], r[i].size());
        }
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (i > 0) line += "  ";
            const bool right = numbers_right && i > 0 && !r[i].empty() &&
                               (std::isdigit(static_cast<unsigned char>(r[i][0])) || r[i] == "-");
            const std::string pad(width[i] - r[i].size(), ' ');
            if (right)
                line += pad + r[i];
            else if (i + 1 < r.size())
                line += r[i] + pad;
            else
                line += r[i];
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + "\n";
    }
    return out;
}

void print_json(const boost::json::value& v) {
    std::cout << boost::json::serialize(v) << "\n";
}

std::string utc(std::int64_t ms) {
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[80];
    std::snprintf(out, sizeof out, "%s.%03dZ", date, static_cast<int>(ms % 1000));
    return out;
}

std::string human_bytes(std::uint64_t bytes) {
    static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (v >= 1024 && unit + 1 < std::size(units)) {
        v /= 1024;
        ++unit;
    }
    char out[32];
    std::snprintf(out, sizeof out, "%.1f %s", v, units[unit]);
    return out;
}

} // namespace akv::cli
