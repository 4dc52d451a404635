#pragma once
// The records the daemon hands out (to api/routes), under daemon names.
// They are the store's plain structs (stores/records.h): the daemon
// persists them as they are, so an alias is the whole translation, and
// callers need not include anything of stores/.
#include "stores/records.h"
#include "stores/store.h"

namespace herd::daemon {

using stores::Message;
using stores::Run;
using stores::StageStatus;
using stores::Round;
using stores::Prompt;
using stores::Sample;
using stores::Annotation;
using stores::AnnotationRequest;
using stores::Pair;
using stores::Checkpoint;
using stores::Event;
using stores::IdempotencyRecord;

// AIP-158 paging (docs/store.md "Listings and page tokens"): page_size 0
// is the default size, page_token "" the first page.
using stores::PageRequest;
template <typename T>
using Page = stores::Page<T>;

}  // namespace herd::daemon
