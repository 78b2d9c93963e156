#include <akv/queue/celery_message.hpp>

#include <akv/error.hpp>
#include <akv/json_text.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace akv::queue::celery {

namespace json = boost::json;

namespace {

[[noreturn]] void bad(const std::string& what) {
    throw_error(error::bad_job, "celery: " + what);
}

std::string text_of(const json::object& o, std::string_view key) {
    if (const auto* v = o.if_contains(key); v && v->is_string())
        return std::string(v->get_string());
    return {};
}

std::optional<double> seconds_of(const json::value& v) {
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    if (v.is_double()) return v.get_double();
    return std::nullopt;
}

std::optional<clock::time_point> date_of(const json::object& headers, std::string_view key) {
    const auto* v = headers.if_contains(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) bad("headers[\"" + std::string(key) + "\"]: expected a date");
    auto t = parse_iso8601(v->get_string());
    if (!t)
        bad("headers[\"" + std::string(key) + "\"]: not an ISO 8601 date: \"" +
            std::string(v->get_string()) + "\"");
    return t;
}

json::value number_or_null(const std::optional<double>& d) {
    if (!d) return nullptr;
    return *d;
}

json::value date_or_null(const std::optional<clock::time_point>& t) {
    if (!t) return nullptr;
    return json::string(iso8601(*t));
}

constexpr std::string_view b64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

} // namespace

std::string priority_list(std::string_view queue, int priority) {
    int step = 0;
    for (int s : priority_steps)
        if (priority >= s) step = s;
    if (step == 0) return std::string(queue);
    std::string out(queue);
    out += priority_separator;
    out += static_cast<char>('0' + step);
    return out;
}

std::string_view queue_of_list(std::string_view list) {
    const auto at = list.rfind(priority_separator);
    return at == std::string_view::npos ? list : list.substr(0, at);
}

task_message decode_task(std::string_view envelope) {
    json::error_code ec;
    json::value v = json::parse(envelope, ec);
    if (ec) bad("the message is not JSON (" + ec.message() + ")");
    const json::object* o = v.if_object();
    if (!o) bad("the message is not a JSON object");
    const json::object* headers = nullptr;
    if (const auto* h = o->if_contains("headers")) headers = h->if_object();
    const json::object* props = nullptr;
    if (const auto* p = o->if_contains("properties")) props = p->if_object();
    if (!props) bad("malformed envelope: no \"properties\" object");

    task_message m;
    m.delivery_tag = text_of(*props, "delivery_tag");
    if (m.delivery_tag.empty()) bad("malformed envelope: no properties.delivery_tag");
    if (const auto* di = props->if_contains("delivery_info"); di && di->is_object()) {
        m.exchange = text_of(di->get_object(), "exchange");
        m.routing_key = text_of(di->get_object(), "routing_key");
        if (const auto* r = di->get_object().if_contains("redelivered"); r && r->is_bool())
            m.redelivered = r->get_bool();
    }
    m.correlation_id = text_of(*props, "correlation_id");
    m.reply_to = text_of(*props, "reply_to");
    if (const auto* p = props->if_contains("priority"))
        if (auto n = seconds_of(*p)) m.priority = static_cast<int>(*n);

    const std::string content_type = text_of(*o, "content-type");
    if (content_type != "application/json")
        bad("content type \"" + content_type +
            "\" is not supported: only JSON (Celery's task_serializer = \"json\")");
    if (!headers || !headers->contains("task"))
        bad(headers && o->contains("body")
                ? "malformed envelope: no headers[\"task\"]"
                : "message protocol 1 (or no headers) is not supported: Celery 4+ sends 2");
    m.task = text_of(*headers, "task");
    m.id = text_of(*headers, "id");
    if (m.task.empty()) bad("malformed envelope: headers[\"task\"] is not a name");
    if (m.id.empty()) bad("malformed envelope: headers[\"id\"] is not a task id");
    if (const auto* r = headers->if_contains("retries"))
        if (auto n = seconds_of(*r)) m.retries = static_cast<int>(*n);
    m.eta = date_of(*headers, "eta");
    m.expires = date_of(*headers, "expires");
    if (const auto* tl = headers->if_contains("timelimit"); tl && tl->is_array()) {
        const auto& a = tl->get_array();
        if (a.size() > 0) m.time_limit = seconds_of(a[0]);
        if (a.size() > 1) m.soft_time_limit = seconds_of(a[1]);
    }
    if (const auto* ir = headers->if_contains("ignore_result"); ir && ir->is_bool())
        m.ignore_result = ir->get_bool();
    if (const auto* r = headers->if_contains("redelivered"); r && r->is_bool() && r->get_bool())
        m.redelivered = true;
    m.root_id = text_of(*headers, "root_id");
    m.parent_id = text_of(*headers, "parent_id");
    m.group = text_of(*headers, "group");
    m.origin = text_of(*headers, "origin");

    const std::string body_text = text_of(*o, "body");
    std::string body;
    if (text_of(*props, "body_encoding") == "base64") {
        auto decoded = base64_decode(body_text);
        if (!decoded) bad("the body is not base64");
        body = std::move(*decoded);
    } else {
        body = body_text;
    }
    json::value b = json::parse(body, ec);
    if (ec) bad("the body is not JSON (" + ec.message() + ")");
    if (!b.is_array() || b.get_array().size() < 2 || !b.get_array()[0].is_array() ||
        !b.get_array()[1].is_object())
        bad("the body is not [args, kwargs, embed]");
    auto& parts = b.get_array();
    m.args = std::move(parts[0].get_array());
    m.kwargs = std::move(parts[1].get_object());
    if (parts.size() > 2) m.embed = std::move(parts[2]);
    return m;
}

std::string encode_task(const task_fields& f) {
    json::array body{
        f.args, f.kwargs,
        json::object{
            {"callbacks", nullptr}, {"errbacks", nullptr}, {"chain", nullptr}, {"chord", nullptr}}};
    const std::string body_text = json_text(body, "celery task arguments");
    std::string argsrepr = json::serialize(f.args);
    json::object headers{
        {"lang", "py"},
        {"task", f.task},
        {"id", f.id},
        {"shadow", nullptr},
        {"eta", date_or_null(f.eta)},
        {"expires", date_or_null(f.expires)},
        {"group", nullptr},
        {"group_index", nullptr},
        {"retries", f.retries},
        {"timelimit", json::array{number_or_null(f.time_limit), number_or_null(f.soft_time_limit)}},
        {"root_id", f.root_id.empty() ? f.id : f.root_id},
        {"parent_id", f.parent_id.empty() ? json::value(nullptr) : json::value(f.parent_id)},
        {"argsrepr", argsrepr},
        {"kwargsrepr", json::serialize(f.kwargs)},
        {"origin", f.origin},
        {"ignore_result", f.ignore_result},
    };
    const int priority = std::clamp(f.priority, 0, 9);
    json::object envelope{
        {"body", base64_encode(body_text)},
        {"content-encoding", "utf-8"},
        {"content-type", "application/json"},
        {"headers", std::move(headers)},
        {"properties",
         json::object{
             {"correlation_id", f.id},
             {"reply_to", ""},
             {"delivery_mode", 2},
             {"delivery_info", json::object{{"exchange", ""}, {"routing_key", f.queue}}},
             {"priority", priority},
             {"body_encoding", "base64"},
             {"delivery_tag", f.delivery_tag},
         }},
    };
    return json::serialize(envelope);
}

std::string retry_envelope(std::string_view envelope, int retries, clock::time_point eta,
                           std::string_view delivery_tag) {
    json::error_code ec;
    json::value v = json::parse(envelope, ec);
    if (ec || !v.is_object()) bad("retry: the message is not a JSON object");
    auto& o = v.get_object();
    auto* headers = o.if_contains("headers");
    auto* props = o.if_contains("properties");
    if (!headers || !headers->is_object() || !props || !props->is_object())
        bad("retry: malformed envelope");
    auto& h = headers->get_object();
    h["retries"] = retries;
    h["eta"] = iso8601(eta);
    h.erase("redelivered");
    auto& p = props->get_object();
    p["delivery_tag"] = delivery_tag;
    if (auto* di = p.if_contains("delivery_info"); di && di->is_object())
        di->get_object().erase("redelivered");
    return json::serialize(v);
}

json::object encode_exception(const exception_info& e) {
    return json::object{{"exc_type", e.type}, {"exc_message", e.args}, {"exc_module", e.module}};
}

std::string result_record(std::string_view task_id, std::string_view status,
                          const json::value& result, std::string_view traceback,
                          clock::time_point done) {
    json::object o{
        {"status", status},
        {"result", result},
        {"traceback", traceback.empty() ? json::value(nullptr) : json::value(traceback)},
        {"children", json::array{}},
        {"date_done", iso8601(done, false)},
        {"task_id", task_id},
    };
    return json_text(o, "celery result");
}

task_result decode_result(std::string_view record) {
    json::error_code ec;
    json::value v = json::parse(record, ec);
    if (ec || !v.is_object()) bad("a result record that is not a JSON object");
    auto& o = v.get_object();
    task_result r;
    r.status = text_of(o, "status");
    if (r.status.empty()) bad("a result record without a status");
    if (auto* res = o.if_contains("result")) r.result = std::move(*res);
    r.traceback = text_of(o, "traceback");
    return r;
}

std::string task_result::error_text() const {
    const auto* o = result.if_object();
    if (!o) return status;
    std::string text = text_of(*o, "exc_type");
    if (const auto* m = o->if_contains("exc_message")) {
        std::string msg;
        if (m->is_string())
            msg = m->get_string();
        else if (m->is_array() && m->get_array().size() == 1 && m->get_array()[0].is_string())
            msg = m->get_array()[0].get_string();
        else
            msg = json::serialize(*m);
        text += ": " + msg;
    }
    return text;
}

std::string iso8601(clock::time_point t, bool with_offset) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
    std::time_t secs = static_cast<std::time_t>(us.count() / 1000000);
    long frac = static_cast<long>(us.count() % 1000000);
    if (frac < 0) {
        frac += 1000000;
        --secs;
    }
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld%s", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac,
                  with_offset ? "+00:00" : "");
    return buf;
}

std::optional<clock::time_point> parse_iso8601(std::string_view s) {
    auto number = [&](std::size_t at, std::size_t len, int& out) {
        if (at + len > s.size()) return false;
        auto [p, ec] = std::from_chars(s.data() + at, s.data() + at + len, out);
        return ec == std::errc() && p == s.data() + at + len;
    };
    int y, mo, d, h, mi, sec;
    if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return std::nullopt;
    if (!number(0, 4, y) || !number(5, 2, mo) || !number(8, 2, d) || !number(11, 2, h) ||
        !number(14, 2, mi) || !number(17, 2, sec))
        return std::nullopt;
    std::size_t at = 19;
    long micros = 0;
    if (at < s.size() && s[at] == '.') {
        ++at;
        long scale = 100000;
        while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
            micros += (s[at] - '0') * scale;
            scale /= 10;
            ++at;
        }
    }
    long offset_s = 0;
    if (at < s.size()) {
        if (s[at] == 'Z') {
            ++at;
        } else if (s[at] == '+' || s[at] == '-') {
            int oh, om;
            if (!number(at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' ||
                !number(at + 4, 2, om))
                return std::nullopt;
            offset_s = (oh * 3600L + om * 60L) * (s[at] == '-' ? -1 : 1);
            at += 6;
        }
        if (at != s.size()) return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    const std::time_t t = ::timegm(&tm);
    return clock::time_point(std::chrono::seconds(t - offset_s)) +
           std::chrono::microseconds(micros);
}

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += b64_alphabet[(n >> 18) & 63];
        out += b64_alphabet[(n >> 12) & 63];
        out += b64_alphabet[(n >> 6) & 63];
        out += b64_alphabet[n & 63];
    }
    if (i < in.size()) {
        unsigned n = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += b64_alphabet[(n >> 18) & 63];
        out += b64_alphabet[(n >> 12) & 63];
        out += i + 1 < in.size() ? b64_alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::array<int, 256> value;
    value.fill(-1);
    for (std::size_t i = 0; i < b64_alphabet.size(); ++i)
        value[static_cast<unsigned char>(b64_alphabet[i])] = static_cast<int>(i);
    std::string out;
    out.reserve(in.size() / 4 * 3);
    unsigned acc = 0;
    int bits = 0;
    std::size_t padding = 0;
    for (char c : in) {
        if (c == '=') {
            ++padding;
            continue;
        }
        if (c == '\n' || c == '\r') continue;
        const int v = value[static_cast<unsigned char>(c)];
        if (v < 0 || padding > 0) return std::nullopt;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    if (padding > 2) return std::nullopt;
    return out;
}

} // namespace akv::queue::celery
