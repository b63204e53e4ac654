// A call site whose file name, set by #line, holds a newline and a tab
// (foreign_text.cc), as generated code can have.

#pragma once

#include "poolscope/pool/pool.h"

namespace poolscope::tracing::foreign {

// pool.acquire(), from "gen/evil\nname\t.cc", line 7.
Lease acquire(Pool& pool);

}  // namespace poolscope::tracing::foreign
