// The MQTT session (sortcam::MqttSession) against a fake client: topics and Last Will,
// command intake, in-flight limit, PUBACK and expiry, reconnect backoff, sample budget.
#include "sortcam/mqtt_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sortcam/backoff.h"

namespace {

using sortcam::MqttSession;

struct FakeClient : sortcam::MqttClient {
  struct Message {
    std::string topic, data;
    bool retain;
  };
  std::vector<Message> sent;
  int refuse_after = 1000;  // message ids the client hands out before its outbox is "full"
  int outbox_bytes = 0;
  std::vector<uint32_t> reconnects;
  uint32_t now = 0;
  int Enqueue(const char* topic, const char* data, size_t len, bool retain) override {
    if (static_cast<int>(sent.size()) >= refuse_after) return -1;
    sent.push_back({topic, std::string(data, len), retain});
    return static_cast<int>(sent.size());  // ids 1, 2, ...
  }
  int OutboxBytes() override { return outbox_bytes; }
  void Reconnect() override { reconnects.push_back(now); }
};

void Fill(sortcam::Outbox* outbox, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string payload = "{\"seq\":" + std::to_string(i) + "}";
    outbox->Push(payload.data(), payload.size());
  }
}

TEST(MqttSession, TopicsAndWill) {
  MqttSession s;
  ASSERT_TRUE(s.Configure("plant/line2", "cam1"));
  EXPECT_STREQ(s.classification_topic(), "plant/line2/cam1/classification");
  EXPECT_STREQ(s.status_topic(), "plant/line2/cam1/status");
  EXPECT_STREQ(s.cmd_topic(), "plant/line2/cam1/cmd");
  EXPECT_STREQ(s.sample_topic(), "plant/line2/cam1/sample");
  EXPECT_EQ(std::string(s.will(), s.will_len()), "{\"v\":1,\"device\":\"cam1\",\"state\":\"offline\"}");
  EXPECT_FALSE(MqttSession().Configure("a/#", "cam1"));
  EXPECT_FALSE(MqttSession().Configure("sortcam", "cam 1"));
}

TEST(MqttSession, OnlyWholeCommandsOnTheCmdTopic) {
  MqttSession s;
  ASSERT_TRUE(s.Configure("sortcam", "cam1"));
  const std::string topic = "sortcam/cam1/cmd", capture = R"({"cmd":"capture"})";
  sortcam::Command command;
  char error[96] = "";
  EXPECT_EQ(s.OnData("sortcam/cam1/cmdx", 17, capture.data(), capture.size(), 0, capture.size(), &command, error,
                     sizeof error),
            MqttSession::Received::kOtherTopic);
  EXPECT_EQ(s.OnData(topic.data(), topic.size() - 1, capture.data(), capture.size(), 0, capture.size(), &command,
                     error, sizeof error),
            MqttSession::Received::kOtherTopic);
  EXPECT_EQ(s.OnData(topic.data(), topic.size(), capture.data(), capture.size(), 0, capture.size(), &command, error,
                     sizeof error),
            MqttSession::Received::kCommand);
  EXPECT_EQ(command.kind, sortcam::CommandKind::kCapture);
  EXPECT_EQ(s.OnData(topic.data(), topic.size(), capture.data(), 8, 0, capture.size(), &command, error, sizeof error),
            MqttSession::Received::kRejected);
  EXPECT_STREQ(error, "17 bytes arrive in pieces (limit is the client buffer)");
  const std::string dup = R"({"cmd":"capture","cmd":"reboot"})";
  EXPECT_EQ(s.OnData(topic.data(), topic.size(), dup.data(), dup.size(), 0, dup.size(), &command, error, sizeof error),
            MqttSession::Received::kRejected);
  EXPECT_STREQ(error, "duplicate key 'cmd'");
}

TEST(MqttSession, AtMostFourInFlightReleasedByPuback) {
  MqttSession s;
  ASSERT_TRUE(s.Configure("sortcam", "cam1"));
  FakeClient client;
  sortcam::Outbox outbox;
  Fill(&outbox, 6);
  s.Pump(true, 0, &outbox, &client);
  ASSERT_EQ(client.sent.size(), 4u);
  EXPECT_EQ(client.sent[0].topic, "sortcam/cam1/classification");
  EXPECT_EQ(client.sent[0].data, "{\"seq\":0}");
  EXPECT_FALSE(client.sent[0].retain);
  EXPECT_EQ(s.in_flight(), 4);
  s.OnAcked(1, &outbox);
  s.OnAcked(99, &outbox);  // an unknown id (a sample's PUBACK) changes nothing
  EXPECT_EQ(s.in_flight(), 3);
  s.Pump(true, 0, &outbox, &client);
  EXPECT_EQ(client.sent.size(), 5u);
  s.OnExpired(2, &outbox);  // the client gave up on seq 1: it is sent again, before seq 5
  s.Pump(true, 0, &outbox, &client);
  ASSERT_EQ(client.sent.size(), 6u);
  EXPECT_EQ(client.sent[5].data, "{\"seq\":1}");
  s.OnAcked(3, &outbox);
  s.Pump(true, 0, &outbox, &client);
  ASSERT_EQ(client.sent.size(), 7u);
  EXPECT_EQ(client.sent[6].data, "{\"seq\":5}");
}

TEST(MqttSession, FullClientOutboxWaitsForTheNextPass) {
  MqttSession s;
  ASSERT_TRUE(s.Configure("sortcam", "cam1"));
  FakeClient client;
  client.refuse_after = 2;
  sortcam::Outbox outbox;
  Fill(&outbox, 3);
  s.Pump(true, 0, &outbox, &client);
  EXPECT_EQ(s.in_flight(), 2);
  EXPECT_EQ(outbox.pending(), 1);
}

TEST(MqttSession, ReconnectsWithBackoffWhileDisconnected) {
  MqttSession s;
  ASSERT_TRUE(s.Configure("sortcam", "cam1"));
  FakeClient client;
  sortcam::Outbox outbox;
  Fill(&outbox, 2);
  for (uint32_t t = 0; t <= 8000; t += 250) {
    client.now = 0xFFFFF000u + t;  // across the 32-bit wrap of the millisecond clock
    s.Pump(false, client.now, &outbox, &client);
  }
  ASSERT_EQ(client.reconnects.size(), 4u);  // at 0, 1 s, 3 s, 7 s
  EXPECT_EQ(client.reconnects[1] - client.reconnects[0], 1000u);
  EXPECT_EQ(client.reconnects[2] - client.reconnects[1], 2000u);
  EXPECT_EQ(client.reconnects[3] - client.reconnects[2], 4000u);
  EXPECT_TRUE(client.sent.empty());
  s.Pump(true, 9000, &outbox, &client);  // connected: the backoff starts over
  EXPECT_EQ(client.sent.size(), 2u);
  s.Pump(false, 9500, &outbox, &client);
  s.Pump(false, 10000, &outbox, &client);
  s.Pump(false, 10500, &outbox, &client);
  EXPECT_EQ(client.reconnects.size(), 6u);  // at once, then 1 s later
  EXPECT_EQ(s.in_flight(), 0);
}

TEST(MqttSession, StatusRetainedAndSamplesWithinTheBudget) {
  MqttSession s;
  ASSERT_TRUE(s.Configure("sortcam", "cam1"));
  FakeClient client;
  EXPECT_FALSE(s.PublishStatus(false, "{}", 2, &client));
  EXPECT_TRUE(s.PublishStatus(true, "{}", 2, &client));
  EXPECT_EQ(client.sent.back().topic, "sortcam/cam1/status");
  EXPECT_TRUE(client.sent.back().retain);
  const std::string sample(1000, 'x');
  EXPECT_FALSE(s.PublishSample(false, sample.data(), sample.size(), &client));
  client.outbox_bytes = MqttSession::kSampleOutboxBudget - 1000;
  EXPECT_TRUE(s.PublishSample(true, sample.data(), sample.size(), &client));
  EXPECT_EQ(client.sent.back().topic, "sortcam/cam1/sample");
  EXPECT_FALSE(client.sent.back().retain);
  client.outbox_bytes += 1;
  EXPECT_FALSE(s.PublishSample(true, sample.data(), sample.size(), &client));
}

TEST(Backoff, DoublesToSixtySecondsAndResets) {
  sortcam::Backoff b;
  const uint32_t expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (uint32_t e : expected) EXPECT_EQ(b.Next(), e);
  b.Reset();
  EXPECT_EQ(b.Next(), 1000u);
}

}  // namespace
