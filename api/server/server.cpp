// The one server TU that includes Beast (compile time: see server.h).
#include "api/server/server.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "api/metrics/registry.h"
#include "api/server/auth.h"
#include "api/wire/problem.h"
#include "common/version.h"

namespace herd::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Bytes read per chunk of a streaming body, and per read while draining.
constexpr size_t kChunkBytes = 64 * 1024;
// After an early error response: how long and how much of the unread
// request to discard before closing, so the client reads the answer instead
// of a TCP reset.
constexpr auto kLingerTimeout = std::chrono::milliseconds(1000);
constexpr size_t kLingerMaxBytes = 16u << 20;
// Read size while lingering, when the session has no chunk buffer yet: a
// flood of connections answered 503 lingers all at once, and 64 KiB each
// was 250 MiB for 4,000 of them (kept by the allocator afterwards).
constexpr size_t kLingerReadBytes = 4096;
// After accept() failed for lack of descriptors or memory: wait this long
// before the next accept (it would fail again at once: a busy loop), and
// log such failures at most once per kAcceptLogEvery.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
constexpr auto kAcceptLogEvery = std::chrono::seconds(10);
// Deadline of sending TLS close_notify before the socket is closed.
constexpr auto kTlsShutdownTimeout = std::chrono::milliseconds(1000);

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// ---- TLS setup ---------------------------------------------------------------

// The reason of the newest queued OpenSSL error ("no start line"); clears
// the thread's error queue.
std::string OpenSslError() {
  unsigned long e = ERR_peek_last_error();
  std::string why = "unknown OpenSSL error";
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    why = r != nullptr ? r : "OpenSSL error " + std::to_string(e);
  }
  ERR_clear_error();
  return why;
}

Result<std::string> ReadPemFile(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return Status::InvalidArgument(std::string(what) + " '" + path +
                                   "': cannot read: " + std::strerror(errno));
  }
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return Status::InvalidArgument(std::string(what) + " '" + path +
                                   "': not PEM (no -----BEGIN line)");
  }
  return text;
}

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The first certificate of a PEM text, or null.
X509Ptr FirstCertificate(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return nullptr;
  X509Ptr x(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ERR_clear_error();
  return x;
}

std::string Asn1TimeText(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// A server context from PEM files: the certificate (optionally followed by
// its chain) and its unencrypted private key. TLS 1.2 and newer.
Result<std::unique_ptr<net::ssl::context>> MakeServerTlsContext(const std::string& cert_file,
                                                                const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) {
    return Status::InvalidArgument(
        "TLS needs both a certificate file and a key file (got only the " +
        std::string(cert_file.empty() ? "key" : "certificate") + ")");
  }
  HERD_ASSIGN_OR_RETURN(std::string cert_pem, ReadPemFile(cert_file, "TLS certificate"));
  HERD_ASSIGN_OR_RETURN(std::string key_pem, ReadPemFile(key_file, "TLS key"));
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return Status::Internal("TLS: cannot require TLS 1.2: " + OpenSslError());
  }
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_compression |
                   net::ssl::context::single_dh_use);
  // Client-initiated renegotiation (TLS 1.2) only costs the server CPU.
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  // OpenSSL's default asks for a passphrase on the terminal; a daemon must
  // fail instead.
  ctx->set_password_callback(
      [](std::size_t, net::ssl::context::password_purpose) { return std::string(); });

  beast::error_code ec;
  ctx->use_certificate_chain(net::buffer(cert_pem), ec);
  if (ec) {
    ERR_clear_error();
    return Status::InvalidArgument("TLS certificate '" + cert_file +
                                   "': not a PEM certificate (chain): " + ec.message());
  }
  ctx->use_private_key(net::buffer(key_pem), net::ssl::context::pem, ec);
  if (ec) {
    ERR_clear_error();
    // Tell a key that does not load from one that loads but belongs to
    // another certificate.
    BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    EVP_PKEY* pkey = bio ? PEM_read_bio_PrivateKey(
                               bio, nullptr, [](char*, int, int, void*) { return 0; }, nullptr)
                         : nullptr;
    if (bio) BIO_free(bio);
    ERR_clear_error();
    if (pkey != nullptr) {
      EVP_PKEY_free(pkey);
      return Status::InvalidArgument("TLS key '" + key_file +
                                     "' does not match the certificate in '" + cert_file + "'");
    }
    const bool encrypted = key_pem.find("ENCRYPTED") != std::string::npos;
    return Status::InvalidArgument(
        "TLS key '" + key_file + "': " +
        (encrypted ? std::string("the key is encrypted; herdd needs it unencrypted "
                                 "(openssl pkey -in KEY -out PLAIN_KEY)")
                   : "not a PEM private key: " + ec.message()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("TLS key '" + key_file +
                                   "' does not match the certificate in '" + cert_file + "'");
  }
  if (X509* leaf = SSL_CTX_get0_certificate(native)) {
    const std::string until = Asn1TimeText(X509_get0_notAfter(leaf));
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
      spdlog::warn("TLS certificate '{}' expired at {}: clients will refuse it", cert_file, until);
    } else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
      spdlog::warn("TLS certificate '{}' is not valid before {}: clients will refuse it until then",
                   cert_file, Asn1TimeText(X509_get0_notBefore(leaf)));
    } else {
      spdlog::info("TLS certificate '{}' valid until {}", cert_file, until);
    }
  }
  return ctx;
}

// ---- sessions ----------------------------------------------------------------

// What Server::Stop sees of a session, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Stop: close the connection if it waits for a request; a request in
  // flight finishes and its response closes the connection.
  virtual void Drain() = 0;
  virtual void ForceClose() = 0;
  virtual net::any_io_executor executor() = 0;
};

// State shared by the listener and every session; each holds a shared_ptr,
// so it outlives them all.
struct Shared {
  ServerOptions opt;
  Router router;
  const Authenticator* auth = nullptr;
  metrics::Family<metrics::Counter>* requests_total = nullptr;
  metrics::Family<metrics::Histogram>* duration = nullptr;
  // Set when the server speaks TLS; every session's stream uses it.
  std::unique_ptr<net::ssl::context> tls;

  std::atomic<bool> draining{false};
  std::atomic<uint64_t> accepted{0}, rejected{0}, requests{0};
  std::atomic<int> open{0}, in_flight{0};

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
};

bool IsHttpParseError(const beast::error_code& ec) {
  return std::string_view(ec.category().name()) == "beast.http";
}

// One connection. Stream is PlainStream or TlsStream; everything above the
// bytes (parsing, limits, routing, auth, streaming, draining) is the same
// code. A TLS session first detects the handshake (a plain-HTTP request
// gets a plain 400 saying to use https), then handshakes under the read
// deadline; it ends with close_notify when the close is orderly.
template <typename Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(tcp::socket&& socket, std::shared_ptr<Shared> sh, bool reject)
      : stream_(MakeStream(std::move(socket), *sh)), sh_(std::move(sh)), reject_(reject) {
    beast::error_code ec;
    auto ep = Lowest().socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    if (!reject_) sh_->open.fetch_add(1);
  }

  ~Session() override {
    if (in_flight_) sh_->in_flight.fetch_sub(1);
    if (reject_) return;
    {
      std::lock_guard<std::mutex> lock(sh_->mu);
      sh_->sessions.erase(this);
      sh_->open.fetch_sub(1);
    }
    sh_->cv.notify_all();
  }

  void Run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Start, Self()));
  }

  void Drain() override {
    if (phase_ != Phase::kIdle) return;
    if (tls_up_) {
      // Cancel the wait for a request; its handler sends close_notify.
      drain_cancelled_ = true;
      Lowest().cancel();
      return;
    }
    Close();
  }
  void ForceClose() override { Close(); }
  net::any_io_executor executor() override { return stream_.get_executor(); }

 private:
  enum class Phase { kIdle, kBody, kHandling, kWriting, kClosing };

  static Stream MakeStream(tcp::socket&& socket, Shared& sh) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *sh.tls);
    } else {
      (void)sh;
      return Stream(std::move(socket));
    }
  }
  std::shared_ptr<Session> Self() { return this->shared_from_this(); }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Start() {
    if constexpr (kTls) {
      Lowest().expires_after(sh_->opt.read_timeout);
      beast::async_detect_ssl(Lowest(), buffer_,
                              beast::bind_front_handler(&Session::OnDetect, Self()));
    } else {
      Begin();
    }
  }

  void OnDetect(beast::error_code ec, bool tls) {
    if (ec) return Fail(ec, "tls detect");
    if (!tls) return AnswerPlainOnTlsPort();
    if constexpr (kTls) {
      Lowest().expires_after(sh_->opt.read_timeout);
      stream_.async_handshake(net::ssl::stream_base::server, buffer_.data(),
                              beast::bind_front_handler(&Session::OnHandshake, Self()));
    }
  }

  void OnHandshake(beast::error_code ec, std::size_t used) {
    if (ec) return Fail(ec, "tls handshake");
    buffer_.consume(used);
    tls_up_ = true;
    Begin();
  }

  // A plain HTTP request on the TLS port: answered in plain HTTP (nothing
  // else could read it), then closed.
  void AnswerPlainOnTlsPort() {
    spdlog::debug(
        "http session remote={} op=tls detect error=plain HTTP on the TLS port; answered 400",
        remote_);
    phase_ = Phase::kWriting;
    BuildResponse(
        MakeProblem(ProblemType::kMalformedRequest,
                    "this port serves HTTPS; use https:// (a plain HTTP request was sent to it)"),
        false);
    Lowest().expires_after(sh_->opt.write_timeout);
    http::async_write(Lowest(), res_, [self = Self()](beast::error_code ec, std::size_t) {
      if (ec) return self->Fail(ec, "write");
      self->Linger();
    });
  }

  void Begin() {
    if (reject_) {
      Respond(MakeProblem(ProblemType::kUnavailable,
                          "too many open connections (max " +
                              std::to_string(sh_->opt.max_connections) + "); retry later"),
              false);
      return;
    }
    DoReadHeader();
  }

  void DoReadHeader() {
    if (sh_->draining.load()) return Shutdown();
    phase_ = Phase::kIdle;
    route_ = nullptr;
    sink_.reset();
    body_parser_.reset();
    stream_parser_.reset();
    req_ = Request();
    header_parser_.emplace();
    header_parser_->header_limit(sh_->opt.header_limit);
    // The body limit depends on the route, known only after the header.
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    Lowest().expires_after(first_ ? sh_->opt.read_timeout : sh_->opt.idle_timeout);
    first_ = false;
    http::async_read_header(stream_, buffer_, *header_parser_,
                            beast::bind_front_handler(&Session::OnReadHeader, Self()));
  }

  void OnReadHeader(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return Shutdown();
    if (ec == net::error::operation_aborted && drain_cancelled_) return Shutdown();
    if (ec) {
      if (ec == http::error::header_limit) {
        return Answer(MakeProblem(ProblemType::kHeadersTooLarge,
                                  "request line and header fields exceed " +
                                      std::to_string(sh_->opt.header_limit) + " bytes"));
      }
      if (IsHttpParseError(ec) && ec != http::error::partial_message) {
        return Answer(MakeProblem(ProblemType::kMalformedRequest,
                                  "malformed HTTP request: " + ec.message()));
      }
      return Fail(ec, "read header");
    }
    start_ = Clock::now();
    in_flight_ = true;
    sh_->in_flight.fetch_add(1);
    phase_ = Phase::kHandling;

    const auto& h = header_parser_->get();
    keep_alive_ = h.keep_alive();
    req_.method = std::string(h.method_string());
    req_.target = std::string(h.target());
    req_.remote = remote_;
    for (const auto& f : h) req_.headers.Add(std::string(f.name_string()), std::string(f.value()));
    Status st = ParseTarget(req_.target, &req_.path, &req_.query);
    if (!st.ok()) return Answer(MakeProblem(ProblemType::kMalformedRequest, st.message()));

    RouteMatch m = sh_->router.Match(req_.method, req_.path);
    if (m.status == 405) {
      Response r = MakeProblem(ProblemType::kMethodNotAllowed,
                               req_.method + " is not allowed on " + req_.path + " (allowed: " +
                                   m.allow + ")");
      r.headers.Set("Allow", m.allow);
      return Answer(std::move(r));
    }
    if (m.route == nullptr) {
      std::string detail = "no route for " + req_.method + " " + req_.path;
      if (!m.detail.empty()) detail += " (" + m.detail + ")";
      return Answer(MakeProblem(ProblemType::kNotFound, detail));
    }
    route_ = m.route;
    req_.params = std::move(m.params);
    req_.route = route_->pattern;

    if (sh_->auth == nullptr) {
      req_.principal = "anonymous";
      req_.role = Role::kAdmin;
    } else if (!route_->options.public_route) {
      // One credential per request (RFC 9110 §11.6.2): with two, which one
      // is meant depends on who reads the message.
      int fields = 0;
      for (const auto& f : req_.headers.fields()) {
        fields += EqualsIgnoreCase(f.first, "Authorization");
      }
      if (fields > 1) {
        return Answer(
            MakeProblem(ProblemType::kMalformedRequest, "more than one Authorization header"));
      }
      auto authz = req_.headers.Get("Authorization");
      std::optional<std::string_view> token;
      if (authz) token = BearerToken(*authz);
      std::optional<Principal> p;
      if (token) p = sh_->auth->Authenticate(*token);
      if (!p) {
        Response r = MakeProblem(ProblemType::kUnauthenticated,
                                 !authz ? "missing Authorization: Bearer <token> header"
                                 : !token ? "Authorization header is not a Bearer token"
                                          : "bearer token not recognised");
        r.headers.Set("WWW-Authenticate", "Bearer realm=\"herd\"");
        return Answer(std::move(r));
      }
      if (!RoleSatisfies(p->role, route_->options.role)) {
        return Answer(MakeProblem(ProblemType::kPermissionDenied,
                                  "'" + p->name + "' has role " + RoleName(p->role) + "; " +
                                      req_.method + " " + route_->pattern + " needs role " +
                                      RoleName(route_->options.role)));
      }
      req_.principal = p->name;
      req_.role = p->role;
    }

    const bool streaming = static_cast<bool>(route_->stream_handler);
    limit_ = route_->options.body_limit != 0 ? route_->options.body_limit
             : streaming                     ? sh_->opt.stream_body_limit
                                             : sh_->opt.body_limit;
    auto len = header_parser_->content_length();
    if (len && *len > limit_) {
      return Answer(MakeProblem(ProblemType::kPayloadTooLarge,
                                "body of " + std::to_string(*len) + " bytes exceeds the limit of " +
                                    std::to_string(limit_) + " bytes for " + route_->pattern));
    }
    if (streaming) {
      Result<std::unique_ptr<BodySink>> sink = Call([&] { return route_->stream_handler(req_); });
      if (!sink.ok()) return Answer(ProblemFromStatus(sink.status()));
      sink_ = std::move(*sink);
    }
    if (header_parser_->is_done()) {
      // No body: don't convert the parser.
      return Finish();
    }
    auto expect = req_.headers.Get("Expect");
    if (expect && EqualsIgnoreCase(*expect, "100-continue")) {
      continue_.emplace(http::status::continue_, 11);
      Lowest().expires_after(sh_->opt.write_timeout);
      return http::async_write(stream_, *continue_,
                               beast::bind_front_handler(&Session::OnContinue, Self()));
    }
    StartBody();
  }

  void OnContinue(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "write 100-continue");
    StartBody();
  }

  void StartBody() {
    phase_ = Phase::kBody;
    if (sink_) {
      stream_parser_.emplace(std::move(*header_parser_));
      stream_parser_->body_limit(limit_);
      chunk_ = std::make_unique<char[]>(kChunkBytes);
      return DoReadChunk();
    }
    body_parser_.emplace(std::move(*header_parser_));
    body_parser_->body_limit(limit_);
    Lowest().expires_after(sh_->opt.read_timeout);
    http::async_read(stream_, buffer_, *body_parser_,
                     beast::bind_front_handler(&Session::OnReadBody, Self()));
  }

  bool BodyError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      Answer(MakeProblem(ProblemType::kPayloadTooLarge,
                         "body exceeds the limit of " + std::to_string(limit_) + " bytes for " +
                             route_->pattern));
    } else if (IsHttpParseError(ec) && ec != http::error::partial_message &&
               ec != http::error::end_of_stream) {
      Answer(MakeProblem(ProblemType::kMalformedRequest, "malformed body: " + ec.message()));
    } else {
      Fail(ec, "read body");
    }
    return true;
  }

  void OnReadBody(beast::error_code ec, std::size_t) {
    if (ec) {
      BodyError(ec);
      return;
    }
    req_.body = std::move(body_parser_->get().body());
    Finish();
  }

  void DoReadChunk() {
    auto& body = stream_parser_->get().body();
    body.data = chunk_.get();
    body.size = kChunkBytes;
    Lowest().expires_after(sh_->opt.read_timeout);
    http::async_read(stream_, buffer_, *stream_parser_,
                     beast::bind_front_handler(&Session::OnReadChunk, Self()));
  }

  void OnReadChunk(beast::error_code ec, std::size_t) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      BodyError(ec);
      return;
    }
    size_t n = kChunkBytes - stream_parser_->get().body().size;
    if (n > 0) {
      Status st = Call([&] { return sink_->OnChunk(std::string_view(chunk_.get(), n)); });
      if (!st.ok()) return Answer(ProblemFromStatus(st));
    }
    if (stream_parser_->is_done()) return Finish();
    DoReadChunk();
  }

  // Runs route code; an exception becomes a 500 instead of killing herdd.
  template <typename F>
  auto Call(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      spdlog::error("http handler threw route={} what={}", req_.route, e.what());
      return Status::Internal(std::string("handler failed: ") + e.what());
    }
  }

  void Finish() {
    Response r;
    try {
      r = sink_ ? sink_->Finish(req_) : route_->handler(req_);
    } catch (const std::exception& e) {
      spdlog::error("http handler threw route={} what={}", req_.route, e.what());
      r = MakeProblem(ProblemType::kInternal, std::string("handler failed: ") + e.what());
    }
    sink_.reset();
    Respond(std::move(r), keep_alive_);
  }

  // An answer before (or instead of) reading the whole body: the connection
  // cannot be reused.
  void Answer(Response r) { Respond(std::move(r), false); }

  // res_ from r (a buffered body).
  void BuildResponse(Response r, bool keep_alive) {
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::server, std::string("herd/") + kVersion);
    if (!r.content_type.empty()) res_.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers.fields()) res_.insert(k, v);
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
  }

  void Respond(Response r, bool keep_alive) {
    phase_ = Phase::kWriting;
    if (sh_->draining.load()) keep_alive = false;
    if (r.source) return RespondStream(std::move(r), keep_alive);
    const int status = r.status;
    BuildResponse(std::move(r), keep_alive);
    CountRequest(status);
    Lowest().expires_after(sh_->opt.write_timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::OnWrite, Self(), keep_alive));
  }

  void CountRequest(int status) {
    if (in_flight_ && sh_->requests_total != nullptr) {
      const std::string& route = route_ ? route_->pattern : std::string("unmatched");
      sh_->requests_total->WithLabels({route, std::to_string(status)}).Increment();
      sh_->duration->WithLabels({route}).Observe(
          std::chrono::duration<double>(Clock::now() - start_).count());
    }
  }

  // A body from a BodySource: the header, then one chunk per piece, then
  // the terminating chunk. The request is counted when its header is sent.
  void RespondStream(Response r, bool keep_alive) {
    source_ = std::move(r.source);
    sres_.emplace();
    sres_->version(11);
    sres_->result(static_cast<unsigned>(r.status));
    sres_->set(http::field::server, std::string("herd/") + kVersion);
    if (!r.content_type.empty()) sres_->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers.fields()) sres_->insert(k, v);
    sres_->keep_alive(keep_alive);
    sres_->chunked(true);
    sres_->body().data = nullptr;
    sres_->body().more = true;
    sr_.emplace(*sres_);
    CountRequest(r.status);
    Lowest().expires_after(sh_->opt.write_timeout);
    http::async_write_header(
        stream_, *sr_, beast::bind_front_handler(&Session::OnStreamWrite, Self(), keep_alive));
  }

  void OnStreamWrite(bool keep_alive, beast::error_code ec, std::size_t) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec || sr_->is_done()) {
      sr_.reset();
      sres_.reset();
      source_.reset();
      piece_.clear();
      piece_.shrink_to_fit();
      return OnWrite(keep_alive, ec, 0);
    }
    bool done = false;
    piece_.clear();
    Status st = Status::Ok();
    while (st.ok() && piece_.empty() && !done) st = Call([&] { return source_->Next(&piece_, &done); });
    if (!st.ok()) {
      // The status line is out: all that is left is to not finish the body
      // (and, over TLS, to not send close_notify, which would make the cut
      // look like an orderly end).
      spdlog::warn("http streamed body failed route={} error={}", req_.route, st.ToString());
      if (in_flight_) {
        in_flight_ = false;
        sh_->in_flight.fetch_sub(1);
      }
      return Close();
    }
    sres_->body().data = piece_.empty() ? nullptr : piece_.data();
    sres_->body().size = piece_.size();
    sres_->body().more = !done;
    Lowest().expires_after(sh_->opt.write_timeout);
    http::async_write(stream_, *sr_,
                      beast::bind_front_handler(&Session::OnStreamWrite, Self(), keep_alive));
  }

  void OnWrite(bool keep_alive, beast::error_code ec, std::size_t) {
    sh_->requests.fetch_add(1);
    if (in_flight_) {
      in_flight_ = false;
      sh_->in_flight.fetch_sub(1);
    }
    if (ec) return Fail(ec, "write");
    if (!keep_alive) return Linger();
    DoReadHeader();
  }

  // After a response that closes the connection: discard what the client
  // still sends (an unread upload) for a moment, then close. Plain TCP
  // half-closes first so the client sees EOF. TLS cannot half-close (a
  // close_notify while the client still sends makes the next record a
  // protocol error), so it drains until the client's close_notify or FIN,
  // then answers with its own.
  void Linger() {
    phase_ = Phase::kClosing;
    if (!tls_up_) {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return Close();
    }
    if (!chunk_) {
      chunk_ = std::make_unique<char[]>(kLingerReadBytes);
      linger_bytes_ = kLingerReadBytes;
    }
    Lowest().expires_after(kLingerTimeout);
    DoLingerRead();
  }

  void DoLingerRead() {
    auto buf = net::buffer(chunk_.get(), linger_bytes_);
    auto next = beast::bind_front_handler(&Session::OnLinger, Self());
    if (tls_up_) {
      stream_.async_read_some(buf, std::move(next));
    } else {
      Lowest().async_read_some(buf, std::move(next));
    }
  }

  void OnLinger(beast::error_code ec, std::size_t n) {
    drained_ += n;
    if (ec == net::error::eof && tls_up_) return Shutdown();
    if (ec || drained_ > kLingerMaxBytes) return Close();
    DoLingerRead();
  }

  void Fail(beast::error_code ec, const char* what) {
    // Timeouts, resets, aborted operations and failed TLS handshakes are
    // normal for a server; log at debug level only.
    if (ec != net::error::operation_aborted) {
      spdlog::debug("http session remote={} op={} error={}", remote_, what, ec.message());
    }
    Close();
  }

  // An orderly close: over TLS, close_notify (with a deadline) first. Only
  // ours is sent: waiting for the client's would hold a drain up on every
  // idle keep-alive client (TLS allows closing without it).
  void Shutdown() {
    if constexpr (kTls) {
      if (tls_up_ && !shutdown_started_) {
        shutdown_started_ = true;
        phase_ = Phase::kClosing;
        SSL* ssl = stream_.native_handle();
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
        Lowest().expires_after(kTlsShutdownTimeout);
        stream_.async_shutdown([self = Self()](beast::error_code) { self->Close(); });
        return;
      }
    }
    Close();
  }

  // An abrupt close (errors, timeouts, a stream cut short, the drain
  // deadline).
  void Close() {
    phase_ = Phase::kClosing;
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close();
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<Shared> sh_;
  const bool reject_;
  Phase phase_ = Phase::kIdle;
  bool tls_up_ = false;            // the TLS handshake is done (TlsStream only)
  bool drain_cancelled_ = false;   // Drain() cancelled the wait for a request
  bool shutdown_started_ = false;  // close_notify is on its way
  bool first_ = true;
  bool keep_alive_ = false;
  bool in_flight_ = false;
  uint64_t limit_ = 0;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> body_parser_;
  std::optional<http::request_parser<http::buffer_body>> stream_parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::unique_ptr<BodySink> sink_;
  const Route* route_ = nullptr;
  Request req_;
  http::response<http::string_body> res_;
  // A streamed response: its message, serializer, source and current piece.
  std::optional<http::response<http::buffer_body>> sres_;
  std::optional<http::response_serializer<http::buffer_body>> sr_;
  std::shared_ptr<BodySource> source_;
  std::string piece_;
  std::unique_ptr<char[]> chunk_;
  size_t linger_bytes_ = kChunkBytes;  // size of chunk_ when Linger allocated it
  size_t drained_ = 0;
  Clock::time_point start_;
  std::string remote_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, std::shared_ptr<Shared> sh)
      : ioc_(ioc),
        acceptor_(net::make_strand(ioc)),
        retry_(acceptor_.get_executor()),
        sh_(std::move(sh)) {}

  Status Open(const tcp::endpoint& ep) {
    beast::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IoError("listen " + ep.address().to_string() + ":" +
                             std::to_string(ep.port()) + ": " + ec.message());
    }
    return Status::Ok();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void Run() {
    net::dispatch(acceptor_.get_executor(),
                  beast::bind_front_handler(&Listener::DoAccept, shared_from_this()));
  }
  void Close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
      self->retry_.cancel();
    });
  }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): the
      // connection stays queued in the kernel, and accepting again at once
      // fails again at once. Wait for sessions to close, and log once in a
      // while, not per attempt. Other errors are per connection: go on.
      const bool exhausted = ec == net::error::no_descriptors ||
                             ec == net::error::no_buffer_space || ec == net::error::no_memory ||
                             ec == beast::error_code(ENFILE, boost::system::system_category());
      ++accept_errors_;
      if (Clock::now() - last_accept_log_ >= kAcceptLogEvery) {
        spdlog::warn("http accept error={} (failed {} time(s) since the last report){}",
                     ec.message(), accept_errors_, exhausted ? "; pausing accepts briefly" : "");
        accept_errors_ = 0;
        last_accept_log_ = Clock::now();
      }
      if (!exhausted) return DoAccept();
      retry_.expires_after(kAcceptBackoff);
      return retry_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e && self->acceptor_.is_open()) self->DoAccept();
      });
    }
    if (sh_->draining.load()) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (sh_->tls) {
      Admit<TlsStream>(std::move(socket));
    } else {
      Admit<PlainStream>(std::move(socket));
    }
    DoAccept();
  }

  template <typename Stream>
  void Admit(tcp::socket&& socket) {
    if (sh_->open.load() >= sh_->opt.max_connections) {
      sh_->rejected.fetch_add(1);
      std::make_shared<Session<Stream>>(std::move(socket), sh_, /*reject=*/true)->Run();
      return;
    }
    sh_->accepted.fetch_add(1);
    auto s = std::make_shared<Session<Stream>>(std::move(socket), sh_, /*reject=*/false);
    {
      std::lock_guard<std::mutex> lock(sh_->mu);
      sh_->sessions.emplace(s.get(), s);
    }
    s->Run();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;  // the pause after accept ran out of descriptors
  std::shared_ptr<Shared> sh_;
  uint64_t accept_errors_ = 0;
  Clock::time_point last_accept_log_{};
};

}  // namespace

struct Server::Impl {
  std::shared_ptr<Shared> sh = std::make_shared<Shared>();
  std::unique_ptr<net::io_context> ioc;
  std::shared_ptr<Listener> listener;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool running = false;
};

Server::Server(ServerOptions options, Router router, const Authenticator* auth,
               metrics::Registry* registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->sh->opt = std::move(options);
  impl_->sh->router = std::move(router);
  impl_->sh->auth = auth;
  if (registry != nullptr) {
    impl_->sh->requests_total = &registry->AddCounter(
        "herd_http_requests_total", "HTTP responses written, by route pattern and status code.",
        {"route", "code"});
    impl_->sh->duration = &registry->AddHistogram(
        "herd_http_request_duration_seconds",
        "Time from a request's header read to its response queued for writing, by route pattern.",
        {"route"}, metrics::DefaultLatencyBuckets());
  }
}

Server::~Server() { Stop(std::chrono::milliseconds(0)); }

Status Server::Start() {
  if (impl_->running) return Status::FailedPrecondition("server already started");
  const ServerOptions& opt = impl_->sh->opt;
  int threads = std::max(1, opt.threads);
  impl_->ioc = std::make_unique<net::io_context>(threads);
  beast::error_code ec;
  auto addr = net::ip::make_address(opt.host, ec);
  if (ec) {
    tcp::resolver resolver(*impl_->ioc);
    auto results = resolver.resolve(opt.host, std::to_string(opt.port), ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("listen host '" + opt.host + "': " +
                                     (ec ? ec.message() : std::string("no address")));
    }
    addr = results.begin()->endpoint().address();
  }
  impl_->sh->tls.reset();
  if (!opt.tls_cert_file.empty() || !opt.tls_key_file.empty()) {
    HERD_ASSIGN_OR_RETURN(impl_->sh->tls,
                          MakeServerTlsContext(opt.tls_cert_file, opt.tls_key_file));
  }
  impl_->listener = std::make_shared<Listener>(*impl_->ioc, impl_->sh);
  HERD_RETURN_IF_ERROR(impl_->listener->Open(tcp::endpoint(addr, opt.port)));
  impl_->port = impl_->listener->port();
  impl_->listener->Run();
  impl_->running = true;
  for (int i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([ioc = impl_->ioc.get()] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http io thread caught what={}", e.what());
        }
      }
    });
  }
  spdlog::info("http listening addr={}:{} threads={} tls={}", opt.host, impl_->port, threads,
               impl_->sh->tls ? "on" : "off");
  return Status::Ok();
}

uint16_t Server::port() const { return impl_->port; }

void Server::Stop(std::chrono::milliseconds deadline) {
  if (!impl_->running) return;
  impl_->running = false;
  Shared& sh = *impl_->sh;
  sh.draining.store(true);
  impl_->listener->Close();
  auto each_session = [&](auto fn) {
    std::vector<std::shared_ptr<SessionBase>> live;
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      for (auto& [p, w] : sh.sessions) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) net::post(s->executor(), [s, fn] { fn(*s); });
  };
  each_session([](SessionBase& s) { s.Drain(); });
  {
    std::unique_lock<std::mutex> lock(sh.mu);
    sh.cv.wait_for(lock, deadline, [&] { return sh.open.load() == 0; });
  }
  if (sh.open.load() > 0) {
    spdlog::warn("http drain deadline passed; closing open={}", sh.open.load());
    each_session([](SessionBase& s) { s.ForceClose(); });
    std::unique_lock<std::mutex> lock(sh.mu);
    sh.cv.wait_for(lock, std::chrono::milliseconds(1000), [&] { return sh.open.load() == 0; });
  }
  impl_->ioc->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->listener.reset();
  // Destroying the io_context destroys pending handlers (and the sessions
  // they hold).
  impl_->ioc.reset();
}

ServerStats Server::stats() const {
  const Shared& sh = *impl_->sh;
  ServerStats s;
  s.connections_accepted = sh.accepted.load();
  s.connections_rejected = sh.rejected.load();
  s.requests = sh.requests.load();
  s.open_connections = sh.open.load();
  s.in_flight = sh.in_flight.load();
  return s;
}

Result<bool> CertificateNamesHost(const std::string& cert_file, std::string_view host) {
  HERD_ASSIGN_OR_RETURN(std::string pem, ReadPemFile(cert_file, "TLS certificate"));
  X509Ptr x = FirstCertificate(pem);
  if (!x) {
    return Status::InvalidArgument("TLS certificate '" + cert_file + "': no PEM certificate in it");
  }
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  beast::error_code ec;
  net::ip::make_address(h, ec);
  const int r = !ec ? X509_check_ip_asc(x.get(), h.c_str(), 0)
                    : X509_check_host(x.get(), h.data(), h.size(),
                                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr);
  ERR_clear_error();
  return r == 1;
}

}  // namespace herd::api
