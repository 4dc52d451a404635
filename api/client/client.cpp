// The one client TU that includes Beast and OpenSSL. Synchronous calls are
// async Beast operations run to completion on a private io_context, because
// only async operations honour tcp_stream's per-operation deadline.
#include "api/client/client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <vector>

#include "common/version.h"

namespace herd::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr size_t kUploadChunkBytes = 256 * 1024;
// Most of an error body a download keeps (a problem is far smaller).
constexpr size_t kErrorBodyCap = 1u << 20;
// Most time spent sending TLS close_notify when closing a connection.
constexpr auto kTlsShutdownTimeout = std::chrono::milliseconds(1000);

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

bool ConnectionClosedError(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == http::error::partial_message || ec == net::ssl::error::stream_truncated;
}

// A client context: TLS 1.2+, the peer verified against ca_file (every
// certificate in it an anchor, as curl does) or the system's CAs.
Result<std::unique_ptr<net::ssl::context>> MakeClientTlsContext(const std::string& ca_file) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    ERR_clear_error();
    return Status::Internal("TLS: cannot require TLS 1.2");
  }
  ctx->set_verify_mode(net::ssl::verify_peer);
  beast::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::Internal("TLS: the system's CA certificates: " + ec.message());
  } else {
    std::ifstream f(ca_file, std::ios::binary);
    if (!f) {
      return Status::InvalidArgument("ca_file '" + ca_file + "': cannot read: " +
                                     std::strerror(errno));
    }
    std::string pem((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Status::InvalidArgument("ca_file '" + ca_file + "': no PEM certificate in it");
    }
    ctx->load_verify_file(ca_file, ec);
    if (ec) {
      ERR_clear_error();
      return Status::InvalidArgument("ca_file '" + ca_file + "': " + ec.message());
    }
  }
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(native), X509_V_FLAG_PARTIAL_CHAIN);
  return ctx;
}

}  // namespace

Status ParseBaseUrl(std::string_view url, std::string* host, std::string* port, bool* https) {
  bool tls = false;
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    rest = url.substr(8);
    tls = true;
  } else {
    return Status::InvalidArgument("url '" + std::string(url) +
                                   "': must start with http:// or https://");
  }
  rest = rest.substr(0, rest.find('/'));
  if (rest.empty()) return Status::InvalidArgument("url '" + std::string(url) + "': no host");
  std::string_view h = rest, p = tls ? "443" : "80";
  if (rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("url '" + std::string(url) + "': unclosed '['");
    }
    h = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Status::InvalidArgument("url '" + std::string(url) + "'");
      p = rest.substr(close + 2);
    }
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    h = rest.substr(0, colon);
    p = rest.substr(colon + 1);
  }
  if (h.empty() || p.empty() || p.find_first_not_of("0123456789") != std::string_view::npos) {
    return Status::InvalidArgument("url '" + std::string(url) + "': bad host or port");
  }
  *host = std::string(h);
  *port = std::string(p);
  if (https != nullptr) *https = tls;
  return Status::Ok();
}

struct HttpClient::Impl {
  ClientOptions opt;
  std::string host, port;
  bool https = false;
  net::io_context ioc;
  beast::tcp_stream tcp{ioc};                  // http
  std::unique_ptr<net::ssl::context> tls_ctx;  // https
  std::optional<TlsStream> tls;                // https: a new one per connection
  beast::flat_buffer buffer;
  bool connected = false;
  uint64_t opened = 0;

  beast::tcp_stream& Lowest() { return tls ? beast::get_lowest_layer(*tls) : tcp; }

  // Runs one async operation, start(handler), to completion under a deadline.
  template <typename Start>
  beast::error_code RunFor(std::chrono::milliseconds timeout, Start&& start) {
    beast::error_code result = net::error::would_block;
    Lowest().expires_after(timeout);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  // Runs op(stream, handler) on the connection's stream (plain or TLS)
  // under the client's deadline.
  template <typename Op>
  beast::error_code Run(Op&& op) {
    return RunFor(opt.timeout, [&](auto&& handler) {
      if (tls) {
        op(*tls, handler);
      } else {
        op(tcp, handler);
      }
    });
  }

  std::string HostHeader() const {
    const bool default_port = port == (https ? "443" : "80");
    const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return default_port ? h : h + ":" + port;
  }

  Status Connect() {
    Close();
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, port, ec);
    if (ec) return Status::Unavailable("resolve " + host + ":" + port + ": " + ec.message());
    if (https) {
      tls.emplace(ioc, *tls_ctx);
      SSL* ssl = tls->native_handle();
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      beast::error_code not_ip;
      net::ip::make_address(host, not_ip);
      if (!not_ip) {
        // An IP host: the certificate must hold it as an IP address entry.
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl, host.c_str());
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
      }
    }
    ec = RunFor(opt.timeout, [&](auto&& h) { Lowest().async_connect(results, h); });
    if (ec) {
      Close(false);
      return Status::Unavailable("connect " + host + ":" + port + ": " + ec.message());
    }
    beast::error_code ignored;
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    connected = true;
    ++opened;
    if (https) {
      ec = RunFor(opt.timeout,
                  [&](auto&& h) { tls->async_handshake(net::ssl::stream_base::client, h); });
      if (ec) {
        std::string why = HandshakeError(ec);
        Close(false);
        return Status::Unavailable("TLS handshake with " + host + ":" + port + ": " + why);
      }
    }
    return Status::Ok();
  }

  std::string HandshakeError(const beast::error_code& ec) {
    const long verify = SSL_get_verify_result(tls->native_handle());
    ERR_clear_error();
    if (verify != X509_V_OK) {
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify) +
             " (trusting " +
             (opt.ca_file.empty() ? std::string("the system's CA certificates")
                                  : "'" + opt.ca_file + "'") +
             ")";
    }
    std::string why = ec.message();
    if (ec.category() == net::error::get_ssl_category()) {
      const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
      if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
        why += " (does the server speak plain http?)";
      }
    }
    return why;
  }

  // orderly: the connection is healthy, after a whole response; over TLS it
  // then ends with close_notify (ours only: the server answers it, but
  // nothing here waits for that).
  void Close(bool orderly = true) {
    if (connected) {
      beast::error_code ec;
      if (tls && orderly) {
        SSL* ssl = tls->native_handle();
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
        RunFor(std::min<std::chrono::milliseconds>(opt.timeout, kTlsShutdownTimeout),
               [&](auto&& h) { tls->async_shutdown(h); });
        ERR_clear_error();
      }
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      Lowest().close();
      buffer.clear();
      connected = false;
    }
    tls.reset();
  }

  template <typename Body>
  void SetCommon(http::request<Body>& req, std::string_view method, std::string_view target,
                 const Headers& headers) {
    req.version(11);
    http::verb v = http::string_to_verb(method);
    if (v == http::verb::unknown) {
      req.method_string(method);
    } else {
      req.method(v);
    }
    req.target(target);
    req.set(http::field::host, HostHeader());
    req.set(http::field::user_agent, std::string("herd-client/") + kVersion);
    if (!opt.token.empty()) req.set(http::field::authorization, "Bearer " + opt.token);
    for (const auto& [k, val] : headers.fields()) req.set(k, val);
    req.keep_alive(true);
  }

  Result<Response> ReadResponse(std::string_view what, beast::error_code* ec_out) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(opt.body_limit);
    beast::error_code ec = Run([&](auto& s, auto&& h) { http::async_read(s, buffer, parser, h); });
    *ec_out = ec;
    if (ec) {
      Close(false);
      return Status::Unavailable(std::string(what) + ": read response: " + ec.message());
    }
    auto& res = parser.get();
    Response r;
    r.status = static_cast<int>(res.result_int());
    for (const auto& f : res) r.headers.Add(std::string(f.name_string()), std::string(f.value()));
    auto ct = r.headers.Get("Content-Type");
    r.content_type = ct ? std::string(*ct) : std::string();
    r.body = std::move(res.body());
    if (!res.keep_alive()) Close();
    return r;
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() { impl_->Close(); }

Result<std::unique_ptr<HttpClient>> HttpClient::Create(ClientOptions options) {
  auto impl = std::make_unique<Impl>();
  HERD_RETURN_IF_ERROR(ParseBaseUrl(options.base_url, &impl->host, &impl->port, &impl->https));
  if (impl->https) {
    HERD_ASSIGN_OR_RETURN(impl->tls_ctx, MakeClientTlsContext(options.ca_file));
  }
  impl->opt = std::move(options);
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

uint64_t HttpClient::connections_opened() const { return impl_->opened; }
void HttpClient::Close() { impl_->Close(); }

Result<Response> HttpClient::Request(std::string_view method, std::string_view target,
                                     std::string_view body, const Headers& headers) {
  Impl& im = *impl_;
  const std::string what = std::string(method) + " " + std::string(target);
  for (int attempt = 0;; ++attempt) {
    const bool reused = im.connected;
    if (!im.connected) HERD_RETURN_IF_ERROR(im.Connect());
    http::request<http::string_body> req;
    im.SetCommon(req, method, target, headers);
    req.body() = std::string(body);
    req.prepare_payload();
    beast::error_code ec = im.Run([&](auto& s, auto&& h) { http::async_write(s, req, h); });
    if (ec) {
      im.Close(false);
      if (reused && attempt == 0 && ConnectionClosedError(ec)) continue;
      return Status::Unavailable(what + ": write request: " + ec.message());
    }
    auto r = im.ReadResponse(what, &ec);
    // The server may have acted on a request whose answer was lost, so only
    // idempotent methods are resent after a failed read.
    const bool idempotent = method == "GET" || method == "HEAD" || method == "PUT" ||
                            method == "DELETE" || method == "OPTIONS";
    if (!r.ok() && reused && attempt == 0 && idempotent && ConnectionClosedError(ec)) continue;
    return r;
  }
}

Result<Response> HttpClient::UploadFile(std::string_view method, std::string_view target,
                                        const std::string& path, std::string_view content_type,
                                        const Progress& progress, const Headers& headers) {
  Impl& im = *impl_;
  const std::string what = std::string(method) + " " + std::string(target);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::IoError(path + ": cannot open for upload");
  const uint64_t total = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  // A fresh connection: a stale kept-alive one would fail mid-upload,
  // after the file was partly consumed.
  HERD_RETURN_IF_ERROR(im.Connect());

  http::request<http::buffer_body> req;
  im.SetCommon(req, method, target, headers);
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  req.content_length(total);
  req.body().data = nullptr;
  req.body().more = true;
  http::request_serializer<http::buffer_body> sr{req};
  beast::error_code ec = im.Run([&](auto& s, auto&& h) { http::async_write_header(s, sr, h); });
  std::vector<char> buf(kUploadChunkBytes);
  uint64_t sent = 0;
  while (!ec && !sr.is_done()) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    size_t n = static_cast<size_t>(in.gcount());
    if (n == 0 && sent < total) return Status::IoError(path + ": read failed during upload");
    req.body().data = n ? buf.data() : nullptr;
    req.body().size = n;
    req.body().more = sent + n < total;
    ec = im.Run([&](auto& s, auto&& h) { http::async_write(s, sr, h); });
    if (ec == http::error::need_buffer) ec = {};
    sent += n;
    if (!ec && progress) progress(sent, total);
  }
  // On a write error the server may still have answered (413, 401): read it.
  beast::error_code write_ec = ec;
  auto r = im.ReadResponse(what, &ec);
  if (!r.ok() && write_ec) {
    return Status::Unavailable(what + ": upload of " + path + ": " + write_ec.message());
  }
  return r;
}

Result<Response> HttpClient::Download(std::string_view target, const Sink& sink, const Headers& headers) {
  Impl& im = *impl_;
  const std::string what = "GET " + std::string(target);
  beast::error_code ec;
  for (int attempt = 0;; ++attempt) {
    const bool reused = im.connected;
    if (!im.connected) HERD_RETURN_IF_ERROR(im.Connect());
    http::request<http::empty_body> req;
    im.SetCommon(req, "GET", target, headers);
    ec = im.Run([&](auto& s, auto&& h) { http::async_write(s, req, h); });
    if (!ec) break;
    im.Close(false);
    if (reused && attempt == 0 && ConnectionClosedError(ec)) continue;
    return Status::Unavailable(what + ": write request: " + ec.message());
  }
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  ec = im.Run([&](auto& s, auto&& h) { http::async_read_header(s, im.buffer, parser, h); });
  if (ec) {
    im.Close(false);
    return Status::Unavailable(what + ": read response: " + ec.message());
  }
  Response r;
  const auto& head = parser.get();
  r.status = static_cast<int>(head.result_int());
  for (const auto& f : head) r.headers.Add(std::string(f.name_string()), std::string(f.value()));
  auto ct = r.headers.Get("Content-Type");
  r.content_type = ct ? std::string(*ct) : std::string();
  const bool to_sink = r.status >= 200 && r.status < 300;
  std::vector<char> buf(kUploadChunkBytes);
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    ec = im.Run([&](auto& s, auto&& h) { http::async_read(s, im.buffer, parser, h); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      im.Close(false);
      return Status::Unavailable(what + ": body cut short: " + ec.message());
    }
    const size_t n = buf.size() - parser.get().body().size;
    if (n == 0) continue;
    if (!to_sink) {
      if (r.body.size() < kErrorBodyCap) r.body.append(buf.data(), n);
      continue;
    }
    if (Status s = sink(std::string_view(buf.data(), n)); !s.ok()) {
      im.Close(false);
      return s;
    }
  }
  if (!parser.get().keep_alive()) im.Close();
  return r;
}

}  // namespace herd::api
