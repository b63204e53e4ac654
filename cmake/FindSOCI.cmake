# FindSOCI
# --------
# Finds SOCI (https://soci.sourceforge.net), which Debian's libsoci-dev ships
# without a CMake package configuration.
#
#   find_package(SOCI REQUIRED COMPONENTS sqlite3 postgresql)
#
# Imported targets:
#   SOCI::core        the core library (soci_core) with its header dependencies
#   SOCI::sqlite3     the SQLite 3 backend (links SQLite::SQLite3)
#   SOCI::postgresql  the PostgreSQL backend (links PostgreSQL::PostgreSQL,
#                     whose headers Debian puts in a postgresql/ subfolder)
#
# Result variables: SOCI_FOUND, SOCI_INCLUDE_DIR, SOCI_VERSION,
# SOCI_<component>_FOUND.

include(FindPackageHandleStandardArgs)
include(CMakeFindDependencyMacro)

find_path(SOCI_INCLUDE_DIR NAMES soci/soci.h)
find_library(SOCI_CORE_LIBRARY NAMES soci_core)

if(SOCI_INCLUDE_DIR AND EXISTS "${SOCI_INCLUDE_DIR}/soci/version.h")
  file(STRINGS "${SOCI_INCLUDE_DIR}/soci/version.h" _soci_version_line
       REGEX "^#define SOCI_VERSION [0-9]+")
  string(REGEX REPLACE "^#define SOCI_VERSION ([0-9]+).*" "\\1" _soci_v "${_soci_version_line}")
  if(_soci_v)
    math(EXPR _major "${_soci_v} / 100000")
    math(EXPR _minor "${_soci_v} / 100 % 1000")
    math(EXPR _patch "${_soci_v} % 100")
    set(SOCI_VERSION "${_major}.${_minor}.${_patch}")
  endif()
endif()

# SOCI's public headers include Boost when SOCI was built with it (Debian's is).
find_dependency(Boost)
find_dependency(Threads)

foreach(_component IN LISTS SOCI_FIND_COMPONENTS)
  find_library(SOCI_${_component}_LIBRARY NAMES soci_${_component})
  set(SOCI_${_component}_FOUND FALSE)
  if(SOCI_${_component}_LIBRARY)
    if(_component STREQUAL "sqlite3")
      find_dependency(SQLite3)
      set(SOCI_${_component}_FOUND ${SQLite3_FOUND})
    elseif(_component STREQUAL "postgresql")
      find_dependency(PostgreSQL)
      set(SOCI_${_component}_FOUND ${PostgreSQL_FOUND})
    else()
      set(SOCI_${_component}_FOUND TRUE)
    endif()
  endif()
endforeach()

find_package_handle_standard_args(SOCI
  REQUIRED_VARS SOCI_CORE_LIBRARY SOCI_INCLUDE_DIR
  VERSION_VAR SOCI_VERSION
  HANDLE_COMPONENTS)

if(SOCI_FOUND AND NOT TARGET SOCI::core)
  add_library(SOCI::core UNKNOWN IMPORTED)
  set_target_properties(SOCI::core PROPERTIES
    IMPORTED_LOCATION "${SOCI_CORE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SOCI_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Boost::headers;Threads::Threads;${CMAKE_DL_LIBS}")
endif()

if(SOCI_FOUND AND SOCI_sqlite3_FOUND AND NOT TARGET SOCI::sqlite3)
  add_library(SOCI::sqlite3 UNKNOWN IMPORTED)
  set_target_properties(SOCI::sqlite3 PROPERTIES
    IMPORTED_LOCATION "${SOCI_sqlite3_LIBRARY}"
    INTERFACE_LINK_LIBRARIES "SOCI::core;SQLite::SQLite3")
endif()

if(SOCI_FOUND AND SOCI_postgresql_FOUND AND NOT TARGET SOCI::postgresql)
  add_library(SOCI::postgresql UNKNOWN IMPORTED)
  set_target_properties(SOCI::postgresql PROPERTIES
    IMPORTED_LOCATION "${SOCI_postgresql_LIBRARY}"
    INTERFACE_LINK_LIBRARIES "SOCI::core;PostgreSQL::PostgreSQL")
endif()

mark_as_advanced(SOCI_INCLUDE_DIR SOCI_CORE_LIBRARY SOCI_sqlite3_LIBRARY SOCI_postgresql_LIBRARY)
