// TEMPORARY until the bpe branch lands.
#include "workers/model/hf_tokenizer.h"

#include "workers/model/tokenizer.h"

namespace herd::model {

Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromJson(std::string_view, std::string_view source) {
  return Status::FailedPrecondition(std::string(source) + ": BPE tokenizer not yet built");
}
Result<std::shared_ptr<const Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  return FromJson("", path);
}
Result<std::string> Tokenizer::Decode(const std::vector<int32_t>& ids, bool skip_special) const {
  HERD_ASSIGN_OR_RETURN(std::string bytes, DecodeBytes(ids, skip_special));
  return SanitizeUtf8(bytes);
}

}  // namespace herd::model
