#include <akv/messaging/stream.hpp>

namespace akv::messaging {

stream_producer::stream_producer(client& c, std::string stream, trim_options trim)
    : client_(c)
    , stream_(std::move(stream))
    , trim_(std::move(trim)) {}

void stream_producer::push_xadd(request& req, const field_list& fields) const {
    if (trim_.by == trim_options::strategy::none) {
        req.push("XADD", stream_, "*", fields);
        return;
    }
    const std::string_view by = trim_.by == trim_options::strategy::maxlen ? "MAXLEN" : "MINID";
    const std::string_view how = trim_.approximate ? "~" : "=";
    if (trim_.approximate && trim_.limit > 0)
        req.push("XADD", stream_, by, how, trim_.threshold, "LIMIT", trim_.limit, "*", fields);
    else
        req.push("XADD", stream_, by, how, trim_.threshold, "*", fields);
}

asio::awaitable<std::string> stream_producer::add(const field_list& fields) {
    request req;
    push_xadd(req, fields);
    response<std::string> resp;
    co_await client_.exec(req, resp);
    co_return std::move(std::get<0>(resp).value());
}

asio::awaitable<std::vector<std::string>>
stream_producer::add_many(const std::vector<field_list>& entries) {
    std::vector<std::string> ids;
    if (entries.empty()) co_return ids;
    request req;
    for (const auto& e : entries)
        push_xadd(req, e);
    generic_response resp;
    co_await client_.exec(req, resp);
    ids.reserve(resp.size());
    for (auto& r : resp)
        ids.push_back(std::move(r.value().str)); // throws on an error reply
    co_return ids;
}

namespace {

// Takes the bytes of `s`: moved out when the reply is ours to consume, copied otherwise.
std::string take(std::string& s, std::true_type) {
    return std::move(s);
}
std::string take(const std::string& s, std::false_type) {
    return s;
}

template <bool Move, class Value> void add_entry(std::vector<stream_entry>& out, Value& e) {
    using moving = std::bool_constant<Move>;
    if (e.elements.size() < 2) return;
    stream_entry entry;
    entry.id = take(e.elements[0].str, moving{});
    auto& fields = e.elements[1].elements;
    entry.fields.reserve(fields.size() / 2);
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
        entry.fields.emplace_back(take(fields[i].str, moving{}), take(fields[i + 1].str, moving{}));
    if (e.elements.size() >= 3 && !e.elements[2].str.empty())
        entry.deliveries = std::stoull(e.elements[2].str);
    out.push_back(std::move(entry));
}

template <bool Move, class Value> std::vector<stream_entry> entries(Value& reply) {
    std::vector<stream_entry> out;
    if (reply.is_null()) return out;
    if (reply.data_type == resp::type::map) {
        // XREAD(GROUP): stream name => entries
        for (std::size_t i = 1; i < reply.elements.size(); i += 2)
            for (auto& e : reply.elements[i].elements)
                add_entry<Move>(out, e);
        return out;
    }
    for (auto& e : reply.elements)
        add_entry<Move>(out, e);
    return out;
}

} // namespace

std::vector<stream_entry> entries_from(const resp::value& reply) {
    return entries<false>(reply);
}
std::vector<stream_entry> entries_from(resp::value&& reply) {
    return entries<true>(reply);
}

} // namespace akv::messaging
