// Capture with glibc's backtrace() (the unwinder, no symbols). Naming, in
// the order the binary allows: GCC's libbacktrace reads DWARF line tables
// in process (file:line); without them its symbol table reader, which also
// sees local functions (name+offset); without libbacktrace, dladdr(), which
// sees exported symbols only; and the object plus offset when nothing names
// the address.

#include "poolscope/tracing/stack_trace.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "poolscope/base/log_text.h"
#include "poolscope/base/site.h"

#if POOLSCOPE_HAVE_LIBBACKTRACE
#include <backtrace.h>
#endif

namespace poolscope::tracing {
namespace {

std::string demangle(const char* name) {
  if (name == nullptr) return {};
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && out != nullptr ? std::string(out.get()) : std::string(name);
}

std::string hex(std::uintptr_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%zx", static_cast<std::size_t>(value));
  return text;
}

// The last two components of a demangled name without its parameters,
// anonymous namespaces left out: "app::(anonymous namespace)::Settings::
// Load(int) const" -> "Settings::Load()". With no file to tell them apart,
// the class says more than the bare function name.
std::string symbol_name(std::string_view demangled) {
  constexpr std::string_view kAnonymous = "(anonymous namespace)";
  // The parameter list starts at the first '(' outside template arguments
  // that neither opens "(anonymous namespace)" nor follows "operator".
  std::size_t paren = std::string_view::npos;
  int angle = 0;
  for (std::size_t i = 0; i < demangled.size() && paren == std::string_view::npos; ++i) {
    const char c = demangled[i];
    if (c == '<') {
      ++angle;
    } else if (c == '>' && angle > 0) {
      --angle;
    } else if (c == '(' && angle == 0) {
      if (demangled.substr(i).starts_with(kAnonymous)) {
        i += kAnonymous.size() - 1;
      } else if (demangled.substr(0, i).ends_with("operator")) {
        ++i;  // "operator()"
      } else {
        paren = i;
      }
    }
  }
  const std::string_view name = demangled.substr(0, paren);
  // Split at "::" outside template arguments; a space there ends a return type.
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  angle = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<') {
      ++angle;
    } else if (c == '>' && angle > 0) {
      --angle;
    } else if (angle == 0 && c == ' ' && !name.substr(0, i).ends_with("operator") &&
               !name.substr(0, i).ends_with("(anonymous")) {
      begin = i + 1;
      parts.clear();
    } else if (angle == 0 && c == ':' && i + 1 < name.size() && name[i + 1] == ':') {
      parts.push_back(name.substr(begin, i - begin));
      begin = i + 2;
      ++i;
    }
  }
  parts.push_back(name.substr(begin));
  std::erase_if(parts, [&](std::string_view p) { return p.empty() || p == kAnonymous; });
  if (parts.empty()) return std::string(demangled);
  std::string out;
  for (std::size_t i = parts.size() >= 2 ? parts.size() - 2 : 0; i < parts.size(); ++i) {
    if (!out.empty()) out += "::";
    out += parts[i];
  }
  return out + "()";
}

#if POOLSCOPE_HAVE_LIBBACKTRACE
backtrace_state* state() {
  // One state per process, as libbacktrace requires; threaded = 1.
  static backtrace_state* s = backtrace_create_state(nullptr, 1, nullptr, nullptr);
  return s;
}

int on_frame(void* data, std::uintptr_t pc, const char* file, int line, const char* function) {
  // Without line tables libbacktrace still calls here, with the symbol's
  // name but no file: that frame is named from the symbol table below.
  if (file == nullptr) return 0;
  auto* frames = static_cast<std::vector<StackFrame>*>(data);
  StackFrame f;
  f.pc = pc + 1;
  f.file = file;
  f.function = demangle(function);
  f.line = line;
  frames->push_back(std::move(f));
  return 0;
}

void on_symbol(void* data, std::uintptr_t pc, const char* name, std::uintptr_t start,
               std::uintptr_t) {
  if (name == nullptr) return;
  auto* frame = static_cast<StackFrame*>(data);
  frame->function = demangle(name);
  frame->offset = pc + 1 - start;
}

void on_error(void*, const char*, int) {}
#endif

// A frame without line information: its symbol and object.
StackFrame name_from_symbols(std::uintptr_t pc) {
  StackFrame f;
  f.pc = pc;
#if POOLSCOPE_HAVE_LIBBACKTRACE
  // pc is a return address: pc - 1 lies inside the call instruction.
  if (state() != nullptr) backtrace_syminfo(state(), pc - 1, on_symbol, on_error, &f);
#endif
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(pc - 1), &info) != 0) {
    if (info.dli_fname != nullptr) f.object = info.dli_fname;
    f.object_offset = pc - reinterpret_cast<std::uintptr_t>(info.dli_fbase);
    if (f.function.empty() && info.dli_sname != nullptr) {
      f.function = demangle(info.dli_sname);
      f.offset = pc - reinterpret_cast<std::uintptr_t>(info.dli_saddr);
    }
  }
  return f;
}

// Frames of the pool and the tracer themselves, between capture and the
// site: their classes and private namespaces only (code of the caches, or of
// an application in a poolscope namespace, may be the site or its caller).
bool is_poolscope_frame(const StackFrame& f) {
  for (std::string_view prefix :
       {"poolscope::Pool::", "poolscope::Lease::", "poolscope::detail::",
        "poolscope::tracing::detail::", "poolscope::tracing::StackTrace::"}) {
    if (f.function.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

std::string StackFrame::format() const {
  if (has_line()) {
    std::string out = log_text(site_file_name(file));
    out += ':';
    out += function.empty() ? std::string("?()") : log_text(short_function_name(function));
    out += ':';
    out += std::to_string(line);
    return out;
  }
  if (!function.empty()) return log_text(symbol_name(function)) + "+" + hex(offset);
  if (!object.empty()) return log_text(short_file_name(object)) + "+" + hex(object_offset);
  return hex(pc);
}

// Not inlined, so __builtin_return_address(0) is the address in the caller
// where the trace starts; whatever lies below it (this function, a
// sanitizer's interceptor around backtrace()) is dropped.
[[gnu::noinline]] StackTrace StackTrace::capture() noexcept {
  void* const caller = __builtin_return_address(0);
  StackTrace trace;
  void* frames[kMaxFrames + 4];
  const int n = ::backtrace(frames, static_cast<int>(kMaxFrames + 4));
  int first = 0;
  while (first < n && frames[first] != caller) ++first;
  if (first == n) first = 1;  // not found: drop this function's own frame
  for (int i = first; i < n && trace.size_ < kMaxFrames; ++i) {
    trace.frames_[trace.size_++] = reinterpret_cast<std::uintptr_t>(frames[i]);
  }
  return trace;
}

StackTrace StackTrace::from_frames(std::span<const std::uintptr_t> frames) noexcept {
  StackTrace trace;
  trace.size_ = std::min(frames.size(), kMaxFrames);
  std::copy_n(frames.begin(), trace.size_, trace.frames_.begin());
  return trace;
}

std::vector<StackFrame> StackTrace::symbolize() const {
  std::vector<StackFrame> out;
  for (std::uintptr_t pc : frames()) {
    const std::size_t before = out.size();
#if POOLSCOPE_HAVE_LIBBACKTRACE
    // pc is a return address: pc - 1 lies inside the call instruction.
    if (state() != nullptr) backtrace_pcinfo(state(), pc - 1, on_frame, on_error, &out);
#endif
    if (out.size() == before) out.push_back(name_from_symbols(pc));
  }
  return out;
}

std::vector<StackFrame> StackTrace::callers_of(const poolscope::source_location& site,
                                               std::size_t depth) const {
  const std::vector<StackFrame> frames = symbolize();
  const std::string_view site_file = short_file_name(site.file_name());
  // The first frame outside poolscope: the site's own, unless it was inlined
  // or left by a tail call.
  std::size_t outside = 0;
  while (outside < frames.size() && is_poolscope_frame(frames[outside])) ++outside;
  std::size_t first = frames.size();
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].line == static_cast<int>(site.line()) &&
        short_file_name(frames[i].file) == site_file) {
      first = i + 1;
      break;
    }
  }
  if (first == frames.size() && outside < frames.size()) {
    const bool is_site = frames[outside].has_line()
                             ? short_file_name(frames[outside].file) == site_file
                             : short_function_name(frames[outside].function) ==
                                   short_function_name(site.function_name());
    first = is_site ? outside + 1 : outside;
  }
  std::vector<StackFrame> out;
  for (std::size_t i = first; i < frames.size() && out.size() < depth; ++i) {
    if (frames[i].function.starts_with("__libc_start") || frames[i].function == "_start") break;
    out.push_back(frames[i]);
  }
  return out;
}

}  // namespace poolscope::tracing
