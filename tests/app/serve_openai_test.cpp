// The OpenAI-compatible endpoints against the fake engine, in process: every way to name the
// video (registered id, data: URL into the upload store, path under a media root), streaming,
// the `vidi` field, and every refusal in OpenAI's error shape. The official `openai` client is
// run against the real server in tests/openai.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <fstream>
#include <thread>

#include "app/serve_client.h"
#include "app/serve_fake_engine.h"
#include "app/serve_in_process.h"
#include "support/test_support.h"

using nlohmann::json;

namespace vidi::test {
namespace {

std::string base64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

class ServeOpenAiTest : public FakeServerTest {
protected:
    void SetUp() override {
        FakeServerTest::SetUp();
        options_.cache.dir.clear();
        options_.limits.max_upload_bytes = 1 << 20;
        options_.max_new_tokens = 64;
    }
    // A user message with a text part and (when `url` is not empty) a video_url part.
    static json chat(const std::string& text, const std::string& url, json extra = json::object()) {
        json content = json::array({{{"type", "text"}, {"text", text}}});
        if (!url.empty()) content.push_back({{"type", "video_url"}, {"video_url", {{"url", url}}}});
        json body = {{"model", "fake-model"}, {"messages", json::array({{{"role", "user"}, {"content", content}}})}};
        body.update(extra);
        return body;
    }
    static httplib::Result post(httplib::Client& cli, const json& body) {
        return cli.Post("/v1/chat/completions", body.dump(), "application/json");
    }
    std::string register_video(httplib::Client& cli) {
        return json_body(cli.Post("/v1/videos", httplib::Params{{"video_path", video_}}))["id"];
    }
};

TEST_F(ServeOpenAiTest, ACompletionAboutARegisteredVideoCarriesTheRangesInItsVidiField) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string id = register_video(cli);
    const json j = json_body(post(cli, chat("the dog jumps", id, {{"vidi", {{"task", "retrieval"}}}})));
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "fake-model");
    EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
    ASSERT_EQ(j["choices"].size(), 1u);
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(j["choices"][0]["message"]["content"], "fake ranges for the dog jumps");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["completion_tokens"], 6);  // the fake's tokens are words
    EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 6);
    const TimeRange want = FakeEngine::expected_range("the dog jumps", 20.5);
    const json& v = j["vidi"];
    EXPECT_EQ(v["task"], "retrieval");
    EXPECT_EQ(v["video_id"], id);
    EXPECT_DOUBLE_EQ(v["duration"], 20.5);
    ASSERT_EQ(v["ranges"].size(), 1u);
    EXPECT_DOUBLE_EQ(v["ranges"][0]["start"], want.start);
    EXPECT_DOUBLE_EQ(v["ranges"][0]["end"], want.end);
    EXPECT_EQ(v["answer"], format_range(want));
    EXPECT_EQ(v["timings"]["video_cache"], "memory");
    // Free-form by default: no ranges.
    const json q = json_body(post(cli, chat("what is it?", id)));
    EXPECT_EQ(q["choices"][0]["message"]["content"], "you asked: what is it?");
    EXPECT_EQ(q["vidi"]["task"], "vqa");
    EXPECT_FALSE(q["vidi"].contains("ranges"));
}

TEST_F(ServeOpenAiTest, MaxTokensBoundsTheAnswerAndItsFinishReasonSaysLength) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const json j = json_body(post(cli, chat("a b c d e", register_video(cli), {{"max_tokens", 3}})));
    EXPECT_EQ(engine_.last_max_new_tokens, 3);
    EXPECT_EQ(j["choices"][0]["message"]["content"], "you asked: a ");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 3);
    EXPECT_EQ(json_body(post(cli, chat("x", register_video(cli), {{"max_completion_tokens", 2}})))["usage"]
                  ["completion_tokens"],
              2);
}

TEST_F(ServeOpenAiTest, AStreamSendsTheAnswerTokenByTokenThenTheVidiFieldAndDone) {
    engine_.work_time = std::chrono::milliseconds(200);
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string id = register_video(cli);
    const json body = chat("where is the ball", id,
                           {{"stream", true}, {"stream_options", {{"include_usage", true}}}, {"vidi", {{"task", "retrieval"}}}});
    auto r = post(cli, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    const auto events = parse_events(r->body);
    ASSERT_GE(events.size(), 5u) << r->body;
    EXPECT_EQ(events.back().data, "[DONE]");
    const json first = events[0].json();
    EXPECT_EQ(first["object"], "chat.completion.chunk");
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    std::string content;
    int deltas = 0;
    json final_chunk, usage;
    for (size_t i = 1; i + 1 < events.size(); ++i) {
        const json c = events[i].json();
        EXPECT_EQ(c["id"], first["id"]);
        if (c["choices"].empty()) {
            usage = c["usage"];
            continue;
        }
        if (!c["choices"][0]["finish_reason"].is_null()) {
            final_chunk = c;
            continue;
        }
        content += c["choices"][0]["delta"]["content"].get<std::string>();
        ++deltas;
    }
    EXPECT_EQ(content, "fake ranges for where is the ball");
    EXPECT_EQ(deltas, 7);  // one per word ("token") of the fake engine
    ASSERT_TRUE(final_chunk.is_object());
    EXPECT_EQ(final_chunk["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(final_chunk["vidi"]["answer"], format_range(FakeEngine::expected_range("where is the ball", 20.5)));
    EXPECT_EQ(usage["completion_tokens"], 7);
    // The same question unstreamed gives the same text.
    const json whole = json_body(post(cli, chat("where is the ball", id, {{"vidi", {{"task", "retrieval"}}}})));
    EXPECT_EQ(whole["choices"][0]["message"]["content"], content);
}

TEST_F(ServeOpenAiTest, ADataUrlVideoGoesThroughTheUploadStore) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string bytes = read_file(video_);
    const json j = json_body(post(cli, chat("what?", "data:video/mp4;base64," + base64(bytes))));
    EXPECT_EQ(j["choices"][0]["message"]["content"], "you asked: what?");
    EXPECT_DOUBLE_EQ(j["vidi"]["duration"], 20.5);
    EXPECT_EQ(j["vidi"]["timings"]["video_cache"], "encoded");
    // JSON that escapes the slashes ("video\/mp4", "+\/") reads the same.
    std::string escaped = chat("again?", "data:video/mp4;base64," + base64(bytes)).dump();
    for (size_t at = 0; (at = escaped.find('/', at)) != std::string::npos; at += 2) escaped.insert(at, "\\");
    auto r = cli.Post("/v1/chat/completions", escaped, "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json_body(r)["vidi"]["timings"]["video_cache"], "memory");  // the same content
    EXPECT_EQ(engine_.encodes, 1);
    // Nothing left behind: the request's uploads are dropped once no registration keeps them
    // (the worker lets go of the request just after answering it).
    int files = -1;
    for (int i = 0; i < 100 && files != 0; ++i) {
        files = json_body(cli.Get("/health"))["uploads"]["files"];
        if (files != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(files, 0);
}

// The question's text is held to the native API's field limit (64 KiB), not the JSON's 1 MiB:
// a megabyte of prompt went to the engine's one worker before it was refused.
TEST_F(ServeOpenAiTest, TheQuestionIsHeldToTheFieldLimit) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    expect_openai_error(post(cli, chat(std::string(70000, 'q'), "")), 413, "longer than 65536 bytes");
}

TEST_F(ServeOpenAiTest, ADataUrlIsHeldToTheUploadLimitAndMustBeBase64) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const std::string big = "FAKEVIDEO 1\n" + std::string((1 << 20) + 10, 'x');
    expect_openai_error(post(cli, chat("q", "data:video/mp4;base64," + base64(big))), 413, "limit of 1 MiB");
    expect_openai_error(post(cli, chat("q", "data:video/mp4;base64,@@@@")), 400, "not valid base64");
    expect_openai_error(post(cli, chat("q", "data:video/mp4;base64,AAA-AAA_")), 400, "not valid base64");
    expect_openai_error(post(cli, chat("q", "data:video/mp4,rawbytes")), 400, "must be base64");
    expect_openai_error(post(cli, chat("q", "data:video/mp4;base64,")), 400, "no bytes");
    // A data: URL anywhere but the video part's url is refused.
    json other = chat("q", "");
    other["messages"][0]["content"].push_back({{"type", "text"}, {"text", "x"}, {"url", "data:video/mp4;base64,QUJD"}});
    expect_openai_error(post(cli, other), 400, "video_url part");
    EXPECT_EQ(srv.client().Get("/health")->status, 200);
}

TEST_F(ServeOpenAiTest, PathsMustLieUnderAMediaRootAndNothingIsFetched) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    EXPECT_EQ(json_body(post(cli, chat("p?", video_)))["choices"][0]["message"]["content"], "you asked: p?");
    EXPECT_EQ(json_body(post(cli, chat("f?", "file://" + video_)))["choices"][0]["message"]["content"],
              "you asked: f?");
    expect_openai_error(post(cli, chat("q", "/etc/passwd")), 400, "video not available");
    expect_openai_error(post(cli, chat("q", "file:///etc/passwd")), 400, "video not available");
    expect_openai_error(post(cli, chat("q", "https://example.com/a.mp4")), 400, "remote URLs are not fetched");
    expect_openai_error(post(cli, chat("q", "0123456789abcdef")), 404, "unknown video id");
}

TEST_F(ServeOpenAiTest, WithoutAVideoItIsATextOnlyTurn) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const json j = json_body(post(cli, chat("hello there", "")));
    EXPECT_EQ(j["choices"][0]["message"]["content"], "you asked: hello there");
    EXPECT_DOUBLE_EQ(j["vidi"]["duration"], 0);
    EXPECT_EQ(j["vidi"]["timings"]["video_cache"], "");
    // A plain string as the content works too.
    json s = {{"messages", json::array({{{"role", "user"}, {"content", "plain"}}})}};
    EXPECT_EQ(json_body(post(cli, s))["choices"][0]["message"]["content"], "you asked: plain");
}

TEST_F(ServeOpenAiTest, BadRequestsGetOpenAiShapedErrors) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    auto r = post(cli, chat("q", "", {{"model", "gpt-4o"}}));
    expect_openai_error(r, 404, "does not exist");
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_not_found");
    expect_openai_error(post(cli, json{{"model", "fake-model"}}), 400, "messages");
    expect_openai_error(post(cli, json{{"messages", json::array()}}), 400, "messages");
    json system = chat("q", "");
    system["messages"].insert(system["messages"].begin(), json{{"role", "system"}, {"content", "be brief"}});
    expect_openai_error(post(cli, system), 400, "role 'system' is not supported");
    json two = chat("q", "");
    two["messages"].push_back(two["messages"][0]);
    expect_openai_error(post(cli, two), 400, "only one user message");
    json image = chat("q", "");
    image["messages"][0]["content"].push_back({{"type", "image_url"}, {"image_url", {{"url", "x"}}}});
    expect_openai_error(post(cli, image), 400, "images are not supported");
    json two_videos = chat("q", video_);
    two_videos["messages"][0]["content"].push_back(two_videos["messages"][0]["content"][1]);
    expect_openai_error(post(cli, two_videos), 400, "more than one video_url");
    expect_openai_error(post(cli, chat(" \n", "")), 400, "no text");
    expect_openai_error(post(cli, chat("q", "", {{"max_tokens", 0}})), 400, "max_tokens must be an integer from 1 to 64");
    expect_openai_error(post(cli, chat("q", "", {{"max_tokens", 65}})), 400, "max_tokens");
    expect_openai_error(post(cli, chat("q", "", {{"n", 2}})), 400, "n must be 1");
    expect_openai_error(post(cli, chat("q", "", {{"stream", "yes"}})), 400, "stream");
    expect_openai_error(post(cli, chat("q", "", {{"vidi", {{"task", "dance"}}}})), 400, "vidi.task");
    expect_openai_error(cli.Post("/v1/chat/completions", "{not json", "application/json"), 400, "not a JSON object");
    expect_openai_error(cli.Post("/v1/chat/completions", "a=b", "application/x-www-form-urlencoded"), 400,
                        "send the request as JSON");
    // What a client sent is quoted cut to 80 characters, not echoed whole.
    const std::string huge(300000, 'x');
    json huge_role = chat("q", "");
    huge_role["messages"][0]["role"] = huge;
    json huge_part = chat("q", "");
    huge_part["messages"][0]["content"][0]["type"] = huge;
    for (const json& body : {chat("q", "", {{"model", huge}}), huge_role, huge_part, chat("q", huge)}) {
        r = post(cli, body);
        ASSERT_TRUE(r);
        EXPECT_GE(r->status, 400);
        EXPECT_LT(r->body.size(), 400u) << r->body.substr(0, 200);
        EXPECT_NE(r->body.find(std::string(77, 'x') + "..."), std::string::npos) << r->body.substr(0, 200);
    }
    r = cli.Get(("/v1/models/" + std::string(5000, 'y')).c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_LT(r->body.size(), 400u);
    EXPECT_EQ(cli.Get("/health")->status, 200);
}

TEST_F(ServeOpenAiTest, TheKeyAndHostChecksCoverTheNewEndpoints) {
    options_.access.api_key = "s3cret";
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    expect_openai_error(post(cli, chat("q", "")), 401, "API key", "authentication_error");
    expect_openai_error(cli.Get("/v1/models"), 401, "API key", "authentication_error");
    expect_openai_error(cli.Get("/v1/models", {{"Authorization", "Bearer s3cret"}, {"Host", "evil.example"}}), 403,
                        "does not answer for host", "permission_error");
    auto ok = cli.Post("/v1/chat/completions", {{"Authorization", "Bearer s3cret"}}, chat("q", "").dump(),
                       "application/json");
    EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(ServeOpenAiTest, ModelsListsTheServedModel) {
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    const json list = json_body(cli.Get("/v1/models"));
    EXPECT_EQ(list["object"], "list");
    ASSERT_EQ(list["data"].size(), 1u);
    EXPECT_EQ(list["data"][0]["id"], "fake-model");
    EXPECT_EQ(list["data"][0]["object"], "model");
    EXPECT_GT(list["data"][0]["created"].get<int64_t>(), 1700000000);
    EXPECT_EQ(json_body(cli.Get("/v1/models/fake-model"))["id"], "fake-model");
    expect_openai_error(cli.Get("/v1/models/other"), 404, "does not exist");
}

TEST_F(ServeOpenAiTest, AStreamThatTimesOutInTheQueueGetsItsStatus) {
    options_.timeout_s = 1;
    engine_.encode_time = std::chrono::milliseconds(3000);
    InProcessServer srv(engine_, options_);
    auto cli = srv.client();
    expect_openai_error(post(cli, chat("q", video_, {{"stream", true}})), 503, "timed out", "server_error");
}

// A streamed completion waits for its first token before its status is sent: a client that
// leaves then (here while another video is encoded) cancels it, as an unstreamed one does,
// instead of its video being encoded for nobody.
TEST_F(ServeOpenAiTest, AStreamWhoseClientLeftBeforeItsFirstTokenStopsItsWork) {
    engine_.encode_time = std::chrono::milliseconds(1500);
    InProcessServer srv(engine_, options_);
    json first;
    std::thread busy([&] {
        auto cli = srv.client();
        first = json_body(post(cli, chat("q", video_)));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string body = chat("left", fake_video("other.fake", 5), {{"stream", true}}).dump();
    RawConnection left(srv.port());
    left.send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(left.finish(/*abandon=*/true).text.empty());
    busy.join();
    EXPECT_EQ(first["choices"][0]["message"]["content"], "you asked: q") << first;
    const std::string status_499 = R"(vidi_http_requests_total{endpoint="/v1/chat/completions",method="POST",status="499"})";
    std::string page;
    for (int i = 0; i < 300 && !(metric_value(page, status_499) >= 1); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        page = srv.client().Get("/metrics")->body;
    }
    EXPECT_EQ(metric_value(page, status_499), 1) << page;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a wrongly kept row would be encoding now
    EXPECT_EQ(engine_.encodes, 1);
    EXPECT_EQ(metric_value(srv.client().Get("/metrics")->body, R"(vidi_video_lookups_total{source="encoded"})"), 1);
}

}  // namespace
}  // namespace vidi::test
