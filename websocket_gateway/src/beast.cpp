// The one translation unit that compiles Beast (BOOST_BEAST_SEPARATE_COMPILATION): the rest of
// the gateway includes Beast's headers only where it speaks HTTP or WebSocket.
#include <boost/beast/src.hpp>
