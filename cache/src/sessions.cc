#include "poolscope/cache/sessions.h"

#include "poolscope/pool/pool.h"

namespace poolscope::cache {

std::uint64_t sessions_avoided_on_this_thread() noexcept { return detail::t_sessions_avoided; }

namespace detail {

std::uint64_t session_cost_clock() noexcept {
  return checkouts_on_this_thread() + t_sessions_avoided;
}

}  // namespace detail
}  // namespace poolscope::cache
