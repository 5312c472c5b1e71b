// Stored settings made usable (sortcam::RepairConfig), as LoadConfig applies it at boot.
#include "sortcam/device_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

namespace {

const uint8_t kMac[6] = {0x24, 0x6f, 0x28, 0xab, 0x0c, 0x9e};

sortcam::DeviceConfig Stored() {
  sortcam::DeviceConfig c;
  std::snprintf(c.device_id, sizeof c.device_id, "cam1");
  return c;
}

TEST(RepairConfig, GoodSettingsStayAsTheyAre) {
  sortcam::DeviceConfig c = Stored();
  c.decision.threshold = 0.7f;
  c.interval_ms = 60000;
  const sortcam::ConfigRepairs r = sortcam::RepairConfig("gpio", kMac, &c);
  EXPECT_FALSE(r.trigger || r.decision || r.interval || r.device_id);
  EXPECT_EQ(c.decision.trigger, sortcam::Trigger::kGpio);
  EXPECT_FLOAT_EQ(c.decision.threshold, 0.7f);
  EXPECT_STREQ(c.device_id, "cam1");
}

TEST(RepairConfig, EachBadSettingFallsBackAndIsReported) {
  sortcam::DeviceConfig c = Stored();
  c.decision.stable_frames = 0;
  c.decision.threshold = 0.7f;
  c.interval_ms = 60001;
  c.device_id[0] = '\0';
  const sortcam::ConfigRepairs r = sortcam::RepairConfig("laser", kMac, &c);
  EXPECT_TRUE(r.trigger && r.decision && r.interval && r.device_id);
  EXPECT_EQ(c.decision.trigger, sortcam::Trigger::kContinuous);
  EXPECT_EQ(c.decision.stable_frames, sortcam::DecisionConfig{}.stable_frames);
  EXPECT_FLOAT_EQ(c.decision.threshold, sortcam::DecisionConfig{}.threshold);
  EXPECT_EQ(c.interval_ms, 0u);
  EXPECT_STREQ(c.device_id, "cam-ab0c9e");

  sortcam::DeviceConfig d = Stored();
  d.decision.max_frames = 300;
  std::snprintf(d.device_id, sizeof d.device_id, "cam 1");
  const sortcam::ConfigRepairs s = sortcam::RepairConfig("command", kMac, &d);
  EXPECT_TRUE(s.decision && s.device_id && !s.trigger);
  EXPECT_EQ(d.decision.trigger, sortcam::Trigger::kCommand);  // a valid stored trigger survives
  EXPECT_STREQ(d.device_id, "cam-ab0c9e");
}

// NVS in a map; every key must fit NVS's 15 characters.
struct MapStore : sortcam::SettingsStore {
  std::map<std::string, std::string> strings;
  std::map<std::string, uint32_t> u32;
  bool commits_ok = true;
  int commits = 0;
  static void CheckKey(const char* key) { EXPECT_LE(std::strlen(key), 15u) << key; }
  bool GetString(const char* key, char* out, size_t size) override {
    CheckKey(key);
    auto it = strings.find(key);
    if (it == strings.end()) return false;
    std::snprintf(out, size, "%s", it->second.c_str());
    return true;
  }
  bool GetU32(const char* key, uint32_t* value) override {
    CheckKey(key);
    auto it = u32.find(key);
    if (it == u32.end()) return false;
    *value = it->second;
    return true;
  }
  bool SetString(const char* key, const char* value) override {
    CheckKey(key);
    strings[key] = value;
    return true;
  }
  bool SetU32(const char* key, uint32_t value) override {
    CheckKey(key);
    u32[key] = value;
    return true;
  }
  bool Commit() override {
    ++commits;
    return commits_ok;
  }
};

sortcam::CompiledDefaults Defaults() {
  sortcam::CompiledDefaults d;
  d.wifi_ssid = "plant";
  d.mqtt_uri = "mqtt://10.0.0.2:1883";
  d.topic_root = "sortcam";
  d.trigger = "gpio";
  d.trigger_gpio = 13;
  return d;
}

TEST(LoadDeviceConfig, FirstBootTakesTheCompiledDefaults) {
  MapStore empty;
  sortcam::DeviceConfig c;
  const sortcam::ConfigRepairs r = sortcam::LoadDeviceConfig(&empty, Defaults(), kMac, &c);
  EXPECT_STREQ(c.wifi_ssid, "plant");
  EXPECT_STREQ(c.mqtt_uri, "mqtt://10.0.0.2:1883");
  EXPECT_STREQ(c.topic_root, "sortcam");
  EXPECT_EQ(c.decision.trigger, sortcam::Trigger::kGpio);
  EXPECT_FLOAT_EQ(c.decision.threshold, 0.6f);
  EXPECT_EQ(c.trigger_gpio, 13);
  EXPECT_TRUE(r.device_id);  // none compiled in: from the MAC
  EXPECT_STREQ(c.device_id, "cam-ab0c9e");
}

TEST(LoadDeviceConfig, StoredSettingsWinAndASetCommandRoundTrips) {
  MapStore nvs;
  nvs.strings["wifi_ssid"] = "office";
  nvs.strings["device_id"] = "cam7";
  nvs.u32["trigger_gpio"] = 0xFFFFFFFFu;  // -1: no beam-break pin
  sortcam::DeviceConfig c;
  sortcam::LoadDeviceConfig(&nvs, Defaults(), kMac, &c);
  EXPECT_STREQ(c.wifi_ssid, "office");
  EXPECT_STREQ(c.device_id, "cam7");
  EXPECT_EQ(c.trigger_gpio, -1);

  c.decision.threshold = 0.85f;
  c.decision.trigger = sortcam::Trigger::kCommand;
  c.interval_ms = 250;
  ASSERT_TRUE(sortcam::SaveDecisionSettings(c, &nvs));
  EXPECT_EQ(nvs.commits, 1);
  sortcam::DeviceConfig again;
  const sortcam::ConfigRepairs r = sortcam::LoadDeviceConfig(&nvs, Defaults(), kMac, &again);
  EXPECT_FALSE(r.trigger || r.decision || r.interval || r.device_id);
  EXPECT_EQ(again.decision.threshold, 0.85f);  // the float's bits, exactly
  EXPECT_EQ(again.decision.trigger, sortcam::Trigger::kCommand);
  EXPECT_EQ(again.interval_ms, 250u);
  nvs.commits_ok = false;
  EXPECT_FALSE(sortcam::SaveDecisionSettings(c, &nvs));
}

TEST(LoadDeviceConfig, ReportsWhatItRepaired) {
  MapStore nvs;
  nvs.strings["trigger"] = "laser";
  nvs.u32["stable"] = 0;
  nvs.u32["interval_ms"] = 70000;
  sortcam::DeviceConfig c;
  const sortcam::ConfigRepairs r = sortcam::LoadDeviceConfig(&nvs, Defaults(), kMac, &c);
  EXPECT_TRUE(r.trigger && r.decision && r.interval);
  EXPECT_STREQ(r.trigger_name, "laser");
  EXPECT_EQ(c.decision.stable_frames, 3);
  EXPECT_EQ(c.interval_ms, 0u);
  EXPECT_FALSE(r.collect_size);
}

TEST(LoadDeviceConfig, CollectSizeFromNvsOrTheDefault) {
  MapStore empty;
  sortcam::DeviceConfig c;
  EXPECT_FALSE(sortcam::LoadDeviceConfig(&empty, Defaults(), kMac, &c).collect_size);
  EXPECT_EQ(c.collect_size, sortcam::CollectSize::kSvga);
  MapStore nvs;
  nvs.strings["collect_size"] = "uxga";
  EXPECT_FALSE(sortcam::LoadDeviceConfig(&nvs, Defaults(), kMac, &c).collect_size);
  EXPECT_EQ(c.collect_size, sortcam::CollectSize::kUxga);
  for (const char* bad : {"UXGA", "qxga", "", "uxga "}) {  // qxga (2048 px) is over the 1,600 px limit
    nvs.strings["collect_size"] = bad;
    EXPECT_TRUE(sortcam::LoadDeviceConfig(&nvs, Defaults(), kMac, &c).collect_size) << bad;
    EXPECT_EQ(c.collect_size, sortcam::kDefaultCollectSize);
  }
  sortcam::DeviceConfig d = Stored();
  d.collect_size = sortcam::CollectSize::kHd;
  EXPECT_FALSE(sortcam::RepairConfig("gpio", kMac, &d).collect_size);  // no stored name: kept
  EXPECT_EQ(d.collect_size, sortcam::CollectSize::kHd);
}

}  // namespace
