// Celery's wire formats without a server (akv/queue/celery_message.hpp), on a message as Python's
// Celery 5.2 wrote it (captured with MONITOR: apply_async((2, 3), countdown=5, expires=60,
// priority=3, time_limit=4)).
#include <akv/error.hpp>
#include <akv/queue/celery_message.hpp>

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

namespace celery = akv::queue::celery;
namespace json = boost::json;

namespace {

const std::string python_message =
    R"m({"body": "W1syLCAzXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbCwgImNoYWluIjogbnVsbCwgImNob3JkIjogbnVsbH1d", )m"
    R"m("content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", )m"
    R"m("task": "tests.add", "id": "c4d11061-717f-4bcd-b190-1481c399f56e", "shadow": null, )m"
    R"m("eta": "2026-12-07T22:33:25.066245+00:00", "expires": "2026-12-07T22:34:20.066245+00:00", )m"
    R"m("group": null, "group_index": null, "retries": 0, "timelimit": [4, null], )m"
    R"m("root_id": "c4d11061-717f-4bcd-b190-1481c399f56e", "parent_id": null, "argsrepr": "(2, 3)", )m"
    R"m("kwargsrepr": "{}", "origin": "gen29363@vm", "ignore_result": false}, "properties": )m"
    R"m({"correlation_id": "c4d11061-717f-4bcd-b190-1481c399f56e", "reply_to": )m"
    R"m("6ae3371c-4fba-3d7a-8f69-63ec84df4b25", "delivery_mode": 2, "expiration": "60000", )m"
    R"m("delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 3, )m"
    R"m("body_encoding": "base64", "delivery_tag": "1b0fb4f2-ed0c-47a7-8a3b-fa879788aaa0"}})m";

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
}

std::string rejection(const std::string& envelope) {
    try {
        celery::decode_task(envelope);
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::bad_job);
        return e.what();
    }
    return "accepted";
}

} // namespace

TEST(CeleryMessage, PythonsMessageDecodes) {
    const auto m = celery::decode_task(python_message);
    EXPECT_EQ(m.task, "tests.add");
    EXPECT_EQ(m.id, "c4d11061-717f-4bcd-b190-1481c399f56e");
    EXPECT_EQ(m.args, (json::array{2, 3}));
    EXPECT_TRUE(m.kwargs.empty());
    EXPECT_EQ(m.priority, 3);
    EXPECT_EQ(m.time_limit, 4.0);
    EXPECT_FALSE(m.soft_time_limit);
    ASSERT_TRUE(m.eta && m.expires);
    EXPECT_EQ(*m.expires - *m.eta, std::chrono::seconds(55));
    EXPECT_EQ(celery::iso8601(*m.eta), "2026-12-07T22:33:25.066245+00:00");
    EXPECT_EQ(m.delivery_tag, "1b0fb4f2-ed0c-47a7-8a3b-fa879788aaa0");
    EXPECT_EQ(m.routing_key, "celery");
    EXPECT_EQ(m.exchange, "");
}

TEST(CeleryMessage, WhatIsRefusedSaysWhy) {
    EXPECT_NE(rejection("not json").find("the message is not JSON"), std::string::npos);
    EXPECT_NE(
        rejection(replaced(python_message, "application/json", "application/x-python-serialize"))
            .find("content type \"application/x-python-serialize\" is not supported"),
        std::string::npos);
    EXPECT_NE(rejection(replaced(python_message, "W1syLCAz", "!!!!")).find("not base64"),
              std::string::npos);
    EXPECT_NE(rejection(replaced(python_message, "W1syLCAz", "e30g")).find("body is not"),
              std::string::npos);
    EXPECT_NE(rejection(replaced(python_message, "\"task\": \"tests.add\", ", ""))
                  .find("headers[\"task\"]"),
              std::string::npos);
    EXPECT_NE(rejection(replaced(python_message, "2026-12-07T22:33:25", "tomorrow"))
                  .find("headers[\"eta\"]: not an ISO 8601 date"),
              std::string::npos);
}

TEST(CeleryMessage, OurMessageDecodesAsSent) {
    celery::task_fields f;
    f.id = "id-1";
    f.task = "proj.resize";
    f.args = json::array{"a.png", 64};
    f.kwargs = json::object{{"quality", 0.5}};
    f.priority = 6;
    f.queue = "images";
    f.delivery_tag = "tag-1";
    f.eta = celery::parse_iso8601("2030-01-02T03:04:05.5+00:00");
    f.soft_time_limit = 2.5;
    const auto m = celery::decode_task(celery::encode_task(f));
    EXPECT_EQ(m.id, "id-1");
    EXPECT_EQ(m.task, "proj.resize");
    EXPECT_EQ(m.args, f.args);
    EXPECT_EQ(m.kwargs, f.kwargs);
    EXPECT_EQ(m.priority, 6);
    EXPECT_EQ(m.routing_key, "images");
    EXPECT_EQ(m.root_id, "id-1");
    EXPECT_EQ(m.soft_time_limit, 2.5);
    EXPECT_FALSE(m.time_limit);
    EXPECT_EQ(m.eta, f.eta);
}

TEST(CeleryMessage, ARetryCountsAndGetsANewTagAndEta) {
    const auto eta = *celery::parse_iso8601("2030-01-01T00:00:00Z");
    const auto m = celery::decode_task(celery::retry_envelope(python_message, 1, eta, "tag-2"));
    EXPECT_EQ(m.retries, 1);
    EXPECT_EQ(m.eta, eta);
    EXPECT_EQ(m.delivery_tag, "tag-2");
    EXPECT_EQ(m.id, "c4d11061-717f-4bcd-b190-1481c399f56e");
}

TEST(CeleryMessage, PrioritiesMapToKombusLists) {
    EXPECT_EQ(celery::priority_list("celery", 0), "celery");
    EXPECT_EQ(celery::priority_list("celery", 2), "celery");
    EXPECT_EQ(celery::priority_list("celery", 3), "celery\x06\x16"
                                                  "3");
    EXPECT_EQ(celery::priority_list("celery", 8), "celery\x06\x16"
                                                  "6");
    EXPECT_EQ(celery::priority_list("celery", 42), "celery\x06\x16"
                                                   "9");
    EXPECT_EQ(celery::queue_of_list("celery\x06\x16"
                                    "9"),
              "celery");
    EXPECT_EQ(celery::queue_of_list("celery"), "celery");
}

TEST(CeleryMessage, ResultRecordsReadAsCelerysBackendWritesThem) {
    const auto r = celery::decode_result(
        R"m({"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["boom"], )m"
        R"m("exc_module": "builtins"}, "traceback": "Traceback...", "children": [], )m"
        R"m("date_done": "2026-12-07T22:33:31.267032", "task_id": "x"})m");
    EXPECT_TRUE(r.ready());
    EXPECT_FALSE(r.succeeded());
    EXPECT_EQ(r.error_text(), "ValueError: boom");
    const auto ours = celery::decode_result(celery::result_record(
        "x", celery::states::success, json::value(5), "", std::chrono::system_clock::now()));
    EXPECT_TRUE(ours.succeeded());
    EXPECT_EQ(ours.result, json::value(5));
    const auto record = json::parse(celery::result_record("x", celery::states::success, nullptr, "",
                                                          std::chrono::system_clock::now()));
    EXPECT_TRUE(record.at("traceback").is_null());
    EXPECT_TRUE(record.at("children").as_array().empty());
    EXPECT_EQ(record.at("date_done").as_string().size(), 26u); // naive, as Celery's
} // namespace

TEST(CeleryMessage, Base64AndDatesRoundTrip) {
    for (const std::string& s :
         std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)})
        EXPECT_EQ(celery::base64_decode(celery::base64_encode(s)), s);
    EXPECT_FALSE(celery::base64_decode("ab$c"));
    EXPECT_EQ(celery::parse_iso8601("2026-12-07T23:33:25.5+01:00"),
              celery::parse_iso8601("2026-12-07T22:33:25.500000"));
    EXPECT_FALSE(celery::parse_iso8601("2026-12-07"));
    EXPECT_FALSE(celery::parse_iso8601("2026-12-07T22:33:25 and more"));
}
