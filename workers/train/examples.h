#pragma once
// Objective examples from chat messages, through the checkpoint's chat
// format (workers/model/chat_format.h: ChatFormatter): the bridge from the datasets herdd
// materialises (docs/tasks.md: conversations and pairs JSONL) to the
// token-level inputs of row_packing.h.
//
// A response is the tokens the formatter appends after the prompt's
// generation header for an assistant message: its content, then the
// end-of-turn token (<|eot_id|>, <|im_end|>); what a format puts after the
// end of turn (ChatML's "\n") is not part of it, since generation stops
// there. Formatting flags come from the formatter, so DPO's mask and
// SFT's trained tokens are exactly the chat format's.
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "workers/model/chat_format.h"
#include "workers/train/reward.h"
#include "workers/train/row_packing.h"

namespace herd::train {

// A conversation ending in an assistant turn → SFT tokens with the chat
// format's sft_target mask (assistant content + its <|eot_id|>, for every
// assistant turn). No assistant turn: InvalidArgument.
Result<SftExample> SftExampleFromChat(const model::ChatFormatter& format,
                                      const std::vector<model::ChatMessage>& messages);

// The prompt tokens (BOS, the messages, the assistant generation header)
// and one assistant response's tokens with their formatting flags.
struct PromptAndResponse {
  std::vector<int32_t> prompt;
  std::vector<int32_t> response;
  std::vector<uint8_t> response_formatting;
};
// prompt_messages must be non-empty and must not end with an assistant turn.
Result<PromptAndResponse> FormatResponse(const model::ChatFormatter& format,
                                         const std::vector<model::ChatMessage>& prompt_messages,
                                         std::string_view response_text);

// A preference pair → a DPO sample (errors name the pair id).
Result<DpoSample> DpoSampleFromChat(const model::ChatFormatter& format, const std::string& pair_id,
                                    const std::vector<model::ChatMessage>& prompt_messages,
                                    std::string_view chosen, std::string_view rejected);

// A preference pair → a ranked RM sample: edited (when given and not
// empty) > chosen > rejected, all sharing the formatted prompt.
Result<RankedSample> RankedSampleFromChat(const model::ChatFormatter& format,
                                          const std::string& pair_id,
                                          const std::vector<model::ChatMessage>& prompt_messages,
                                          std::string_view chosen, std::string_view rejected,
                                          std::string_view edited, Strength strength);

}  // namespace herd::train
