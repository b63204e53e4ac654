# The installed package: find_package(poolscope [COMPONENTS ...]) and
# pkg-config files, both relocatable (no absolute path from the build machine
# in them) and honest (each component's dependencies are found when, and
# only when, that component is asked for).
#
#   poolscope_install_package()   call once, after every component is defined
#
# What a component depends on is read from its target's link libraries, so a
# new dependency cannot be forgotten here: an external target this file does
# not know is a configure error naming it (add it to _poolscope_external).

include(CMakePackageConfigHelpers)

# How a consumer finds the external target `item`: the arguments of
# find_dependency() ("|"-separated, empty for none), the pkg-config modules
# it needs (Requires) and the linker flags that pkg-config cannot supply
# (Libs). SOCI has no pkg-config file, civetweb none in Debian, and GCC's
# libbacktrace sits in the compiler's own search path.
function(_poolscope_external item out_find out_requires out_libs)
  set(find "")
  set(requires "")
  set(libs "")
  if(item STREQUAL "Threads::Threads")
    set(find "Threads")
    set(libs "-pthread")
  elseif(item MATCHES "^SOCI::(.+)$")
    set(find "SOCI")  # components are gathered by the caller
    set(libs "-lsoci_${CMAKE_MATCH_1}")
    if(CMAKE_MATCH_1 STREQUAL "core")
      set(libs "-lsoci_core ${CMAKE_DL_LIBS_FLAG}")
    elseif(CMAKE_MATCH_1 STREQUAL "sqlite3")
      set(requires "sqlite3")
    elseif(CMAKE_MATCH_1 STREQUAL "postgresql")
      set(requires "libpq")
    endif()
  elseif(item STREQUAL "PostgreSQL::PostgreSQL")
    set(find "PostgreSQL")
    set(requires "libpq")
  elseif(item STREQUAL "SQLite::SQLite3")
    set(find "SQLite3")
    set(requires "sqlite3")
  elseif(item STREQUAL "Boost::headers" OR item STREQUAL "Boost::boost")
    set(find "Boost")
  elseif(item STREQUAL "spdlog::spdlog")
    set(find "spdlog")
    set(requires "spdlog")
  elseif(item MATCHES "^prometheus-cpp::(core|pull|push)$")
    set(find "prometheus-cpp")
    set(requires "prometheus-cpp-${CMAKE_MATCH_1}")
  elseif(item STREQUAL "civetweb::civetweb-cpp")
    set(find "civetweb")
    set(libs "-lcivetweb-cpp -lcivetweb")
  elseif(item STREQUAL "civetweb::civetweb")
    set(find "civetweb")
    set(libs "-lcivetweb")
  elseif(item STREQUAL "GccBacktrace::GccBacktrace")
    set(find "GccBacktrace")
    set(libs "-lbacktrace")
  elseif(item STREQUAL "Hiredis::hiredis")
    set(find "Hiredis")
    set(requires "hiredis")
  elseif(item STREQUAL "nlohmann_json::nlohmann_json")
    set(find "nlohmann_json|3")
    set(requires "nlohmann_json")
  elseif(item MATCHES "^(dl|m|rt|pthread)$")
    set(libs "-l${item}")
  else()
    message(FATAL_ERROR "poolscope packaging: a component links '${item}', which "
      "cmake/PoolscopePackage.cmake does not know how a consumer finds (an absolute path or "
      "a bare library name would not survive installation): link an imported target and add "
      "it to _poolscope_external")
  endif()
  set(${out_find} "${find}" PARENT_SCOPE)
  set(${out_requires} "${requires}" PARENT_SCOPE)
  set(${out_libs} "${libs}" PARENT_SCOPE)
endfunction()

# The link items of a component as a consumer sees them: build-only items
# dropped, LINK_ONLY and INSTALL_INTERFACE unwrapped.
function(_poolscope_link_items target out)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    get_target_property(items ${target} INTERFACE_LINK_LIBRARIES)
  else()
    get_target_property(items ${target} LINK_LIBRARIES)
  endif()
  set(result "")
  foreach(item IN LISTS items)
    if(item MATCHES "^\\$<BUILD_INTERFACE:" OR item STREQUAL "items-NOTFOUND")
      continue()
    endif()
    if(item MATCHES "^\\$<(LINK_ONLY|INSTALL_INTERFACE):(.+)>$")
      set(item "${CMAKE_MATCH_2}")
    endif()
    list(APPEND result "${item}")
  endforeach()
  list(REMOVE_DUPLICATES result)
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# What component needs, from its link items: the poolscope components
# (out_internal), the find_dependency() argument lists (out_packages), the
# pkg-config modules (out_requires) and linker flags (out_libs).
function(_poolscope_needs component components out_internal out_packages out_requires out_libs)
  _poolscope_link_items(${component} items)
  set(internal "")
  set(packages "")
  set(soci_components "")
  set(requires "")
  set(libs "")
  foreach(item IN LISTS items)
    string(REGEX REPLACE "^poolscope::" "" bare "${item}")
    if(bare IN_LIST components)
      list(APPEND internal ${bare})
      if(bare STREQUAL "pool")
        list(APPEND requires "poolscope")
      elseif(NOT bare STREQUAL "base")
        list(APPEND requires "poolscope-${bare}")
      endif()
      continue()
    endif()
    _poolscope_external("${item}" find req lib)
    if(find STREQUAL "SOCI")
      string(REGEX REPLACE "^SOCI::" "" soci_component "${item}")
      if(NOT soci_component STREQUAL "core")
        list(APPEND soci_components ${soci_component})
      endif()
    elseif(find)
      list(APPEND packages "${find}")
    endif()
    list(APPEND requires ${req})
    if(lib)
      list(APPEND libs ${lib})
    endif()
  endforeach()
  if(soci_components)
    list(REMOVE_DUPLICATES soci_components)
    list(JOIN soci_components "|" soci_list)
    list(APPEND packages "SOCI|4.0|COMPONENTS|${soci_list}")
  elseif("SOCI::core" IN_LIST items)
    list(APPEND packages "SOCI|4.0")
  endif()
  list(REMOVE_DUPLICATES packages)
  list(REMOVE_DUPLICATES requires)
  list(REMOVE_DUPLICATES libs)
  set(${out_internal} "${internal}" PARENT_SCOPE)
  set(${out_packages} "${packages}" PARENT_SCOPE)
  set(${out_requires} "${requires}" PARENT_SCOPE)
  set(${out_libs} "${libs}" PARENT_SCOPE)
endfunction()

# Writes and installs <name>.pc for component, relocatable: every path is
# relative to the file's own directory (pkg-config's ${pcfiledir}).
function(_poolscope_install_pc component name description requires libs)
  set(pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  file(RELATIVE_PATH to_prefix "/${pc_dir}" "/")
  string(REGEX REPLACE "/$" "" to_prefix "${to_prefix}")
  list(JOIN requires " " pc_requires)
  list(JOIN libs " " pc_libs)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/${name}.pc"
"prefix=\${pcfiledir}/${to_prefix}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}

Name: ${name}
Description: ${description}
Version: ${PROJECT_VERSION}
Requires: ${pc_requires}
Cflags: -I\${includedir}
Libs: -L\${libdir} -lpoolscope_${component} ${pc_libs}
")
  install(FILES "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/${name}.pc" DESTINATION "${pc_dir}")
endfunction()

function(poolscope_install_package)
  set(cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/poolscope")
  get_property(components GLOBAL PROPERTY POOLSCOPE_COMPONENTS)
  list(PREPEND components base)  # header-only, defined by hand in base/
  set(CMAKE_DL_LIBS_FLAG "")
  if(CMAKE_DL_LIBS)
    set(CMAKE_DL_LIBS_FLAG "-l${CMAKE_DL_LIBS}")
  endif()

  string(CONCAT table "# Generated by cmake/PoolscopePackage.cmake: each component's poolscope\n"
         "# components and the find_dependency() arguments of its packages.\n"
         "set(_poolscope_components \"${components}\")\n")
  foreach(component IN LISTS components)
    _poolscope_needs(${component} "${components}" internal packages requires libs)
    string(APPEND table "set(_poolscope_${component}_requires \"${internal}\")\n")
    string(APPEND table "set(_poolscope_${component}_packages \"${packages}\")\n")
    if(component STREQUAL "base")
      continue()  # exported below; in poolscope.pc, with pool
    endif()
    install(EXPORT poolscope_${component}Targets NAMESPACE poolscope::
            FILE poolscope_${component}Targets.cmake DESTINATION "${cmake_dir}")
    # pkg-config: poolscope (the pool and base's headers), poolscope-<component>.
    if(component STREQUAL "pool")
      _poolscope_needs(base "${components}" unused_internal unused_packages base_requires base_libs)
      list(APPEND libs ${base_libs})
      list(REMOVE_DUPLICATES libs)
      _poolscope_install_pc(pool poolscope "${PROJECT_DESCRIPTION}" "${requires}" "${libs}")
    else()
      _poolscope_install_pc(${component} poolscope-${component}
                            "poolscope's ${component} component" "${requires}" "${libs}")
    endif()
  endforeach()
  # base's export set keeps the name it is given in base/CMakeLists.txt.
  install(EXPORT poolscopeTargets NAMESPACE poolscope:: FILE poolscope_baseTargets.cmake
          DESTINATION "${cmake_dir}")
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/poolscopeComponents.cmake" "${table}")

  configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/poolscopeConfig.cmake.in"
    "${CMAKE_CURRENT_BINARY_DIR}/poolscopeConfig.cmake" INSTALL_DESTINATION "${cmake_dir}")
  write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/poolscopeConfigVersion.cmake"
    COMPATIBILITY SameMinorVersion)
  install(FILES
    "${CMAKE_CURRENT_BINARY_DIR}/poolscopeConfig.cmake"
    "${CMAKE_CURRENT_BINARY_DIR}/poolscopeConfigVersion.cmake"
    "${CMAKE_CURRENT_BINARY_DIR}/poolscopeComponents.cmake"
    "${PROJECT_SOURCE_DIR}/cmake/FindSOCI.cmake"
    "${PROJECT_SOURCE_DIR}/cmake/FindGccBacktrace.cmake"
    "${PROJECT_SOURCE_DIR}/cmake/FindHiredis.cmake"
    DESTINATION "${cmake_dir}")

  # Operating it: the dashboard, Grafana's provisioning files, the rules.
  set(share "${CMAKE_INSTALL_DATADIR}/poolscope")
  install(FILES "${PROJECT_SOURCE_DIR}/grafana/dashboard.json" "${PROJECT_SOURCE_DIR}/grafana/README.md"
          DESTINATION "${share}/grafana")
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/grafana/provisioning" DESTINATION "${share}/grafana")
  install(FILES "${PROJECT_SOURCE_DIR}/grafana/rules/poolscope.rules.yml"
          DESTINATION "${share}/prometheus")
endfunction()
