#include "foreign_text.h"

namespace poolscope::tracing::foreign {

#line 7 "gen/evil\nname\t.cc"
Lease acquire(Pool& pool) { return pool.acquire(); }

}  // namespace poolscope::tracing::foreign
