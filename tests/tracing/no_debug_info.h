// Functions compiled without debug information (no_debug_info.cc is built
// with -g0 in every build type), so a test can see frames named from the
// symbol table whatever the build.

#pragma once

#include "poolscope/pool/pool.h"
#include "poolscope/tracing/stack_trace.h"

namespace poolscope::tracing::nodebug {

// The calling thread's stack, captured here.
StackTrace capture();

// inner(pool), called from here.
Lease call(Pool& pool, Lease (*inner)(Pool&));

}  // namespace poolscope::tracing::nodebug
