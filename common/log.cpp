#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace herd {

void InitLogging(const std::string& process_name, const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw std::invalid_argument("--log-level: unknown level '" + level +
                                "' (trace|debug|info|warn|error|off)");
  }
  auto logger = spdlog::stderr_color_mt(process_name);
  spdlog::set_default_logger(logger);
  // 2026-12-01T06:47:01.123Z info herdd: message
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(lvl);
}

}  // namespace herd
