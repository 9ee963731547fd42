// The real `vidi serve` binary with the tiny random-weight checkpoint (tiny-a) on a
// loopback port: every endpoint with synth.mp4, clean errors, concurrency, the cache,
// and SIGTERM. Answers are noise from random weights but structurally real.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "app/serve_client.h"
#include "support/test_support.h"

using nlohmann::json;

namespace vidi::test {
namespace {

std::vector<std::string> serve_args(const std::string& cache_dir) {
    // 16 new tokens (as in the golden data) keep each answer fast on a small CPU box. Eight
    // clients upload at once below: the upload bound (tested in serve_security_test) must not
    // refuse any of them here.
    return {"--model", tiny_model_dir(), "--backend", "cpu", "--max-upload-mb", "4", "--timeout-s", "300",
            "--max-new-tokens", "16", "--cache-dir", cache_dir, "--media-root", golden_path(""), "--max-uploads", "8"};
}

httplib::Client client(int port) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(300, 0);
    c.set_write_timeout(60, 0);
    return c;
}

// Checks the shape every answer shares, and the retrieval format.
void expect_answer_shape(const json& j, const std::string& task) {
    ASSERT_TRUE(j.is_object()) << j;
    ASSERT_FALSE(j.contains("error")) << j;
    EXPECT_EQ(j["task"], task);
    EXPECT_TRUE(j["text"].is_string());
    EXPECT_NEAR(j["duration"].get<double>(), 12.012, 0.05);
    ASSERT_TRUE(j["ranges"].is_array());
    for (auto& r : j["ranges"]) {
        EXPECT_LE(0.0, r["start"].get<double>());
        EXPECT_LE(r["start"].get<double>(), r["end"].get<double>());
        EXPECT_LE(r["end"].get<double>(), 12.012 + 1e-6);
    }
    if (task == "retrieval") EXPECT_EQ(j["answer"], expected_answer(j["ranges"]));
    else {
        EXPECT_EQ(j["answer"], j["text"]);
        EXPECT_TRUE(j["ranges"].empty());
    }
    for (const char* k : {"queue_s", "video_s", "media_s", "prefill_s", "generate_s", "total_s"})
        EXPECT_GE(j["timings"][k].get<double>(), 0.0) << k;
    EXPECT_GT(j["timings"]["generated_tokens"].get<int>(), 0);
}

class ServeRealTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tmp_ = new TempDir("serve-real");
        server_ = new ServeProcess(serve_args(tmp_->file("cache")));
    }
    static void TearDownTestSuite() {
        delete server_;
        delete tmp_;
    }
    static int port() { return server_->port(); }
    static std::string synth() { return golden_path("synth.mp4"); }
    static void expect_alive() {
        auto cli = client(port());
        auto h = cli.Get("/health");
        ASSERT_TRUE(h);
        EXPECT_EQ(h->status, 200);
    }
    static inline TempDir* tmp_ = nullptr;
    static inline ServeProcess* server_ = nullptr;
};

TEST_F(ServeRealTest, Health) {
    auto cli = client(port());
    json j = json_body(cli.Get("/health"));
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["model"], "tiny-a");
    EXPECT_EQ(j["family"], "vidi1.5");
    EXPECT_NE(j["backend"].get<std::string>().find("cpu"), std::string::npos) << j;
}

TEST_F(ServeRealTest, InferenceUploadAndPathAgree) {
    auto cli = client(port());
    json up = json_body(post_form(cli, "/inference", synth(), {{"question", "a moving colour pattern"},
                                                              {"task", "retrieval"}}));
    expect_answer_shape(up, "retrieval");
    httplib::Params form{{"video_path", synth()}, {"question", "a moving colour pattern"}, {"task", "retrieval"}};
    json path = json_body(cli.Post("/inference", form));
    expect_answer_shape(path, "retrieval");
    EXPECT_EQ(path["text"], up["text"]);  // same bytes, same question: same greedy answer
    EXPECT_EQ(path["timings"]["video_cache"], "memory");

    json vqa = json_body(post_form(cli, "/inference", synth(), {{"question", "What is shown?"}, {"task", "vqa"}}));
    expect_answer_shape(vqa, "vqa");
}

TEST_F(ServeRealTest, BadRequestsGetCleanErrors) {
    auto cli = client(port());
    auto expect_error = [&](const httplib::Result& r, int status, const std::string& words) {
        expect_json_error(r, status, words);
        expect_alive();
    };
    expect_error(post_form(cli, "/inference", "", {{"question", "q"}}), 400, "missing video");
    expect_error(post_form(cli, "/inference", synth(), {{"task", "retrieval"}}), 400, "question");
    const std::string corrupt = tmp_->file("corrupt.mp4");
    std::ofstream(corrupt) << "definitely not an mp4 file, just text" << std::string(5000, '!');
    expect_error(post_form(cli, "/inference", corrupt, {{"question", "q"}}), 400, "");
    const std::string truncated = tmp_->file("truncated.mp4");
    std::ofstream(truncated, std::ios::binary) << read_file(synth()).substr(0, 3000);
    expect_error(post_form(cli, "/inference", truncated, {{"question", "q"}}), 400, "");
    const std::string huge = tmp_->file("huge.mp4");
    std::ofstream(huge, std::ios::binary) << read_file(synth()) << std::string(6 << 20, '\0');
    expect_error(post_form(cli, "/inference", huge, {{"question", "q"}}), 413, "limit of 4 MiB");
    expect_error(cli.Post("/v1/videos/ffffffffffffffff/query", R"({"question":"q"})", "application/json"), 404,
                 "unknown video id");
    expect_error(cli.Delete("/v1/videos/ffffffffffffffff"), 404, "unknown video id");
    expect_error(cli.Get("/v1/videos/ffffffffffffffff/clip?start=1&end=2"), 404, "unknown video id");
}

TEST_F(ServeRealTest, RegisteredVideoEndpoints) {
    auto cli = client(port());
    json reg = json_body(post_form(cli, "/v1/videos", synth(), {}));
    ASSERT_TRUE(reg.contains("id")) << reg;
    const std::string id = reg["id"];
    EXPECT_NEAR(reg["duration"].get<double>(), 12.012, 0.05);
    EXPECT_EQ(reg["frames"], 12);
    EXPECT_GT(reg["visual_tokens"].get<int>(), 0);

    json listed = json_body(cli.Get("/v1/videos"));
    bool found = false;
    for (auto& v : listed["videos"]) found |= v["id"] == id;
    EXPECT_TRUE(found) << listed;

    const std::string base = "/v1/videos/" + id;
    json a = json_body(cli.Post((base + "/query").c_str(), R"({"question":"a moving colour pattern","task":"retrieval"})",
                                "application/json"));
    expect_answer_shape(a, "retrieval");
    EXPECT_EQ(a["timings"]["video_cache"], "memory");
    json b = json_body(cli.Post((base + "/query").c_str(), httplib::Params{{"question", "What colour?"}, {"task", "vqa"}}));
    expect_answer_shape(b, "vqa");

    auto file = cli.Get((base + "/file").c_str(), {{"Range", "bytes=0-99"}});
    ASSERT_TRUE(file);
    EXPECT_EQ(file->status, 206);
    EXPECT_EQ(file->body, read_file(synth()).substr(0, 100));

    auto clip = cli.Get((base + "/clip?start=9&end=10.5").c_str());
    ASSERT_TRUE(clip);
    EXPECT_EQ(clip->status, 200);
    EXPECT_EQ(clip->get_header_value("Content-Type"), "video/mp4");
    EXPECT_NEAR(std::stod(clip->get_header_value("X-Clip-Start")), 8.3417, 1e-3);
    EXPECT_GT(clip->body.size(), 1000u);

    EXPECT_EQ(json_body(cli.Delete(base.c_str()))["deleted"], id);
    EXPECT_EQ(cli.Get((base + "/file").c_str())->status, 404);
    expect_alive();
}

TEST_F(ServeRealTest, EightConcurrentClientsMatchASingleClient) {
    const std::vector<std::pair<std::string, std::string>> asks = {
        {"a moving colour pattern", "retrieval"}, {"a red square", "retrieval"}, {"What happens?", "vqa"},
        {"the end of the video", "retrieval"},    {"Describe it.", "vqa"},       {"stripes", "retrieval"},
        {"How many colours?", "vqa"},             {"a blue circle", "retrieval"}};
    std::vector<json> single;
    {
        auto cli = client(port());
        for (auto& [q, t] : asks)
            single.push_back(json_body(post_form(cli, "/inference", synth(), {{"question", q}, {"task", t}})));
    }
    std::vector<json> concurrent(asks.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < asks.size(); ++i)
        threads.emplace_back([&, i] {
            auto cli = client(port());
            concurrent[i] =
                json_body(post_form(cli, "/inference", synth(), {{"question", asks[i].first}, {"task", asks[i].second}}));
        });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < asks.size(); ++i) {
        expect_answer_shape(concurrent[i], asks[i].second);
        EXPECT_EQ(concurrent[i]["answer"], single[i]["answer"]) << asks[i].first;
        EXPECT_EQ(concurrent[i]["text"], single[i]["text"]) << asks[i].first;
        EXPECT_EQ(concurrent[i]["ranges"], single[i]["ranges"]) << asks[i].first;
    }
}

// A fresh server and cache: the first question encodes the video, the second reuses the
// encoded video from memory, and a restarted server loads its tokens from disk. The video
// stage's own time is what the cache changes; a request's total also holds generation, which
// a loaded 2-core box once stretched from 0.04 s to 3.8 s (CI, beside another test's BLAS
// threads), so only the video stage is compared.
TEST(ServeRealCache, SecondQueryOnACachedVideoIsFaster) {
    TempDir tmp("serve-cache");
    const std::vector<std::pair<std::string, std::string>> fields = {
        {"question", "a moving colour pattern"}, {"task", "retrieval"}, {"max_new_tokens", "1"}};
    json first, second, third;
    {
        ServeProcess srv(serve_args(tmp.file("cache")));
        auto cli = client(srv.port());
        first = json_body(post_form(cli, "/inference", golden_path("synth.mp4"), fields));
        second = json_body(post_form(cli, "/inference", golden_path("synth.mp4"), fields));
        EXPECT_EQ(srv.terminate(), 0);
    }
    {
        ServeProcess srv(serve_args(tmp.file("cache")));
        auto cli = client(srv.port());
        third = json_body(post_form(cli, "/inference", golden_path("synth.mp4"), fields));
    }
    EXPECT_EQ(first["timings"]["video_cache"], "encoded");
    EXPECT_EQ(second["timings"]["video_cache"], "memory");
    EXPECT_EQ(third["timings"]["video_cache"], "disk");
    EXPECT_EQ(second["text"], first["text"]);
    EXPECT_EQ(third["text"], first["text"]);
    const double t1 = first["timings"]["total_s"], t2 = second["timings"]["total_s"], t3 = third["timings"]["total_s"];
    const double v1 = first["timings"]["video_s"], v2 = second["timings"]["video_s"], v3 = third["timings"]["video_s"];
    std::printf("[ serve cache ] first (encoded): total %.3f s, video %.3f s | second (memory): total %.3f s, "
                "video %.4f s | restarted (disk): total %.3f s, video %.3f s\n",
                t1, v1, t2, v2, t3, v3);
    EXPECT_LT(v2, v1);
    EXPECT_LT(v3, v1);
}

// SIGTERM during a request: the request still gets an answer (its result, or 503 when the
// job was aborted), the server exits 0.
TEST(ServeRealShutdown, SigtermDuringARequestExitsZero) {
    TempDir tmp("serve-stop");
    ServeProcess srv(serve_args(tmp.file("cache")));
    std::atomic<int> status{0};
    std::thread request([&] {
        auto cli = client(srv.port());
        auto r = post_form(cli, "/inference", golden_path("synth.mp4"), {{"question", "q"}});
        status = r ? r->status : -1;
    });
    auto cli = client(srv.port());
    for (int i = 0; i < 600 && status == 0; ++i) {  // until the engine is working on it
        if (json_body(cli.Get("/health"))["queue"]["busy"] == true) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(srv.terminate(), 0);
    request.join();
    EXPECT_TRUE(status == 200 || status == 503) << status.load();
}

}  // namespace
}  // namespace vidi::test
