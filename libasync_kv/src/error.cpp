#include <akv/error.hpp>

namespace akv {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "akv"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::resp_protocol:
            return "malformed RESP reply";
        case error::resp_too_deep:
            return "RESP reply nested deeper than the parser allows";
        case error::resp_too_large:
            return "RESP length beyond the parser's limit";
        case error::resp_unsupported:
            return "RESP3 streamed types are not supported";
        case error::server_error:
            return "the server answered with an error reply";
        case error::type_mismatch:
            return "value does not have the expected type or shape";
        case error::unexpected_null:
            return "null reply where the C++ type has no null";
        case error::incompatible_size:
            return "the response does not have one slot per command of the request";
        case error::empty_request:
            return "the request holds no command";
        case error::not_connected:
            return "not connected to the server";
        case error::connection_lost:
            return "connection lost after the request was written; its outcome is unknown";
        case error::timeout:
            return "request timed out";
        case error::connect_timeout:
            return "connect timed out";
        case error::resolve_failed:
            return "host name did not resolve";
        case error::handshake_failed:
            return "connection handshake (HELLO/SELECT) refused";
        case error::auth_failed:
            return "authentication refused by the server";
        case error::health_check_timeout:
            return "no reply to the health-check PING";
        case error::connection_closed:
            return "connection closed by the application";
        case error::push_overflow:
            return "push queue full: a push frame was dropped";
        case error::pool_exhausted:
            return "no blocking-command connection became free within pool_wait_timeout";
        case error::wrong_role:
            return "server has the wrong role (ROLE)";
        case error::master_not_found:
            return "no sentinel knows the master";
        case error::cross_slot:
            return "keys of one command hash to different cluster slots";
        case error::too_many_redirects:
            return "too many cluster redirects (MOVED/ASK)";
        case error::cluster_down:
            return "no cluster node serves the slot";
        case error::subscriber_overflow:
            return "subscriber fell behind its queue bound and was disconnected";
        case error::subscription_closed:
            return "subscription closed";
        case error::script_error:
            return "Lua script failed";
        case error::invalid_config:
            return "invalid configuration";
        case error::invalid_url:
            return "invalid Redis URL";
        case error::object_too_large:
            return "object larger than the configured limit";
        case error::server_start_failed:
            return "could not start redis-server";
        case error::not_found:
            return "no such model, version or tag";
        case error::corrupt_archive:
            return "stored archive is corrupt";
        case error::unknown_job:
            return "no such job in the queue";
        case error::bad_job:
            return "malformed job record";
        case error::job_active:
            return "the job is running";
        case error::lease_lost:
            return "the job's lease was lost";
        case error::unknown_queue:
            return "no such queue";
        case error::invalid_model:
            return "invalid model";
        case error::model_failed:
            return "the model failed";
        case error::unknown_entry:
            return "no such stream entry";
        case error::not_dead_letter:
            return "not a dead-letter stream or entry";
        case error::partition_mismatch:
            return "the queue's partition count differs from the one given";
        }
        return "unknown akv error";
    }
};

} // namespace

const boost::system::error_category& error_category() noexcept {
    static const category instance; // immutable: safe as a function-local constant
    return instance;
}

void throw_error(error e, const std::string& detail) {
    throw boost::system::system_error(make_error_code(e), detail);
}

} // namespace akv
