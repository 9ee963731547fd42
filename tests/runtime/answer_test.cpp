#include <gtest/gtest.h>

#include "runtime/answer.h"

using namespace vidi;

TEST(Answer, ParsesFractionRangesAndScalesByDuration) {
    auto r = runtime::parse_ranges("0.12-0.25, 0.40-0.43", 100.0);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_DOUBLE_EQ(r[0].start, 12.0);
    EXPECT_DOUBLE_EQ(r[0].end, 25.0);
    EXPECT_NEAR(r[1].start, 40.0, 1e-9);
    EXPECT_NEAR(r[1].end, 43.0, 1e-9);
}

TEST(Answer, IgnoresTextWithoutRangesAndOrdersReversedOnes) {
    EXPECT_TRUE(runtime::parse_ranges("no idea", 10).empty());
    EXPECT_TRUE(runtime::parse_ranges("12-25", 10).empty());  // not fractions
    auto r = runtime::parse_ranges("0.9-0.5", 10);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_DOUBLE_EQ(r[0].start, 5.0);
    EXPECT_DOUBLE_EQ(r[0].end, 9.0);
}

// Found by fuzz/answer_fuzz.cpp: a fraction too small for a double made std::stod throw.
TEST(Answer, FractionsWithHundredsOfDigitsParseInsteadOfThrowing) {
    const std::string tiny = "0." + std::string(400, '0') + "1";
    auto r = runtime::parse_ranges(tiny + "-0." + std::string(500, '5'), 10);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, 0.0);
    EXPECT_NEAR(r[0].end, 5.5555555555, 1e-9);
}

TEST(Answer, TimestampsTruncateToWholeSecondsLikeTheOfficialScript) {
    EXPECT_EQ(format_timestamp(12.99), "00:00:12");
    EXPECT_EQ(format_timestamp(3725.5), "01:02:05");
    EXPECT_EQ(format_timestamp(3725.5, 2), "01:02:05.50");
    EXPECT_EQ(format_timestamp(59.999, 2), "00:01:00.00");
    EXPECT_EQ(format_range({10.0, 15.5}, 2), "00:00:10.00-00:00:15.50");
    EXPECT_EQ(format_timestamp(-1), "00:00:00");
}
