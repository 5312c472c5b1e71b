// The reference sorter: scheduling, idempotency, refusals and events.
#include "sortcam/sorter.h"

#include <gtest/gtest.h>

#include <string>

namespace {

std::string Line(const std::string& body) {
  char out[96];
  const size_t n = sortcam::serial::Encode(body.c_str(), out, sizeof out);
  return std::string(out, n);
}

class SorterTest : public ::testing::Test {
 protected:
  std::string Send(const std::string& line, uint32_t now_ms = 0) {
    char out[96];
    const size_t n = sorter_.OnLine(line.data(), line.size(), now_ms, out, sizeof out);
    return std::string(out, n);
  }
  sortcam::Sorter sorter_{sortcam::SorterConfig{4, 200, "1.2.3"}};
};

TEST_F(SorterTest, SortIsAckedAndFiresAfterTheBeltDelay) {
  EXPECT_EQ(Send(Line("SORT 7 2 1000"), 5000), Line("ACK 7"));
  sortcam::GateAction actions[4];
  EXPECT_EQ(sorter_.Poll(5999, actions, 4), 0);
  ASSERT_EQ(sorter_.Poll(6000, actions, 4), 1);
  EXPECT_EQ(actions[0].gate, 2);
  EXPECT_TRUE(actions[0].open);
  EXPECT_EQ(sorter_.Poll(6199, actions, 4), 0);
  ASSERT_EQ(sorter_.Poll(6200, actions, 4), 1);
  EXPECT_FALSE(actions[0].open);
  EXPECT_EQ(sorter_.fired(), 1u);
}

TEST_F(SorterTest, RepeatedIdIsAckedButNotScheduledTwice) {
  EXPECT_EQ(Send(Line("SORT 9 1 0")), Line("ACK 9"));
  EXPECT_EQ(Send(Line("SORT 9 1 0")), Line("ACK 9"));
  EXPECT_EQ(sorter_.pending(), 1);
  EXPECT_EQ(sorter_.duplicates(), 1u);
}

TEST_F(SorterTest, ClockWrapIsHandled) {
  EXPECT_EQ(Send(Line("SORT 3 0 100"), 0xFFFFFFF0u), Line("ACK 3"));
  sortcam::GateAction actions[2];
  EXPECT_EQ(sorter_.Poll(0xFFFFFFFFu, actions, 2), 0);
  EXPECT_EQ(sorter_.Poll(0x54u, actions, 2), 1);
}

TEST_F(SorterTest, RefusalsNameTheReason) {
  EXPECT_EQ(Send(Line("SORT 5 4 0")), Line("NAK 5 gate"));       // only 4 gates here
  EXPECT_EQ(Send(Line("SORT 5 16 0")), Line("NAK 5 gate"));      // beyond the contract
  EXPECT_EQ(Send(Line("SORT 5 1 600001")), Line("NAK 5 delay"));
  EXPECT_EQ(Send(Line("SORT 5 1")), Line("NAK 5 syntax"));
  EXPECT_EQ(Send(Line("SORT x 1 0")), Line("NAK 0 syntax"));
  EXPECT_EQ(Send(Line("HELLO")), Line("NAK 0 syntax"));
  EXPECT_EQ(Send(Line("ACK 5")), Line("NAK 0 syntax"));
  EXPECT_EQ(Send("SORT 5 1 0*00\n"), Line("NAK 5 checksum"));
  EXPECT_EQ(Send("PING*00\n"), Line("NAK 0 checksum"));
  EXPECT_EQ(Send("garbage\n"), Line("NAK 0 syntax"));
  EXPECT_EQ(Send("\r\n"), "");
  EXPECT_EQ(sorter_.pending(), 0);
}

TEST_F(SorterTest, JamAndFullBinRefuseAndReport) {
  char out[96];
  ASSERT_GT(sorter_.SetJammed(true, out, sizeof out), 0u);
  EXPECT_EQ(std::string(out), Line("EVT JAM"));
  EXPECT_EQ(sorter_.SetJammed(true, out, sizeof out), 0u);  // no repeat while it lasts
  EXPECT_EQ(Send(Line("SORT 1 0 0")), Line("NAK 1 jam"));
  ASSERT_GT(sorter_.SetJammed(false, out, sizeof out), 0u);
  EXPECT_EQ(std::string(out), Line("EVT CLEARED"));
  ASSERT_GT(sorter_.SetBinFull(3, true, out, sizeof out), 0u);
  EXPECT_EQ(std::string(out), Line("EVT BIN_FULL 3"));
  EXPECT_EQ(Send(Line("SORT 2 3 0")), Line("NAK 2 full"));
  EXPECT_EQ(Send(Line("SORT 2 1 0")), Line("ACK 2"));  // a refused id may be retried
  ASSERT_GT(sorter_.Ready(out, sizeof out), 0u);
  EXPECT_EQ(std::string(out), Line("EVT READY"));
}

TEST_F(SorterTest, PingAnswersFirmwareAndGates) { EXPECT_EQ(Send(Line("PING")), Line("PONG 1.2.3 4")); }

TEST_F(SorterTest, FullQueueSaysBusy) {
  for (int i = 1; i <= sortcam::Sorter::kMaxPending; ++i) {
    EXPECT_EQ(Send(Line("SORT " + std::to_string(i) + " 0 60000")), Line("ACK " + std::to_string(i)));
  }
  EXPECT_EQ(Send(Line("SORT 999 0 60000")), Line("NAK 999 busy"));
}

TEST_F(SorterTest, TwoItemsForOneGateKeepItOpen) {
  Send(Line("SORT 1 1 100"), 0);
  Send(Line("SORT 2 1 150"), 0);
  sortcam::GateAction actions[4];
  ASSERT_EQ(sorter_.Poll(100, actions, 4), 1);
  EXPECT_EQ(sorter_.Poll(150, actions, 4), 0);  // already open: close time moves on
  EXPECT_EQ(sorter_.Poll(349, actions, 4), 0);
  ASSERT_EQ(sorter_.Poll(350, actions, 4), 1);
  EXPECT_FALSE(actions[0].open);
}

}  // namespace
