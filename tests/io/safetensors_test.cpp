#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "io/mapped_files.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace vidi;
using vidi::io::SafetensorsFile;
using vidi::io::TensorStore;
namespace fs = std::filesystem;

TEST(Safetensors, LoadsShardedTinyCheckpointZeroCopy) {
    auto store = TensorStore::open(test::tiny_model_dir());
    EXPECT_EQ(store.files().size(), 2u);
    ASSERT_TRUE(store.has("model.embed_tokens.weight"));
    Tensor e = store.get("model.embed_tokens.weight");
    EXPECT_EQ(e.dtype(), DType::bf16);
    EXPECT_EQ(e.shape(), (Shape{1024, 96}));
    EXPECT_THROW(store.get("model.no_such_tensor"), Error);
}

TEST(Safetensors, WriterRoundTripsAllDtypes) {
    test::TempDir dir("st");
    Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor b = Tensor::from_vector(std::vector<int64_t>{7, -8});
    Tensor c = Tensor::empty({3}, DType::bf16);
    for (int i = 0; i < 3; ++i) static_cast<uint16_t*>(c.raw())[i] = f32_to_bf16(0.5f * i);
    io::save_safetensors(dir.file("x.safetensors"), {{"a", a}, {"b", b}, {"c", c}}, {{"format", "pt"}});
    auto f = SafetensorsFile::open(dir.file("x.safetensors"));
    EXPECT_EQ(f->metadata().at("format"), "pt");
    EXPECT_EQ(f->get("a").to_f32_vector(), a.to_f32_vector());
    EXPECT_EQ(f->get("b").data<int64_t>()[1], -8);
    EXPECT_EQ(f->get("c").to_f32_vector(), (std::vector<float>{0, 0.5f, 1.0f}));
}

// `vidi dump -o` over a good file: a write that failed half-way left it truncated, and a symlink
// named as the output had its target (a checkpoint's shard) overwritten.
TEST(Safetensors, WriterReplacesTheFileOnlyWhenWholeAndNeverFollowsASymlink) {
    test::TempDir dir("st-replace");
    const std::string out = dir.file("x.safetensors");
    Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4});
    io::save_safetensors(out, {{"a", a}});
    {
        io::SafetensorsWriter w(out);
        w.declare("b", DType::f32, {4});
        w.begin();
        w.write(a.raw(), 8);  // then fails: never finished
    }
    EXPECT_EQ(SafetensorsFile::open(out)->get("a").to_f32_vector(), a.to_f32_vector());
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);  // no temporary

    const std::string target = dir.file("shard.safetensors"), link = dir.file("link.safetensors");
    fs::copy_file(out, target);
    fs::create_symlink(target, link);
    io::save_safetensors(link, {{"b", a}});
    EXPECT_TRUE(SafetensorsFile::open(target)->has("a"));
    EXPECT_FALSE(fs::is_symlink(link));
    EXPECT_TRUE(SafetensorsFile::open(link)->has("b"));
}

namespace {
std::string write_raw(const test::TempDir& dir, const std::string& header, size_t data_bytes) {
    std::string path = dir.file("raw.safetensors");
    std::ofstream out(path, std::ios::binary);
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
}

std::string open_error(const std::string& path) {
    try {
        SafetensorsFile::open(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}
}  // namespace

TEST(Safetensors, RejectsCorruptHeaders) {
    test::TempDir dir("st");
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)),
                testing::HasSubstr("truncated"));
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16)),
                testing::HasSubstr("needs 12"));
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                     16)),
                testing::HasSubstr("overlap"));
    // An empty tensor between the two hid the overlap (only neighbours were compared).
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                          R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                     16)),
                testing::HasSubstr("tensors 'a' and 'b' overlap"));
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8)),
                testing::HasSubstr("unsupported safetensors dtype"));
    EXPECT_THAT(open_error(write_raw(dir, "{not json", 0)), testing::HasSubstr("not valid JSON"));
    // Header length larger than the file.
    std::string p = dir.file("short.safetensors");
    std::ofstream(p, std::ios::binary) << std::string("\xff\x00\x00\x00\x00\x00\x00\x00{}", 10);
    EXPECT_THAT(open_error(p), testing::HasSubstr("truncated"));
    EXPECT_THAT(open_error(dir.file("missing.safetensors")), testing::HasSubstr("cannot open"));
}

// Found by damaging headers: a shape whose element count wrapped past 2^64 passed the size
// check (32 x (2^58 + 3) bf16 "is" 192 bytes), dimensions were read as whole numbers whatever
// they were (96.7 as 96, a lone 96 as [96]), and a FIFO in a file's place blocked for ever.
TEST(Safetensors, RejectsShapesAndOffsetsThatAreNotWhatTheyClaim) {
    test::TempDir dir("st-shapes");
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"BF16","shape":[32,288230376151711747],"data_offsets":[0,192]}})", 192)),
                testing::HasSubstr("has more than 2^63 elements"));
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"BF16","shape":[96.7],"data_offsets":[0,192]}})", 192)),
                testing::HasSubstr("not a whole number (96.7)"));
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"BF16","shape":96,"data_offsets":[0,192]}})", 192)),
                testing::HasSubstr("shape is not a list"));
    EXPECT_THAT(open_error(write_raw(dir, R"({"a":{"dtype":"BF16","shape":[96],"data_offsets":[0,192.5]}})", 193)),
                testing::HasSubstr("not whole numbers of bytes"));
    const std::string fifo = dir.file("fifo.safetensors");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_THAT(open_error(fifo), testing::HasSubstr("not a regular file"));
}

// A shard truncated in place while its mapping is read faults with SIGBUS; the handler the CLI
// installs names the file before the default action ends the process.
TEST(SafetensorsDeathTest, AShardTruncatedWhileMappedIsNamedOnSigbus) {
    test::TempDir dir("st-bus");
    const std::string path = dir.file("shard.safetensors");
    io::save_safetensors(path, {{"w", Tensor::zeros({1 << 16}, DType::f32)}});
    auto f = SafetensorsFile::open(path);
    EXPECT_STREQ(io::mapped_file_at(f->get("w").raw()), path.c_str());
    EXPECT_EXIT(
        {
            io::name_truncated_mappings_on_sigbus();
            fs::resize_file(path, 64);
            volatile const float* w = f->get("w").data<float>();
            std::printf("%f\n", w[(1 << 16) - 1]);  // a page past the new end
        },
        testing::KilledBySignal(SIGBUS), "vidi: fatal: " + path + " was truncated or rewritten");
    // A SIGBUS sent, not a fault: nothing to name, and the process still ends by it.
    EXPECT_EXIT(
        {
            io::name_truncated_mappings_on_sigbus();
            kill(getpid(), SIGBUS);
            std::fprintf(stderr, "went on\n");
            std::exit(0);
        },
        testing::KilledBySignal(SIGBUS), "^$");
    const void* mapped = f->get("w").raw();
    f.reset();
    EXPECT_EQ(io::mapped_file_at(mapped), nullptr);  // unmapped: forgotten
}
