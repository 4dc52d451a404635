#include "workers/train/examples.h"

#include <algorithm>

namespace herd::train {

Result<SftExample> SftExampleFromChat(const model::ChatFormatter& format,
                                      const std::vector<model::ChatMessage>& messages) {
  const bool has_assistant =
      std::any_of(messages.begin(), messages.end(),
                  [](const model::ChatMessage& m) { return m.role == model::Role::kAssistant; });
  if (!has_assistant) {
    return Status::InvalidArgument("messages: no assistant turn to train on");
  }
  HERD_ASSIGN_OR_RETURN(model::ChatTokens t, format.Format(messages));
  SftExample ex;
  ex.tokens = std::move(t.ids);
  ex.train = std::move(t.sft_target);
  return ex;
}

Result<PromptAndResponse> FormatResponse(const model::ChatFormatter& format,
                                         const std::vector<model::ChatMessage>& prompt_messages,
                                         std::string_view response_text) {
  if (prompt_messages.empty()) return Status::InvalidArgument("prompt: no messages");
  if (prompt_messages.back().role == model::Role::kAssistant) {
    return Status::InvalidArgument("prompt: must not end with an assistant turn");
  }
  model::ChatFormatOptions gen;
  gen.add_generation_prompt = true;
  HERD_ASSIGN_OR_RETURN(model::ChatTokens prompt, format.Format(prompt_messages, gen));
  std::vector<model::ChatMessage> full = prompt_messages;
  full.push_back({model::Role::kAssistant, std::string(response_text)});
  HERD_ASSIGN_OR_RETURN(model::ChatTokens whole, format.Format(full));
  // The conversation with the answer must extend the prompt token for token;
  // anything else would mean the formatter and this split disagree.
  if (whole.size() <= prompt.size() ||
      !std::equal(prompt.ids.begin(), prompt.ids.end(), whole.ids.begin())) {
    return Status::Internal("chat format: the answered conversation does not extend the prompt");
  }
  PromptAndResponse out;
  out.prompt = std::move(prompt.ids);
  const auto off = static_cast<std::ptrdiff_t>(out.prompt.size());
  // The response ends at its end-of-turn token (the answer's own, the first
  // one after the prompt).
  auto end = std::find(whole.ids.begin() + off, whole.ids.end(), format.end_of_turn());
  if (end == whole.ids.end()) return Status::Internal("chat format: the answer has no end-of-turn token");
  const auto len = end + 1 - whole.ids.begin();
  out.response.assign(whole.ids.begin() + off, whole.ids.begin() + len);
  out.response_formatting.assign(whole.is_formatting.begin() + off, whole.is_formatting.begin() + len);
  return out;
}

Result<DpoSample> DpoSampleFromChat(const model::ChatFormatter& format, const std::string& pair_id,
                                    const std::vector<model::ChatMessage>& prompt_messages,
                                    std::string_view chosen, std::string_view rejected) {
  auto c = FormatResponse(format, prompt_messages, chosen);
  if (!c.ok()) return c.status().WithContext("pair '" + pair_id + "'");
  auto r = FormatResponse(format, prompt_messages, rejected);
  if (!r.ok()) return r.status().WithContext("pair '" + pair_id + "'");
  DpoSample s;
  s.pair_id = pair_id;
  s.prompt = std::move(c->prompt);
  s.chosen = std::move(c->response);
  s.chosen_formatting = std::move(c->response_formatting);
  s.rejected = std::move(r->response);
  s.rejected_formatting = std::move(r->response_formatting);
  return s;
}

Result<RankedSample> RankedSampleFromChat(const model::ChatFormatter& format,
                                          const std::string& pair_id,
                                          const std::vector<model::ChatMessage>& prompt_messages,
                                          std::string_view chosen, std::string_view rejected,
                                          std::string_view edited, Strength strength) {
  RankedSample s;
  s.id = pair_id;
  s.strength = strength;
  std::vector<std::string_view> ranked;
  if (!edited.empty()) ranked.push_back(edited);
  ranked.push_back(chosen);
  ranked.push_back(rejected);
  for (auto text : ranked) {
    auto pr = FormatResponse(format, prompt_messages, text);
    if (!pr.ok()) return pr.status().WithContext("pair '" + pair_id + "'");
    if (s.prompt.empty()) s.prompt = std::move(pr->prompt);
    s.responses.push_back(std::move(pr->response));
  }
  return s;
}

}  // namespace herd::train
