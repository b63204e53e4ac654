// Text that goes into a log line: whatever a user, a compiler's #line or a
// database driver put into it, a log line stays one line.

#pragma once

#include <string>
#include <string_view>

namespace poolscope {

// text with every control character (below 0x20, and 0x7f) written as an
// escape: \n, \r, \t, and \xNN for the others. Everything else, UTF-8
// included, is kept as it is.
inline std::string log_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

}  // namespace poolscope
