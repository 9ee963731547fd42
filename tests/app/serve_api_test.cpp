// The server's own logic against a fake engine, in process: JSON shapes, errors and their
// status codes, the bounded queue, timeouts, the cache, uploads, the page and clips.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "app/serve_client.h"
#include "app/serve_fake_engine.h"
#include "app/serve_in_process.h"
#include "app/server/server.h"
#include "support/test_support.h"

extern "C" {
#include <libavformat/avformat.h>
}

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::test {
namespace {

class ServeApiTest : public FakeServerTest {
protected:
    void SetUp() override {
        FakeServerTest::SetUp();
        options_.cache.dir = tmp_.file("cache");
        options_.limits.max_upload_bytes = 1 << 20;
    }
};

TEST_F(ServeApiTest, HealthNamesModelFamilyAndBackend) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    auto r = cli.Get("/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    json j = json_body(r);
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["model"], "fake-model");
    EXPECT_EQ(j["family"], "fake-family");
    EXPECT_EQ(j["backend"], "fake");
}

TEST_F(ServeApiTest, InferenceUploadAnswersRetrievalAndVqa) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string q = "a dog jumps";
    json j = json_body(post_form(cli, "/inference", video_, {{"question", q}, {"task", "retrieval"}}));
    const TimeRange want = FakeEngine::expected_range(q, 20.5);
    ASSERT_EQ(j["ranges"].size(), 1u);
    EXPECT_DOUBLE_EQ(j["ranges"][0]["start"], want.start);
    EXPECT_DOUBLE_EQ(j["ranges"][0]["end"], want.end);
    EXPECT_EQ(j["answer"], format_range(want));
    EXPECT_DOUBLE_EQ(j["duration"], 20.5);
    EXPECT_EQ(j["timings"]["video_cache"], "encoded");
    EXPECT_GE(j["timings"]["total_s"].get<double>(), j["timings"]["video_s"].get<double>());

    // The same bytes again (a new upload): no second encode.
    json k = json_body(post_form(cli, "/inference", video_, {{"question", "what?"}, {"task", "vqa"}}));
    EXPECT_EQ(k["answer"], "you asked: what?");
    EXPECT_TRUE(k["ranges"].empty());
    EXPECT_EQ(k["timings"]["video_cache"], "memory");
    EXPECT_EQ(engine_.encodes, 1);
    EXPECT_EQ(engine_.saves, 1);
}

TEST_F(ServeApiTest, EngineOutOfMemoryIs503AndTheServerStaysUp) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string oom = tmp_.file("big.fake");
    std::ofstream(oom) << "FAKEOOM\n";
    expect_json_error(cli.Post("/inference", httplib::Params{{"video_path", oom}, {"question", "abc"}}), 503,
                      "out of GPU memory");
    auto health = cli.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
}

TEST_F(ServeApiTest, VideoPathFieldReadsAFileOnTheHost) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    httplib::Params form{{"video_path", video_}, {"question", "abc"}};
    auto r = cli.Post("/inference", form);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json_body(r)["answer"], format_range(FakeEngine::expected_range("abc", 20.5)));
    // 3.0-4.5 s: whole seconds, truncated as the official script prints (4.5 -> 04, not 04.50).
    EXPECT_EQ(json_body(r)["answer"], "00:00:03-00:00:04");
}

// A file named again is not read again while it is the same file (device, inode, size and
// both times): a multi-GB video was re-hashed on every request, holding the one hashing worker.
TEST_F(ServeApiTest, AHostFileIsHashedOnceWhileItStaysTheSame) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    auto digests = [&](const char* source) {
        return metric_value(cli.Get("/metrics")->body,
                            std::string("vidi_host_file_digests_total{source=\"") + source + "\"}");
    };
    const httplib::Params form{{"video_path", video_}, {"question", "abc"}};
    const json first = json_body(cli.Post("/inference", form));
    EXPECT_EQ(json_body(cli.Post("/inference", form))["answer"], first["answer"]);
    EXPECT_EQ(cli.Post("/inference", form)->status, 200);
    EXPECT_EQ(digests("hashed"), 1);
    EXPECT_EQ(digests("known"), 2);
    std::ofstream(video_, std::ios::app) << " ";  // changed: read again
    EXPECT_EQ(cli.Post("/inference", form)->status, 200);
    EXPECT_EQ(digests("hashed"), 2);
}

// A request that times out while its host file is being hashed stops the hashing: the one
// hashing worker is free for the next request at once, not after the whole file was read.
TEST_F(ServeApiTest, AHashThatOutlivesItsRequestStopsAndFreesTheWorker) {
    options_.timeout_s = 1;
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    // 16 GB of holes: reading and hashing them all takes several seconds, storing them nothing.
    const std::string big = tmp_.file("huge.fake");
    {
        std::ofstream(big) << "FAKE\n";
        fs::resize_file(big, uintmax_t(16) << 30);
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto r = cli.Post("/inference", httplib::Params{{"video_path", big}, {"question", "abc"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_NE(json_body(r)["error"].get<std::string>().find("timed out"), std::string::npos) << r->body;
    auto again = cli.Post("/inference", httplib::Params{{"video_path", video_}, {"question", "abc"}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200) << again->body;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
    fs::remove(big);
}

// A question past the model's context is refused before its video is encoded (it was refused
// after the encode, which for a long video is most of the work).
TEST_F(ServeApiTest, AQuestionPastTheContextIsRefusedBeforeTheEncode) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    expect_json_error(cli.Post("/inference", httplib::Params{{"video_path", video_}, {"question", std::string(2000, 'q')}}),
                      400, "context holds");
    EXPECT_EQ(engine_.encodes, 0);
}

TEST_F(ServeApiTest, MaxNewTokensIsPassedAndBounded) {
    options_.max_new_tokens = 64;
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    EXPECT_EQ(post_form(cli, "/inference", video_, {{"question", "q"}})->status, 200);
    EXPECT_EQ(engine_.last_max_new_tokens, 64);  // the server's limit by default
    EXPECT_EQ(post_form(cli, "/inference", video_, {{"question", "q"}, {"max_new_tokens", "7"}})->status, 200);
    EXPECT_EQ(engine_.last_max_new_tokens, 7);
    json reg = json_body(post_form(cli, "/v1/videos", video_, {}));
    auto r = cli.Post(("/v1/videos/" + reg["id"].get<std::string>() + "/query").c_str(),
                      R"({"question":"q","task":"vqa","max_new_tokens":9})", "application/json");
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(engine_.last_max_new_tokens, 9);
    for (const char* bad : {"0", "65", "abc", "5x"}) {
        auto b = post_form(cli, "/inference", video_, {{"question", "q"}, {"max_new_tokens", bad}});
        EXPECT_EQ(b->status, 400) << bad;
        EXPECT_NE(json_body(b)["error"].get<std::string>().find("max_new_tokens"), std::string::npos);
    }
}

TEST_F(ServeApiTest, BadRequestsGetJsonErrorsAndTheServerStaysUp) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    auto expect_error = [&](const httplib::Result& r, int status, const std::string& words) {
        expect_json_error(r, status, words);
        EXPECT_EQ(cli.Get("/health")->status, 200);
    };
    expect_error(post_form(cli, "/inference", "", {{"question", "q"}}), 400, "missing video");
    expect_error(post_form(cli, "/inference", video_, {}), 400, "question");
    expect_error(post_form(cli, "/inference", video_, {{"question", "q"}, {"task", "dance"}}), 400, "task");
    expect_error(post_form(cli, "/inference", "", {{"question", "q"}, {"video_path", tmp_.file("no-such.mp4")}}),
                 400, "video not available");
    const std::string corrupt = tmp_.file("corrupt.mp4");
    std::ofstream(corrupt) << "this is not a video at all";
    expect_error(post_form(cli, "/inference", corrupt, {{"question", "q"}}), 400, "video not available");
    const std::string huge = tmp_.file("huge.mp4");
    std::ofstream(huge) << "FAKEVIDEO 1\n" << std::string(3 << 20, 'x');
    expect_error(post_form(cli, "/inference", huge, {{"question", "q"}}), 413, "limit of 1 MiB");
    // Just over the limit, inside the multipart envelope: the upload itself is counted.
    std::ofstream(huge) << "FAKEVIDEO 1\n" << std::string((1 << 20) + 100, 'x');
    expect_error(post_form(cli, "/inference", huge, {{"question", "q"}}), 413, "larger than the server's limit");
    expect_error(cli.Post("/v1/videos/0123456789abcdef/query", R"({"question":"q"})", "application/json"), 404,
                 "unknown video id");
    expect_error(cli.Delete("/v1/videos/nope"), 404, "unknown video id");
    expect_error(cli.Get("/v1/videos/nope/file"), 404, "unknown video id");
    expect_error(cli.Get("/no/such/endpoint"), 404, "not found");
    expect_error(cli.Post("/v1/videos/x/query", "{not json", "application/json"), 404, "unknown");
}

TEST_F(ServeApiTest, RegisteredVideoIsQueriedFromCacheThenDeleted) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    json reg = json_body(post_form(cli, "/v1/videos", video_, {}));
    ASSERT_TRUE(reg.contains("id")) << reg;
    const std::string id = reg["id"];
    EXPECT_DOUBLE_EQ(reg["duration"], 20.5);
    EXPECT_EQ(reg["timings"]["video_cache"], "encoded");

    auto q = cli.Post(("/v1/videos/" + id + "/query").c_str(), R"({"question":"jumping","task":"retrieval"})",
                      "application/json");
    json a = json_body(q);
    EXPECT_EQ(a["answer"], format_range(FakeEngine::expected_range("jumping", 20.5)));
    EXPECT_EQ(a["timings"]["video_cache"], "memory");
    // Form-encoded queries work too.
    auto f = cli.Post(("/v1/videos/" + id + "/query").c_str(), httplib::Params{{"question", "why?"}, {"task", "vqa"}});
    EXPECT_EQ(json_body(f)["answer"], "you asked: why?");
    EXPECT_EQ(engine_.encodes, 1);

    // The page's player gets the uploaded bytes, with Range support.
    auto whole = cli.Get(("/v1/videos/" + id + "/file").c_str());
    ASSERT_TRUE(whole);
    EXPECT_EQ(whole->body, read_file(video_));
    auto part = cli.Get(("/v1/videos/" + id + "/file").c_str(), {{"Range", "bytes=2-5"}});
    ASSERT_TRUE(part);
    EXPECT_EQ(part->status, 206);
    EXPECT_EQ(part->body, read_file(video_).substr(2, 4));

    auto d = cli.Delete(("/v1/videos/" + id).c_str());
    EXPECT_EQ(json_body(d)["deleted"], id);
    EXPECT_EQ(cli.Post(("/v1/videos/" + id + "/query").c_str(), R"({"question":"x"})", "application/json")->status,
              404);
}

// A name that is not UTF-8 (an upload's file name, a Latin-1 host path) is kept with U+FFFD in
// its place: it made the registration's answer throw after the video was registered (a 500 and
// an id nobody was told), and every later GET /v1/videos a 500.
TEST_F(ServeApiTest, NamesThatAreNotUtf8AreRegisteredListedAndDeleted) {
    const std::string latin1 = tmp_.file("caf\xe9 \xff.mp4");
    fs::copy_file(video_, latin1);
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string replaced = "caf\xef\xbf\xbd \xef\xbf\xbd.mp4";
    json up = json_body(post_form(cli, "/v1/videos", latin1, {}));
    ASSERT_TRUE(up.contains("id")) << up;
    EXPECT_EQ(up["name"], replaced);
    json host = json_body(cli.Post("/v1/videos", httplib::Params{{"video_path", latin1}}));
    ASSERT_TRUE(host.contains("id")) << host;
    EXPECT_EQ(host["name"], tmp_.file(replaced));

    auto list = cli.Get("/v1/videos");
    ASSERT_TRUE(list);
    ASSERT_EQ(list->status, 200) << list->body;
    const json videos = json_body(list)["videos"];
    ASSERT_EQ(videos.size(), 2u) << videos;
    for (const json& v : videos) EXPECT_NE(v["name"].get<std::string>().find(replaced), std::string::npos) << v;
    for (const json& reg : {up, host}) {
        const std::string id = reg["id"];
        EXPECT_EQ(json_body(cli.Delete(("/v1/videos/" + id).c_str()))["deleted"], id);
    }
    EXPECT_EQ(json_body(cli.Get("/v1/videos"))["videos"].size(), 0u);
}

TEST_F(ServeApiTest, DiskCacheServesANewServerWithoutEncoding) {
    {
        InProcessServer srv(engine_, options_);
        auto cli = srv.client();
        EXPECT_EQ(json_body(post_form(cli, "/v1/videos", video_, {}))["timings"]["video_cache"], "encoded");
    }
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    EXPECT_EQ(json_body(post_form(cli, "/v1/videos", video_, {}))["timings"]["video_cache"], "disk");
    EXPECT_EQ(engine_.encodes, 1);
    EXPECT_EQ(engine_.loads, 1);
}

TEST_F(ServeApiTest, MemoryCacheEvictsLeastRecentlyUsed) {
    options_.cache.dir.clear();
    options_.cache.max_entries = 1;
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string other = tmp_.file("other.fake");
    std::ofstream(other) << "FAKEVIDEO 3\n";
    auto source = [&](const std::string& v) {
        return json_body(post_form(cli, "/inference", v, {{"question", "q"}}))["timings"]["video_cache"];
    };
    EXPECT_EQ(source(video_), "encoded");
    EXPECT_EQ(source(video_), "memory");
    EXPECT_EQ(source(other), "encoded");
    EXPECT_EQ(source(video_), "encoded");  // evicted by `other`, and no disk cache
    EXPECT_EQ(engine_.encodes, 3);
}

TEST_F(ServeApiTest, ConcurrentClientsShareTheEngineOneCallAtATimeAndAgree) {
    const std::vector<std::string> questions = {"a", "bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg", "h"};
    // Every client uploads at once; the upload bound (its own test below) must not refuse any of them here.
    options_.limits.max_uploads = static_cast<int>(questions.size());
    InProcessServer srv(engine_, options_);
    std::vector<json> answers(questions.size());
    std::vector<std::thread> clients;
    for (size_t i = 0; i < questions.size(); ++i)
        clients.emplace_back([&, i] {
            auto cli = srv.client();
            answers[i] = json_body(post_form(cli, "/inference", video_, {{"question", questions[i]}}));
        });
    for (auto& t : clients) t.join();
    for (size_t i = 0; i < questions.size(); ++i)
        EXPECT_EQ(answers[i]["answer"], format_range(FakeEngine::expected_range(questions[i], 20.5))) << answers[i];
    EXPECT_EQ(engine_.max_in_flight, 1);
    EXPECT_EQ(engine_.encodes, 1);
}

TEST_F(ServeApiTest, FullQueueAnswers503) {
    engine_.work_time = std::chrono::milliseconds(600);
    InProcessServer srv(engine_, options_, /*queue_size=*/1);
    std::vector<int> status(4, 0);
    // Four videos: questions about one video would join one batch instead of queueing.
    std::vector<std::string> videos;
    for (size_t i = 0; i < status.size(); ++i) {
        videos.push_back(tmp_.file("v" + std::to_string(i) + ".fake"));
        std::ofstream(videos.back()) << "FAKEVIDEO " << 10 + i << "\n";
    }
    std::vector<std::thread> clients;
    for (size_t i = 0; i < status.size(); ++i)
        clients.emplace_back([&, i] {
            std::this_thread::sleep_for(std::chrono::milliseconds(100 * i));
            auto cli = srv.client();
            auto r = post_form(cli, "/inference", videos[i], {{"question", "q"}});
            status[i] = r ? r->status : -1;
            if (r && r->status == 503) {
                EXPECT_NE(json_body(r)["error"].get<std::string>().find("busy"), std::string::npos);
            }
        });
    for (auto& t : clients) t.join();
    EXPECT_EQ(std::count(status.begin(), status.end(), 200), 2);  // one running, one waiting
    EXPECT_EQ(std::count(status.begin(), status.end(), 503), 2);
    EXPECT_EQ(srv.client().Get("/health")->status, 200);
}

TEST_F(ServeApiTest, TimeoutAnswers503AndAbortsTheJob) {
    engine_.work_time = std::chrono::milliseconds(5000);
    options_.timeout_s = 1;
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = post_form(cli, "/inference", video_, {{"question", "slow"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_NE(json_body(r)["error"].get<std::string>().find("timed out"), std::string::npos);
    // The aborted job frees the engine at its next progress report, long before 5 s.
    engine_.work_time = std::chrono::milliseconds(10);  // read by the next job only
    auto again = post_form(cli, "/inference", video_, {{"question", "fast"}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200) << again->body;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 4.0);
    EXPECT_EQ(engine_.answers, 1);  // only the second completed
}

TEST_F(ServeApiTest, ServesThePageAndItsScripts) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    auto page = cli.Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
    EXPECT_NE(page->body.find("id=\"timeline\""), std::string::npos);
    auto js = cli.Get("/app.js");
    ASSERT_TRUE(js);
    EXPECT_NE(js->body.find("range-block"), std::string::npos);
    EXPECT_EQ(cli.Get("/style.css")->status, 200);
}

// Clips are copies on the server's disk until their downloads end: a bounded number at once,
// each slot given back when its download is done (or its export failed).
TEST_F(ServeApiTest, ClipsAreBoundedAndTheirSlotsComeBack) {
    options_.limits.max_clips = 1;
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string id = json_body(post_form(cli, "/v1/videos", golden_path("synth.mp4"), {}))["id"];
    // A slot comes back when the server is done with the answer, which can be a moment after
    // the client has it all: each request is retried while it is 503, for at most 2 s.
    auto status_of = [&](const std::string& url) {
        int status = 0;
        for (int i = 0; i < 200; ++i) {
            status = cli.Get(url.c_str())->status;
            if (status != 503) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return status;
    };
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(status_of("/v1/videos/" + id + "/clip?start=1&end=3"), 200) << i;
        EXPECT_EQ(status_of("/v1/videos/" + id + "/clip?start=50&end=60"), 400) << i;
    }
    options_.limits.max_clips = 0;
    InProcessServer none(engine_, options_);
    auto cli0 = none.client();
    const std::string id0 = json_body(post_form(cli0, "/v1/videos", golden_path("synth.mp4"), {}))["id"];
    expect_json_error(cli0.Get(("/v1/videos/" + id0 + "/clip?start=1&end=3").c_str()), 503, "clips are being exported");
}

// The page only runs its own files and is never framed; nothing is sniffed into another type;
// a served video cannot run as a page.
TEST_F(ServeApiTest, ThePageAndTheFilesCarryTheirSecurityHeaders) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    auto page = cli.Get("/");
    ASSERT_TRUE(page);
    EXPECT_NE(page->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);
    EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
    EXPECT_EQ(page->get_header_value("X-Frame-Options"), "DENY");
    EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(cli.Get("/health")->get_header_value("X-Content-Type-Options"), "nosniff");
    const std::string id = json_body(post_form(cli, "/v1/videos", golden_path("synth.mp4"), {}))["id"];
    auto file = cli.Get(("/v1/videos/" + id + "/file").c_str());
    ASSERT_TRUE(file);
    EXPECT_EQ(file->status, 200);
    EXPECT_EQ(file->get_header_value("Content-Security-Policy"), "sandbox");
}

TEST_F(ServeApiTest, ClipEndpointReturnsAStreamCopiedClip) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    json reg = json_body(post_form(cli, "/v1/videos", golden_path("synth.mp4"), {}));
    const std::string id = reg["id"];
    auto r = cli.Get(("/v1/videos/" + id + "/clip?start=9&end=10.5").c_str());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_NE(r->get_header_value("Content-Disposition").find("attachment"), std::string::npos);
    // synth.mp4's keyframes are at 0 and 8.34 s: the clip starts at the second one.
    EXPECT_NEAR(std::stod(r->get_header_value("X-Clip-Start")), 8.3417, 1e-3);
    const std::string saved = tmp_.file("clip.mp4");
    std::ofstream(saved, std::ios::binary) << r->body;
    AVFormatContext* fmt = nullptr;
    ASSERT_EQ(avformat_open_input(&fmt, saved.c_str(), nullptr, nullptr), 0);
    ASSERT_GE(avformat_find_stream_info(fmt, nullptr), 0);
    // From the keyframe to the end, plus at most a few reference frames (see clip_export.h).
    const double seconds = fmt->duration / double(AV_TIME_BASE);
    EXPECT_GE(seconds, 10.5 - 8.3417 - 0.05);
    EXPECT_LE(seconds, 10.5 - 8.3417 + 0.25);
    avformat_close_input(&fmt);

    auto bad = cli.Get(("/v1/videos/" + id + "/clip?start=5&end=abc").c_str());
    EXPECT_EQ(bad->status, 400);
    auto past = cli.Get(("/v1/videos/" + id + "/clip?start=50&end=60").c_str());
    EXPECT_EQ(past->status, 400);
    const std::string why = json_body(past)["error"].get<std::string>();
    EXPECT_NE(why.find("after the end of video " + id), std::string::npos) << why;
    EXPECT_EQ(why.find("/proc/self/fd"), std::string::npos) << why;  // the server's descriptor path
}

}  // namespace
}  // namespace vidi::test
