# FindGccBacktrace
# ----------------
# Finds GCC's libbacktrace (libgcc-<N>-dev, which g++ depends on), which reads
# DWARF line tables in process. It lives in the compiler's private library
# directory, so it is looked up through the compiler in use, when a project
# is configured (for an installed poolscope: when the consumer's
# find_package(poolscope) runs), never recorded as an absolute path.
#
#   find_package(GccBacktrace)
#
# Imported target: GccBacktrace::GccBacktrace (a static library with its
# backtrace.h include directory).
# Result variables: GccBacktrace_FOUND, GccBacktrace_LIBRARY,
# GccBacktrace_INCLUDE_DIR.

include(FindPackageHandleStandardArgs)

if(NOT GccBacktrace_LIBRARY)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libbacktrace.a
    OUTPUT_VARIABLE _gcc_backtrace OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  # A compiler that does not know the file prints the bare name back.
  if(IS_ABSOLUTE "${_gcc_backtrace}" AND EXISTS "${_gcc_backtrace}")
    get_filename_component(_gcc_backtrace "${_gcc_backtrace}" REALPATH)
    set(GccBacktrace_LIBRARY "${_gcc_backtrace}" CACHE FILEPATH "GCC's libbacktrace.a")
  endif()
  unset(_gcc_backtrace)
endif()
if(GccBacktrace_LIBRARY AND NOT GccBacktrace_INCLUDE_DIR)
  get_filename_component(_gcc_backtrace_dir "${GccBacktrace_LIBRARY}" DIRECTORY)
  find_path(GccBacktrace_INCLUDE_DIR NAMES backtrace.h PATHS "${_gcc_backtrace_dir}/include"
            NO_DEFAULT_PATH)
  unset(_gcc_backtrace_dir)
endif()

find_package_handle_standard_args(GccBacktrace
  REQUIRED_VARS GccBacktrace_LIBRARY GccBacktrace_INCLUDE_DIR)

if(GccBacktrace_FOUND AND NOT TARGET GccBacktrace::GccBacktrace)
  add_library(GccBacktrace::GccBacktrace STATIC IMPORTED)
  set_target_properties(GccBacktrace::GccBacktrace PROPERTIES
    IMPORTED_LOCATION "${GccBacktrace_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${GccBacktrace_INCLUDE_DIR}")
endif()

mark_as_advanced(GccBacktrace_LIBRARY GccBacktrace_INCLUDE_DIR)
