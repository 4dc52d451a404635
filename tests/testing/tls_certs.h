#pragma once
// Certificates for TLS tests, made at run time with the openssl CLI (no key
// is ever committed): a self-signed server certificate, or a test CA and a
// server certificate it signed. EC P-256 keys, valid for two days.
// Tests call OpensslUnavailable() first and GTEST_SKIP with its reason.
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <utility>

#include "common/status.h"

namespace herd::testing {

// {exit status, stdout and stderr together} of a shell command.
inline std::pair<int, std::string> RunOpenssl(const std::string& args) {
  std::string out;
  FILE* p = popen(("openssl " + args + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// "" when the openssl CLI runs; else why not.
inline std::string OpensslUnavailable() {
  auto [rc, out] = RunOpenssl("version");
  if (rc == 0 && out.rfind("OpenSSL", 0) == 0) return "";
  return "the openssl CLI is not available (apt-get install openssl; deploy/install-deps.sh): " +
         out;
}

struct TlsFiles {
  std::string cert;  // PEM certificate (a chain: the server's first)
  std::string key;   // PEM private key, unencrypted
};

// A self-signed certificate for CN=cn holding subjectAltName `san`, written
// to DIR/NAME.pem and DIR/NAME.key.
inline Result<TlsFiles> MakeSelfSigned(const std::string& dir, const std::string& name,
                                       const std::string& san = "DNS:localhost,IP:127.0.0.1",
                                       const std::string& cn = "localhost") {
  TlsFiles f{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  auto [rc, out] = RunOpenssl(
      "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout '" +
      f.key + "' -out '" + f.cert + "' -subj '/CN=" + cn + "' -addext 'subjectAltName=" + san +
      "'");
  if (rc != 0) return Status::Internal("openssl req -x509 (" + name + "): " + out);
  return f;
}

struct TlsChain {
  TlsFiles ca;            // the test CA (self-signed)
  TlsFiles leaf;          // leaf.cert is the server's chain: its certificate, then the CA's
  std::string leaf_only;  // the server's certificate alone
};

// A CA "herd test CA" and a server certificate it signed (CA:FALSE,
// serverAuth, subjectAltName `san`), under DIR/NAME-*.
inline Result<TlsChain> MakeCaAndLeaf(const std::string& dir, const std::string& name,
                                      const std::string& san = "DNS:localhost,IP:127.0.0.1") {
  TlsChain c;
  HERD_ASSIGN_OR_RETURN(c.ca,
                        MakeSelfSigned(dir, name + "-ca", "DNS:herd-test-ca", "herd test CA"));
  const std::string base = dir + "/" + name + "-leaf";
  c.leaf = {base + "-chain.pem", base + ".key"};
  c.leaf_only = base + ".pem";
  auto [rc, out] =
      RunOpenssl("req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
                 c.leaf.key + "' -out '" + base + ".csr' -subj /CN=localhost");
  if (rc != 0) return Status::Internal("openssl req -new (" + name + "): " + out);
  FILE* ext = std::fopen((base + ".ext").c_str(), "w");
  if (!ext) return Status::IoError("cannot write " + base + ".ext");
  std::fprintf(ext, "subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
               san.c_str());
  std::fclose(ext);
  auto [rc2, out2] = RunOpenssl("x509 -req -in '" + base + ".csr' -CA '" + c.ca.cert +
                                "' -CAkey '" + c.ca.key + "' -CAcreateserial -days 2 -out '" +
                                c.leaf_only + "' -extfile '" + base + ".ext'");
  if (rc2 != 0) return Status::Internal("openssl x509 -req (" + name + "): " + out2);
  FILE* p =
      popen(("cat '" + c.leaf_only + "' '" + c.ca.cert + "' > '" + c.leaf.cert + "'").c_str(), "r");
  if (!p || pclose(p) != 0) return Status::IoError("cannot write " + c.leaf.cert);
  return c;
}

}  // namespace herd::testing
