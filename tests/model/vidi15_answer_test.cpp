// Vidi1.5's answer format: fraction ranges scaled by the duration.
#include <gtest/gtest.h>

#include "model/vidi15/vidi15.h"

using namespace vidi;
using model::vidi15::parse_ranges;

TEST(Answer, ParsesFractionRangesAndScalesByDuration) {
    auto r = parse_ranges("0.12-0.25, 0.40-0.43", 100.0);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_DOUBLE_EQ(r[0].start, 12.0);
    EXPECT_DOUBLE_EQ(r[0].end, 25.0);
    EXPECT_NEAR(r[1].start, 40.0, 1e-9);
    EXPECT_NEAR(r[1].end, 43.0, 1e-9);
}

TEST(Answer, IgnoresTextWithoutRangesAndOrdersReversedOnes) {
    EXPECT_TRUE(parse_ranges("no idea", 10).empty());
    EXPECT_TRUE(parse_ranges("12-25", 10).empty());  // not fractions
    auto r = parse_ranges("0.9-0.5", 10);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_DOUBLE_EQ(r[0].start, 5.0);
    EXPECT_DOUBLE_EQ(r[0].end, 9.0);
}


// Found by fuzz/answer_fuzz.cpp: a fraction too small for a double made std::stod throw.
TEST(Answer, FractionsWithHundredsOfDigitsParseInsteadOfThrowing) {
    const std::string tiny = "0." + std::string(400, '0') + "1";
    auto r = parse_ranges(tiny + "-0." + std::string(500, '5'), 10);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].start, 0.0);
    EXPECT_NEAR(r[0].end, 5.5555555555, 1e-9);
}

TEST(Answer, AMillionDigitFractionDoesNotExhaustTheStack) {
    const std::string run(1 << 20, '2');
    auto r = parse_ranges("1." + run + "1.2-0." + run + "-0.4", 10);
    // "1.<run>1.2" is no d.d+ followed by '-' until "1.2-0.<run>"; findall's leftmost match.
    ASSERT_EQ(r.size(), 1u);
    EXPECT_NEAR(r[0].start, 2.2222222, 1e-6);
    EXPECT_NEAR(r[0].end, 10.0, 1e-9);
}

TEST(Answer, MatchesStartInsideLongerNumbersAsTheRegexSearchDoes) {
    // re.findall(r"(\d\.\d+)-(\d\.\d+)", "12.5-0.3") == [("2.5", "0.3")]: 2.5 clamps to 1.
    auto r = parse_ranges("12.5-0.3", 10);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_DOUBLE_EQ(r[0].start, 3.0);
    EXPECT_DOUBLE_EQ(r[0].end, 10.0);
    EXPECT_EQ(parse_ranges("0.1-0.2-0.3-0.4", 10).size(), 2u);
}
