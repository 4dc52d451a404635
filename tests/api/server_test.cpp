// The server over real HTTP on 127.0.0.1, port 0.
#include "api/server/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <random>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/client/client.h"
#include "api/client/json_client.h"
#include "api/ingest/annotation.h"
#include "api/metrics/registry.h"
#include "api/server/auth.h"
#include "api/server/builtin_routes.h"
#include "common/sha256.h"
#include "api/wire/json_util.h"
#include "api/wire/problem.h"
#include "tests/api/exposition.h"
#include "tests/api/test_util.h"

namespace herd::api {
namespace {

using testing::RawConn;
using testing::WaitFor;
using namespace std::chrono_literals;

// Counts the bytes and annotation lines of a streamed upload.
class CountingSink : public BodySink {
 public:
  CountingSink()
      : reader_({}, [this](ingest::Annotation&&) { ++records_; },
                [this](ingest::LineError&&) { ++errors_; }) {}
  Status OnChunk(std::string_view chunk) override {
    bytes_ += chunk.size();
    ++chunks_;
    reader_.Feed(chunk);
    return Status::Ok();
  }
  Response Finish(const Request&) override {
    reader_.Finish();
    nlohmann::json j = {{"bytes", bytes_}, {"chunks", chunks_}, {"accepted", records_},
                        {"rejected", errors_}};
    return Response::Json(200, j.dump());
  }

 private:
  ingest::AnnotationReader reader_;
  uint64_t bytes_ = 0, chunks_ = 0, records_ = 0, errors_ = 0;
};

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions opt = {}, const Authenticator* auth = nullptr) {
    opt.host = "127.0.0.1";
    opt.port = 0;
    Router r;
    ASSERT_TRUE(AddBuiltinRoutes(r, &registry_).ok());
    ASSERT_TRUE(r.Add("POST", "/echo",
                      [](const Request& q) {
                        return Response::Text(200, q.body, "application/octet-stream");
                      })
                    .ok());
    ASSERT_TRUE(r.Add("GET", "/v1/runs/{run}",
                      [](const Request& q) {
                        nlohmann::json j = {{"run", q.Param("run")},
                                            {"principal", q.principal},
                                            {"q", q.Query("x").value_or("")}};
                        return Response::Json(200, j.dump());
                      })
                    .ok());
    RouteOptions admin;
    admin.role = Role::kAdmin;
    ASSERT_TRUE(r.Add("POST", "/v1/runs/{run}:cancel",
                      [](const Request&) { return Response::Json(200, "{}"); }, admin)
                    .ok());
    ASSERT_TRUE(r.Add("POST", "/json",
                      [](const Request& q) {
                        auto j = ParseJson(q.body);
                        if (!j.ok()) return MakeProblem(ProblemType::kInvalidJson, j.status().message());
                        return Response::Json(200, DumpJson(*j));
                      })
                    .ok());
    ASSERT_TRUE(r.Add("GET", "/slow",
                      [this](const Request&) {
                        slow_started_ = true;
                        std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
                        return Response::Json(200, R"({"slow":true})");
                      })
                    .ok());
    ASSERT_TRUE(r.Add("GET", "/throw",
                      [](const Request&) -> Response { throw std::runtime_error("boom"); })
                    .ok());
    RouteOptions annot;
    annot.role = Role::kAnnotator;
    ASSERT_TRUE(r.AddStreaming("POST", "/upload",
                               [](const Request&) -> Result<std::unique_ptr<BodySink>> {
                                 return std::unique_ptr<BodySink>(new CountingSink());
                               },
                               annot)
                    .ok());
    server_ = std::make_unique<Server>(opt, std::move(r), auth, &registry_);
    ASSERT_TRUE(server_->Start().ok());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  std::unique_ptr<HttpClient> Client(std::string token = "",
                                     std::chrono::milliseconds timeout = 10s) {
    ClientOptions o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port_);
    o.token = std::move(token);
    o.timeout = timeout;
    auto c = HttpClient::Create(o);
    EXPECT_TRUE(c.ok());
    return std::move(c).value();
  }
  void TearDown() override {
    if (server_) server_->Stop(5s);
  }

  static nlohmann::json Problem(const Response& r) {
    EXPECT_EQ(r.content_type, "application/problem+json") << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("status", 0), r.status);
    EXPECT_TRUE(j.contains("title") && j.contains("detail")) << r.body;
    return j;
  }

  metrics::Registry registry_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  std::atomic<bool> slow_started_{false};
  int slow_ms_ = 400;
};

TEST_F(ServerTest, KeepAliveReusesOneConnection) {
  Start();
  auto c = Client();
  for (int i = 0; i < 5; ++i) {
    auto r = c->Request("GET", "/v1/runs/r" + std::to_string(i) + "?x=a%20b");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    auto j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["run"], "r" + std::to_string(i));
    EXPECT_EQ(j["principal"], "anonymous");
    EXPECT_EQ(j["q"], "a b");
  }
  EXPECT_EQ(c->connections_opened(), 1u);
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  // The server counts a response once its write completed, which may be just
  // after the client has read it.
  EXPECT_TRUE(WaitFor([&] { return server_->stats().requests == 5u; }))
      << server_->stats().requests;
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowedAreProblems) {
  Start();
  auto c = Client();
  auto nf = c->Request("GET", "/nope");
  ASSERT_TRUE(nf.ok());
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(Problem(*nf)["type"], "urn:herd:problem:not-found");
  auto na = c->Request("DELETE", "/healthz");
  ASSERT_TRUE(na.ok());
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(Problem(*na)["type"], "urn:herd:problem:method-not-allowed");
  EXPECT_EQ(*na->headers.Get("Allow"), "GET");
  auto ok = c->Request("GET", "/healthz");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, R"({"status":"ok"})");
}

TEST_F(ServerTest, OversizeBodyIs413) {
  ServerOptions o;
  o.body_limit = 1024;
  Start(o);
  auto c = Client();
  auto small = c->Request("POST", "/echo", std::string(1024, 'a'));
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->status, 200);
  EXPECT_EQ(small->body.size(), 1024u);
  auto big = c->Request("POST", "/echo", std::string(200000, 'a'));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(Problem(*big)["type"], "urn:herd:problem:payload-too-large");

  // Chunked: no Content-Length, the parser's body limit trips mid-body.
  RawConn raw(port_);
  ASSERT_TRUE(raw.connected());
  std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(0x200, 'b') + "\r\n";
  req += "0\r\n\r\n";
  raw.Send(req);
  std::string resp = raw.ReadAll();
  EXPECT_EQ(resp.rfind("HTTP/1.1 413", 0), 0u) << resp;
  EXPECT_NE(resp.find("urn:herd:problem:payload-too-large"), std::string::npos);
}

TEST_F(ServerTest, MalformedRequestIs400) {
  Start();
  for (const std::string bad :
       {"NOT A REQUEST\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "GET healthz HTTP/1.1\r\n\r\n"}) {
    RawConn raw(port_);
    ASSERT_TRUE(raw.connected());
    raw.Send(bad);
    std::string resp = raw.ReadAll();
    EXPECT_EQ(resp.rfind("HTTP/1.1 400", 0), 0u) << bad << " → " << resp;
    EXPECT_NE(resp.find("application/problem+json"), std::string::npos) << resp;
    EXPECT_NE(resp.find("urn:herd:problem:malformed-request"), std::string::npos) << resp;
  }
}

TEST_F(ServerTest, HeaderLimitIs431) {
  ServerOptions o;
  o.header_limit = 1024;
  Start(o);
  RawConn raw(port_);
  raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'h') + "\r\n\r\n");
  std::string resp = raw.ReadAll();
  EXPECT_EQ(resp.rfind("HTTP/1.1 431", 0), 0u) << resp.substr(0, 200);
  EXPECT_NE(resp.find("urn:herd:problem:headers-too-large"), std::string::npos);
  // Under the limit is fine.
  RawConn ok(port_);
  ok.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Small: " +
          std::string(500, 'h') + "\r\n\r\n");
  EXPECT_EQ(ok.ReadAll().rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(ServerTest, BadUtf8InJsonIs400NamingTheField) {
  Start();
  auto c = Client();
  auto r = c->Request("POST", "/json", "{\"name\": \"ok\", \"lr\": \"1e-5\xFF\"}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  auto j = Problem(*r);
  EXPECT_EQ(j["type"], "urn:herd:problem:invalid-json");
  EXPECT_NE(j["detail"].get<std::string>().find("field 'lr'"), std::string::npos) << j.dump();
}

TEST_F(ServerTest, TooManyConnectionsGets503) {
  ServerOptions o;
  o.max_connections = 2;
  Start(o);
  RawConn a(port_), b(port_);
  ASSERT_TRUE(a.connected() && b.connected());
  ASSERT_TRUE(WaitFor([&] { return server_->stats().open_connections == 2; }));
  RawConn extra(port_);
  ASSERT_TRUE(extra.connected());  // the kernel accepts; the server answers 503
  std::string resp = extra.ReadAll();
  EXPECT_EQ(resp.rfind("HTTP/1.1 503", 0), 0u) << resp;
  EXPECT_NE(resp.find("urn:herd:problem:unavailable"), std::string::npos);
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
  // The two admitted connections are served normally.
  a.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(a.ReadAll().rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(ServerTest, AuthGives401And403AsProblems) {
  std::string file;
  for (auto [name, role, tok] : {std::tuple{"root", "admin", "t-admin"},
                                 std::tuple{"ann", "annotator", "t-ann"},
                                 std::tuple{"view", "viewer", "t-view"}}) {
    file += std::string(R"({"name": ")") + name + R"(", "role": ")" + role +
            R"(", "token_sha256": ")" + Sha256Hex(tok) + "\"}\n";
  }
  auto auth = Authenticator::Parse(file, "auth.jsonl");
  ASSERT_TRUE(auth.ok()) << auth.status().ToString();
  Start({}, &*auth);

  auto anon = Client();
  auto r = anon->Request("GET", "/v1/runs/r1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(Problem(*r)["type"], "urn:herd:problem:unauthenticated");
  EXPECT_EQ(*r->headers.Get("WWW-Authenticate"), "Bearer realm=\"herd\"");
  auto health = anon->Request("GET", "/healthz");  // public
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);

  auto wrong = Client("t-nobody")->Request("GET", "/v1/runs/r1");
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);

  auto viewer = Client("t-view");
  auto get = viewer->Request("GET", "/v1/runs/r1");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(nlohmann::json::parse(get->body)["principal"], "view");
  auto cancel = viewer->Request("POST", "/v1/runs/r1:cancel");
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(cancel->status, 403);
  auto pj = Problem(*cancel);
  EXPECT_EQ(pj["type"], "urn:herd:problem:permission-denied");
  EXPECT_NE(pj["detail"].get<std::string>().find("needs role admin"), std::string::npos);

  auto upload = viewer->Request("POST", "/upload", "{}");
  ASSERT_TRUE(upload.ok());
  EXPECT_EQ(upload->status, 403);  // refused before the body is read
  auto ann = Client("t-ann")->Request("POST", "/upload", "{}");
  ASSERT_TRUE(ann.ok());
  EXPECT_EQ(ann->status, 200);

  auto admin = Client("t-admin")->Request("POST", "/v1/runs/r1:cancel");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->status, 200);
}

TEST_F(ServerTest, EarlyAnswerReachesAClientStillUploading) {
  // 403 is decided from the header; the server drains the unread 5 MB body
  // while closing, so the client reads the 403 instead of a reset.
  std::string file = std::string(R"({"name": "view", "role": "viewer", "token_sha256": ")") +
                     Sha256Hex("t-view") + "\"}\n";
  auto auth = Authenticator::Parse(file, "auth.jsonl");
  ASSERT_TRUE(auth.ok());
  Start({}, &*auth);
  auto dir = testing::MakeTempDir("early");
  auto path = (dir / "big.jsonl").string();
  std::ofstream(path) << std::string(5 << 20, 'x');
  auto r = Client("t-view")->UploadFile("POST", "/upload", path, "application/x-ndjson");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(Problem(*r)["type"], "urn:herd:problem:permission-denied");
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, SilentAndIdleConnectionsAreClosedByTheirDeadlines) {
  ServerOptions o;
  o.read_timeout = 200ms;
  o.idle_timeout = 200ms;
  Start(o);
  RawConn silent(port_);  // never sends a byte
  ASSERT_TRUE(silent.connected());
  EXPECT_EQ(silent.ReadAll(), "");
  EXPECT_TRUE(silent.peer_closed()) << "not closed within the 10 s recv timeout";
  RawConn idle(port_);
  idle.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string resp = idle.ReadAll();  // the answer, then the idle deadline closes
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  EXPECT_TRUE(idle.peer_closed());
  EXPECT_TRUE(WaitFor([&] { return server_->stats().open_connections == 0; }));
}

TEST_F(ServerTest, RandomBytesNeverCrashTheServer) {
  ServerOptions o;
  o.read_timeout = 300ms;
  o.header_limit = 2048;
  o.body_limit = 4096;
  Start(o);
  std::mt19937 rng(99);
  const std::vector<std::string> prefixes = {
      "", "GET / HTTP/1.1\r\n", "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n",
      "POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "GET /v1/runs/"};
  for (int i = 0; i < 60; ++i) {
    std::string data = prefixes[i % prefixes.size()];
    size_t n = rng() % 3000;
    for (size_t k = 0; k < n; ++k) {
      int r = rng() % 10;
      data.push_back(r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? ':' : static_cast<char>(rng()));
    }
    RawConn c(port_);
    ASSERT_TRUE(c.connected());
    c.Send(data);
    c.ShutdownWrite();
    std::string resp = c.ReadAll();
    // Either no answer (the server gave up on a truncated request) or an
    // HTTP answer.
    if (!resp.empty()) {
      EXPECT_EQ(resp.rfind("HTTP/1.1 ", 0), 0u) << resp.substr(0, 100);
    }
    EXPECT_TRUE(c.peer_closed() || !resp.empty());
  }
  auto ok = Client()->Request("GET", "/healthz");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().open_connections == 0; }));
}

TEST_F(ServerTest, HandlerExceptionIs500) {
  Start();
  auto r = Client()->Request("GET", "/throw");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(Problem(*r)["type"], "urn:herd:problem:internal");
  // The server keeps serving.
  EXPECT_EQ(Client()->Request("GET", "/healthz")->status, 200);
}

TEST_F(ServerTest, GracefulShutdownFinishesAnInFlightRequest) {
  slow_ms_ = 500;
  Start();
  auto idle = Client();  // an idle keep-alive connection must not hold the drain up
  ASSERT_EQ(idle->Request("GET", "/healthz")->status, 200);
  auto fut = std::async(std::launch::async, [this] { return Client()->Request("GET", "/slow"); });
  ASSERT_TRUE(WaitFor([&] { return slow_started_.load(); }));
  EXPECT_EQ(server_->stats().in_flight, 1);
  server_->Stop(10s);
  auto r = fut.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"slow":true})");
  EXPECT_EQ(*r->headers.Get("Connection"), "close");
  EXPECT_EQ(server_->stats().open_connections, 0);
  // No longer listening.
  auto after = Client("", 2s)->Request("GET", "/healthz");
  EXPECT_FALSE(after.ok());
}

TEST_F(ServerTest, StreamingUploadWithProgress) {
  Start();
  auto dir = testing::MakeTempDir("upload");
  auto path = (dir / "ann.jsonl").string();
  uint64_t size = 0;
  {
    std::ofstream out(path);
    for (int i = 0; i < 20000; ++i) {
      std::string line = R"({"id": "a)" + std::to_string(i) +
                         R"(", "prompt": "p", "chosen": "x", "rejected": "y"})" + "\n";
      out << line;
      size += line.size();
    }
    out << "broken line\n";
    size += 12;
  }
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  auto c = Client();
  auto r = c->UploadFile("POST", "/upload", path, "application/x-ndjson",
                         [&](uint64_t s, uint64_t t) { progress.emplace_back(s, t); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["bytes"], size);
  EXPECT_EQ(j["accepted"], 20000);
  EXPECT_EQ(j["rejected"], 1);
  EXPECT_GT(j["chunks"].get<int>(), 1);  // really streamed in pieces
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), (std::pair<uint64_t, uint64_t>{size, size}));
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GT(progress[i].first, progress[i - 1].first);
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, StreamingBodyLimitIs413) {
  ServerOptions o;
  o.stream_body_limit = 100000;
  Start(o);
  auto dir = testing::MakeTempDir("upload-big");
  auto path = (dir / "big.jsonl").string();
  {
    std::ofstream out(path);
    out << std::string(300000, 'x');
  }
  auto r = Client()->UploadFile("POST", "/upload", path, "application/x-ndjson");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, Expect100Continue) {
  Start();
  RawConn raw(port_);
  raw.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string cont = raw.ReadUntil("\r\n\r\n");
  EXPECT_EQ(cont.rfind("HTTP/1.1 100 Continue", 0), 0u) << cont;
  raw.Send("hello");
  std::string resp = raw.ReadUntil("hello");
  EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
}

TEST_F(ServerTest, MetricsCountRequestsByRoutePattern) {
  Start();
  auto c = Client();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c->Request("GET", "/v1/runs/r" + std::to_string(i))->status, 200);
  ASSERT_EQ(c->Request("GET", "/missing")->status, 404);
  auto m = c->Request("GET", "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->content_type, "text/plain; version=0.0.4; charset=utf-8");
  // Ids never become labels: the three runs are one series.
  testing::Exposition e = testing::ParseExposition(m->body);
  EXPECT_EQ(e.Value("herd_http_requests_total", {{"route", "/v1/runs/{run}"}, {"code", "200"}}), 3)
      << m->body;
  EXPECT_EQ(e.Value("herd_http_requests_total", {{"route", "unmatched"}, {"code", "404"}}), 1);
  EXPECT_EQ(e.Value("herd_http_request_duration_seconds_count", {{"route", "/v1/runs/{run}"}}), 3);
  // The latency buckets: 0.5 ms .. 10 s, then +Inf, for the two routes done
  // (this /metrics request is still in flight).
  EXPECT_EQ(e.CountSeries("herd_http_request_duration_seconds_bucket"),
            2 * (metrics::DefaultLatencyBuckets().size() + 1));
  EXPECT_TRUE(e.Value("herd_http_request_duration_seconds_bucket",
                      {{"route", "/v1/runs/{run}"}, {"le", "0.0005"}}).has_value());
  EXPECT_EQ(e.Value("herd_http_request_duration_seconds_bucket",
                    {{"route", "/v1/runs/{run}"}, {"le", "10"}}), 3);
  EXPECT_EQ(e.type["herd_http_requests_total"], "counter");
  EXPECT_EQ(e.type["herd_http_request_duration_seconds"], "histogram");
}

TEST_F(ServerTest, ClientJsonHelpersAndTimeouts) {
  slow_ms_ = 1500;
  Start();
  auto c = Client();
  auto j = GetJson(*c, "/v1/runs/abc");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["run"], "abc");
  auto echoed = SendJson(*c, "POST", "/json", {{"a", 1}});
  ASSERT_TRUE(echoed.ok());
  EXPECT_EQ((*echoed)["a"], 1);
  auto nf = GetJson(*c, "/nope");
  EXPECT_EQ(nf.status().code(), Status::Code::kNotFound);
  EXPECT_NE(nf.status().message().find("404 Not found: no route for GET /nope"), std::string::npos)
      << nf.status().message();
  // A response slower than the client's deadline is an error, not a hang.
  auto quick = Client("", 200ms);
  auto slow = quick->Request("GET", "/slow");
  EXPECT_EQ(slow.status().code(), Status::Code::kUnavailable);
  // And the client recovers on a new connection.
  auto again = quick->Request("GET", "/healthz");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(quick->connections_opened(), 2u);
}

TEST_F(ServerTest, ClientReconnectsWhenTheServerClosedAnIdleConnection) {
  ServerOptions o;
  o.idle_timeout = 100ms;
  Start(o);
  auto c = Client();
  ASSERT_EQ(c->Request("GET", "/healthz")->status, 200);
  // The server's idle deadline closes the kept-alive connection...
  ASSERT_TRUE(WaitFor([&] { return server_->stats().open_connections == 0; }));
  // ...and the client notices on its next request and resends it.
  auto r = c->Request("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c->connections_opened(), 2u);
}

TEST(Client, RejectsBadUrlsAndReportsConnectErrors) {
  std::string h, p;
  EXPECT_TRUE(ParseBaseUrl("http://127.0.0.1:8080", &h, &p).ok());
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, "8080");
  EXPECT_TRUE(ParseBaseUrl("http://[::1]:9/x", &h, &p).ok());
  EXPECT_EQ(h, "::1");
  bool https = true;
  EXPECT_TRUE(ParseBaseUrl("http://host", &h, &p, &https).ok());
  EXPECT_EQ(p, "80");
  EXPECT_FALSE(https);
  EXPECT_TRUE(ParseBaseUrl("https://host/v1", &h, &p, &https).ok());
  EXPECT_EQ(h, "host");
  EXPECT_EQ(p, "443");
  EXPECT_TRUE(https);
  EXPECT_TRUE(ParseBaseUrl("https://[::1]:8443", &h, &p, &https).ok());
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, "8443");
  EXPECT_FALSE(ParseBaseUrl("ftp://host", &h, &p).ok());
  EXPECT_FALSE(ParseBaseUrl("https://", &h, &p).ok());
  EXPECT_FALSE(ParseBaseUrl("http://host:abc", &h, &p).ok());
  EXPECT_FALSE(ParseBaseUrl("http://", &h, &p).ok());
  // A port nobody listens on (bound, then closed) → Unavailable.
  uint16_t port;
  {
    Router r;
    Server s({"127.0.0.1", 0}, std::move(r));
    ASSERT_TRUE(s.Start().ok());
    port = s.port();
    s.Stop(1s);
  }
  ClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.timeout = 2s;
  auto c = HttpClient::Create(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Request("GET", "/").status().code(), Status::Code::kUnavailable);
}

TEST(Server, ListenErrorNamesTheAddress) {
  Server a({"127.0.0.1", 0}, Router());
  ASSERT_TRUE(a.Start().ok());
  ServerOptions o;
  o.port = a.port();
  Server b(o, Router());
  Status st = b.Start();
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(a.port())), std::string::npos)
      << st.message();
  ServerOptions bad;
  bad.host = "no-such-host.invalid";
  bad.port = 0;
  EXPECT_FALSE(Server(bad, Router()).Start().ok());
}

}  // namespace
}  // namespace herd::api
