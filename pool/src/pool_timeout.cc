// PoolCore::timeout_message(): what a PoolTimeout says, read like
// SQLAlchemy's and HikariCP's: the pool's size and overflow, the wait, the
// counts, the sites holding the most leases, a connect still under way, and
// the one case a person cannot guess: the waiting thread holds the leases
// it waits for.

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>
#include <vector>

#include "clock.h"
#include "pool_core.h"
#include "poolscope/base/duration_text.h"
#include "poolscope/base/site.h"

namespace poolscope::detail {

using std::chrono::nanoseconds;

std::uint64_t current_os_thread_id() noexcept;

namespace {

struct Holder {
  std::size_t leases = 0;
  nanoseconds longest{0};
};

// Sites by leases held, most first (then by the longest hold).
std::vector<std::pair<std::string, Holder>> top_holders(const std::vector<LeaseInfo>& leases) {
  std::map<std::string, Holder> holders;
  for (const LeaseInfo& lease : leases) {
    Holder& h = holders[format_site(lease.site)];
    ++h.leases;
    h.longest = std::max(h.longest, lease.held);
  }
  std::vector<std::pair<std::string, Holder>> top(holders.begin(), holders.end());
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
    return a.second.leases != b.second.leases ? a.second.leases > b.second.leases
                                              : a.second.longest > b.second.longest;
  });
  return top;
}

}  // namespace

std::string PoolCore::timeout_message(nanoseconds waited, std::size_t waiting) const {
  const PoolStats s = stats();
  const std::vector<LeaseInfo> leases = active_leases();
  std::ostringstream out;
  out << "QueuePool limit of size " << config_.pool_size << " overflow " << config_.max_overflow
      << " reached: pool '" << config_.name << "' (" << url_.redacted()
      << ") gave no connection within " << std::fixed << std::setprecision(3)
      << std::chrono::duration<double>(waited).count() << " s (total=" << s.open
      << ", active=" << s.active << ", idle=" << s.idle << ", waiting=" << waiting << ")";
  {
    MutexLock lock(mu_);
    if (connecting_ > 0) {
      out << "; " << connecting_ << (connecting_ == 1 ? " connection" : " connections")
          << " still opening, the oldest for "
          << duration_text(nanoseconds(steady_ns() - connecting_since_ns_)) << " (connect_timeout "
          << duration_text(nanoseconds(config_.connect_timeout)) << ")";
    }
  }
  const auto top = top_holders(leases);
  if (!top.empty()) {
    out << "; leases held by ";
    for (std::size_t i = 0; i < top.size() && i < 3; ++i) {
      out << (i == 0 ? "" : ", ") << top[i].first << " (" << top[i].second.leases
          << (top[i].second.leases == 1 ? " lease" : " leases") << ", longest "
          << std::setprecision(1) << std::chrono::duration<double>(top[i].second.longest).count()
          << " s)";
    }
  }
  const std::uint64_t me = current_os_thread_id();
  const auto mine = std::count_if(leases.begin(), leases.end(),
                                  [me](const LeaseInfo& l) { return l.thread == me; });
  if (mine > 0 && s.open >= s.max_connections) {
    out << ". The waiting thread itself holds " << mine << " of those leases: it waits for a "
        << "connection that only it can give back (acquire_new() while holding a lease). Use "
           "acquire() to share the thread's connection, release the first lease before, or size "
           "the pool for two connections per thread";
    return out.str();
  }
  out << ". Hold leases for shorter spans (and release leaked ones), or raise pool_size or "
         "max_overflow";
  return out.str();
}

}  // namespace poolscope::detail
