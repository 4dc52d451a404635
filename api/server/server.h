#pragma once
// The HTTP/1.1 server: Boost.Beast on an io_context run by N threads.
// Beast stays inside server.cpp; this header shows only plain types.
//
// Per connection (a session, owned by shared_from_this): read the header
// with its own parser (header_limit), route and authorise, then read the
// body — whole into a string (body_limit) or chunk by chunk into the
// route's BodySink (stream_body_limit) — run the handler, write, repeat on
// keep-alive. Every operation has a deadline (expires_after). Errors found
// before the body was read are answered and the connection is closed (the
// unread body is drained for a moment so the client sees the answer, not a
// reset).
//
// TLS (tls_cert_file and tls_key_file set): every connection is HTTPS
// (OpenSSL, TLS 1.2 and newer). The handshake runs under read_timeout; an
// orderly close sends close_notify (with a deadline); a plain HTTP request
// on the TLS port gets a plain 400 problem saying to use https.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "api/server/router.h"
#include "common/status.h"

namespace herd::metrics {
class Registry;
}

namespace herd::api {

class Authenticator;

struct ServerOptions {
  // Address to listen on. Default: "127.0.0.1".
  std::string host = "127.0.0.1";
  // Port; 0 binds a free port (see Server::port()). Default: 8080.
  uint16_t port = 8080;
  // io_context threads; handlers run on them. Default: 2.
  int threads = 2;
  // Max bytes of request line + header fields (431 above). Default: 16 KiB.
  uint32_t header_limit = 16 * 1024;
  // Max body bytes of a buffered route (413 above). Default: 8 MiB.
  uint64_t body_limit = 8ull << 20;
  // Max body bytes of a streaming route. Default: 4 GiB.
  uint64_t stream_body_limit = 4ull << 30;
  // Deadline of one read (the header, a buffered body, one body chunk).
  // Default: 30 s.
  std::chrono::milliseconds read_timeout{30000};
  // Deadline of writing one response. Default: 30 s.
  std::chrono::milliseconds write_timeout{30000};
  // How long a keep-alive connection may wait for its next request.
  // Default: 60 s.
  std::chrono::milliseconds idle_timeout{60000};
  // Open connections served at once; one more gets 503 problem+json and is
  // closed. Default: 1024.
  int max_connections = 1024;
  // PEM file of the server certificate, optionally followed by the
  // intermediate certificates of its chain. Set together with tls_key_file
  // to serve HTTPS only. Default: "" (plain HTTP).
  std::string tls_cert_file;
  // PEM file of the certificate's private key (unencrypted). Default: "".
  std::string tls_key_file;
};

struct ServerStats {
  uint64_t connections_accepted = 0;  // served (not rejected) connections
  uint64_t connections_rejected = 0;  // 503 for max_connections
  uint64_t requests = 0;              // responses written
  int open_connections = 0;
  int in_flight = 0;  // requests between header read and response written
};

class Server {
 public:
  // auth: null → no auth (every request is admin "anonymous"); must outlive
  // the server. metrics: null → none; else the server registers
  // herd_http_requests_total{route,code} and
  // herd_http_request_duration_seconds{route} there.
  Server(ServerOptions options, Router router, const Authenticator* auth = nullptr,
         metrics::Registry* metrics = nullptr);
  ~Server();  // Stop(0) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the TLS files (if set), binds, listens and starts the threads.
  // InvalidArgument naming the file when a TLS file is missing, unreadable,
  // not PEM, an encrypted key, or a key of another certificate; IoError
  // naming host:port when the address cannot be bound.
  Status Start();
  // The bound port (the real one when options.port was 0).
  uint16_t port() const;

  // Graceful shutdown: close the acceptor, close idle keep-alive
  // connections, let requests in flight finish (their responses say
  // Connection: close) for up to `deadline`, then close whatever is left
  // and join the threads. Safe to call twice.
  void Stop(std::chrono::milliseconds deadline = std::chrono::milliseconds(10000));

  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether a client dialling `host` (a DNS name, or an IPv4/IPv6 address,
// brackets allowed) would accept the first certificate in cert_file by name:
// subjectAltName DNS (wildcards in the left-most label) or IP entries (the
// common name only when there is no DNS entry). InvalidArgument naming the
// file when it holds no certificate.
Result<bool> CertificateNamesHost(const std::string& cert_file, std::string_view host);

}  // namespace herd::api
