#pragma once
// Files that appear whole or not at all. WriteFileAtomic writes to a hidden
// temporary sibling (same directory, so the same filesystem), fsyncs it,
// renames it over the target and fsyncs the directory: after it returns OK
// the new contents survive a crash, and a reader at any moment sees either
// the old file or the whole new one, never a prefix.
#include <string>
#include <string_view>

#include "common/status.h"

namespace herd {

// Replaces (or creates) path with contents. The parent directory must exist.
// On error nothing is left behind at path or beside it; the message names
// the path and the step that failed (IoError).
Status WriteFileAtomic(const std::string& path, std::string_view contents);

// fsyncs the directory itself, so renames and creations inside it are
// durable. IoError naming dir on failure.
Status SyncDirectory(const std::string& dir);

}  // namespace herd
