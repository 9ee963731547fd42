// Backend::section and profile_report (VIDI_PROFILE=1): sections sum per name, nest, are
// reported longest first and once, with the device's timeline and its time outside them, and
// cost nothing (report nothing) when profiling is off.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "backend/backend_test.h"

using namespace vidi;
using namespace vidi::test;

namespace {

// The backend reads VIDI_PROFILE once, when first asked.
std::unique_ptr<Backend> backend_with_profile(const char* value) {
    if (value) setenv("VIDI_PROFILE", value, 1);
    else unsetenv("VIDI_PROFILE");
    auto be = make_cpu_backend(2);
    be->profiling();
    unsetenv("VIDI_PROFILE");
    return be;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

double reported_ms(const std::string& line) {  // "profile: name   12.3 ms  4 calls"
    const size_t ms = line.find(" ms");
    const size_t start = line.find_last_of(' ', ms - 1);
    return std::stod(line.substr(start + 1, ms - start - 1));
}

}  // namespace

TEST(Profile, SectionsSumPerNameLongestFirst) {
    auto be = backend_with_profile("1");
    ASSERT_TRUE(be->profiling());
    {
        const Section outer = be->section("outer");
        for (int i = 0; i < 2; ++i) {
            const Section inner = be->section("inner");
            sleep_ms(20);
        }
    }
    const std::vector<std::string> lines = be->profile_report();
    ASSERT_EQ(lines.size(), 3u);  // and the timeline's line
    EXPECT_NE(lines[0].find("outer"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" 1 calls"), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("inner"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find(" 2 calls"), std::string::npos) << lines[1];
    EXPECT_GE(reported_ms(lines[1]), 40.0);
    EXPECT_GE(reported_ms(lines[0]), reported_ms(lines[1]));
    EXPECT_TRUE(be->profile_report().empty());  // reported once
}

TEST(Profile, TheTimelineCountsTheTimeOutsideEverySection) {
    auto be = backend_with_profile("1");
    {
        const Section a = be->section("a");
        sleep_ms(20);
    }
    sleep_ms(30);  // nothing queued: the device would idle
    {
        const Section b = be->section("b");
        const Section inner = be->section("inner");  // nested: counted once
        sleep_ms(20);
    }
    const std::vector<std::string> lines = be->profile_report();
    ASSERT_EQ(lines.size(), 4u);
    const std::string& t = lines.back();
    ASSERT_NE(t.find("device timeline"), std::string::npos) << t;
    double timeline = 0, outside = 0;
    ASSERT_EQ(std::sscanf(t.c_str(), "profile: device timeline %lf ms from the first section to the last, %lf ms", &timeline,
                          &outside), 2)
        << t;
    EXPECT_GE(timeline, 70.0) << t;
    EXPECT_GE(outside, 30.0) << t;
    EXPECT_LE(outside, timeline - 40.0) << t;  // the sections' 40 ms are inside
}

TEST(Profile, OffByDefault) {
    auto be = backend_with_profile(nullptr);
    EXPECT_FALSE(be->profiling());
    { const Section s = be->section("work"); }
    EXPECT_TRUE(be->profile_report().empty());
    auto other = backend_with_profile("0");
    EXPECT_FALSE(other->profiling());
}
