// The pieces behind the OpenAI endpoint and the event streams, without HTTP: a JSON body's
// data: URL decoded into the upload store in pieces of any size (BodyKind::document), and the
// text deltas of an answer that grows token by token.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include "app/serve_client.h"
#include "app/server/data_url.h"
#include "app/server/form.h"
#include "app/server/http_error.h"
#include "app/server/sse.h"
#include "app/server/upload_store.h"
#include "support/test_support.h"

using nlohmann::json;

namespace vidi::test {
namespace {

using server::BodyKind;
using server::HttpError;

std::string base64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    out.resize(static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                                   reinterpret_cast<const unsigned char*>(bytes.data()),
                                                   static_cast<int>(bytes.size()))));
    return out;
}

// Every byte value, several times over: the decoded upload must be these bytes exactly.
std::string binary_video() {
    std::string s = "FAKEVIDEO 3\n";
    for (int r = 0; r < 40; ++r)
        for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b ^ r));
    return s;
}

class DataUrlTest : public ::testing::Test {
protected:
    server::ServerLimits limits_;
    TempDir tmp_{"data-url"};
    server::UploadStore store_{tmp_.file("up"), 1 << 20, 4, 1 << 20};
    server::Form parse(const std::string& body, size_t piece) {
        return server::parse_form_bytes("application/json", body, piece, limits_, store_, BodyKind::document);
    }
};

TEST_F(DataUrlTest, TheVideoIsDecodedIntoTheStoreWhateverThePieces) {
    const std::string video = binary_video();
    const json body = {{"model", "m"},
                       {"messages", json::array({{{"role", "user"},
                                                  {"content", json::array({{{"type", "text"}, {"text", "url: data:x"}},
                                                                           {{"type", "video_url"},
                                                                            {"video_url",
                                                                             {{"url", "data:video/mp4;base64," +
                                                                                          base64(video)}}}}})}}})}};
    const std::string text = body.dump();
    for (size_t piece : {size_t(1), size_t(3), size_t(64), size_t(4097), text.size()}) {
        server::Form f = parse(text, piece);
        ASSERT_TRUE(f.video) << piece;
        EXPECT_EQ(read_file(f.video->file->path()), video) << piece;
        EXPECT_EQ(f.video->filename, "video.mp4");
        const json& parts = f.document["messages"][0]["content"];
        EXPECT_EQ(parts[1]["video_url"]["url"], server::kDataUrlPlaceholder);
        EXPECT_EQ(parts[0]["text"], "url: data:x");  // a text that merely mentions data: stays text
        EXPECT_EQ(f.document["model"], "m");
    }
}

TEST_F(DataUrlTest, OtherDocumentsAreKeptAsTheyCame) {
    const std::string text = R"({"a":[1,2,{"url":"https://x"}],"b":"data:not a url value","url":"data:no comma"})";
    for (size_t piece : {size_t(1), text.size()}) {
        server::Form f = parse(text, piece);
        EXPECT_FALSE(f.video);
        EXPECT_EQ(f.document, json::parse(text));  // no payload: the string stays (and is refused later)
    }
}

TEST_F(DataUrlTest, EveryRefusalHasItsStatus) {
    auto status = [&](const std::string& body) {
        try {
            parse(body, 5);
        } catch (const HttpError& e) {
            return e.status();
        }
        return 0;
    };
    const std::string url = R"({"url":"data:video/mp4;base64,)";
    EXPECT_EQ(status(url + "!!!!\"}"), 400);
    EXPECT_EQ(status(url + "QUJD\\nQUJD\"}"), 400);  // an escape other than \/
    EXPECT_EQ(status(url + "QUJD\"," + R"("x":{"url":"data:video/mp4;base64,QUJD"}})"), 400);  // two
    EXPECT_EQ(status(url + base64(std::string((1 << 20) + 1, 'v')) + "\"}"), 413);              // the upload limit
    EXPECT_EQ(status(R"({"url":"data:)" + std::string(300, 'x') + R"(,QUJD"})"), 400);           // header
    EXPECT_EQ(status(R"({"t":")" + std::string((1 << 20) + 10, 'x') + R"("})"), 413);            // the text's limit
    EXPECT_EQ(status(R"({"url":"data:text/plain,hi"})"), 400);  // not base64
    EXPECT_EQ(status(url + "QUJD\"}"), 0);
    // A refused upload leaves nothing in the store.
    EXPECT_EQ(store_.files(), 0u);
    EXPECT_EQ(store_.bytes(), 0);
}

TEST(TextDeltas, SendWholeCharactersOnlyAndNeverRepeat) {
    server::TextDeltas d;
    EXPECT_EQ(d.next("Hel", false), "Hel");
    EXPECT_EQ(d.next("Hel", false), "");
    EXPECT_EQ(d.next("Hello \xE2\x82", false), "lo ");  // "€" cut after two of its three bytes
    EXPECT_EQ(d.next("Hello \xEF\xBF\xBD", false), "");   // or decoded as U+FFFD for now
    EXPECT_EQ(d.next("Hello \xE2\x82\xAC!", false), "\xE2\x82\xAC!");
    EXPECT_EQ(d.sent(), "Hello \xE2\x82\xAC!");
    // A rewrite of what was sent stops the deltas; the final text still ends the stream if it can.
    EXPECT_EQ(d.next("Help", false), "");
    EXPECT_EQ(d.next("Hello \xE2\x82\xAC! ok", true), " ok");
    server::TextDeltas last;
    EXPECT_EQ(last.next("a\xEF\xBF\xBD", true), "a\xEF\xBF\xBD");  // the final text goes as it is
}

}  // namespace
}  // namespace vidi::test
