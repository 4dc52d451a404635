#pragma once
// A small synchronous HTTP/1.1 client for herdd's API (used by herd-worker
// and herdctl): one keep-alive connection, reopened when the server closed
// it; per-operation timeouts; bearer token; http:// or https://. Beast and
// OpenSSL stay in client.cpp. Not thread-safe: one client per thread.
//
// https: TLS 1.2 or newer; the server's chain must lead to a certificate in
// ca_file (any certificate there is trusted as an anchor, so the file may
// hold just the server's own certificate) or, with no ca_file, to one of
// the system's CAs; and its subjectAltName must hold the URL's host (DNS
// name, or IP address for an IP host). SNI is sent for DNS names.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/wire/http.h"
#include "common/status.h"

namespace herd::api {

struct ClientOptions {
  // "http://127.0.0.1:8080" or "https://herd.example.com" (port 80 / 443
  // when none is given). No default.
  std::string base_url;
  // Sent as "Authorization: Bearer <token>" when non-empty. Default: "".
  std::string token;
  // Deadline of connecting, of writing a request, and of reading a
  // response (each). Default: 30 s.
  std::chrono::milliseconds timeout{30000};
  // Max response body bytes. Default: 256 MiB.
  uint64_t body_limit = 256ull << 20;
  // https only: PEM file of the certificates to trust (a CA, or the
  // server's own self-signed certificate). Default: "" (the system's
  // default CA paths). Ignored for http.
  std::string ca_file;
};

class HttpClient {
 public:
  // InvalidArgument when base_url is not "http[s]://host[:port]", or (https)
  // when ca_file cannot be read or holds no certificate. Connects lazily.
  static Result<std::unique_ptr<HttpClient>> Create(ClientOptions options);
  ~HttpClient();

  // Any status the server answers is a Response (check .status); a Status
  // error means no answer (connect refused, timeout, reset, a failed TLS
  // handshake: "TLS handshake with host:port: certificate verify failed:
  // ..."). A request whose
  // write fails on a kept-alive connection the server had closed is retried
  // once on a new connection; after a failed read only idempotent methods
  // (GET, HEAD, PUT, DELETE, OPTIONS) are.
  Result<Response> Request(std::string_view method, std::string_view target,
                           std::string_view body = {}, const Headers& headers = {});

  // Streams a file as the request body (Content-Length = file size) in
  // 256 KiB chunks without reading it whole; progress(bytes_sent, total) is
  // called after each chunk.
  using Progress = std::function<void(uint64_t sent, uint64_t total)>;
  Result<Response> UploadFile(std::string_view method, std::string_view target,
                              const std::string& path, std::string_view content_type,
                              const Progress& progress = {}, const Headers& headers = {});

  // GET target and hands a 2xx body to sink piece by piece as it arrives
  // (no body_limit: nothing is held), for exports. Any other status is
  // returned with its body (a problem) read whole. A body cut short (the
  // server failed mid-stream) is an error, after sink saw its start; an
  // error from sink stops the download and is returned.
  using Sink = std::function<Status(std::string_view piece)>;
  Result<Response> Download(std::string_view target, const Sink& sink, const Headers& headers = {});

  // Connections opened so far (tests check keep-alive reuse with it).
  uint64_t connections_opened() const;
  void Close();

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "http://h:p/x" → host "h", port "p" (default 80); "https://h/x" → port
// 443 and *https = true (when https is not null); "[::1]" → host "::1".
// InvalidArgument otherwise.
Status ParseBaseUrl(std::string_view url, std::string* host, std::string* port,
                    bool* https = nullptr);

}  // namespace herd::api
