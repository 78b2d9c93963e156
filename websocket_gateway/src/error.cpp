#include <akv/gateway/error.hpp>

#include <string>

namespace akv::gateway {

namespace {

class category : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "akv.gateway"; }
    std::string message(int ev) const override {
        switch (static_cast<gateway_error>(ev)) {
        case gateway_error::bad_channel: return "bad channel name";
        case gateway_error::bad_message: return "bad message";
        case gateway_error::too_large: return "message too large";
        case gateway_error::bad_options: return "bad gateway options";
        case gateway_error::bad_tls: return "TLS certificate or key did not load";
        case gateway_error::bind_failed: return "cannot listen on the address";
        }
        return "unknown gateway error";
    }
};

} // namespace

const boost::system::error_category& gateway_category() noexcept {
    static const category c;
    return c;
}

} // namespace akv::gateway
