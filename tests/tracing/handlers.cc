#include "handlers.h"

namespace poolscope::tracing::handlers {

namespace api {
#line 12 "/srv/app/src/api/handler.cc"
poolscope::source_location get() { return poolscope::source_location::current(); }
#line 12 "/srv/app/src/api/handler.cc"
Lease get(Pool& pool) { return pool.acquire(); }
}  // namespace api

namespace admin {
#line 12 "/srv/app/src/admin/handler.cc"
poolscope::source_location get() { return poolscope::source_location::current(); }
#line 12 "/srv/app/src/admin/handler.cc"
Lease get(Pool& pool) { return pool.acquire(); }
}  // namespace admin

}  // namespace poolscope::tracing::handlers
