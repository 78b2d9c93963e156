#include "standalone.hpp"

namespace akv::detail {

standalone_topology::standalone_topology(executor_type ex, const config& cfg, connection_pool& pool,
                                         event_sink events)
    : main_(std::move(ex), cfg)
    , pool_(pool)
    , events_(std::move(events)) {
    main_.add_event_listener(
        [this](const connection_event& e) { events_(as_client_event(e, main_link)); });
}

standalone_topology::~standalone_topology() = default;

asio::awaitable<void> standalone_topology::run() {
    co_await main_.run();
}

void standalone_topology::cancel() {
    main_.cancel();
}

void standalone_topology::start_exec(handler_type handler, executor_type handler_ex,
                                     const request* req, reply_adapter adapter) {
    if (req->has_blocking_command())
        pool_.start_exec(std::move(handler), std::move(handler_ex), req, adapter);
    else
        main_.start_exec(std::move(handler), std::move(handler_ex), req, adapter);
}

void standalone_topology::set_push_sink(push_sink sink) {
    if (!sink) {
        main_.set_push_handler(nullptr);
        return;
    }
    main_.set_push_handler(
        [sink = std::move(sink)](resp::value&& push) { sink(main_link, std::move(push)); });
}

void standalone_topology::enable_tracking(request setup, invalidation_sink sink) {
    main_.set_setup_commands(std::move(setup));
    main_.set_invalidation_handler(std::move(sink));
}

std::vector<endpoint> standalone_topology::masters() const {
    if (const auto m = master_of(0)) return {*m};
    return {};
}

std::optional<endpoint> standalone_topology::master_of(std::uint16_t) const {
    // Known once an attempt has picked the server (a sentinel's master may move).
    const endpoint ep = main_.remote_endpoint();
    if (ep.host.empty()) return std::nullopt;
    return ep;
}

void standalone_topology::add_stats(client_stats& into) const {
    into.connections += main_.stats();
}

} // namespace akv::detail
