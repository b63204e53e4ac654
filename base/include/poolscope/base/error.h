// poolscope::Error, the base of every exception poolscope throws at its API
// edge, and exception_text() for turning a caught exception into a line.
// Every message is safe to log: connection URLs appear only redacted.

#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace poolscope {

// Base of every poolscope error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The message of a caught exception, for a log line or an error list:
// what() of a std::exception, "unknown exception" for anything else.
inline std::string exception_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace poolscope
