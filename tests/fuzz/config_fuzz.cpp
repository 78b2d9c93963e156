// Fuzzes the config readers with text from outside: a URL (command line, environment), a JSON
// document (a config file) and, when the input has a '=', a command-line flag key=value. A bad
// input must end in boost::system::system_error; any other exception escapes and is reported as a
// crash, like a sanitizer report.

#include <akv/config.hpp>

#include <boost/system/system_error.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    try {
        const akv::config cfg = akv::config::from_url(text);
        (void)cfg.redacted_url();
    } catch (const boost::system::system_error&) {
    }

    try {
        const akv::config cfg = akv::config::from_json(text);
        (void)cfg.redacted_url();
    } catch (const boost::system::system_error&) {
    }

    if (const auto eq = text.find('='); eq != std::string_view::npos) {
        try {
            akv::config cfg;
            cfg.set(text.substr(0, eq), text.substr(eq + 1));
            (void)cfg.redacted_url();
        } catch (const boost::system::system_error&) {
        }
    }
    return 0;
}
