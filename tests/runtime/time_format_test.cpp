// The public time formats (vidi/vidi.h).
#include <gtest/gtest.h>

#include "vidi/vidi.h"

using namespace vidi;

TEST(Answer, TimestampsTruncateToWholeSecondsLikeTheOfficialScript) {
    EXPECT_EQ(format_timestamp(12.99), "00:00:12");
    EXPECT_EQ(format_timestamp(3725.5), "01:02:05");
    EXPECT_EQ(format_timestamp(3725.5, 2), "01:02:05.50");
    EXPECT_EQ(format_timestamp(59.999, 2), "00:01:00.00");
    EXPECT_EQ(format_range({10.0, 15.5}, 2), "00:00:10.00-00:00:15.50");
    EXPECT_EQ(format_timestamp(-1), "00:00:00");
}
