#include "golden.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace golden {

std::string Path(const std::string& relative) { return std::string(SORTCAM_GOLDEN_DIR) + "/" + relative; }

std::vector<std::vector<std::string>> Cases(const std::string& relative) {
  std::ifstream in(Path(relative));
  if (!in) throw std::runtime_error("cannot open golden file " + Path(relative));
  std::vector<std::vector<std::string>> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    cases.emplace_back(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>());
  }
  return cases;
}

std::vector<uint8_t> ReadFile(const std::string& relative) {
  std::ifstream in(Path(relative), std::ios::binary);
  if (!in) throw std::runtime_error("cannot open golden file " + Path(relative));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> Hex(const std::string& text) {
  std::vector<uint8_t> out;
  if (text == "-") return out;
  if (text.size() % 2 != 0) throw std::runtime_error("odd hex string");
  for (size_t i = 0; i < text.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string HexText(const std::string& text) {
  const std::vector<uint8_t> bytes = Hex(text);
  return std::string(bytes.begin(), bytes.end());
}

float F32(const std::string& bits_hex) {
  const uint32_t bits = static_cast<uint32_t>(std::stoul(bits_hex, nullptr, 16));
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

uint32_t U32(const std::string& text) { return static_cast<uint32_t>(std::stoull(text)); }

int Int(const std::string& text) { return std::stoi(text); }

}  // namespace golden
