// Hostile HTTP against a live herdd (issue 17, "Trust it like a database"):
// oversize headers and bodies, slow-loris senders, thousands of idle
// connections, bad methods, path traversal, bad tokens and wrong roles. Each
// case must be answered with the exact 4xx (problem+json) or, for a sender
// that never finishes, closed at its deadline; herdd must stay up and keep
// serving; its RSS (VmRSS from /proc) is read before and after the heavy
// cases and printed, and must stay within a bound of where it started (a
// second flood must not raise it further).
//
// The senders are raw POSIX sockets: HttpClient is too polite to send what
// these tests send.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "herdd_process.h"

namespace herd::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// VmRSS of a process in KiB (0 when it cannot be read).
long RssKiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// Open descriptors of a process.
int OpenFds(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// utime + stime of a process in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  size_t p = s.rfind(')');
  if (p == std::string::npos) return 0;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

// One parsed HTTP response, as read off a raw socket.
struct Reply {
  int status = 0;                              // 0: nothing (or no status line) arrived
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string raw;      // every byte received
  bool closed = false;  // the peer closed the connection
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Splits a response into status, headers and body (no dechunking).
Reply ParseReply(const std::string& raw) {
  Reply r;
  r.raw = raw;
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return r;
  const std::string head = raw.substr(0, header_end);
  r.body = raw.substr(header_end + 4);
  size_t eol = head.find("\r\n");
  if (head.rfind("HTTP/1.", 0) == 0 && head.size() >= 12) r.status = std::atoi(head.c_str() + 9);
  while (eol != std::string::npos) {
    size_t next = head.find("\r\n", eol + 2);
    std::string line =
        head.substr(eol + 2, next == std::string::npos ? std::string::npos : next - eol - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    eol = next;
  }
  return r;
}

// A whole response has arrived: its Content-Length body, or its last chunk.
bool Complete(const std::string& raw) {
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return false;
  Reply r = ParseReply(raw);
  if (r.headers.count("content-length"))
    return r.body.size() >= std::stoull(r.headers["content-length"]);
  if (r.Header("transfer-encoding") == "chunked")
    return r.body.find("0\r\n\r\n") != std::string::npos;
  return false;
}

// A raw TCP connection to 127.0.0.1:port.
class Sock {
 public:
  Sock() = default;
  explicit Sock(uint16_t port) { Connect(port); }
  ~Sock() { Close(); }
  Sock(Sock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Sock& operator=(Sock&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }

  bool Connect(uint16_t port) {
    Close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    timeval tv{5, 0};  // connect honours SO_SNDTIMEO
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      Close();
      return false;
    }
    return true;
  }
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Bytes available within `wait`, appended to *out; false on close/error.
  bool ReadSome(std::string* out, std::chrono::milliseconds wait, bool* closed) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
    return true;
  }

  // Reads one response (a Content-Length body, or a chunked one up to its
  // last chunk, or up to the close) within `limit`; `prefix` is what was
  // already read of it.
  Reply Read(std::chrono::milliseconds limit = 5000ms, std::string prefix = "") {
    std::string raw = std::move(prefix);
    bool closed = false;
    const auto end = Clock::now() + limit;
    while (!Complete(raw) && Clock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (!ReadSome(&raw, std::max(left, 1ms), &closed)) break;
    }
    Reply r = ParseReply(raw);
    r.closed = closed;
    return r;
  }

  // Waits up to `limit` for the peer to close; what arrived meanwhile goes
  // to *got.
  bool WaitClosed(std::chrono::milliseconds limit, std::string* got = nullptr) {
    std::string sink;
    bool closed = false;
    const auto end = Clock::now() + limit;
    while (!closed && Clock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (!ReadSome(got ? got : &sink, std::max(left, 1ms), &closed)) break;
    }
    return closed;
  }

 private:
  int fd_ = -1;
};

// Sends `request` on a fresh connection and reads the answer.
Reply Exchange(uint16_t port, const std::string& request,
               std::chrono::milliseconds limit = 5000ms) {
  Sock s(port);
  if (!s.ok()) return {};
  if (!s.Send(request)) return s.Read(limit);  // an early answer may still be there
  return s.Read(limit);
}

// Raises this process's open-file soft limit to at least `want` (up to the
// hard limit); returns the limit now in force.
uint64_t RaiseOwnFileLimit(uint64_t want) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min<rlim_t>(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

// Records one RSS figure: printed (the report quotes it) and attached to the
// test's XML result.
void Figure(const std::string& key, const std::string& text) {
  std::printf("[hostile] %s: %s\n", key.c_str(), text.c_str());
  std::fflush(stdout);
  ::testing::Test::RecordProperty(key, text);
}

std::string MiB(long kib) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", kib / 1024.0);
  return b;
}

class HostileHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tokens of every role; the file holds only their hashes.
    std::ofstream auth(tmp_.path() + "/auth.jsonl");
    for (const char* role : {"admin", "annotator", "worker", "viewer"}) {
      auth << json{{"name", role},
                   {"role", role},
                   {"token_sha256", Sha256Hex(std::string("tok-") + role)}}
                  .dump()
           << "\n";
    }
    // A file outside the data dir that no answer may ever contain.
    canary_ = "CANARY-" + std::to_string(std::random_device{}()) + "-do-not-serve";
    std::ofstream(tmp_.path() + "/canary.txt") << canary_ << "\n";
    std::filesystem::create_directories(tmp_.path() + "/canary-dir");
    std::ofstream(tmp_.path() + "/canary-dir/config.json") << canary_ << "\n";
    std::ofstream(tmp_.path() + "/canary-dir/secret.txt") << canary_ << "\n";
    std::filesystem::create_directories(tmp_.path() + "/base");
    std::ofstream(tmp_.path() + "/base/config.json") << R"({"vocab_size": 264})";
  }

  // herdd with the auth file, two server threads (CI has two cores) and
  // `extra` flags.
  void StartHerdd(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--auth-file", tmp_.path() + "/auth.jsonl", "--http-threads",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(herdd_.Start(args)) << herdd_.Log();
    port_ = static_cast<uint16_t>(std::stoi(herdd_.url().substr(herdd_.url().rfind(':') + 1)));
  }

  std::string Get(const std::string& target, const std::string& token = "tok-admin") const {
    std::string r = "GET " + target + " HTTP/1.1\r\nHost: herd\r\nConnection: close\r\n";
    if (!token.empty()) r += "Authorization: Bearer " + token + "\r\n";
    return r + "\r\n";
  }
  std::string Req(const std::string& method, const std::string& target,
                  const std::string& body = "", const std::string& token = "tok-admin") const {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: herd\r\nConnection: close\r\n";
    if (!token.empty()) r += "Authorization: Bearer " + token + "\r\n";
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n";
    return r + body;
  }

  // herdd is alive and answers /healthz with 200 within `limit`.
  ::testing::AssertionResult Healthy(std::chrono::milliseconds limit = 5000ms) const {
    if (kill(herdd_.pid(), 0) != 0)
      return ::testing::AssertionFailure() << "herdd is gone\n" << herdd_.Log();
    Reply r = Exchange(port_, Get("/healthz", ""), limit);
    if (r.status != 200) {
      return ::testing::AssertionFailure() << "/healthz answered " << r.status << ": " << r.raw;
    }
    return ::testing::AssertionSuccess();
  }

  // The reply is `status` with an RFC 9457 body of type urn:herd:problem:<slug>,
  // and nothing of the canary in it.
  ::testing::AssertionResult IsProblem(const Reply& r, int status, const std::string& slug) const {
    if (r.status != status) {
      return ::testing::AssertionFailure() << "status " << r.status << ", want " << status << "\n"
                                           << r.raw;
    }
    if (r.Header("content-type") != "application/problem+json") {
      return ::testing::AssertionFailure() << "content-type '" << r.Header("content-type") << "'\n"
                                           << r.raw;
    }
    auto j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "urn:herd:problem:" + slug ||
        j.value("status", 0) != status) {
      return ::testing::AssertionFailure() << "want problem " << slug << ", got " << r.body;
    }
    if (r.raw.find(canary_) != std::string::npos)
      return ::testing::AssertionFailure() << "canary leaked";
    return ::testing::AssertionSuccess();
  }

  std::string CreateRun() {
    Reply r = Exchange(
        port_, Req("POST", "/v1/runs",
                   json{{"name", "hostile"}, {"base_checkpoint", tmp_.path() + "/base"}}.dump()));
    EXPECT_EQ(r.status, 201) << r.raw;
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j["run"]["id"].get<std::string>() : "";
  }

  TempDir tmp_{"hostile"};
  HerddProcess herdd_{tmp_.path() + "/data"};
  uint16_t port_ = 0;
  std::string canary_;
};

// ---- oversize headers and bodies -------------------------------------------

TEST_F(HostileHttpTest, OversizeHeadersAre431) {
  StartHerdd();
  // Request line alone over the 16 KiB limit.
  EXPECT_TRUE(IsProblem(Exchange(port_, Get("/v1/runs/" + std::string(20000, 'a'))), 431,
                        "headers-too-large"));
  // Many small fields adding up to more.
  std::string many = "GET /healthz HTTP/1.1\r\nHost: herd\r\n";
  for (int i = 0; i < 400; ++i)
    many += "X-Pad-" + std::to_string(i) + ": " + std::string(60, 'p') + "\r\n";
  EXPECT_TRUE(IsProblem(Exchange(port_, many + "\r\n"), 431, "headers-too-large"));
  // Under the limit is fine (a 12 KiB field).
  EXPECT_EQ(Exchange(port_, "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: " +
                                std::string(12000, 'b') + "\r\n\r\n")
                .status,
            200);

  // A header of 1 MB, sent 16 KiB at a time: the 431 arrives long before
  // the end, so herdd never buffered the rest. Eight at once, RSS measured.
  const long before = RssKiB(herdd_.pid());
  std::vector<std::thread> senders;
  std::vector<size_t> sent_when_answered(8, 0);
  std::vector<Reply> replies(8);
  for (int i = 0; i < 8; ++i) {
    senders.emplace_back([&, i] {
      Sock s(port_);
      s.Send("GET /healthz HTTP/1.1\r\nHost: herd\r\nX-Huge: ");
      const std::string piece(16384, 'h');
      size_t sent = 0;
      std::string got;
      bool closed = false;
      while (sent < (1u << 20) && got.empty() && !closed) {
        if (!s.Send(piece)) break;
        sent += piece.size();
        s.ReadSome(&got, 2ms, &closed);
      }
      sent_when_answered[i] = sent;
      Reply r = s.Read(5000ms, got);
      replies[i] = r;
    });
  }
  for (auto& t : senders) t.join();
  const long after = RssKiB(herdd_.pid());
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(IsProblem(replies[i], 431, "headers-too-large")) << "sender " << i;
    EXPECT_LT(sent_when_answered[i], 512u * 1024)
        << "sender " << i << " was answered only after " << sent_when_answered[i] << " bytes";
  }
  Figure("rss_1mb_headers",
         "8 x 1 MB header: before " + MiB(before) + ", after " + MiB(after) + "; answered after " +
             std::to_string(
                 *std::max_element(sent_when_answered.begin(), sent_when_answered.end()) / 1024) +
             " KiB sent at most");
  EXPECT_LT(after - before, 16 * 1024);
  EXPECT_TRUE(Healthy());
}

TEST_F(HostileHttpTest, OversizeBodiesAre413Early) {
  StartHerdd({"--http-upload-limit", "1MiB"});
  const std::string run = CreateRun();
  const long before = RssKiB(herdd_.pid());

  // A buffered route with a declared 100 MiB body: answered from the
  // header alone, before a byte of the body is sent.
  {
    Sock s(port_);
    auto t0 = Clock::now();
    s.Send(
        "POST /v1/runs HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer tok-admin\r\n"
        "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n");
    Reply r = s.Read(3000ms);
    EXPECT_TRUE(IsProblem(r, 413, "payload-too-large"));
    EXPECT_LT(Ms(Clock::now() - t0), 1000);
    EXPECT_EQ(r.Header("connection"), "close");
  }
  // Unauthenticated, the same request is refused before its size matters.
  EXPECT_TRUE(IsProblem(
      Exchange(port_, "POST /v1/runs HTTP/1.1\r\nHost: h\r\nContent-Length: 104857600\r\n\r\n"),
      401, "unauthenticated"));

  // Chunked bodies that grow past the limit, on a buffered route (8 MiB) and
  // on the upload route (--http-upload-limit 1MiB): 413 once the limit is
  // crossed; the sender is told while it is still sending.
  auto chunked_flood = [&](const std::string& head, size_t limit) {
    Sock s(port_);
    s.Send(head + "Transfer-Encoding: chunked\r\n\r\n");
    const std::string line = R"({"prompt":"p","chosen":"a","rejected":"b"})"
                             "\n";
    std::string chunk;
    while (chunk.size() < 60000) chunk += line;
    char size_hex[32];
    std::snprintf(size_hex, sizeof size_hex, "%zx\r\n", chunk.size());
    const std::string framed = size_hex + chunk + "\r\n";
    size_t sent = 0;
    std::string got;
    bool closed = false;
    while (sent < limit + (4u << 20) && got.empty() && !closed) {
      if (!s.Send(framed)) break;
      sent += chunk.size();
      s.ReadSome(&got, 1ms, &closed);
    }
    Reply r = s.Read(5000ms, got);
    EXPECT_TRUE(IsProblem(r, 413, "payload-too-large")) << head;
    EXPECT_GE(sent, limit) << "answered before the limit was crossed";
    EXPECT_LT(sent, limit + (4u << 20)) << "not answered while sending";
    return sent;
  };
  chunked_flood("POST /v1/runs HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer tok-admin\r\n",
                8u << 20);
  chunked_flood(
      "POST /v1/runs/" + run +
          "/annotations HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer tok-annotator\r\n",
      1u << 20);
  // The upload route with a declared size over its limit.
  EXPECT_TRUE(IsProblem(
      Exchange(port_,
               "POST /v1/runs/" + run +
                   "/annotations HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer tok-annotator\r\n"
                   "Content-Length: 2097152\r\n\r\n"),
      413, "payload-too-large"));
  // Under the limit the upload route works.
  Reply ok = Exchange(port_, Req("POST", "/v1/runs/" + run + "/annotations",
                                 R"({"id":"small","prompt":"p","chosen":"a","rejected":"b"})"
                                 "\n",
                                 "tok-annotator"));
  EXPECT_EQ(ok.status, 200) << ok.raw;

  const long after = RssKiB(herdd_.pid());
  Figure("rss_oversize_bodies", "before " + MiB(before) + ", after " + MiB(after));
  EXPECT_LT(after - before, 64 * 1024);
  EXPECT_TRUE(Healthy());
}

// ---- slow senders and idle connections --------------------------------------

// Slow-loris: connections that send one header byte at a time. herdd's read
// deadline covers the whole header, so each is closed when it passes
// (--http-read-timeout-ms 2000 here), however steadily it trickles; a
// normal request meanwhile is answered at once.
TEST_F(HostileHttpTest, SlowLorisSendersAreClosedAtTheReadDeadline) {
  StartHerdd({"--http-read-timeout-ms", "2000"});
  const long before = RssKiB(herdd_.pid());
  constexpr int kSlow = 16;
  std::vector<double> closed_after_ms(kSlow, -1);
  std::vector<std::string> answers(kSlow);
  std::atomic<bool> stop{false};
  std::vector<std::thread> slow;
  const auto t0 = Clock::now();
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&, i] {
      Sock s(port_);
      const std::string req =
          "GET /healthz HTTP/1.1\r\nHost: herd\r\nX-Slow: " + std::string(100, 's');
      for (char c : req) {
        if (stop || !s.Send(std::string(1, c))) break;
        std::string got;
        bool closed = false;
        s.ReadSome(&got, 400ms, &closed);  // one byte every 400 ms
        answers[i] += got;
        if (closed) break;
      }
      if (s.WaitClosed(5000ms, &answers[i])) closed_after_ms[i] = Ms(Clock::now() - t0);
    });
  }
  // Normal requests during the attack are answered promptly.
  std::this_thread::sleep_for(300ms);
  double worst_ms = 0;
  for (int i = 0; i < 5; ++i) {
    auto q0 = Clock::now();
    Reply r = Exchange(port_, Get("/v1/runs", "tok-viewer"));
    EXPECT_EQ(r.status, 200) << r.raw;
    worst_ms = std::max(worst_ms, Ms(Clock::now() - q0));
    std::this_thread::sleep_for(200ms);
  }
  for (auto& t : slow) t.join();
  stop = true;
  for (int i = 0; i < kSlow; ++i) {
    EXPECT_GE(closed_after_ms[i], 1500) << "slow sender " << i << " closed too early";
    EXPECT_LT(closed_after_ms[i], 4500) << "slow sender " << i << " not closed at the deadline";
    EXPECT_EQ(answers[i], "") << "a slow sender is closed without an answer";
  }
  EXPECT_LT(worst_ms, 1000) << "a normal request waited behind the slow senders";
  const long after = RssKiB(herdd_.pid());
  Figure(
      "slow_loris",
      std::to_string(kSlow) + " senders closed after " +
          std::to_string(int(*std::min_element(closed_after_ms.begin(), closed_after_ms.end()))) +
          "-" +
          std::to_string(int(*std::max_element(closed_after_ms.begin(), closed_after_ms.end()))) +
          " ms; normal request worst " + std::to_string(int(worst_ms)) + " ms; rss before " +
          MiB(before) + ", after " + MiB(after));
  EXPECT_TRUE(Healthy());
}

// 5,000 connections that send nothing, twice. herdd serves max_connections
// (1024) of them until their read deadline (3 s here) and answers the rest
// at once with 503 problem+json (the one deliberate 5xx: capacity, retry
// later); a client arriving meanwhile is served as soon as the silent ones
// time out; after they are closed, RSS is back near the baseline, and a
// second flood does not raise it further (what the first one left is
// memory the allocator reuses, not a leak).
TEST_F(HostileHttpTest, FiveThousandIdleConnections) {
  constexpr int kIdle = 5000;
  if (RaiseOwnFileLimit(kIdle + 200) < kIdle + 200)
    GTEST_SKIP() << "this process cannot open " << kIdle << " sockets";
  StartHerdd({"--http-read-timeout-ms", "3000", "--http-max-connections", "1024"});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Healthy());  // warm up allocator arenas
  std::vector<long> rss = {RssKiB(herdd_.pid())};
  const int fds_before = OpenFds(herdd_.pid());
  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE("flood " + std::to_string(round));
    const auto t0 = Clock::now();
    std::vector<Sock> idle(kIdle);
    int connected = 0;
    for (auto& s : idle) connected += s.Connect(port_);
    const double open_ms = Ms(Clock::now() - t0);
    EXPECT_EQ(connected, kIdle);

    // Those over the bound are answered 503 at once; the others hear nothing.
    std::this_thread::sleep_for(500ms);
    int rejected = 0, silent = 0, other = 0;
    Reply sample;
    for (auto& s : idle) {
      std::string got;
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(s.fd(), buf, sizeof buf, MSG_DONTWAIT)) > 0)
        got.append(buf, static_cast<size_t>(n));
      Reply r = ParseReply(got);
      if (r.status == 503) {
        ++rejected;
        if (sample.status == 0) sample = r;
      } else if (got.empty()) {
        ++silent;
      } else {
        ++other;
      }
    }
    const long peak = RssKiB(herdd_.pid());
    EXPECT_TRUE(IsProblem(sample, 503, "unavailable"));
    EXPECT_NE(sample.body.find("retry later"), std::string::npos) << sample.body;
    EXPECT_EQ(other, 0);
    EXPECT_LE(silent, 1024);
    EXPECT_GE(silent, 1000);  // a few slots may still be held by closing health checks
    EXPECT_EQ(rejected + silent, connected);

    // While every slot is held, a newcomer is told to retry; once the silent
    // ones pass their read deadline, it is served.
    const bool full = silent == 1024;
    if (full) {
      EXPECT_TRUE(IsProblem(Exchange(port_, Get("/healthz", "")), 503, "unavailable"));
    }
    double served_after_ms = -1;
    while (Ms(Clock::now() - t0) < 10000) {
      if (Exchange(port_, Get("/healthz", ""), 1000ms).status == 200) {
        served_after_ms = Ms(Clock::now() - t0);
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    if (full) {
      EXPECT_GT(served_after_ms, 2500) << "served before the silent ones timed out?";
    }
    EXPECT_GT(served_after_ms, 0) << "not served within 10 s";
    EXPECT_LT(served_after_ms, 3000 + 4000) << "not served within 4 s of the read deadline";
    // The silent ones were closed by herdd, without an answer.
    int closed_silently = 0;
    for (auto& s : idle) {
      std::string got;
      if (s.WaitClosed(1ms, &got) && got.empty()) ++closed_silently;
    }
    EXPECT_GE(closed_silently, silent);

    for (auto& s : idle) s.Close();
    std::this_thread::sleep_for(1500ms);  // lingering closes end after 1 s
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Healthy());
    rss.push_back(RssKiB(herdd_.pid()));
    Figure("idle_5000_round" + std::to_string(round),
           "opened " + std::to_string(connected) + " in " + std::to_string(int(open_ms)) + " ms; " +
               std::to_string(rejected) + " answered 503, " + std::to_string(silent) +
               " held; newcomer served after " + std::to_string(int(served_after_ms)) +
               " ms; rss before " + MiB(rss[round - 1]) + ", peak " + MiB(peak) + ", after " +
               MiB(rss[round]));
  }
  EXPECT_LT(rss[1] - rss[0], 64 * 1024) << "the flood left RSS far above the baseline";
  EXPECT_LT(rss[2] - rss[1], 8 * 1024) << "a second flood raised RSS again: memory is not reused";
  EXPECT_LE(OpenFds(herdd_.pid()), fds_before + 2)
      << "herdd kept descriptors of closed connections";
}

// The same flood against a herdd whose open-file limit is small (hard limit
// 700): herdd keeps its connection bound below the limit, answers what it
// can with 503, and when accept() runs out of descriptors it waits instead
// of spinning; it serves again once the flood is gone.
TEST_F(HostileHttpTest, FloodPastTheOpenFileLimit) {
  constexpr int kConns = 2000;
  if (RaiseOwnFileLimit(kConns + 200) < kConns + 200)
    GTEST_SKIP() << "this process cannot open " << kConns << " sockets";
  herdd_.set_nofile_limit(700);
  StartHerdd({"--http-read-timeout-ms", "3000"});
  ASSERT_NE(herdd_.Log().find("lowered to 350"), std::string::npos) << herdd_.Log();
  const long before = RssKiB(herdd_.pid());
  const double cpu0 = CpuSeconds(herdd_.pid());
  const auto t0 = Clock::now();
  std::vector<Sock> conns(kConns);
  int connected = 0;
  for (auto& s : conns) connected += s.Connect(port_);
  std::this_thread::sleep_for(2000ms);
  const double busy = (CpuSeconds(herdd_.pid()) - cpu0) / (Ms(Clock::now() - t0) / 1000);
  const long peak = RssKiB(herdd_.pid());
  int rejected = 0;
  for (auto& s : conns) rejected += s.Read(1ms).status == 503;
  for (auto& s : conns) s.Close();
  double served_after_ms = -1;
  while (Ms(Clock::now() - t0) < 15000) {
    if (Exchange(port_, Get("/healthz", ""), 1000ms).status == 200) {
      served_after_ms = Ms(Clock::now() - t0);
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1500ms);
  const long after = RssKiB(herdd_.pid());
  const std::string log = herdd_.Log();
  size_t accept_errors = 0;
  for (size_t p = 0; (p = log.find("accept error", p)) != std::string::npos; ++p) ++accept_errors;
  Figure("flood_nofile_700", std::to_string(connected) + " connected, " + std::to_string(rejected) +
                                 " answered 503; herdd cpu " + std::to_string(int(busy * 100)) +
                                 "% during the flood; " + std::to_string(accept_errors) +
                                 " accept log lines; served again after " +
                                 std::to_string(int(served_after_ms)) + " ms; rss before " +
                                 MiB(before) + ", peak " + MiB(peak) + ", after " + MiB(after));
  EXPECT_GT(rejected, 0);
  EXPECT_LT(busy, 0.5) << "herdd spun while out of descriptors";
  EXPECT_LT(accept_errors, 50u) << "accept errors flood the log";
  EXPECT_GT(served_after_ms, 0);
  EXPECT_LT(after - before, 64 * 1024);
  EXPECT_TRUE(Healthy());
}

// ---- bad methods ----------------------------------------------------------

TEST_F(HostileHttpTest, BadMethodsAre4xx) {
  StartHerdd();
  // Unknown and unusual methods on known paths: 405 with Allow (RFC 9110
  // §15.5.6 allows 405 for a method the resource does not support, which is
  // how herd answers any method, known to HTTP or not).
  Reply brew = Exchange(port_, Req("BREW", "/v1/runs"));
  EXPECT_TRUE(IsProblem(brew, 405, "method-not-allowed"));
  EXPECT_EQ(brew.Header("allow"), "GET, POST");
  Reply trace = Exchange(port_, Get("/healthz", "").replace(0, 3, "TRACE"));
  EXPECT_TRUE(IsProblem(trace, 405, "method-not-allowed"));
  EXPECT_EQ(trace.Header("allow"), "GET");
  EXPECT_EQ(trace.raw.find("Host: herd"), std::string::npos) << "TRACE must not echo the request";
  EXPECT_TRUE(IsProblem(Exchange(port_, Req("DELETE", "/v1/runs")), 405, "method-not-allowed"));
  EXPECT_TRUE(
      IsProblem(Exchange(port_, Req("PATCH", "/healthz", "{}")), 405, "method-not-allowed"));
  // Methods are case-sensitive: "get" is not GET.
  EXPECT_TRUE(IsProblem(Exchange(port_, "get /healthz HTTP/1.1\r\nHost: h\r\n\r\n"), 405,
                        "method-not-allowed"));
  // An unknown method on an unknown path.
  EXPECT_TRUE(IsProblem(Exchange(port_, Req("BREW", "/coffee")), 404, "not-found"));
  // Targets that are not origin-form: CONNECT's authority, OPTIONS *, an
  // absolute URI.
  EXPECT_TRUE(
      IsProblem(Exchange(port_, "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n"),
                400, "malformed-request"));
  EXPECT_TRUE(IsProblem(Exchange(port_, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
                        "malformed-request"));
  EXPECT_TRUE(
      IsProblem(Exchange(port_, "GET http://evil.example/healthz HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
                "malformed-request"));
  // Not HTTP/1.x, or not a method at all.
  EXPECT_TRUE(
      IsProblem(Exchange(port_, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 400, "malformed-request"));
  EXPECT_TRUE(IsProblem(Exchange(port_, "GE(T /healthz HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
                        "malformed-request"));
  EXPECT_TRUE(IsProblem(Exchange(port_, "GET /healthz\r\n\r\n"), 400, "malformed-request"));
  EXPECT_TRUE(
      IsProblem(Exchange(port_, std::string(4000, 'A') + " /healthz HTTP/1.1\r\nHost: h\r\n\r\n"),
                405, "method-not-allowed"));
  // Request smuggling shapes: both framings, or two lengths.
  EXPECT_TRUE(
      IsProblem(Exchange(port_,
                         "POST /v1/runs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer tok-admin\r\n"
                         "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                400, "malformed-request"));
  EXPECT_TRUE(
      IsProblem(Exchange(port_,
                         "POST /v1/runs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer tok-admin\r\n"
                         "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"),
                400, "malformed-request"));
  EXPECT_TRUE(Healthy());
}

// ---- path traversal ---------------------------------------------------------

// Traversal on every route that touches files or names one: exports, runs
// (whose artifacts are deleted and measured by run id), backups, run
// creation's base checkpoint. Never a 5xx, never a byte of the canary.
TEST_F(HostileHttpTest, PathTraversalNeverLeavesTheDataDir) {
  StartHerdd();
  const std::string run = CreateRun();
  Reply up = Exchange(port_, Req("POST", "/v1/runs/" + run + "/annotations",
                                 R"({"id":"a1","prompt":"p","chosen":"a","rejected":"b"})"
                                 "\n",
                                 "tok-annotator"));
  ASSERT_EQ(up.status, 200) << up.raw;
  const std::string canary_rel =
      "../../../" + std::filesystem::path(tmp_.path()).filename().string() + "/canary.txt";
  struct Case {
    std::string method, target;
    std::vector<int> allowed;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/runs/../../canary.txt/export/annotations", {404}},
      {"GET", "/v1/runs/%2e%2e%2f%2e%2e%2fcanary.txt/export/annotations", {400, 404}},
      {"GET", "/v1/runs/..%2F..%2F..%2Fetc%2Fpasswd/export/samples", {400, 404}},
      {"GET", "/v1/runs/" + run + "/export/..%2f..%2f..%2fcanary.txt", {404}},
      {"GET", "/v1/runs/" + run + "/export/" + canary_rel, {404}},
      {"GET", "/v1/runs/" + run + "/export/%2fetc%2fpasswd", {404}},
      {"GET", "/v1/runs/" + run + "/export/annotations%00.txt", {404}},
      {"GET", "/v1/runs/" + run + "/export/samples?round=..%2f..%2f1", {400}},
      {"GET", "/v1/runs/" + run + "%00/export/annotations", {400, 404}},
      {"GET", "/v1/runs/%2e%2e", {400, 404}},
      {"GET", "/v1/runs/%2e%2e%2f%2e%2e%2f" + run, {400, 404}},
      {"GET", "/v1/runs/" + std::string(8000, 'r'), {400, 404}},
      {"GET", "/v1/runs/" + std::string(4000, '.') + "/export/annotations", {400, 404}},
      {"GET", "/v1/runs/%ZZ/export/annotations", {400, 404}},
      {"GET", "/v1/runs/" + run + "/checkpoints/..%2f..%2fcanary.txt", {404}},
      {"GET", "/v1/runs/%2e%2e/checkpoints", {400, 404}},
      {"GET", "/v1/runs/%2e%2e/rounds/1/sft-data", {400, 404}},
      {"GET", "//etc/passwd", {404}},
      {"GET", "/../../../../etc/passwd", {404}},
      {"GET", "/v1/../../canary.txt", {404}},
      {"GET", "/%2e%2e/%2e%2e/canary.txt", {404}},
      {"GET", "/v1/runs\\..\\..\\canary.txt", {404}},
      {"DELETE", "/v1/runs/%2e%2e", {400, 404}},
      {"DELETE", "/v1/runs/..%2f..%2fcanary-dir", {400, 404}},
      {"DELETE", "/v1/runs/%2fetc", {400, 404}},
  };
  for (const auto& c : cases) {
    Reply r = Exchange(port_, c.method + " " + c.target +
                                  " HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer tok-admin\r\n"
                                  "Connection: close\r\n\r\n");
    EXPECT_TRUE(std::find(c.allowed.begin(), c.allowed.end(), r.status) != c.allowed.end())
        << c.method << " " << c.target.substr(0, 120) << " → " << r.raw.substr(0, 400);
    EXPECT_EQ(r.Header("content-type"), "application/problem+json") << c.target.substr(0, 120);
    EXPECT_EQ(r.raw.find(canary_), std::string::npos) << c.target.substr(0, 120);
  }
  // A NUL byte in the raw request target, and a target over the header limit.
  static const char kNul[] = "GET /v1/runs/a\0b HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_TRUE(
      IsProblem(Exchange(port_, std::string(kNul, sizeof kNul - 1)), 400, "malformed-request"));
  EXPECT_TRUE(
      IsProblem(Exchange(port_, Get("/v1/runs/" + run + "/export/" + std::string(17000, 'x'))), 431,
                "headers-too-large"));

  // Bodies that name paths: a backup must go to a fresh absolute directory;
  // a base checkpoint that is not a checkpoint is refused without echoing
  // what the file holds.
  EXPECT_TRUE(
      IsProblem(Exchange(port_, Req("POST", "/v1/backups", json{{"dir", canary_rel}}.dump())), 400,
                "invalid-argument"));
  EXPECT_TRUE(IsProblem(Exchange(port_, Req("POST", "/v1/backups",
                                            json{{"dir", tmp_.path() + "/canary-dir"}}.dump())),
                        409, "conflict"));
  EXPECT_TRUE(IsProblem(Exchange(port_, Req("POST", "/v1/backups",
                                            json{{"dir", std::string("/tmp/a\0b", 8)}}.dump())),
                        400, "invalid-argument"));
  for (const std::string& base : {tmp_.path() + "/canary-dir", tmp_.path() + "/canary.txt",
                                  tmp_.path() + "/data/../canary-dir", std::string("../canary-dir"),
                                  tmp_.path() + "/base" + std::string("\0/../canary-dir", 15)}) {
    Reply r = Exchange(
        port_, Req("POST", "/v1/runs", json{{"name", "t"}, {"base_checkpoint", base}}.dump()));
    EXPECT_EQ(r.status, 400) << base << " → " << r.raw;
    EXPECT_EQ(r.raw.find(canary_), std::string::npos)
        << "the base checkpoint's contents leaked: " << r.raw;
  }
  // The canary and the run are untouched; the export still works.
  std::ifstream f(tmp_.path() + "/canary-dir/secret.txt");
  std::string still;
  f >> still;
  EXPECT_EQ(still, canary_);
  Reply ex = Exchange(port_, Get("/v1/runs/" + run + "/export/annotations"));
  EXPECT_EQ(ex.status, 200);
  EXPECT_NE(ex.body.find("\"a1\""), std::string::npos) << ex.raw;
  EXPECT_TRUE(Healthy());
}

// ---- tokens and roles -----------------------------------------------------------

TEST_F(HostileHttpTest, BadTokensAre401AndWrongRolesAre403) {
  StartHerdd();
  const std::string run = CreateRun();
  auto with_auth = [&](const std::string& method, const std::string& target,
                       const std::string& authz, const std::string& body = "") {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: herd\r\nConnection: close\r\n";
    if (!authz.empty()) r += "Authorization: " + authz + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return Exchange(port_, r);
  };
  auto unauthenticated = [&](const Reply& r) {
    auto ok = IsProblem(r, 401, "unauthenticated");
    if (ok && r.Header("www-authenticate") != "Bearer realm=\"herd\"") {
      return ::testing::AssertionFailure()
             << "WWW-Authenticate: '" << r.Header("www-authenticate") << "'";
    }
    return ok;
  };
  // Missing, malformed, unknown.
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/metrics", "")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Basic YWRtaW46YWRtaW4=")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer ")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearertok-admin")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer tok-admin extra")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer tok-admi")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer TOK-ADMIN")));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer " + std::string(8000, 'k'))));
  EXPECT_TRUE(unauthenticated(with_auth("GET", "/v1/runs", "Bearer " + Sha256Hex("tok-admin"))))
      << "the stored hash is not a token";
  // The scheme is case-insensitive (RFC 9110 §11.1).
  EXPECT_EQ(with_auth("GET", "/v1/runs", "bearer tok-viewer").status, 200);
  // A control character in the field is a malformed request.
  EXPECT_TRUE(IsProblem(with_auth("GET", "/v1/runs", std::string("Bearer tok-admin\x01", 17)), 400,
                        "malformed-request"));
  // Two Authorization fields are refused, whichever comes first: which one
  // counts would depend on who reads the message.
  EXPECT_TRUE(
      IsProblem(Exchange(port_,
                         "GET /v1/runs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer nope\r\n"
                         "Authorization: Bearer tok-admin\r\n\r\n"),
                400, "malformed-request"));
  EXPECT_TRUE(IsProblem(
      Exchange(port_, "POST /v1/runs/" + run +
                          ":cancel HTTP/1.1\r\nHost: h\r\n"
                          "Authorization: Bearer tok-viewer\r\nauthorization: Bearer tok-admin\r\n"
                          "Content-Length: 0\r\n\r\n"),
      400, "malformed-request"));

  // Valid tokens, roles without the permission: 403.
  struct RoleCase {
    std::string token, method, target, body;
  };
  const std::vector<RoleCase> denied = {
      {"tok-viewer", "POST", "/v1/runs", "{}"},
      {"tok-viewer", "POST", "/v1/runs/" + run + ":start", ""},
      {"tok-viewer", "POST", "/v1/backups", R"({"dir":"/tmp/x"})"},
      {"tok-viewer", "POST", "/v1/runs/" + run + "/annotations", "{}\n"},
      {"tok-annotator", "POST", "/v1/runs/" + run + ":cancel", ""},
      {"tok-annotator", "DELETE", "/v1/runs/" + run, ""},
      {"tok-annotator", "POST", "/v1/runs/" + run + "/prompts", "{}\n"},
      {"tok-annotator", "POST", "/v1/workers", "{}"},
      {"tok-annotator", "POST", "/v1/backups", R"({"dir":"/tmp/x"})"},
      {"tok-worker", "POST", "/v1/runs/" + run + "/annotations", "{}\n"},
      {"tok-worker", "POST", "/v1/runs/" + run + "/annotation-requests/x:answer",
       R"({"choice":"a"})"},
      {"tok-worker", "POST", "/v1/runs", "{}"},
      {"tok-worker", "DELETE", "/v1/runs/" + run, ""},
      {"tok-viewer", "POST", "/v1/workers/w1/lease", ""},
      {"tok-annotator", "POST", "/v1/leases/l1/complete", "{}"},
  };
  for (const auto& c : denied) {
    Reply r = with_auth(c.method, c.target, "Bearer " + c.token, c.body);
    EXPECT_TRUE(IsProblem(r, 403, "permission-denied"))
        << c.token << " " << c.method << " " << c.target;
  }
  // Denied requests changed nothing.
  Reply got = Exchange(port_, Get("/v1/runs/" + run, "tok-viewer"));
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(json::parse(got.body)["run"]["state"], "created");
  EXPECT_TRUE(Healthy());
}

}  // namespace
}  // namespace herd::testing
