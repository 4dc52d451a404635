#include "workers/train/examples.h"

#include <gtest/gtest.h>

#include "workers/model/tokenizer.h"

namespace herd::train {
namespace {

using model::ChatMessage;
using model::Role;

const model::ChatFormatter& Bytes() { return model::ChatFormatter::Bytes(); }

TEST(Examples, SftTrainsOnAssistantContentAndEot) {
  auto ex = SftExampleFromChat(Bytes(), {{Role::kUser, "hi"}, {Role::kAssistant, "yo"}});
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  ASSERT_EQ(ex->tokens.size(), ex->train.size());
  // The last three tokens are 'y', 'o', <|eot_id|>: the only trained ones.
  const size_t n = ex->tokens.size();
  EXPECT_EQ(ex->tokens[n - 3], 'y');
  EXPECT_EQ(ex->tokens[n - 1], model::kEotId);
  int trained = 0;
  for (auto t : ex->train) trained += t;
  EXPECT_EQ(trained, 3);
  EXPECT_EQ(ex->train[n - 3] + ex->train[n - 2] + ex->train[n - 1], 3);
  EXPECT_FALSE(SftExampleFromChat(Bytes(), {{Role::kUser, "hi"}}).ok());
}

TEST(Examples, DpoSampleSplitsAtTheGenerationHeader) {
  auto s = DpoSampleFromChat(Bytes(), "p9", {{Role::kUser, "2+2?"}}, "4", "five");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // The prompt ends with <|start_header_id|>assistant<|end_header_id|>\n\n.
  ASSERT_GE(s->prompt.size(), 4u);
  EXPECT_EQ(s->prompt.front(), model::kBeginOfText);
  EXPECT_EQ(s->prompt[s->prompt.size() - 3], model::kEndHeaderId);
  EXPECT_EQ(s->chosen, (std::vector<int32_t>{'4', model::kEotId}));
  EXPECT_EQ(s->chosen_formatting, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(s->rejected.size(), 5u);
  EXPECT_EQ(s->rejected_formatting, (std::vector<uint8_t>{0, 0, 0, 0, 1}));
  auto bad = DpoSampleFromChat(Bytes(), "p10", {{Role::kUser, "x"}, {Role::kAssistant, "y"}}, "a", "b");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'p10'"), std::string::npos);
}

TEST(Examples, RankedSampleOrdersEditedChosenRejected) {
  auto s =
      RankedSampleFromChat(Bytes(), "r1", {{Role::kUser, "q"}}, "good", "bad", "best", Strength::kBetter);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->responses.size(), 3u);
  EXPECT_EQ(s->responses[0].front(), 'b');  // "best"
  EXPECT_EQ(s->responses[1].front(), 'g');
  EXPECT_EQ(s->responses[2].size(), 4u);  // "bad" + <|eot_id|>
  auto two = RankedSampleFromChat(Bytes(), "r2", {{Role::kUser, "q"}}, "good", "bad", "", Strength::kBetter);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->responses.size(), 2u);
}

}  // namespace
}  // namespace herd::train
