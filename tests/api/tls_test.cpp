// The server and the client over HTTPS on 127.0.0.1, port 0, with
// certificates made by the openssl CLI at run time: verification (CA, host
// name), plain HTTP on the TLS port, streaming both ways, keep-alive and
// its stale-connection retry, the limits and deadlines, the drain, and bad
// certificate files.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/client/client.h"
#include "api/metrics/registry.h"
#include "api/server/builtin_routes.h"
#include "api/server/server.h"
#include "api/wire/problem.h"
#include "tests/api/test_util.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tls_certs.h"

namespace herd::api {
namespace {

using namespace std::chrono_literals;
using ::herd::testing::TlsFiles;
using testing::RawConn;
using testing::WaitFor;

// Counts the bytes of a streamed upload.
class ByteCountSink : public BodySink {
 public:
  Status OnChunk(std::string_view chunk) override {
    for (char c : chunk) sum_ += static_cast<unsigned char>(c);
    bytes_ += chunk.size();
    ++chunks_;
    return Status::Ok();
  }
  Response Finish(const Request&) override {
    return Response::Json(
        200, nlohmann::json{{"bytes", bytes_}, {"chunks", chunks_}, {"sum", sum_}}.dump());
  }

 private:
  uint64_t bytes_ = 0, chunks_ = 0, sum_ = 0;
};

// "line <i>\n" for i in [0, n), 100 lines a piece.
class LinesSource : public BodySource {
 public:
  explicit LinesSource(int n) : n_(n) {}
  Status Next(std::string* piece, bool* done) override {
    piece->clear();
    for (int k = 0; k < 100 && i_ < n_; ++k) *piece += "line " + std::to_string(i_++) + "\n";
    *done = i_ >= n_;
    return Status::Ok();
  }

 private:
  int n_, i_ = 0;
};

std::string Lines(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "line " + std::to_string(i) + "\n";
  return s;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = ::herd::testing::OpensslUnavailable(); !why.empty()) GTEST_SKIP() << why;
    auto c = ::herd::testing::MakeSelfSigned(dir_.path(), "server");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    files_ = *c;
  }
  void TearDown() override {
    if (server_) server_->Stop(5s);
  }

  void Start(ServerOptions opt = {}, const TlsFiles* files = nullptr) {
    if (files == nullptr) files = &files_;
    opt.host = "127.0.0.1";
    opt.port = 0;
    opt.tls_cert_file = files->cert;
    opt.tls_key_file = files->key;
    Router r;
    ASSERT_TRUE(AddBuiltinRoutes(r, &registry_).ok());
    ASSERT_TRUE(r.Add("POST", "/echo", [](const Request& q) {
                   return Response::Text(200, q.body, "application/octet-stream");
                 }).ok());
    ASSERT_TRUE(r.Add("GET", "/slow", [this](const Request&) {
                   slow_started_ = true;
                   std::this_thread::sleep_for(500ms);
                   return Response::Json(200, R"({"slow":true})");
                 }).ok());
    ASSERT_TRUE(r.Add("GET", "/lines", [](const Request& q) {
                   int n = std::stoi(std::string(q.Query("n").value_or("10")));
                   return Response::Stream(200, std::make_shared<LinesSource>(n),
                                           "application/x-ndjson");
                 }).ok());
    ASSERT_TRUE(
        r.AddStreaming("POST", "/upload", [](const Request&) -> Result<std::unique_ptr<BodySink>> {
           return std::unique_ptr<BodySink>(new ByteCountSink());
         }).ok());
    server_ = std::make_unique<Server>(opt, std::move(r), nullptr, &registry_);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    port_ = server_->port();
  }

  std::string Url(const std::string& host = "127.0.0.1", const char* scheme = "https") const {
    return std::string(scheme) + "://" + host + ":" + std::to_string(port_);
  }
  Result<std::unique_ptr<HttpClient>> MakeClient(const std::string& ca_file, const std::string& url,
                                                 std::chrono::milliseconds timeout = 10s) {
    ClientOptions o;
    o.base_url = url;
    o.ca_file = ca_file;
    o.timeout = timeout;
    return HttpClient::Create(o);
  }
  // A client trusting the server's certificate.
  std::unique_ptr<HttpClient> Client(const std::string& host = "127.0.0.1") {
    auto c = MakeClient(files_.cert, Url(host));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  // The error of GET /healthz from a client of `url` trusting ca_file.
  std::string HandshakeError(const std::string& ca_file, const std::string& url) {
    auto c = MakeClient(ca_file, url);
    if (!c.ok()) return "Create: " + c.status().ToString();
    auto r = (*c)->Request("GET", "/healthz");
    if (r.ok()) return "answered " + std::to_string(r->status);
    EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
    return r.status().message();
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  ::herd::testing::TempDir dir_{"tls"};
  TlsFiles files_;
  metrics::Registry registry_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  std::atomic<bool> slow_started_{false};
};

TEST_F(TlsTest, ServesGetAndPostOverHttpsOnOneKeptAliveConnection) {
  Start();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto r = c->Request("POST", "/echo", "hello " + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello " + std::to_string(i));
  }
  auto h = c->Request("GET", "/healthz");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->body, R"({"status":"ok"})");
  EXPECT_EQ(c->connections_opened(), 1u);
  // By DNS name (SNI sent, checked against the DNS entry) as well.
  auto byname = Client("localhost");
  auto r = byname->Request("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  // The request metrics count HTTPS requests like any other.
  auto m = c->Request("GET", "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("herd_http_requests_total{code=\"200\",route=\"/echo\"} 5"),
            std::string::npos)
      << m->body;
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(TlsTest, ClientWithoutTheRightCaFailsVerification) {
  Start();
  // The system's CAs do not know a self-signed test certificate.
  std::string none = HandshakeError("", Url());
  EXPECT_NE(none.find("TLS handshake with 127.0.0.1:" + std::to_string(port_) +
                      ": certificate verify failed: "),
            std::string::npos)
      << none;
  EXPECT_NE(none.find("the system's CA certificates"), std::string::npos) << none;
  // Another certificate with the very same names is not this one.
  auto other = ::herd::testing::MakeSelfSigned(dir_.path(), "other");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::string wrong = HandshakeError(other->cert, Url());
  EXPECT_NE(wrong.find("certificate verify failed"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find(other->cert), std::string::npos) << wrong;
  // The server shrugs those off and serves the next client.
  auto ok = Client()->Request("GET", "/healthz");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(TlsTest, HostNameMustBeInTheCertificate) {
  auto otherhost =
      ::herd::testing::MakeSelfSigned(dir_.path(), "otherhost", "DNS:otherhost", "otherhost");
  ASSERT_TRUE(otherhost.ok()) << otherhost.status().ToString();
  Start({}, &*otherhost);
  // Trusted, but issued for another name: by IP and by DNS name.
  std::string ip = HandshakeError(otherhost->cert, Url("127.0.0.1"));
  EXPECT_NE(ip.find("certificate verify failed: IP address mismatch"), std::string::npos) << ip;
  std::string dns = HandshakeError(otherhost->cert, Url("localhost"));
  EXPECT_NE(dns.find("certificate verify failed: hostname mismatch"), std::string::npos) << dns;

  EXPECT_TRUE(*CertificateNamesHost(otherhost->cert, "otherhost"));
  EXPECT_FALSE(*CertificateNamesHost(otherhost->cert, "127.0.0.1"));
  EXPECT_TRUE(*CertificateNamesHost(files_.cert, "127.0.0.1"));
  EXPECT_TRUE(*CertificateNamesHost(files_.cert, "localhost"));
  EXPECT_FALSE(*CertificateNamesHost(files_.cert, "[::1]"));
  EXPECT_FALSE(*CertificateNamesHost(files_.cert, "10.0.0.1"));
  EXPECT_FALSE(CertificateNamesHost(dir_.path() + "/missing.pem", "localhost").ok());
}

TEST_F(TlsTest, CaSignedChainVerifiesAgainstTheCaOrThePinnedCertificate) {
  auto chain = ::herd::testing::MakeCaAndLeaf(dir_.path(), "signed");
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  Start({}, &chain->leaf);
  for (const std::string& trust : {chain->ca.cert, chain->leaf_only, chain->leaf.cert}) {
    auto c = MakeClient(trust, Url());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto r = (*c)->Request("GET", "/healthz");
    ASSERT_TRUE(r.ok()) << trust << ": " << r.status().ToString();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_NE(HandshakeError(files_.cert, Url()).find("certificate verify failed"),
            std::string::npos);
}

TEST_F(TlsTest, PlainHttpOnTheTlsPortIsAnsweredAndTheServerCarriesOn) {
  ServerOptions o;
  o.read_timeout = 300ms;
  Start(o);
  // A plain HTTP client gets a plain answer saying what to do.
  auto plain = MakeClient("", Url("127.0.0.1", "http"));
  ASSERT_TRUE(plain.ok());
  auto r = (*plain)->Request("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(ParseProblem(r->body).detail.find("use https://"), std::string::npos) << r->body;
  // Garbage, a truncated ClientHello, and a silent connection are closed.
  for (const std::string& bytes : {std::string("\x01\x02garbage\r\n\r\n"),
                                   std::string("\x16\x03\x01\x00", 4), std::string()}) {
    RawConn raw(port_);
    ASSERT_TRUE(raw.connected());
    raw.Send(bytes);
    raw.ReadAll();
    EXPECT_TRUE(raw.peer_closed()) << "not closed within the 10 s recv timeout";
  }
  auto ok = Client()->Request("GET", "/healthz");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_TRUE(WaitFor([&] { return server_->stats().open_connections == 0; }));
}

TEST_F(TlsTest, HttpsClientToAPlainServerFailsClearly) {
  Router r;
  Server plain({"127.0.0.1", 0}, std::move(r));
  ASSERT_TRUE(plain.Start().ok());
  auto c = MakeClient(files_.cert, "https://127.0.0.1:" + std::to_string(plain.port()), 3s);
  ASSERT_TRUE(c.ok());
  auto res = (*c)->Request("GET", "/healthz");
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("TLS handshake with 127.0.0.1:"), std::string::npos)
      << res.status().message();
  plain.Stop(1s);
}

TEST_F(TlsTest, UploadAndDownloadStreamOverTls) {
  Start();
  auto c = Client();
  std::string body;
  uint64_t sum = 0;
  for (int i = 0; i < (3 << 20); ++i) {
    body.push_back(static_cast<char>(i * 7 + i / 1000));
    sum += static_cast<unsigned char>(body.back());
  }
  std::string path = WriteFile("up.bin", body);
  uint64_t last_sent = 0;
  auto up = c->UploadFile("POST", "/upload", path, "application/octet-stream",
                          [&](uint64_t sent, uint64_t) { last_sent = sent; });
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_EQ(up->status, 200) << up->body;
  auto j = nlohmann::json::parse(up->body);
  EXPECT_EQ(j["bytes"], body.size());
  EXPECT_EQ(j["sum"], sum);
  EXPECT_GT(j["chunks"].get<int>(), 1);
  EXPECT_EQ(last_sent, body.size());

  std::string got;
  int pieces = 0;
  auto down = c->Download("/lines?n=100000", [&](std::string_view piece) {
    got.append(piece);
    ++pieces;
    return Status::Ok();
  });
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_EQ(down->status, 200);
  EXPECT_EQ(got, Lines(100000));
  EXPECT_GT(pieces, 1);
  // The connection is reusable after a streamed body.
  const uint64_t before = c->connections_opened();
  auto after = c->Request("GET", "/healthz");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(c->connections_opened(), before);
}

TEST_F(TlsTest, StaleKeptAliveConnectionIsReopened) {
  ServerOptions o;
  o.idle_timeout = 100ms;
  Start(o);
  auto c = Client();
  ASSERT_EQ(c->Request("GET", "/healthz")->status, 200);
  ASSERT_TRUE(WaitFor([&] { return server_->stats().open_connections == 0; }));
  auto r = c->Request("GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c->connections_opened(), 2u);
}

TEST_F(TlsTest, LimitsAnswerOverTls) {
  ServerOptions o;
  o.body_limit = 1024;
  o.stream_body_limit = 100000;
  o.max_connections = 2;
  Start(o);
  auto c = Client();
  auto big = c->Request("POST", "/echo", std::string(200000, 'a'));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->status, 413);
  // Answered early while the client still uploads 5 MB: the server drains
  // the rest, so the client reads the 413 instead of a reset.
  std::string path = WriteFile("big.bin", std::string(5 << 20, 'x'));
  auto up = Client()->UploadFile("POST", "/upload", path, "application/octet-stream");
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->status, 413);
  EXPECT_EQ(ParseProblem(up->body).type, "urn:herd:problem:payload-too-large");

  ASSERT_TRUE(WaitFor([&] { return server_->stats().open_connections == 0; }));
  auto a = Client(), b = Client();
  ASSERT_EQ(a->Request("GET", "/healthz")->status, 200);
  ASSERT_EQ(b->Request("GET", "/healthz")->status, 200);
  ASSERT_TRUE(WaitFor([&] { return server_->stats().open_connections == 2; }));
  auto extra = Client()->Request("GET", "/healthz");
  ASSERT_TRUE(extra.ok()) << extra.status().ToString();
  EXPECT_EQ(extra->status, 503);
  EXPECT_EQ(ParseProblem(extra->body).type, "urn:herd:problem:unavailable");
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
}

TEST_F(TlsTest, StopFinishesAnInFlightRequestAndClosesIdleConnections) {
  Start();
  auto idle = Client();
  ASSERT_EQ(idle->Request("GET", "/healthz")->status, 200);
  auto fut = std::async(std::launch::async, [this] { return Client()->Request("GET", "/slow"); });
  ASSERT_TRUE(WaitFor([&] { return slow_started_.load(); }));
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop(10s);
  // The idle TLS connection does not hold the drain up.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  auto r = fut.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(*r->headers.Get("Connection"), "close");
  EXPECT_EQ(server_->stats().open_connections, 0);
}

TEST_F(TlsTest, BadCertificateFilesFailStartNamingTheFile) {
  auto other = ::herd::testing::MakeSelfSigned(dir_.path(), "other");
  ASSERT_TRUE(other.ok());
  auto [rc, out] = ::herd::testing::RunOpenssl("pkey -in '" + files_.key +
                                               "' -aes128 -passout pass:secret -out '" +
                                               dir_.path() + "/encrypted.key'");
  ASSERT_EQ(rc, 0) << out;
  const std::string missing = dir_.path() + "/missing.pem";
  const std::string text = WriteFile("text.pem", "not a certificate\n");
  const std::string garbled =
      WriteFile("garbled.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  struct Case {
    std::string cert, key, want;
  };
  for (const Case& c : std::vector<Case>{
           {missing, files_.key, "TLS certificate '" + missing + "': cannot read"},
           {text, files_.key, "TLS certificate '" + text + "': not PEM"},
           {garbled, files_.key, "TLS certificate '" + garbled + "': not a PEM certificate"},
           {files_.cert, missing, "TLS key '" + missing + "': cannot read"},
           {files_.cert, files_.cert, "TLS key '" + files_.cert + "': not a PEM private key"},
           {files_.cert, other->key,
            "TLS key '" + other->key + "' does not match the certificate in '" + files_.cert},
           {files_.cert, dir_.path() + "/encrypted.key", "the key is encrypted"},
           {files_.cert, "", "needs both a certificate file and a key file"},
       }) {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.tls_cert_file = c.cert;
    o.tls_key_file = c.key;
    Server s(o, Router());
    Status st = s.Start();
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find(c.want), std::string::npos) << st.message();
  }
}

TEST(TlsClient, BadCaFileIsAnErrorAtCreate) {
  ::herd::testing::TempDir dir("tls-ca");
  ClientOptions o;
  o.base_url = "https://127.0.0.1:1";
  o.ca_file = dir.path() + "/missing.pem";
  auto c = HttpClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("ca_file '" + o.ca_file + "': cannot read"),
            std::string::npos)
      << c.status().message();
  o.ca_file = dir.path() + "/empty.pem";
  std::ofstream(o.ca_file) << "nothing here\n";
  c = HttpClient::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no PEM certificate"), std::string::npos)
      << c.status().message();
  // Not used for http.
  o.base_url = "http://127.0.0.1:1";
  EXPECT_TRUE(HttpClient::Create(o).ok());
}

}  // namespace
}  // namespace herd::api
