# FindHiredis
# -----------
# Finds hiredis (Debian: libhiredis-dev 0.14), the Redis client under
# poolscope::cache_redis. Also installed with the package, so a consumer's
# find_package(poolscope COMPONENTS cache_redis) finds it the same way.
#
#   find_package(Hiredis)
#
# Imported target: Hiredis::hiredis (the shared library and the directory
# that holds hiredis/hiredis.h).
# Result variables: Hiredis_FOUND, Hiredis_LIBRARY, Hiredis_INCLUDE_DIR.

include(FindPackageHandleStandardArgs)

find_path(Hiredis_INCLUDE_DIR NAMES hiredis/hiredis.h)
find_library(Hiredis_LIBRARY NAMES hiredis)

find_package_handle_standard_args(Hiredis REQUIRED_VARS Hiredis_LIBRARY Hiredis_INCLUDE_DIR)

if(Hiredis_FOUND AND NOT TARGET Hiredis::hiredis)
  add_library(Hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(Hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${Hiredis_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Hiredis_INCLUDE_DIR}")
endif()
mark_as_advanced(Hiredis_INCLUDE_DIR Hiredis_LIBRARY)
