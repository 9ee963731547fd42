// The diagnostic switches read from the environment: exact values only, anything else ignored.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/env_switch.h"

namespace vidi {
namespace {

constexpr const char* kName = "VIDI_TEST_ENV_SWITCH";

TEST(EnvSwitch, ASwitchIsOnlyItsExactValue) {
    unsetenv(kName);
    EXPECT_FALSE(env_is(kName, "0"));
    setenv(kName, "0", 1);
    EXPECT_TRUE(env_is(kName, "0"));
    setenv(kName, "00", 1);
    EXPECT_FALSE(env_is(kName, "0"));
    unsetenv(kName);
}

TEST(EnvSwitch, ACountIsAWholeNumberWithinItsRange) {
    unsetenv(kName);
    EXPECT_EQ(env_count(kName, 64), std::nullopt);
    for (const auto& [text, want] : {std::pair<const char*, int>{"0", 0}, {"4", 4}, {"64", 64}}) {
        setenv(kName, text, 1);
        EXPECT_EQ(env_count(kName, 64), want) << text;
    }
    for (const char* bad : {"", "65", "-1", "4x", " 4", "four", "99999999999999999999"}) {
        setenv(kName, bad, 1);
        EXPECT_EQ(env_count(kName, 64), std::nullopt) << "'" << bad << "'";
    }
    unsetenv(kName);
}

}  // namespace
}  // namespace vidi
