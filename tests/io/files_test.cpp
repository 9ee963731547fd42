// Files read and replaced with errors that name them (io/files.h): a checkpoint's JSON file
// that is a FIFO or /dev/zero, and outputs that must stay whole when a write fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/files.h"
#include "io/json_file.h"
#include "support/test_support.h"

using namespace vidi;
using test::error_of;
using testing::HasSubstr;
namespace fs = std::filesystem;

namespace {
std::string contents(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
}  // namespace

// Found by replacing a checkpoint's config.json: a FIFO hung `vidi inspect` for ever, and a
// symlink to /dev/zero grew it past 2.9 GB before it was killed.
TEST(JsonFile, AFifoADeviceOrAHugeFileIsRefusedNamingIt) {
    test::TempDir dir("json");
    const std::string fifo = dir.file("config.json"), zero = dir.file("tokenizer_config.json");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    fs::create_symlink("/dev/zero", zero);
    EXPECT_THAT(error_of([&] { io::read_json_file(fifo); }), HasSubstr(fifo + ": not a regular file"));
    EXPECT_THAT(error_of([&] { io::read_json_file(zero); }), HasSubstr(zero + ": not a regular file"));
    EXPECT_THAT(error_of([&] { io::read_json_file(dir.path()); }), HasSubstr("not a regular file"));

    const std::string huge = dir.file("tokenizer.json");  // sparse: no disk spent
    std::ofstream(huge).close();
    fs::resize_file(huge, io::kMaxTextFileBytes + 1);
    EXPECT_THAT(error_of([&] { io::read_json_file(huge); }), HasSubstr(huge + ": larger than the 256 MiB"));
    std::ofstream(dir.file("ok.json")) << R"({"a": 1})";
    EXPECT_EQ(io::read_json_file(dir.file("ok.json"))["a"], 1);
}

TEST(ReplacingFile, TheOldFileStaysUntilCommitAndNoTemporaryIsLeft) {
    test::TempDir dir("replace");
    const std::string out = dir.file("out.bin");
    std::ofstream(out) << "old";
    {
        io::ReplacingFile f(out);
        std::fputs("new, abandoned", f.get());
    }
    EXPECT_EQ(contents(out), "old");
    {
        io::ReplacingFile f(out);
        std::fputs("new", f.get());
        f.commit();
    }
    EXPECT_EQ(contents(out), "new");
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(ReplacingFile, AnOutputThatCannotBeWrittenIsRefusedAtOnceNamingIt) {
    test::TempDir dir("replace");
    std::ofstream(dir.file("afile")) << "x";
    EXPECT_THAT(error_of([&] { io::ReplacingFile f(dir.file("afile/x.bin")); }),
                HasSubstr(dir.file("afile/x.bin") + ": cannot create a file in " + dir.file("afile")));
    EXPECT_THAT(error_of([&] { io::ReplacingFile f("/nonexistent/x.bin"); }),
                HasSubstr("/nonexistent/x.bin: cannot create a file in /nonexistent: No such file or directory"));
    EXPECT_THAT(error_of([&] { io::ReplacingFile f(dir.path()); }), HasSubstr(dir.path() + ": is a directory"));
    EXPECT_THAT(error_of([&] { io::ReplacingFile f(""); }), HasSubstr("an empty name"));
    // A device is not replaced by a renamed file (as root, /dev/null would have been).
    EXPECT_THAT(error_of([&] { io::ReplacingFile f("/dev/null"); }), HasSubstr("/dev/null: is not a regular file"));
    EXPECT_THAT(error_of([&] { io::require_writable_dir(dir.file("afile")); }),
                HasSubstr(dir.file("afile") + ": cannot create a file in it"));
    EXPECT_EQ(error_of([&] { io::require_writable_dir(dir.path()); }), "");
}
