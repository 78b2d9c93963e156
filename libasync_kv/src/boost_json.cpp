// The one translation unit that compiles Boost.JSON (Debian ships it header-only).
#include <boost/json/src.hpp>
