// The server's disk cache stays under its byte budget: after a write the least recently used
// token files go (a disk hit counts as a use), never the file just written, and a crashed
// writer's old temporary files are cleaned up while a fresh one is left alone.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "app/serve_fake_engine.h"
#include "app/server/video_cache.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace vidi::test {
namespace {

class DiskCacheTest : public ::testing::Test {
protected:
    std::string video(const std::string& name, double seconds) {
        const std::string path = tmp_.file(name);
        std::ofstream(path) << "FAKEVIDEO " << seconds << "\n";
        return path;
    }
    server::CacheOptions options(int64_t max_disk_bytes) {
        server::CacheOptions o;
        o.dir = tmp_.file("cache");
        o.max_disk_bytes = max_disk_bytes;
        o.bytes_per_token = 100;
        return o;
    }
    // Makes a file look last used `hours` ago.
    static void age(const std::string& path, int hours) {
        fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(hours));
    }
    TempDir tmp_{"disk-cache"};
    FakeEngine engine_;
};

TEST_F(DiskCacheTest, LeastRecentlyUsedFilesGoFirstAndADiskHitCountsAsAUse) {
    const std::string a = video("a.fake", 11), b = video("b.fake", 22), c = video("c.fake", 33);
    // The budget holds two of the three token files, not all three.
    int64_t sizes = 0;
    {
        server::VideoCache probe(engine_, options(0), "m");
        for (auto [path, sha] : {std::pair{a, "aa"}, {b, "bb"}, {c, "cc"}}) {
            probe.get(path, sha);
            sizes += static_cast<int64_t>(fs::file_size(probe.disk_path(sha)));
        }
        for (const char* sha : {"aa", "bb", "cc"}) fs::remove(probe.disk_path(sha));
    }
    server::VideoCache first(engine_, options(sizes - 1), "m");
    first.get(a, "aa");
    age(first.disk_path("aa"), 3);
    first.get(b, "bb");
    age(first.disk_path("bb"), 2);
    // A new cache (memory empty) reads `aa` from disk: now the most recently used file.
    server::VideoCache second(engine_, options(sizes - 1), "m");
    EXPECT_EQ(second.get(a, "aa").source, "disk");
    second.get(c, "cc");
    EXPECT_TRUE(fs::exists(second.disk_path("aa")));
    EXPECT_FALSE(fs::exists(second.disk_path("bb"))) << "the least recently used file should have gone";
    EXPECT_TRUE(fs::exists(second.disk_path("cc")));
}

TEST_F(DiskCacheTest, TheFileJustWrittenStaysEvenOverTheBudget) {
    server::VideoCache cache(engine_, options(1), "m");
    cache.get(video("a.fake", 11), "aa");
    cache.get(video("b.fake", 22), "bb");
    EXPECT_FALSE(fs::exists(cache.disk_path("aa")));
    EXPECT_TRUE(fs::exists(cache.disk_path("bb")));
    EXPECT_EQ(cache.get(video("b2.fake", 22), "bb").source, "memory");
}

TEST_F(DiskCacheTest, OldTemporaryFilesGoFreshOnesStayAndNoLimitKeepsAll) {
    server::VideoCache cache(engine_, options(0), "m");
    const std::string dir = fs::path(cache.disk_path("x")).parent_path().string();
    const std::string old_tmp = dir + "/dead.vidi.tmp123", new_tmp = dir + "/live.vidi.tmp456";
    std::ofstream(old_tmp) << "partial";
    std::ofstream(new_tmp) << "partial";
    age(old_tmp, 30);
    for (int i = 0; i < 4; ++i) cache.get(video(cat("v", i, ".fake"), 10 + i), cat("s", i));
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(fs::exists(cache.disk_path(cat("s", i)))) << "0: no limit";
    EXPECT_TRUE(fs::exists(old_tmp)) << "nothing is trimmed without a limit";

    server::VideoCache limited(engine_, options(1LL << 30), "m");
    limited.get(video("w.fake", 5), "w");
    EXPECT_FALSE(fs::exists(old_tmp)) << "a day-old temporary file is a crashed writer's";
    EXPECT_TRUE(fs::exists(new_tmp)) << "a fresh one may be another process's write in progress";
}

}  // namespace
}  // namespace vidi::test
