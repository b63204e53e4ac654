// Two call sites in two files named handler.cc in different folders, on the
// same line of functions of the same name (handlers.cc sets the names with
// #line), as two services' handlers often are.

#pragma once

#include "poolscope/base/source_location.h"
#include "poolscope/pool/pool.h"

namespace poolscope::tracing::handlers {

namespace api {
poolscope::source_location get();  // "/srv/app/src/api/handler.cc", line 12
Lease get(Pool& pool);             // the same site's acquire()
}  // namespace api

namespace admin {
poolscope::source_location get();  // "/srv/app/src/admin/handler.cc", line 12
Lease get(Pool& pool);
}  // namespace admin

}  // namespace poolscope::tracing::handlers
