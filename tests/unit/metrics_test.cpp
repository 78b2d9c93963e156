// akv::metrics: what it writes is Prometheus's text format, read back by a strict reader
// (support/prometheus_text) that also refuses what a scraper would refuse.
#include "support/prometheus_text.hpp"

#include <akv/metrics/prometheus.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

using namespace akv::metrics;
using akv::test::parse_prometheus;
using akv::test::prom_value;

TEST(Metrics, LabelValuesAreEscapedAndReadBackAsTheyWere) {
    exposition out;
    const std::string odd = "a \"quoted\" back\\slash\nand a newline";
    out.family("akv_test_jobs_total", "counter", "Jobs.\nSecond line of help \\ too.")
        .sample({{"queue", odd}}, 3)
        .sample({{"queue", "plain"}}, 4);
    EXPECT_NE(out.text().find(R"(queue="a \"quoted\" back\\slash\nand a newline")"),
              std::string::npos)
        << out.text();
    const auto families = parse_prometheus(out.text());
    EXPECT_EQ(families.at("akv_test_jobs_total").type, "counter");
    EXPECT_EQ(prom_value(families, "akv_test_jobs_total", {{"queue", odd}}), 3);
    EXPECT_EQ(prom_value(families, "akv_test_jobs_total", {{"queue", "plain"}}), 4);
}

TEST(Metrics, NumbersAreWholeWhenTheyAreAndShortestOtherwise) {
    exposition out;
    out.family("akv_test_value", "gauge", "A value.").sample({{"k", "a"}}, 1234567);
    out.sample({{"k", "b"}}, 0.1).sample({{"k", "c"}}, INFINITY);
    EXPECT_NE(out.text().find("akv_test_value{k=\"a\"} 1234567\n"), std::string::npos);
    EXPECT_NE(out.text().find("akv_test_value{k=\"b\"} 0.1\n"), std::string::npos);
    EXPECT_NE(out.text().find("akv_test_value{k=\"c\"} +Inf\n"), std::string::npos);
    parse_prometheus(out.text());
}

TEST(Metrics, AHistogramWritesCumulativeBucketsItsSumAndCount) {
    histogram h({0.1, 1, 10});
    for (double v : {0.05, 0.1, 0.5, 2.0, 20.0})
        h.observe(v);
    exposition out;
    h.write(out, "akv_test_seconds", "Seconds.", {{"queue", "q"}});
    const auto families = parse_prometheus(out.text());
    EXPECT_EQ(families.at("akv_test_seconds").type, "histogram");
    // le is "less than or equal": 0.1 falls in the 0.1 bucket.
    EXPECT_EQ(prom_value(families, "akv_test_seconds_bucket", {{"le", "0.1"}}), 2);
    EXPECT_EQ(prom_value(families, "akv_test_seconds_bucket", {{"le", "1"}}), 3);
    EXPECT_EQ(prom_value(families, "akv_test_seconds_bucket", {{"le", "10"}}), 4);
    EXPECT_EQ(prom_value(families, "akv_test_seconds_bucket", {{"le", "+Inf"}}), 5);
    EXPECT_EQ(prom_value(families, "akv_test_seconds_count"), 5);
    EXPECT_NEAR(*prom_value(families, "akv_test_seconds_sum", {{"queue", "q"}}), 22.65, 1e-9);
}

TEST(Metrics, AFamilyStartedTwiceWritesOneHeader) {
    exposition out;
    histogram a, b;
    a.observe(1);
    a.write(out, "akv_test_seconds", "Seconds.", {{"queue", "a"}});
    b.write(out, "akv_test_seconds", "Seconds.", {{"queue", "b"}});
    const auto families = parse_prometheus(out.text());
    EXPECT_EQ(prom_value(families, "akv_test_seconds_count", {{"queue", "a"}}), 1);
    EXPECT_EQ(prom_value(families, "akv_test_seconds_count", {{"queue", "b"}}), 0);
}

TEST(Metrics, TheReaderRefusesWhatAScraperWould) {
    const char* bad[] = {
        "# TYPE x_total counter\nx_total 1",                          // no final newline
        "x_total 1\n",                                                // no TYPE
        "# TYPE jobs counter\njobs 1\n",                              // a counter not *_total
        "# TYPE x gauge\nx{a=\"b} 1\n",                               // unterminated label
        "# TYPE x gauge\nx{a=\"\\t\"} 1\n",                           // an unknown escape
        "# TYPE x gauge\nx one\n",                                    // not a number
        "# TYPE x gauge\nx 1\nx 2\n",                                 // the same sample twice
        "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\n", // a family twice
        "# TYPE x gauge\ny 1\n",                                      // outside its family
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", // no +Inf
        "# TYPE 1x gauge\n",                                     // a bad name
    };
    for (const char* text : bad)
        EXPECT_THROW(parse_prometheus(text), std::runtime_error) << text;
}
