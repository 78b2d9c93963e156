// `akv stream ...`: a stream's length and ends, its consumer groups and what they have pending,
// read with XINFO and XPENDING (the library's stream classes produce and consume; looking in
// is the server's job); and dead letters sent back to their source (messaging::dead_letters).
#include "commands.hpp"
#include "subcommand.hpp"

#include <akv/error.hpp>
#include <akv/messaging/dead_letter.hpp>

#include <boost/json.hpp>

#include <iostream>

namespace akv::cli {

const char* const stream_usage = R"(usage: akv [OPTIONS] stream SUBCOMMAND STREAM [ARG...] [--json]

Looks into a Redis stream and its consumer groups. OPTIONS (--redis URL, ...) as for
`akv --help`, before the word `stream`.

subcommands:
  groups STREAM               each consumer group: name, consumers, pending entries, last
                              delivered id, lag (entries not yet delivered; "-" when Redis
                              cannot tell, after deletions)
  pending STREAM GROUP        entries delivered to GROUP and not acked: count, first and last
                              id, count per consumer
      --detail                also each entry: id, consumer, idle ms, deliveries
      --count N               with --detail: the first N entries (default 100)
  info STREAM                 length, first and last entry id, last generated id, entries ever
                              added, and the groups (as `groups`)
  requeue DEAD [ID]           sends entry ID of the dead-letter stream DEAD ("<stream>:dead",
                              where a consumer group puts entries that keep failing) back to
                              its source stream: its own fields under a new id, and it leaves
                              DEAD, in one step
      --all                   instead of ID: every entry DEAD holds now

options:
  --json                      one JSON object on stdout
  --help                      this text

exit status: 0 done; 1 no such stream, group or entry (or the key is not a stream, or not a
dead-letter stream); 2 usage, configuration or connection error
)";

namespace {

namespace json = boost::json;

const subcommand_table& subcommands() {
    static const subcommand_table table{
        {"groups", {{"STREAM"}, {{"--json"}}}},
        {"pending", {{"STREAM", "GROUP"}, {{"--json"}, {"--detail"}, {"--count", true}}}},
        {"info", {{"STREAM"}, {{"--json"}}}},
        {"requeue", {{"DEAD", "[ID]"}, {{"--json"}, {"--all"}}}},
    };
    return table;
}

// ---- reading XINFO / XPENDING replies (RESP3 maps or RESP2 flat arrays alike) ----

const resp::value* field(const resp::value& map, std::string_view name) {
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2)
        if (map.elements[i].str == name) return &map.elements[i + 1];
    return nullptr;
}

// The field as text; "" when absent or null.
std::string text(const resp::value* v) {
    if (!v || v->is_null()) return "";
    return v->str;
}

// The field as a number; nullopt when absent, null or not a number.
std::optional<std::int64_t> integer(const resp::value* v) {
    if (!v || v->is_null() || v->is_aggregate()) return std::nullopt;
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(v->str.data(), v->str.data() + v->str.size(), n);
    if (ec != std::errc() || end != v->str.data() + v->str.size()) return std::nullopt;
    return n;
}

std::string cell(const std::optional<std::int64_t>& n) {
    return n ? std::to_string(*n) : "-";
}
json::value json_of(const std::optional<std::int64_t>& n) {
    if (n) return *n;
    return nullptr;
}
json::value json_of(const std::string& s) {
    if (s.empty()) return nullptr;
    return json::string(s);
}

// Runs `req`, whose first command is `TYPE stream`: refuses a missing stream or a key of another
// type, and a reply of the other commands that is an error (NOGROUP: no such group).
asio::awaitable<generic_response> exec_on_stream(akv::client& cl, const request& req,
                                                 const std::string& stream,
                                                 const std::string& group) {
    generic_response resp;
    co_await cl.exec(req, resp);
    const std::string type = resp.at(0).value().str;
    if (type == "none") throw refused("stream " + in_quotes(stream) + ": no such stream");
    if (type != "stream")
        throw refused("stream " + in_quotes(stream) + ": the key holds a " + type +
                      ", not a stream");
    for (std::size_t i = 1; i < resp.size(); ++i) {
        if (!resp[i].has_error()) continue;
        const std::string& message = resp[i].error().message;
        if (message.rfind("NOGROUP", 0) == 0)
            throw refused("stream " + in_quotes(stream) + ": no consumer group " +
                          in_quotes(group));
        throw refused("stream " + in_quotes(stream) + ": " + message);
    }
    co_return resp;
}

struct group_row {
    std::string name;
    std::optional<std::int64_t> consumers, pending, entries_read, lag;
    std::string last_delivered;
};

std::vector<group_row> groups_of(const resp::value& reply) {
    std::vector<group_row> rows;
    for (const auto& g : reply.elements) {
        group_row r;
        r.name = text(field(g, "name"));
        r.consumers = integer(field(g, "consumers"));
        r.pending = integer(field(g, "pending"));
        r.last_delivered = text(field(g, "last-delivered-id"));
        r.entries_read = integer(field(g, "entries-read"));
        r.lag = integer(field(g, "lag"));
        rows.push_back(std::move(r));
    }
    return rows;
}

json::array groups_json(const std::vector<group_row>& groups) {
    json::array arr;
    for (const auto& g : groups) {
        json::object j;
        j["name"] = g.name;
        j["consumers"] = json_of(g.consumers);
        j["pending"] = json_of(g.pending);
        j["last_delivered_id"] = g.last_delivered;
        j["entries_read"] = json_of(g.entries_read);
        j["lag"] = json_of(g.lag);
        arr.push_back(std::move(j));
    }
    return arr;
}

std::string groups_table(const std::vector<group_row>& groups) {
    if (groups.empty()) return "(no consumer groups)\n";
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"GROUP", "CONSUMERS", "PENDING", "LAST DELIVERED", "LAG"});
    for (const auto& g : groups)
        rows.push_back({g.name, cell(g.consumers), cell(g.pending), g.last_delivered, cell(g.lag)});
    return table(rows, true);
}

// ---- subcommands ----

asio::awaitable<int> groups(akv::client& cl, const parsed_args& a) {
    const std::string stream = *a.arg("STREAM");
    request req;
    req.push("TYPE", stream);
    req.push("XINFO", "GROUPS", stream);
    const std::string no_group;
    const generic_response resp = co_await exec_on_stream(cl, req, stream, no_group);
    const std::vector<group_row> rows = groups_of(resp.at(1).value());
    if (a.has("--json")) {
        json::object j;
        j["stream"] = stream;
        j["groups"] = groups_json(rows);
        print_json(j);
    } else {
        std::cout << groups_table(rows);
    }
    co_return exit_done;
}

asio::awaitable<int> pending(akv::client& cl, const parsed_args& a) {
    const std::string stream = *a.arg("STREAM");
    const std::string group = *a.arg("GROUP");
    const bool detail = a.has("--detail");
    if (a.has("--count") && !detail)
        throw std::invalid_argument("stream pending: --count goes with --detail");
    const std::int64_t count =
        a.has("--count")
            ? parse_number<std::int64_t>("option --count", *a.value("--count"), 1, 1'000'000)
            : 100;
    request req;
    req.push("TYPE", stream);
    req.push("XPENDING", stream, group);
    if (detail) req.push("XPENDING", stream, group, "-", "+", count);
    const generic_response resp = co_await exec_on_stream(cl, req, stream, group);

    // Summary: [count, first id, last id, [[consumer, count], ...]].
    const resp::value& summary = resp.at(1).value();
    const std::optional<std::int64_t> total =
        summary.elements.size() > 0 ? integer(&summary.elements[0]) : std::nullopt;
    const std::string first = summary.elements.size() > 1 ? text(&summary.elements[1]) : "";
    const std::string last = summary.elements.size() > 2 ? text(&summary.elements[2]) : "";
    std::vector<std::pair<std::string, std::optional<std::int64_t>>> consumers;
    if (summary.elements.size() > 3)
        for (const auto& c : summary.elements[3].elements)
            if (c.elements.size() >= 2)
                consumers.emplace_back(c.elements[0].str, integer(&c.elements[1]));

    struct entry {
        std::string id, consumer;
        std::optional<std::int64_t> idle_ms, deliveries;
    };
    std::vector<entry> entries;
    if (detail)
        for (const auto& e : resp.at(2).value().elements)
            if (e.elements.size() >= 4)
                entries.push_back({e.elements[0].str, e.elements[1].str, integer(&e.elements[2]),
                                   integer(&e.elements[3])});

    if (a.has("--json")) {
        json::object j;
        j["stream"] = stream;
        j["group"] = group;
        j["pending"] = json_of(total);
        j["first_id"] = json_of(first);
        j["last_id"] = json_of(last);
        json::array per_consumer;
        for (const auto& [name, n] : consumers) {
            json::object c;
            c["name"] = name;
            c["pending"] = json_of(n);
            per_consumer.push_back(std::move(c));
        }
        j["consumers"] = std::move(per_consumer);
        if (detail) {
            json::array arr;
            for (const auto& e : entries) {
                json::object o;
                o["id"] = e.id;
                o["consumer"] = e.consumer;
                o["idle_ms"] = json_of(e.idle_ms);
                o["deliveries"] = json_of(e.deliveries);
                arr.push_back(std::move(o));
            }
            j["entries"] = std::move(arr);
        }
        print_json(j);
        co_return exit_done;
    }
    std::vector<std::vector<std::string>> head{
        {"stream", stream},
        {"group", group},
        {"pending", cell(total)},
        {"first id", first.empty() ? "-" : first},
        {"last id", last.empty() ? "-" : last},
    };
    std::cout << table(head, false);
    if (!consumers.empty()) {
        std::vector<std::vector<std::string>> rows{{"CONSUMER", "PENDING"}};
        for (const auto& [name, n] : consumers)
            rows.push_back({name, cell(n)});
        std::cout << "\n" << table(rows, true);
    }
    if (detail && !entries.empty()) {
        std::vector<std::vector<std::string>> rows{{"ID", "CONSUMER", "IDLE MS", "DELIVERIES"}};
        for (const auto& e : entries)
            rows.push_back({e.id, e.consumer, cell(e.idle_ms), cell(e.deliveries)});
        std::cout << "\n" << table(rows, true);
    }
    co_return exit_done;
}

// The id of XINFO STREAM's first-entry / last-entry ([id, fields] or null).
std::string entry_id(const resp::value* entry) {
    if (!entry || entry->is_null() || entry->elements.empty()) return "";
    return entry->elements[0].str;
}

asio::awaitable<int> info(akv::client& cl, const parsed_args& a) {
    const std::string stream = *a.arg("STREAM");
    request req;
    req.push("TYPE", stream);
    req.push("XINFO", "STREAM", stream);
    req.push("XINFO", "GROUPS", stream);
    const std::string no_group;
    const generic_response resp = co_await exec_on_stream(cl, req, stream, no_group);
    const resp::value& s = resp.at(1).value();
    const std::optional<std::int64_t> length = integer(field(s, "length"));
    const std::string first = entry_id(field(s, "first-entry"));
    const std::string last = entry_id(field(s, "last-entry"));
    const std::string last_generated = text(field(s, "last-generated-id"));
    const std::optional<std::int64_t> added = integer(field(s, "entries-added"));
    const std::vector<group_row> groups = groups_of(resp.at(2).value());

    if (a.has("--json")) {
        json::object j;
        j["stream"] = stream;
        j["length"] = json_of(length);
        j["first_id"] = json_of(first);
        j["last_id"] = json_of(last);
        j["last_generated_id"] = json_of(last_generated);
        j["entries_added"] = json_of(added);
        j["groups"] = groups_json(groups);
        print_json(j);
        co_return exit_done;
    }
    std::vector<std::vector<std::string>> rows{
        {"stream", stream},
        {"length", cell(length)},
        {"first id", first.empty() ? "-" : first},
        {"last id", last.empty() ? "-" : last},
        {"last generated id", last_generated.empty() ? "-" : last_generated},
        {"entries added", cell(added)},
        {"groups", std::to_string(groups.size())},
    };
    std::cout << table(rows, false);
    if (!groups.empty()) std::cout << "\n" << groups_table(groups);
    co_return exit_done;
}

asio::awaitable<int> requeue(akv::client& cl, const parsed_args& a) {
    const std::string dead = *a.arg("DEAD");
    const std::optional<std::string> id = a.arg("ID");
    if (id.has_value() == a.has("--all"))
        throw std::invalid_argument("stream requeue: give an entry ID or --all, not both");
    messaging::dead_letters letters(cl, dead);
    const std::string source = co_await letters.source();
    json::object j{{"stream", dead}, {"source", source}};
    std::string text;
    if (id) {
        const std::string new_id = co_await letters.requeue(*id);
        j["id"] = *id;
        j["new_id"] = new_id;
        text = *id + " -> " + source + " " + new_id + "\n";
    } else {
        const messaging::requeue_result r = co_await letters.requeue_all();
        j["requeued"] = r.requeued;
        j["skipped"] = r.skipped;
        text = std::to_string(r.requeued) + " sent back to " + source;
        if (r.skipped) text += ", " + std::to_string(r.skipped) + " left (no dead:id field)";
        text += "\n";
    }
    if (a.has("--json"))
        print_json(j);
    else
        std::cout << text;
    co_return exit_done;
}

} // namespace

int run_stream_command(const akv::config& cfg, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << stream_usage;
        return exit_done;
    }
    parsed_args a;
    try {
        a = parse_args("stream", subcommands(), args);
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv stream --help lists the subcommands)\n";
        return exit_usage;
    }
    return run_on_client(cfg, [&](akv::client& cl) -> asio::awaitable<int> {
        if (a.sub == "groups") co_return co_await groups(cl, a);
        if (a.sub == "pending") co_return co_await pending(cl, a);
        if (a.sub == "requeue") co_return co_await requeue(cl, a);
        co_return co_await info(cl, a);
    });
}

} // namespace akv::cli
