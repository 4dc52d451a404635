#pragma once
// Logging is spdlog. Every process calls InitLogging once at startup; then
// use spdlog::info/warn/error with one line per event, key=value fields:
//   spdlog::info("lease granted task={} worker={} attempt={}", t, w, a);
#include <string>

namespace herd {

// level: trace|debug|info|warn|error|off. Default: info.
// Throws std::invalid_argument on an unknown level (startup only).
void InitLogging(const std::string& process_name, const std::string& level = "info");

}  // namespace herd
