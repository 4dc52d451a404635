#include "workers/train/objective.h"

#include <cstring>

namespace herd::train {

void Metrics::Set(const char* name, double v) {
  for (int k = 0; k < count; ++k) {
    if (std::strcmp(entries[k].name, name) == 0) {
      entries[k].value = v;
      return;
    }
  }
  if (count < static_cast<int>(entries.size())) entries[count++] = {name, v};
}

double Metrics::Get(const char* name, double fallback) const {
  for (int k = 0; k < count; ++k) {
    if (std::strcmp(entries[k].name, name) == 0) return entries[k].value;
  }
  return fallback;
}

}  // namespace herd::train
