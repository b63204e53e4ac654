#include "poolscope/cache/sessions.h"

#include "poolscope/pool/pool.h"

namespace poolscope::cache {
namespace {

thread_local std::uint64_t t_avoided = 0;

}  // namespace

std::uint64_t sessions_avoided_on_this_thread() noexcept { return t_avoided; }

namespace detail {

void credit_sessions_avoided(std::uint64_t n) noexcept { t_avoided += n; }

std::uint64_t session_cost_clock() noexcept { return checkouts_on_this_thread() + t_avoided; }

}  // namespace detail
}  // namespace poolscope::cache
