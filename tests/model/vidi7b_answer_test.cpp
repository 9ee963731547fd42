// Vidi-7B's answers (docs/vidi-7b.md §7): every match of the official ([\d|\.]+)-([\d|\.]+)
// read as fractions of the duration, printed as Vidi_7B/inference.py prints them. Where the
// official script raises ValueError the engine skips the match (docs/conformance.md).
#include <gtest/gtest.h>

#include "model/vidi7b/family.h"
#include "model/vidi7b/vidi7b.h"

using namespace vidi;
using model::vidi7b::parse_ranges;

TEST(Vidi7bAnswer, ParsesPercentRangesAsFractionsOfTheDuration) {
    auto r = parse_ranges("0.12-0.25, 0.40-0.43", 100.0);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_DOUBLE_EQ(r[0].start, 12.0);
    EXPECT_DOUBLE_EQ(r[0].end, 25.0);
    EXPECT_NEAR(r[1].start, 40.0, 1e-9);
    EXPECT_NEAR(r[1].end, 43.0, 1e-9);
    // The pattern has no separator of its own: ranges anywhere in the text, leading dots too.
    r = parse_ranges("from .5-.75 and 0-0.1", 8.0);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_DOUBLE_EQ(r[0].start, 4.0);
    EXPECT_DOUBLE_EQ(r[0].end, 6.0);
    EXPECT_DOUBLE_EQ(r[1].start, 0.0);
    EXPECT_NEAR(r[1].end, 0.8, 1e-12);
}

TEST(Vidi7bAnswer, SkipsWhatPythonsFloatRefusesAndKeepsTheRest) {
    // "0.75." (a sentence's full stop), "1.2.3" and '|' end the official script with
    // ValueError; the engine drops that match only.
    auto r = parse_ranges("0.10-0.20, 0.50-0.75.", 10.0);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_DOUBLE_EQ(r[0].start, 1.0);
    EXPECT_DOUBLE_EQ(r[0].end, 2.0);
    EXPECT_TRUE(parse_ranges("1.2.3-0.5", 10).empty());
    EXPECT_TRUE(parse_ranges("0.1|0.2-0.3", 10).empty());
    EXPECT_TRUE(parse_ranges("no idea", 10).empty());
    EXPECT_TRUE(parse_ranges("0.5 - 0.6", 10).empty());  // spaces around '-' do not match
}

TEST(Vidi7bAnswer, IntegersMatchAndEveryRangeIsClampedAndOrdered) {
    // Official: 10-20 would be 10x and 20x the duration; ours clamps to the video.
    auto r = parse_ranges("10-20", 30.0);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_DOUBLE_EQ(r[0].start, 30.0);
    EXPECT_DOUBLE_EQ(r[0].end, 30.0);
    r = parse_ranges("0.9-0.5", 10.0);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_DOUBLE_EQ(r[0].start, 5.0);
    EXPECT_DOUBLE_EQ(r[0].end, 9.0);
}

TEST(Vidi7bAnswer, PrintsAsTheOfficialScriptWithIntegerSecondsAsTwoDecimals) {
    // '{:02d}:{:02d}:{:.2f}' of int(t/3600), int(t)%3600//60, int(t)%60.
    EXPECT_EQ(model::vidi7b::format_range({25.0, 50.0}), "00:00:25.00-00:00:50.00");
    EXPECT_EQ(model::vidi7b::format_range({65.7, 79.99}), "00:01:5.00-00:01:19.00");
    EXPECT_EQ(model::vidi7b::format_range({0.0, 3725.4}), "00:00:0.00-01:02:5.00");
    EXPECT_EQ(model::vidi7b::format_range({36000.0, 36059.9}), "10:00:0.00-10:00:59.00");
    EXPECT_EQ(model::vidi7b::family().format_range({3.2, 6.9}), "00:00:3.00-00:00:6.00");
}

// Found by fuzz/answer_fuzz.cpp: a number too large for a double reads as inf, and inf times a
// zero duration was NaN, which no clamp catches. Fractions are clamped before scaling.
TEST(Vidi7bAnswer, AnOverflowingNumberOnAZeroLengthVideoGivesZeroNotNaN) {
    const std::string huge = std::string(400, '9');
    for (double duration : {0.0, 12.0}) {
        auto r = parse_ranges(huge + "-0.5", duration);
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].start, duration * 0.5);
        EXPECT_EQ(r[0].end, duration);
    }
}

// std::regex recursed once per character and overflowed the stack on a run this long (a model
// with a large --max-new-tokens can write one); the scan is linear.
TEST(Vidi7bAnswer, AMillionDigitRunDoesNotExhaustTheStack) {
    const std::string run(1 << 20, '1');
    auto r = parse_ranges("0.0" + run + "-0.5" + run + ", x 0.1-0.2", 100.0);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_NEAR(r[0].start, 1.1111111, 1e-4);
    EXPECT_NEAR(r[0].end, 51.1111111, 1e-4);
    EXPECT_NEAR(r[1].start, 10.0, 1e-9);
    EXPECT_TRUE(parse_ranges(std::string(1 << 20, '|') + "-1", 10).empty());
}

TEST(Vidi7bAnswer, MatchesAreLeftmostAndDoNotOverlapAsFindallReads) {
    // "0.1-0.2-0.3": findall gives ("0.1","0.2") and the rest "-0.3" has no match.
    auto r = parse_ranges("0.1-0.2-0.3 and 0.4-0.5", 10.0);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_DOUBLE_EQ(r[0].start, 1.0);
    EXPECT_DOUBLE_EQ(r[0].end, 2.0);
    EXPECT_DOUBLE_EQ(r[1].start, 4.0);
    EXPECT_DOUBLE_EQ(r[1].end, 5.0);
    // A bad match is consumed whole: "1.2.3-0.5" is skipped and does not leave "3-0.5".
    EXPECT_TRUE(parse_ranges("1.2.3-0.5", 10).empty());
    EXPECT_EQ(parse_ranges("-0.1-0.2", 10).size(), 1u);
}
