// Every served route is in api/openapi.yaml and every spec path is served.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "api/metrics/registry.h"
#include "api/routes/daemon_routes.h"
#include "api/server/builtin_routes.h"

namespace herd::api {
namespace {

// {"GET /healthz", ...} from the spec's `paths:` block: a path is a line
// "  /x:" and its operations are the lines "    get:" below it.
std::set<std::string> SpecOperations(const std::string& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in) << file;
  std::set<std::string> ops;
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (!in_paths) continue;
    if (!line.empty() && line[0] != ' ') break;  // next top-level key
    if (line.rfind("  /", 0) == 0 && line.back() == ':') {
      path = line.substr(2, line.size() - 3);
      continue;
    }
    for (const char* m : {"get", "post", "put", "patch", "delete"}) {
      if (line == std::string("    ") + m + ":") {
        std::string upper = m;
        for (auto& c : upper) c = static_cast<char>(std::toupper(c));
        ops.insert(upper + " " + path);
      }
    }
  }
  return ops;
}

TEST(OpenApi, SpecAndServedRoutesAgree) {
  metrics::Registry reg;
  Router r;
  ASSERT_TRUE(AddBuiltinRoutes(r, &reg).ok());
  // Registration only: no handler runs, so no daemon or store is needed.
  ASSERT_TRUE(AddDaemonRoutes(r, DaemonParts{}, &reg).ok());
  std::set<std::string> served;
  for (const auto& [m, p] : r.List()) served.insert(m + " " + p);
  std::set<std::string> spec = SpecOperations(std::string(HERD_SOURCE_DIR) + "/api/openapi.yaml");
  EXPECT_FALSE(spec.empty());
  EXPECT_EQ(served, spec);
}

}  // namespace
}  // namespace herd::api
