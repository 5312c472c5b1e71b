// The bounded store of unsent classifications.
#include "sortcam/outbox.h"

#include <gtest/gtest.h>

#include <string>

namespace {

std::string Next(const sortcam::Outbox& box, int* slot) {
  const char* data = nullptr;
  size_t len = 0;
  *slot = box.NextPending(&data, &len);
  return *slot < 0 ? std::string() : std::string(data, len);
}

TEST(Outbox, KeepsOrderUntilAcked) {
  sortcam::Outbox box;
  EXPECT_TRUE(box.Push("a", 1));
  EXPECT_TRUE(box.Push("b", 1));
  int slot = -1;
  EXPECT_EQ(Next(box, &slot), "a");
  box.MarkInFlight(slot, 11);
  EXPECT_EQ(Next(box, &slot), "b");
  box.MarkInFlight(slot, 12);
  EXPECT_EQ(Next(box, &slot), "");
  EXPECT_TRUE(box.Acked(12));
  EXPECT_FALSE(box.Acked(12));
  EXPECT_EQ(box.size(), 1);
  box.RequeueInFlight();  // link dropped before the PUBACK of "a"
  EXPECT_EQ(Next(box, &slot), "a");
  EXPECT_FALSE(box.Acked(11));  // its old message id no longer counts
  EXPECT_EQ(box.dropped(), 0u);
}

TEST(Outbox, ExpiredMessageIsSentAgainInOrder) {
  sortcam::Outbox box;
  box.Push("a", 1);
  box.Push("b", 1);
  int slot = -1;
  Next(box, &slot);
  box.MarkInFlight(slot, 5);
  EXPECT_TRUE(box.Requeue(5));
  EXPECT_FALSE(box.Requeue(5));
  EXPECT_EQ(Next(box, &slot), "a");  // still the oldest
  EXPECT_EQ(box.pending(), 2);
}

TEST(Outbox, OverflowDropsOldestAndCounts) {
  sortcam::Outbox box;
  for (int i = 0; i < sortcam::Outbox::kSlots; ++i) EXPECT_TRUE(box.Push(std::to_string(i).c_str(), std::to_string(i).size()));
  EXPECT_FALSE(box.Push("new", 3));
  EXPECT_EQ(box.dropped(), 1u);
  EXPECT_EQ(box.size(), sortcam::Outbox::kSlots);
  int slot = -1;
  EXPECT_EQ(Next(box, &slot), "1");
  const std::string huge(sortcam::Outbox::kMaxPayload + 1, 'x');
  EXPECT_FALSE(box.Push(huge.data(), huge.size()));
  EXPECT_EQ(box.dropped(), 2u);
}

}  // namespace
