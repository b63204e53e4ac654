# Compiler warnings and sanitizers for poolscope's own targets.
#
#   poolscope_target_defaults(<target>)

# -Wmissing-field-initializers is off: it flags designated initializers
# ({.url = ..., .pool_size = 4}) that leave fields at their defaults, which
# is how poolscope's configs are meant to be written.
set(_poolscope_warnings -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Woverloaded-virtual -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND _poolscope_warnings -Wthread-safety)
endif()
# GCC 12 at -O3 (Release) reports -Wrestrict inside libstdc++'s own inlined
# code for "text" + std::string, with impossible sizes: a known false
# positive, https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105329.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND _poolscope_warnings -Wno-restrict)
endif()
if(POOLSCOPE_WERROR)
  list(APPEND _poolscope_warnings -Werror)
endif()

if(POOLSCOPE_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(POOLSCOPE_SANITIZE STREQUAL "address")
  # UBSan's vptr check needs the typeinfo of every polymorphic class it sees,
  # and Debian's SOCI exports none for its internals (hidden visibility), so
  # code that includes SOCI's headers cannot link with it: the rest of UBSan stays.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
elseif(NOT POOLSCOPE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "POOLSCOPE_SANITIZE must be thread, address or empty (got '${POOLSCOPE_SANITIZE}')")
endif()

function(poolscope_target_defaults target)
  target_compile_options(${target} PRIVATE ${_poolscope_warnings})
endfunction()

# poolscope_add_component(<name> SOURCES ... [PUBLIC deps...] [PRIVATE deps...])
# One library of poolscope: target <name>, alias poolscope::<name>, output
# libpoolscope_<name>, headers in <dir>/include, installed and exported in an
# export set of its own (poolscope_<name>Targets), so that an installed
# package loads, and finds the dependencies of, only the components asked for
# (cmake/PoolscopePackage.cmake).
function(poolscope_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  add_library(${name} ${ARG_SOURCES})
  add_library(poolscope::${name} ALIAS ${name})
  set_target_properties(${name} PROPERTIES OUTPUT_NAME poolscope_${name} EXPORT_NAME ${name}
                        POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${name} PUBLIC cxx_std_20)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC} PRIVATE ${ARG_PRIVATE})
  poolscope_target_defaults(${name})
  set_property(GLOBAL APPEND PROPERTY POOLSCOPE_COMPONENTS ${name})
  install(TARGETS ${name} EXPORT poolscope_${name}Targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
