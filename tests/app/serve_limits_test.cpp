// The server's building blocks against hostile input, without HTTP: the multipart parser,
// the form reader's limits, the upload store's budget and leases, media roots and pinned
// files, Host and key checks; then the upload store's cap through the API (fake engine).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "app/serve_client.h"
#include "app/serve_in_process.h"
#include "app/server/access.h"
#include "app/server/connection_pool.h"
#include "app/server/form.h"
#include "app/server/http_error.h"
#include "app/server/job_queue.h"
#include "app/server/metrics.h"
#include "app/server/multipart.h"
#include "app/server/upload_store.h"
#include "app/server/video_file.h"
#include "media/clip_export.h"
#include "media/media.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::test {
namespace {

using server::HttpError;

int status_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const HttpError& e) {
        return e.status();
    }
    return 0;
}

const std::string kBody =
    "preamble\r\n--B\r\nContent-Disposition: form-data; name=\"question\"\r\n\r\nwhere\r\n--C is it?\r\n"
    "--B\r\ncontent-disposition: form-data; name=\"video\"; filename=\"a \\\"b\\\".mp4\"\r\n"
    "Content-Type: video/mp4\r\n\r\nVIDEO\r\nBYTES\r\n--B--\r\nepilogue";

TEST(MultipartParser, SameFieldsWhateverThePieces) {
    for (size_t piece : {size_t(1), size_t(2), size_t(7), kBody.size()}) {
        std::vector<std::pair<server::PartHeader, std::string>> parts;
        server::MultipartParser p(
            "B", 1024, [&](const server::PartHeader& h) { parts.push_back({h, ""}); },
            [&](const char* d, size_t n) { parts.back().second.append(d, n); });
        for (size_t at = 0; at < kBody.size(); at += piece)
            p.feed(kBody.data() + at, std::min(piece, kBody.size() - at));
        p.finish();
        ASSERT_EQ(parts.size(), 2u) << piece;
        EXPECT_EQ(parts[0].first.name, "question");
        EXPECT_FALSE(parts[0].first.has_filename);
        EXPECT_EQ(parts[0].second, "where\r\n--C is it?");
        EXPECT_EQ(parts[1].first.name, "video");
        EXPECT_EQ(parts[1].first.filename, "a \"b\".mp4");
        EXPECT_EQ(parts[1].first.content_type, "video/mp4");
        EXPECT_EQ(parts[1].second, "VIDEO\r\nBYTES");
    }
}

TEST(MultipartParser, MalformedBodiesAre400) {
    auto parse = [](const std::string& body, size_t max_header = 1024) {
        return status_of([&] {
            server::MultipartParser p("B", max_header, [](const server::PartHeader&) {}, [](const char*, size_t) {});
            p.feed(body.data(), body.size());
            p.finish();
        });
    };
    EXPECT_EQ(parse("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--B--"), 0);
    EXPECT_EQ(parse("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"), 400);      // no closing boundary
    EXPECT_EQ(parse("--B\r\nno colon here\r\n\r\nx\r\n--B--"), 400);
    EXPECT_EQ(parse("--B\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--B--"), 400);
    EXPECT_EQ(parse("--Bxx\r\n"), 400);                                                      // bad delimiter line
    EXPECT_EQ(parse("--B\r\nX-Long: " + std::string(2000, 'a') + "\r\n\r\n\r\n--B--"), 400);  // headers too long
    EXPECT_EQ(parse("--B\r\nX: " + std::string(2000, 'a')), 400);                            // unfinished, too long
    EXPECT_EQ(parse("--B\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--B--"), 400);  // open quote
    // A part that names no field (it was read as a field named '').
    EXPECT_EQ(parse("--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--"), 400);
    EXPECT_EQ(parse("--B\r\nContent-Disposition: form-data; filename=\"v.mp4\"\r\n\r\nx\r\n--B--"), 400);
    EXPECT_EQ(status_of([] { server::multipart_boundary("multipart/form-data"); }), 400);
    EXPECT_EQ(status_of([] { server::multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'b')); }),
              400);
    EXPECT_EQ(server::multipart_boundary("multipart/form-data; charset=x; boundary=\"a b\""), "a b");
}

class FormLimitsTest : public ::testing::Test {
protected:
    server::Form parse(const std::string& type, const std::string& body) {
        return server::parse_form_bytes(type, body, 4096, limits_, store_);
    }
    int status(const std::string& type, const std::string& body) {
        return status_of([&] { parse(type, body); });
    }
    TempDir tmp_{"form-limits"};
    server::ServerLimits limits_ = [] {
        server::ServerLimits l;
        l.max_upload_bytes = 1000;
        l.max_fields = 4;
        l.max_field_bytes = 100;
        l.max_fields_bytes = 300;
        l.drain_bytes = 10000;
        return l;
    }();
    server::UploadStore store_{tmp_.file("uploads"), 5000, 2, 1000};
};

std::string field(const std::string& name, const std::string& value) {
    return "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
}
const std::string kMultipart = "multipart/form-data; boundary=B";

TEST_F(FormLimitsTest, FieldsAndTheirSizesAreBounded) {
    auto form = parse(kMultipart, field("question", "q") + field("task", "vqa") + "--B--\r\n");
    EXPECT_EQ(form.get("question"), "q");
    EXPECT_EQ(form.get("task"), "vqa");
    std::string five;
    for (int i = 0; i < 5; ++i) five += field("f" + std::to_string(i), "v");
    EXPECT_EQ(status(kMultipart, five + "--B--\r\n"), 413);                        // more than 4 fields
    EXPECT_EQ(status(kMultipart, field("q", std::string(101, 'x')) + "--B--"), 413);  // one field too long
    EXPECT_EQ(status(kMultipart, field("a", std::string(90, 'x')) + field("b", std::string(90, 'x')) +
                                     field("c", std::string(90, 'x')) + field("d", std::string(90, 'x')) + "--B--"),
              413);  // together too long
    EXPECT_EQ(status("application/x-www-form-urlencoded", "a=1&b=2&c=3&d=4&e=5"), 413);
    EXPECT_EQ(status("application/json", R"({"a":"1","b":"2","c":"3","d":"4","e":"5"})"), 413);
    EXPECT_EQ(status("application/json", std::string(301, ' ')), 413);  // the body itself
    EXPECT_EQ(status("application/json", "[1]"), 400);
    EXPECT_EQ(parse("application/json", R"({"question":"q","max_new_tokens":5})").get("max_new_tokens"), "5");
}

TEST_F(FormLimitsTest, TheUploadStreamsToTheStoreAndFailuresLeaveNothing) {
    const std::string video = "--B\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n\r\n";
    auto form = parse(kMultipart, video + std::string(1000, 'v') + "\r\n--B--\r\n");
    ASSERT_TRUE(form.video);
    EXPECT_EQ(form.video->file->bytes(), 1000);
    EXPECT_EQ(fs::file_size(form.video->file->path()), 1000u);
    EXPECT_EQ(form.video->file->sha256(), server::sha256_bytes(std::string(1000, 'v')));
    form = {};
    EXPECT_EQ(store_.bytes(), 0);  // nobody holds it: gone
    EXPECT_EQ(status(kMultipart, video + std::string(1001, 'v') + "\r\n--B--\r\n"), 413);
    EXPECT_EQ(status(kMultipart, video + "v\r\n" + video + "w\r\n--B--\r\n"), 400);  // two videos
    EXPECT_EQ(status(kMultipart, video + "truncated"), 400);
    EXPECT_EQ(store_.bytes(), 0);
    EXPECT_TRUE(fs::is_empty(tmp_.file("uploads")));
    // Past the drain allowance the error says to close the connection.
    try {
        parse(kMultipart, video + std::string(20000, 'v'));
        FAIL();
    } catch (const HttpError& e) {
        EXPECT_EQ(e.status(), 413);
        EXPECT_TRUE(e.close_connection());
    }
}

TEST(UploadStore, LeastRecentlyUsedIdleFilesMakeRoomAndLeasesProtect) {
    TempDir tmp("store");
    server::UploadStore store(tmp.file("u"), 300, 2, 300);
    std::vector<const server::UploadStore::File*> evicted;
    store.set_on_evict([&](const server::UploadStore::File& f) { evicted.push_back(&f); });
    auto add = [&](char c) {
        auto w = store.begin(".mp4");
        w->write(std::string(100, c).data(), 100);
        return w->commit();
    };
    auto a = add('a'), b = add('b'), c = add('c');
    EXPECT_EQ(store.bytes(), 300);
    auto lease_a = a->lease();  // in use, and now the most recently used
    auto d = add('d');          // evicts b, the least recently used idle file
    ASSERT_EQ(evicted.size(), 1u);
    EXPECT_EQ(evicted[0], b.get());
    EXPECT_FALSE(fs::exists(b->path()));
    EXPECT_EQ(status_of([&] { b->lease(); }), 400);  // "video not available"
    auto lease_c = c->lease();
    auto lease_d = d->lease();
    EXPECT_EQ(store.bytes(), 300);
    {
        auto w = store.begin(".mp4");
        EXPECT_EQ(status_of([&] { w->write("x", 1); }), 507);  // everything is in use
    }
    EXPECT_EQ(store.bytes(), 300);
    EXPECT_TRUE(fs::exists(a->path()) && fs::exists(c->path()) && fs::exists(d->path()));
    // Concurrent uploads are bounded.
    auto w1 = store.begin(""), w2 = store.begin("");
    EXPECT_EQ(status_of([&] { store.begin(""); }), 503);
}

TEST(VideoFile, OnlyRegularFilesInsideTheRootsAndTheOpenedFileStays) {
    TempDir tmp("roots");
    const std::string root = tmp.file("root"), out = tmp.file("out");
    fs::create_directories(root + "/d");
    fs::create_directories(out);
    std::ofstream(root + "/v.mp4") << "first";
    std::ofstream(root + "/w.mp4") << "second!";
    std::ofstream(out + "/x.mp4") << "outside";
    fs::create_symlink(out + "/x.mp4", root + "/link-out.mp4");
    fs::create_symlink(out, root + "/dir-out");
    ASSERT_EQ(mkfifo((root + "/fifo.mp4").c_str(), 0600), 0);
    std::ofstream(root + "/empty.mp4");
    const auto roots = server::media_roots({root});
    for (const std::string& bad : std::vector<std::string>{out + "/x.mp4", root + "/link-out.mp4",
                                                           root + "/dir-out/x.mp4",
                                  root + "/../out/x.mp4", root + "/d/../v.mp4", root + "/./v.mp4",
                                  root + "/d", root + "/fifo.mp4", root + "/empty.mp4",
                                  root + "/none.mp4", std::string("v.mp4"), std::string()}) {
        try {
            server::VideoFile::open_in_roots(roots, bad);
            ADD_FAILURE() << bad;
        } catch (const HttpError& e) {
            EXPECT_STREQ(e.what(), server::kVideoUnavailable) << bad;
            EXPECT_FALSE(e.log_detail().empty());
        }
    }
    EXPECT_EQ(status_of([&] { server::VideoFile::open_in_roots({}, root + "/v.mp4"); }), 400);  // no roots
    EXPECT_THROW(server::media_roots({root + "/v.mp4"}), vidi::Error);
    // A root named through a link: its files may be named either way.
    const std::string alias = tmp.file("alias");
    fs::create_symlink(root, alias);
    const auto aliased = server::media_roots({alias + "/"});
    EXPECT_EQ(server::VideoFile::open_in_roots(aliased, alias + "/v.mp4")->size(), 5);
    EXPECT_EQ(server::VideoFile::open_in_roots(aliased, root + "/v.mp4")->size(), 5);
    EXPECT_EQ(status_of([&] { server::VideoFile::open_in_roots(aliased, alias + "/dir-out/x.mp4"); }), 400);
    // A root spelled with '..' after a link resolves elsewhere than it reads ("lnk/../out" is
    // root/out, not `out`): only its resolved form is a root.
    fs::create_directories(root + "/out");
    fs::create_symlink(root + "/d", tmp.file("lnk"));
    const auto dotted = server::media_roots({tmp.file("lnk") + "/../out"});
    EXPECT_EQ(status_of([&] { server::VideoFile::open_in_roots(dotted, out + "/x.mp4"); }), 400);

    const std::string link = root + "/current.mp4";
    fs::create_symlink(root + "/v.mp4", link);
    auto f = server::VideoFile::open_in_roots(roots, link);
    EXPECT_EQ(f->real_path(), fs::canonical(root + "/v.mp4").string());
    EXPECT_EQ(f->sha256(), server::sha256_bytes("first"));
    fs::remove(link);
    fs::create_symlink(root + "/w.mp4", link);
    char buf[16] = {};
    EXPECT_EQ(f->read_at(buf, sizeof buf, 0), 5);
    EXPECT_EQ(std::string(buf, 5), "first");
    EXPECT_EQ(read_file(f->path()), "first");  // what FFmpeg opens
    EXPECT_NO_THROW(f->use());
    std::ofstream(root + "/v.mp4", std::ios::app) << "+";
    EXPECT_EQ(status_of([&] { f->use(); }), 400);
}

TEST(Access, HostNamesAndKeys) {
    EXPECT_EQ(server::host_name("LocalHost:8099"), "localhost");
    EXPECT_EQ(server::host_name("[::1]:80"), "::1");
    EXPECT_EQ(server::host_name("example.org"), "example.org");
    EXPECT_TRUE(server::is_loopback_address("127.0.0.2"));
    EXPECT_TRUE(server::is_loopback_address("::1"));
    EXPECT_FALSE(server::is_loopback_address("0.0.0.0"));
    EXPECT_FALSE(server::is_loopback_address("192.168.1.2"));
    // Every spelling the resolver binds as loopback is loopback (the Host allow-list then
    // defaults to the loopback names): short and integer IPv4 forms, full and mapped IPv6.
    for (const char* loopback : {"127.1", "2130706433", "0x7f.0.0.1", "0:0:0:0:0:0:0:1", "[::1]", "::ffff:127.0.0.1",
                                 "LOCALHOST"})
        EXPECT_TRUE(server::is_loopback_address(loopback)) << loopback;
    for (const char* other : {"", "::", "[]", "::ffff:10.0.0.1", "127.0.0.1 x", "10.1", "example.org", "0"})
        EXPECT_FALSE(server::is_loopback_address(other)) << other;
    EXPECT_TRUE(server::is_public_route("GET", "/health"));
    EXPECT_TRUE(server::is_public_route("GET", "/app.js"));
    EXPECT_FALSE(server::is_public_route("POST", "/health"));
    EXPECT_FALSE(server::is_public_route("GET", "/v1/videos"));
    EXPECT_FALSE(server::is_public_route("GET", "/../app.js"));
    EXPECT_FALSE(server::is_public_route("GET", "/.js"));
    EXPECT_FALSE(server::is_public_route("GET", "/app.js.map"));
    EXPECT_FALSE(server::is_public_route("GET", "/app.exe"));

    server::AccessOptions access;
    access.api_key = "k1";
    access.allowed_hosts = {"localhost"};
    httplib::Request req;
    req.method = "GET";
    req.path = "/v1/videos";
    req.set_header("Host", "localhost:1");
    EXPECT_EQ(server::check_access(access, req)->status(), 401);
    req.set_header("Authorization", "Bearer k2");
    EXPECT_EQ(server::check_access(access, req)->status(), 401);
    req.headers.erase("Authorization");
    req.set_header("Authorization", "Bearer k1");
    EXPECT_FALSE(server::check_access(access, req));
    req.set_header("Origin", "http://localhost:1");  // the page itself
    EXPECT_FALSE(server::check_access(access, req));
    req.headers.erase("Origin");
    req.set_header("Origin", "https://attacker.example");  // another site's page
    EXPECT_EQ(server::check_access(access, req)->status(), 403);
    req.headers.erase("Origin");
    req.headers.erase("Host");
    req.set_header("Host", "attacker.example");
    EXPECT_EQ(server::check_access(access, req)->status(), 403);
}

// Routes were matched with std::regex, which recurses per character: a path of a few hundred
// thousand characters (past httplib's 8 KiB URI bound today, but not past every front end's)
// would exhaust a worker's stack. The hand checks are linear; this runs them on 4 MiB paths.
TEST(Metrics, EndpointsGroupByRouteWhateverThePathLength) {
    using server::Metrics;
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/abc"), "/v1/videos/{id}");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/abc/query"), "/v1/videos/{id}/query");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/abc/clip"), "/v1/videos/{id}/clip");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/abc/file"), "/v1/videos/{id}/file");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/abc/"), "other");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos//query"), "other");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/a/b/query"), "other");
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos"), "/v1/videos");
    EXPECT_EQ(Metrics::endpoint_of("/index.html"), "/ (page)");
    EXPECT_EQ(Metrics::endpoint_of("/x/index.html"), "other");
    const std::string long_id(4 << 20, 'a');
    EXPECT_EQ(Metrics::endpoint_of("/v1/videos/" + long_id + "/query"), "/v1/videos/{id}/query");
    EXPECT_EQ(Metrics::endpoint_of("/" + long_id + ".html"), "/ (page)");
    EXPECT_TRUE(server::is_public_route("GET", "/" + long_id + ".css"));
    EXPECT_FALSE(server::is_public_route("GET", "/" + long_id + "/.css"));
}

TEST(Access, LogLinesShowControlBytesEscapedAndOriginsComparePorts) {
    EXPECT_EQ(server::printable("/x\r\nvidi serve: FORGED\x1b[31m"), "/x\\x0D\\x0Avidi serve: FORGED\\x1B[31m");
    EXPECT_EQ(server::printable("/v1/videos/\xc3\xa9"), "/v1/videos/\xc3\xa9");  // UTF-8 stays
    EXPECT_TRUE(server::same_origin("http://localhost:8099", "localhost:8099"));
    EXPECT_TRUE(server::same_origin("http://LocalHost:80", "localhost"));
    EXPECT_TRUE(server::same_origin("https://vidi.example", "vidi.example"));
    EXPECT_TRUE(server::same_origin("http://[::1]:8099", "[::1]:8099"));
    EXPECT_FALSE(server::same_origin("http://localhost:9999", "localhost:8099"));
    EXPECT_FALSE(server::same_origin("https://vidi.example", "vidi.example:80"));
    EXPECT_FALSE(server::same_origin("null", "localhost:8099"));
    EXPECT_FALSE(server::same_origin("localhost:8099", "localhost:8099"));
}

TEST(ClientJson, DepthCountsBracketsOutsideStringsOnly) {
    EXPECT_EQ(server::parse_client_json(R"({"a":"[[[[{{{{\"[[["})", 2)["a"], "[[[[{{{{\"[[[");
    EXPECT_EQ(server::parse_client_json(R"({"a":[[1]]})", 3)["a"][0][0], 1);
    EXPECT_THROW(server::parse_client_json(R"({"a":[[[1]]]})", 3), server::HttpError);
    EXPECT_TRUE(server::parse_client_json("{\"a\": nope}", 64).is_discarded());
    EXPECT_TRUE(server::parse_client_json("]]]]{", 64).is_discarded());  // unbalanced: not JSON
    // A NUL ends nlohmann's text: "{}" then anything would read as "{}". Inside a string a raw
    // NUL is a control byte, which JSON refuses too.
    EXPECT_FALSE(nlohmann::json::parse(std::string("{}\0{\"a\":", 5), nullptr, false).is_discarded());
    EXPECT_THROW(server::parse_client_json(std::string("{}\0{\"a\":", 5), 64), server::HttpError);
    EXPECT_THROW(server::parse_client_json(std::string("{}\0", 3), 64), server::HttpError);
    EXPECT_TRUE(server::parse_client_json(std::string("{\"a\":\"x\0\"}", 10), 64).is_discarded());
}

// The open policy the server gives the engine: local files in video containers only. The
// same inputs open with MediaInputs::Any (the command line), so the refusals are the policy's.
TEST(MediaInputs, VideoFilesRefusesTextPlaylistsAndConcatListsButOpensVideos) {
    TempDir tmp("inputs");
    const std::string text = tmp.file("notes.txt"), playlist = tmp.file("list.m3u8");
    const std::string concat = tmp.file("list.ffconcat");
    {
        std::ofstream t(text);
        for (int i = 0; i < 200; ++i) t << "line " << i << " of plain text, which the tty demuxer shows as video\n";
        std::ofstream(playlist) << "#EXTM3U\n#EXT-X-TARGETDURATION:13\n#EXTINF:12.0,\n" << golden_path("synth.mp4")
                                << "\n#EXT-X-ENDLIST\n";
        fs::copy_file(golden_path("synth.mp4"), tmp.file("part.mp4"));  // concat takes relative names
        std::ofstream(concat) << "ffconcat version 1.0\nfile 'part.mp4'\n";
    }
    for (const std::string& path : {text, playlist, concat}) {
        EXPECT_NO_THROW(media::probe(path, MediaInputs::Any)) << path;
        EXPECT_THROW(media::probe(path, MediaInputs::VideoFiles), vidi::Error) << path;
        EXPECT_THROW(media::export_clip(path, {0, 1}, tmp.file("c.mp4"), MediaInputs::VideoFiles), vidi::Error);
    }
    const std::string synth = golden_path("synth.mp4");
    EXPECT_EQ(media::probe(synth, MediaInputs::VideoFiles).frame_count, media::probe(synth).frame_count);
    media::FrameStream frames(synth, 64, 16, 2, MediaInputs::VideoFiles);
    EXPECT_EQ(frames.total_frames(), 12);
    EXPECT_TRUE(media::load_audio_samples(synth, MediaInputs::VideoFiles).present);
    EXPECT_NO_THROW(media::export_clip(synth, {0, 1}, tmp.file("c.mp4"), MediaInputs::VideoFiles));
}

// A server on the fake engine whose store holds 100 KiB of uploads of at most 40 KiB.
struct SmallStore {
    explicit SmallStore(const std::string& tag) : tmp(tag), opt(options(tmp)), srv(engine, opt), cli(srv.client()) {}
    static server::ServerOptions options(TempDir& tmp) {
        server::ServerOptions o;
        o.cache.dir.clear();
        o.work_dir = tmp.file("work");
        o.limits.max_upload_bytes = 40 << 10;
        o.limits.upload_store_bytes = 100 << 10;
        return o;
    }
    TempDir tmp;
    FakeEngine engine;
    server::ServerOptions opt;
    InProcessServer srv;
    httplib::Client cli;
};

// Through the API: uploads registered one after another never take the store past its cap;
// the oldest go (their ids with them), the newest stay.
TEST(UploadStoreApi, TheStoreStaysUnderItsCap) {
    SmallStore store("store-api");
    auto& [tmp, engine, opt, srv, cli] = store;
    std::vector<std::string> ids;
    for (int i = 0; i < 8; ++i) {
        const std::string v = tmp.file("v" + std::to_string(i) + ".fake");
        std::ofstream(v) << "FAKEVIDEO " << 10 + i << "\n" << std::string(30 << 10, 'a' + i);
        json reg = json_body(post_form(cli, "/v1/videos", v, {}));
        ASSERT_TRUE(reg.contains("id")) << reg;
        ids.push_back(reg["id"]);
        int64_t on_disk = 0;
        for (auto& e : fs::directory_iterator(opt.work_dir + "/uploads")) on_disk += int64_t(e.file_size());
        EXPECT_LE(on_disk, opt.limits.upload_store_bytes) << i;
        EXPECT_LE(json_body(cli.Get("/health"))["uploads"]["bytes"].get<int64_t>(), opt.limits.upload_store_bytes);
    }
    EXPECT_EQ(json_body(cli.Get("/v1/videos"))["videos"].size(), 3u);  // 3 × 30 KiB fit in 100 KiB
    EXPECT_EQ(cli.Get(("/v1/videos/" + ids[0] + "/file").c_str())->status, 404);
    auto last = cli.Get(("/v1/videos/" + ids.back() + "/file").c_str());
    ASSERT_EQ(last->status, 200);
    EXPECT_EQ(last->body, read_file(tmp.file("v7.fake")));
}

// Connections beyond the queue wait outside the process: the accepting thread blocks.
TEST(ConnectionPool, AFullQueueHoldsTheAcceptingThreadBack) {
    server::ConnectionPool pool(1, 2);
    std::promise<void> release;
    std::shared_future<void> go = release.get_future().share();
    std::atomic<int> ran{0};
    pool.enqueue([go, &ran] { go.wait(); ++ran; });  // the one thread is busy
    while (pool.queued() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    pool.enqueue([&ran] { ++ran; });
    pool.enqueue([&ran] { ++ran; });
    EXPECT_EQ(pool.queued(), 2u);
    std::atomic<bool> accepted{false};
    std::thread acceptor([&] {
        pool.enqueue([&ran] { ++ran; });
        accepted = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_FALSE(accepted.load());  // waits for room
    release.set_value();
    acceptor.join();
    EXPECT_TRUE(accepted.load());
    pool.shutdown();  // runs what is queued first
    EXPECT_EQ(ran.load(), 4);
    pool.enqueue([&ran] { ++ran; });  // after shutdown: run at once, so the socket closes
    EXPECT_EQ(ran.load(), 5);
}

// A job's functions (and what they capture) are released once it ran, while its ticket lives.
TEST(JobQueue, WhatAJobHoldsGoesOnceItRanWhateverHoldsItsTicket) {
    auto held = std::make_shared<int>(1);
    std::weak_ptr<int> watch = held;
    {
        server::JobQueue queue(4);
        auto ticket = queue.submit([held] {});
        held.reset();
        ASSERT_TRUE(ticket);
        ticket->get();
        EXPECT_TRUE(watch.expired());  // the ticket still lives; the work's capture does not
        auto blocker = std::make_shared<std::promise<void>>();
        auto started = queue.submit([f = blocker->get_future().share()] { f.wait(); });
        auto again = std::make_shared<int>(2);
        watch = again;
        auto dropped = queue.submit([again] {}, nullptr, [again](const std::string&) {});
        again.reset();
        EXPECT_FALSE(watch.expired());
        blocker->set_value();
        started->get();
        dropped->get();
        EXPECT_TRUE(watch.expired());
        (void)dropped;
    }
}

// Found by probing the real server: a question whose video failed (or that was cancelled)
// kept its upload, the upload's lease and an open file for ever (the batch's job held the
// batch, the batch its members), so failed uploads filled the store for good (507) and then
// the process's file descriptors. Failures now leave nothing in use.
TEST(UploadStoreApi, FailedQuestionsLeaveNothingInUse) {
    SmallStore store("store-fail");
    auto& [tmp, engine, opt, srv, cli] = store;
    const std::string bad = tmp.file("bad.bin");
    std::ofstream(bad) << "NOT A VIDEO\n" << std::string(30 << 10, 'x');
    for (int i = 0; i < 8; ++i) {  // 8 × 30 KiB through a 100 KiB store
        auto r = post_form(cli, "/inference", bad, {{"question", "what happens?"}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << i << ": " << r->body;
    }
    const json health = json_body(cli.Get("/health"));
    EXPECT_LE(health["uploads"]["files"].get<int64_t>(), 3) << health;
    const std::string good = tmp.file("good.fake");
    std::ofstream(good) << "FAKEVIDEO 12\n" << std::string(30 << 10, 'g');
    EXPECT_EQ(post_form(cli, "/v1/videos", good, {})->status, 200);
    EXPECT_EQ(post_form(cli, "/inference", good, {{"question", "what happens?"}})->status, 200);
}

}  // namespace
}  // namespace vidi::test
