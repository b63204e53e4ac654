// CommitLog: the settings-write scenario's record of every save, shared by
// the worker processes of --processes (it lives in memory mapped before
// they are forked) or private to a single run, so that every read in every
// process can be checked against the saves of all of them, and the
// cross-process staleness window measured: for each save, from its start to
// the moment the last process first read its value (or a newer one).
//
// Each account is written by one process only ((account - 1) % processes),
// so its versions count up in commit order. A save's slot in a ring of
// kRing per account holds its start and commit times and, as processes see
// it, the latest first sighting and how many processes have seen it.
//
// Only lock-free atomics, no pointers: safe in MAP_SHARED memory across
// processes, and for any number of threads. Times are CLOCK_MONOTONIC
// nanoseconds (steady_clock), the same clock in every process of the host.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "database.h"

namespace poolscope::load {

class CommitLog {
 public:
  static constexpr std::size_t kRing = 1 << 16;  // saves kept per account

  // Now, in the log's clock.
  static std::int64_t now_ns() noexcept;

  // Before the save of version of account starts (versions 1, 2, ...).
  void begin(int account, std::uint64_t version, std::int64_t start_ns) noexcept;
  // Once that save has returned: reads starting later must see it.
  void committed(int account, std::uint64_t version) noexcept;

  // The newest version of account committed (0: none).
  std::uint64_t newest(int account) const noexcept;
  // The newest version of account whose save had returned at or before
  // at_ns (0: none, or older than the ring remembers): what a read starting
  // then must see.
  std::uint64_t version_at(int account, std::int64_t at_ns) const noexcept;

  // A process saw versions (from, to] of account for the first time at
  // seen_ns. Returns how long after each save began (ns), for the saves
  // still in the ring.
  std::vector<std::int64_t> saw(int account, std::uint64_t from, std::uint64_t to,
                                std::int64_t seen_ns) noexcept;

  // The windows (ms) of the saves that all `processes` have seen, and the
  // number of saves some process had not seen yet when the run ended.
  struct Windows {
    std::vector<double> ms;
    std::uint64_t unseen = 0;
  };
  Windows windows(int processes) const;

 private:
  struct Save {
    std::atomic<std::uint64_t> version{0};  // 0: empty; set last (release)
    std::atomic<std::int64_t> start_ns{0};
    std::atomic<std::int64_t> committed_ns{0};  // when its save returned; 0: not yet
    std::atomic<std::int64_t> last_seen_ns{0};  // the latest first sighting so far
    std::atomic<std::uint32_t> seen_by{0};      // processes that have seen it
  };
  struct Account {
    std::atomic<std::uint64_t> committed{0};
    Save ring[kRing];
  };
  Save* find(int account, std::uint64_t version) noexcept;
  const Save* find(int account, std::uint64_t version) const noexcept;

  Account accounts_[kAccounts + 1];
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "shared between processes, the atomics must not hide a lock");

}  // namespace poolscope::load
