// Continuous batching in the server (fake engine, in process): questions about one video
// share a batch and join it at its next step, another video waits its turn (and newcomers
// queue behind it), --max-batch bounds a batch, a request that times out or fails leaves
// alone; GET /metrics and the registration's progress events.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "app/serve_client.h"
#include "app/serve_fake_engine.h"
#include "app/serve_in_process.h"
#include "support/test_support.h"

using nlohmann::json;

namespace vidi::test {
namespace {

using Clock = std::chrono::steady_clock;

class ServeBatchTest : public FakeServerTest {
protected:
    void SetUp() override {
        FakeServerTest::SetUp();
        options_.cache.dir.clear();
    }
    // POST /inference with a video_path; the answer's JSON (and its status in `status`).
    static json ask(InProcessServer& srv, const std::string& video, const std::string& question,
                    int* status = nullptr) {
        auto cli = srv.client();
        auto r = cli.Post("/inference", httplib::Params{{"video_path", video}, {"question", question}, {"task", "vqa"}});
        if (status) *status = r ? r->status : -1;
        return r ? json::parse(r->body, nullptr, false) : json();
    }
};

TEST_F(ServeBatchTest, QuestionsAboutOneVideoShareABatchAndGetTheirOwnAnswers) {
    engine_.work_time = std::chrono::milliseconds(400);
    InProcessServer srv(engine_, options_);
    const std::vector<std::string> questions = {"what is red", "who runs", "where is the dog going now",
                                                "why", "how many cars pass by", "is it raining"};
    std::vector<json> answers(questions.size());
    std::vector<std::thread> clients;
    for (size_t i = 0; i < questions.size(); ++i)
        clients.emplace_back([&, i] { answers[i] = ask(srv, video_, questions[i]); });
    for (auto& t : clients) t.join();
    int tokens = 0;
    for (size_t i = 0; i < questions.size(); ++i) {
        EXPECT_EQ(answers[i]["answer"], "you asked: " + questions[i]) << answers[i];
        const Answer alone = FakeEngine::fake_answer(nullptr, {questions[i], Task::question, {}});
        EXPECT_EQ(answers[i]["token_ids"], alone.token_ids);
        tokens += answers[i]["timings"]["generated_tokens"].get<int>();
    }
    EXPECT_EQ(engine_.encodes, 1);
    EXPECT_EQ(engine_.max_in_flight, 1);  // the engine is still called by one thread
    EXPECT_GE(engine_.max_batch_rows, 2);
    // Rows decoded together: fewer steps than tokens.
    EXPECT_LT(engine_.batch_steps, tokens);
}

TEST_F(ServeBatchTest, ANewcomerJoinsTheRunningBatchAtItsNextStep) {
    engine_.work_time = std::chrono::milliseconds(1200);  // a step: 1200 ms over the longest row's words
    InProcessServer srv(engine_, options_);
    json long_answer, short_answer;
    std::thread first([&] { long_answer = ask(srv, video_, "one two three four five six seven eight nine ten"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    const auto t0 = Clock::now();
    short_answer = ask(srv, video_, "short");
    const double short_s = std::chrono::duration<double>(Clock::now() - t0).count();
    first.join();
    EXPECT_EQ(short_answer["answer"], "you asked: short");
    EXPECT_EQ(long_answer["answer"], "you asked: one two three four five six seven eight nine ten");
    EXPECT_EQ(engine_.max_batch_rows, 2);
    // It did not wait for the long answer to finish (12 steps of 100 ms).
    EXPECT_LT(short_s, 1.0);
    EXPECT_LT(short_answer["timings"]["queue_s"].get<double>(), 0.5);
    EXPECT_EQ(short_answer["timings"]["video_cache"], "memory");
    // One lookup a request: the newcomer shares the first one's.
    const std::string page = srv.client().Get("/metrics")->body;
    EXPECT_EQ(metric_value(page, R"(vidi_video_lookups_total{source="encoded"})"), 1);
    EXPECT_EQ(metric_value(page, R"(vidi_video_lookups_total{source="memory"})"), 1);
}

TEST_F(ServeBatchTest, AnotherVideoWaitsItsTurnAndLaterNewcomersQueueBehindIt) {
    engine_.work_time = std::chrono::milliseconds(600);
    InProcessServer srv(engine_, options_);
    const std::string other = fake_video("other.fake", 7);
    std::mutex mu;
    std::vector<std::string> order;
    auto run = [&](const std::string& video, const std::string& question) {
        json j = ask(srv, video, question);
        EXPECT_EQ(j["answer"], "you asked: " + question) << j;
        std::lock_guard lock(mu);
        order.push_back(question);
    };
    // Each client starts once the one before is where it should be (polled, not slept on: a
    // loaded machine may take longer than any fixed pause).
    const auto until = [](const std::function<bool()>& done) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!done() && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ASSERT_TRUE(done());
    };
    const auto waiting = [&] { return metric_value(srv.client().Get("/metrics")->body, "vidi_queue_depth"); };
    std::thread a1(run, video_, "a1 a1 a1 a1 a1");
    until([&] { return engine_.answers > 0 || engine_.in_flight > 0; });  // a1 is decoding
    std::thread b1(run, other, "b1");
    until([&] { return waiting() >= 1; });  // b1 waits in the queue
    std::thread a2(run, video_, "a2");      // must not overtake b1
    a1.join();
    b1.join();
    a2.join();
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order[0], "a1 a1 a1 a1 a1");
    EXPECT_EQ(order[1], "b1");
    EXPECT_EQ(order[2], "a2");
    EXPECT_EQ(engine_.max_batch_rows, 1);
}

TEST_F(ServeBatchTest, MaxBatchBoundsTheRowsAndTheRestStillAnswer) {
    options_.max_batch = 2;
    engine_.work_time = std::chrono::milliseconds(200);
    InProcessServer srv(engine_, options_);
    std::vector<json> answers(5);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < answers.size(); ++i)
        clients.emplace_back([&, i] { answers[i] = ask(srv, video_, "question " + std::to_string(i)); });
    for (auto& t : clients) t.join();
    for (size_t i = 0; i < answers.size(); ++i) EXPECT_EQ(answers[i]["answer"], "you asked: question " + std::to_string(i));
    EXPECT_EQ(engine_.max_batch_rows, 2);
}

TEST_F(ServeBatchTest, ATimedOutQuestionLeavesItsBatchAndTheOthersFinish) {
    options_.timeout_s = 1;
    engine_.work_time = std::chrono::milliseconds(4000);  // 100 ms a step for a 40-word answer
    InProcessServer srv(engine_, options_);
    std::string words;
    for (int i = 0; i < 37; ++i) words += " w";
    int slow_status = 0, quick_status = 0;
    json slow, quick;
    std::thread t([&] { slow = ask(srv, video_, "slow" + words, &slow_status); });
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    quick = ask(srv, video_, "quick", &quick_status);
    t.join();
    EXPECT_EQ(quick_status, 200) << quick;
    EXPECT_EQ(slow_status, 503) << slow;
    EXPECT_NE(slow["error"].get<std::string>().find("timed out"), std::string::npos);
    // The slow row left at its next step: the engine is free well before its 4 s.
    engine_.work_time = std::chrono::milliseconds(20);
    const auto t0 = Clock::now();
    EXPECT_EQ(ask(srv, video_, "after")["answer"], "you asked: after");
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
    EXPECT_EQ(engine_.answers, 2);  // quick and after; the slow one never finished
}

// A client that closes its connection before a (not streamed) answer: its row leaves the batch
// at once instead of decoding for nobody (each such request held the engine for its whole
// answer); the registration of a video its client left is not made either. A byte sent after
// the request that nobody reads does not hide that the client left.
TEST_F(ServeBatchTest, AQuestionWhoseClientLeftStopsItsWork) {
    for (const std::string after_request : {"", "G"}) {
        SCOPED_TRACE("bytes after the request: '" + after_request + "'");
        engine_.work_time = std::chrono::milliseconds(4000);  // 100 ms a step for a 40-word answer
        engine_.answers = 0;
        InProcessServer srv(engine_, options_);
        std::string words;
        for (int i = 0; i < 37; ++i) words += " w";
        const std::string body = json{{"task", "vqa"}, {"question", "left" + words}, {"video_path", video_}}.dump();
        RawConnection left(srv.port());
        left.send("POST /inference HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body + after_request);
        double rows = 0;
        for (int i = 0; i < 200 && rows < 1; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            rows = metric_value(srv.client().Get("/metrics")->body, "vidi_batch_size");
        }
        ASSERT_EQ(rows, 1);
        const auto t0 = Clock::now();
        EXPECT_TRUE(left.finish(/*abandon=*/true).text.empty());
        while (rows > 0 && Clock::now() - t0 < std::chrono::seconds(10)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            rows = metric_value(srv.client().Get("/metrics")->body, "vidi_batch_size");
        }
        EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 2.0);  // of its 4 s
        engine_.work_time = std::chrono::milliseconds(20);
        EXPECT_EQ(ask(srv, video_, "after")["answer"], "you asked: after");
        EXPECT_EQ(engine_.answers, 1);  // "after"; the left one never finished
        const std::string page = srv.client().Get("/metrics")->body;
        EXPECT_EQ(metric_value(page, R"(vidi_http_requests_total{endpoint="/inference",method="POST",status="499"})"),
                  1)
            << page;
    }
}

TEST_F(ServeBatchTest, AQuestionTheEngineRefusesFailsAloneInItsBatch) {
    engine_.work_time = std::chrono::milliseconds(300);
    InProcessServer srv(engine_, options_);
    int good_status = 0, bad_status = 0;
    json good, bad;
    std::thread t([&] { good = ask(srv, video_, "a good question with words", &good_status); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    bad = ask(srv, video_, "FAIL please", &bad_status);
    t.join();
    EXPECT_EQ(good_status, 200);
    EXPECT_EQ(good["answer"], "you asked: a good question with words");
    EXPECT_EQ(bad_status, 400);
    EXPECT_NE(bad["error"].get<std::string>().find("refuses"), std::string::npos) << bad;
}

// ---- GET /metrics ----

TEST_F(ServeBatchTest, MetricsCountRequestsBatchesLookupsAndMemory) {
    engine_.memory = {123456, 789000};
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    int tokens = 0;
    for (const char* q : {"one", "two words"}) tokens += ask(srv, video_, q)["timings"]["generated_tokens"].get<int>();
    EXPECT_EQ(cli.Get("/v1/videos/nope/file")->status, 404);
    // A request is counted once its response is sent (the server's logger): poll a little.
    const std::string not_found = R"(vidi_http_requests_total{endpoint="/v1/videos/{id}/file",method="GET",status="404"})";
    const std::string answered = R"(vidi_http_requests_total{endpoint="/inference",method="POST",status="200"})";
    auto counted = [&](const httplib::Result& r) {
        return metric_value(r->body, not_found) == 1 && metric_value(r->body, answered) == 2;
    };
    auto r = cli.Get("/metrics");
    for (int i = 0; i < 100 && r && !counted(r); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        r = cli.Get("/metrics");
    }
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
    const std::string& page = r->body;
    EXPECT_EQ(metric_value(page, answered), 2);
    EXPECT_EQ(metric_value(page, not_found), 1);
    EXPECT_EQ(metric_value(page, R"(vidi_video_lookups_total{source="encoded"})"), 1);
    EXPECT_EQ(metric_value(page, R"(vidi_video_lookups_total{source="memory"})"), 1);
    EXPECT_EQ(metric_value(page, "vidi_encode_seconds_count"), 1);
    EXPECT_EQ(metric_value(page, R"(vidi_encode_seconds_bucket{le="+Inf"})"), 1);
    EXPECT_EQ(metric_value(page, "vidi_decode_tokens_total"), tokens);
    EXPECT_GT(metric_value(page, "vidi_batch_steps_total"), 0);
    EXPECT_GT(metric_value(page, "vidi_decode_seconds_total"), 0);
    EXPECT_EQ(metric_value(page, "vidi_batch_size"), 0);  // idle now
    EXPECT_EQ(metric_value(page, "vidi_queue_depth"), 0);
    EXPECT_EQ(metric_value(page, "vidi_gpu_memory_bytes"), 123456);
    EXPECT_EQ(metric_value(page, "vidi_gpu_memory_limit_bytes"), 789000);
    // The text format: every sample belongs to a metric with HELP and TYPE lines.
    const std::regex sample(R"(^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eInf]+$)");
    std::istringstream in(page);
    std::set<std::string> typed;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# TYPE ", 0) == 0) typed.insert(line.substr(7, line.find(' ', 7) - 7));
        if (line.empty() || line[0] == '#') continue;
        std::smatch m;
        ASSERT_TRUE(std::regex_match(line, m, sample)) << line;
        std::string name = m[1];
        for (const char* suffix : {"_bucket", "_sum", "_count"})
            if (!typed.count(name) && name.size() > strlen(suffix) &&
                name.compare(name.size() - strlen(suffix), strlen(suffix), suffix) == 0)
                name.resize(name.size() - strlen(suffix));
        EXPECT_TRUE(typed.count(name)) << "no TYPE line before " << line;
    }
}

TEST_F(ServeBatchTest, MetricsShowTheBatchWhileItDecodes) {
    engine_.work_time = std::chrono::milliseconds(1500);
    InProcessServer srv(engine_, options_);
    std::thread a([&] { ask(srv, video_, "a b c d e f g h i j"); });
    std::thread b([&] { ask(srv, video_, "k l m n o p q r s t"); });
    double rows = 0;
    for (int i = 0; i < 100 && rows < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        rows = metric_value(srv.client().Get("/metrics")->body, "vidi_batch_size");
    }
    a.join();
    b.join();
    EXPECT_EQ(rows, 2);
    // The worker resets the gauge just after the last answer went out.
    for (int i = 0; i < 100 && rows != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        rows = metric_value(srv.client().Get("/metrics")->body, "vidi_batch_size");
    }
    EXPECT_EQ(rows, 0);
}

TEST_F(ServeBatchTest, MetricsNeedTheKeyLikeTheRestOfTheApi) {
    options_.access.api_key = "k3y";
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    EXPECT_EQ(cli.Get("/metrics")->status, 401);
    auto r = cli.Get("/metrics", {{"Authorization", "Bearer k3y"}});
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("vidi_http_requests_total"), std::string::npos);
}

// ---- progress of a registration ----

TEST_F(ServeBatchTest, ARegistrationStreamsProgressThenTheVideo) {
    engine_.encode_time = std::chrono::milliseconds(500);
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    for (const bool by_query : {false, true}) {
        const std::string v = fake_video(by_query ? "q.fake" : "h.fake", by_query ? 3 : 4);
        auto r = by_query ? cli.Post("/v1/videos?stream=1", httplib::Params{{"video_path", v}})
                          : cli.Post("/v1/videos", {{"Accept", "text/event-stream"}},
                                     "video_path=" + v,  // a plain path needs no escaping here
                                     "application/x-www-form-urlencoded");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
        const auto events = parse_events(r->body);
        ASSERT_GE(events.size(), 2u) << r->body;
        for (size_t i = 0; i + 1 < events.size(); ++i) {
            EXPECT_EQ(events[i].name, "progress");
            const json p = events[i].json();
            EXPECT_TRUE(p.contains("frames")) << p;
            EXPECT_GE(p["elapsed_s"].get<double>(), 0);
        }
        const json last_progress = events[events.size() - 2].json();
        EXPECT_GT(last_progress["frames"]["done"].get<double>(), 0);
        EXPECT_TRUE(last_progress.contains("eta_s"));
        EXPECT_EQ(events.back().name, "video");
        const json video = events.back().json();
        EXPECT_EQ(video["duration"], by_query ? 3 : 4);
        ASSERT_TRUE(video.contains("id"));
        EXPECT_EQ(json_body(cli.Get("/v1/videos"))["videos"].size(), by_query ? 2u : 1u);
    }
}

TEST_F(ServeBatchTest, AVideoThatCannotBeDecodedEndsTheStreamWithAnErrorEvent) {
    InProcessServer srv(engine_, options_);
    const std::string bad = tmp_.file("bad.mp4");
    std::ofstream(bad) << "not a video";
    auto r = srv.client().Post("/v1/videos?stream=1", httplib::Params{{"video_path", bad}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);  // the stream had started
    const auto events = parse_events(r->body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().name, "error");
    EXPECT_EQ(events.back().json()["status"], 400);
    EXPECT_EQ(events.back().json()["error"], "video not available");
    // Refusals before the work starts keep their status.
    auto outside = srv.client().Post("/v1/videos?stream=1", httplib::Params{{"video_path", "/etc/passwd"}});
    expect_json_error(outside, 400, "video not available");
}

}  // namespace
}  // namespace vidi::test
