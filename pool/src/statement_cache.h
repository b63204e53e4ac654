// StatementCache: a connection's prepared statements by SQL text, bounded,
// least recently used first out. Lives in the Connection and goes with it.
//
// Not thread-safe: it belongs to the thread that owns its connection's slot.

#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "poolscope/pool/prepared_statement.h"

namespace poolscope::detail {

// Pool-wide figures, shared by the caches of a pool's connections.
struct StatementCounters {
  std::atomic<std::uint64_t> prepared{0};  // statements prepared on a server
  std::atomic<std::uint64_t> hits{0};      // executions of a statement prepared before
  std::atomic<std::uint64_t> lost{0};      // statements the server forgot, prepared again
};

class StatementCache {
 public:
  // capacity 0: one-time statements only (nothing prepared on the server).
  void configure(std::size_t capacity, StatementCounters* counters) {
    capacity_ = capacity;
    counters_ = counters;
  }

  PreparedStatement& get(Connection& connection, std::string_view sql);

  StatementCounters* counters() const noexcept { return counters_; }
  void clear() { entries_.clear(), lru_.clear(); }

 private:
  // One-time statements hold nothing on the server; this many are kept.
  static constexpr std::size_t kOneTimeEntries = 64;

  struct Entry {
    std::unique_ptr<PreparedStatement> statement;
    std::list<std::string_view>::iterator lru;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::size_t capacity_ = 0;
  StatementCounters* counters_ = nullptr;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries_;
  std::list<std::string_view> lru_;  // most recently used first; views of entries_' keys
};

}  // namespace poolscope::detail
