// Readers for the golden vectors in tests/data/golden (written by sortcam.tools.golden).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace golden {

// Absolute path of a file under tests/data/golden.
std::string Path(const std::string& relative);
// Non-comment lines of a golden text file, split on whitespace.
std::vector<std::vector<std::string>> Cases(const std::string& relative);
std::vector<uint8_t> ReadFile(const std::string& relative);
// "-" is the empty byte string.
std::vector<uint8_t> Hex(const std::string& text);
std::string HexText(const std::string& text);  // Hex() as a std::string
float F32(const std::string& bits_hex);        // big-endian IEEE bits to float
uint32_t U32(const std::string& text);
int Int(const std::string& text);

}  // namespace golden
