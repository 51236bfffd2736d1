# FindActCore.cmake: find libact_core (the C ABI of act-rs) and define imported targets.
#
#   list(APPEND CMAKE_MODULE_PATH /path/to/act-rs/bindings/cmake)   # or <prefix>/lib/cmake/ActCore
#   find_package(ActCore REQUIRED)
#   target_link_libraries(my_controller PRIVATE act_core::act_core)         # libact_core.so
#   # or act_core::act_core_static                                          # libact_core.a
#
# Search hints: ActCore_ROOT (CMake variable or environment variable), then the prefix this file
# is installed in (<prefix>/lib/cmake/ActCore/), then pkg-config's act_core, then the system paths.
#
# Defines: ActCore_FOUND, ActCore_INCLUDE_DIR, ActCore_LIBRARY, ActCore_STATIC_LIBRARY,
# ActCore_VERSION, and the imported targets act_core::act_core (shared) and, when the archive is
# found, act_core::act_core_static (with the system libraries the Rust runtime needs).

set(_act_core_hints "")
if(ActCore_ROOT)
  list(APPEND _act_core_hints "${ActCore_ROOT}")
endif()
if(DEFINED ENV{ActCore_ROOT})
  list(APPEND _act_core_hints "$ENV{ActCore_ROOT}")
endif()
get_filename_component(_act_core_installed_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
list(APPEND _act_core_hints "${_act_core_installed_prefix}")

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_ActCore QUIET act_core)
endif()

find_path(ActCore_INCLUDE_DIR act_core.h
  HINTS ${_act_core_hints} ${PC_ActCore_INCLUDE_DIRS}
  PATH_SUFFIXES include)
find_library(ActCore_LIBRARY NAMES act_core
  HINTS ${_act_core_hints} ${PC_ActCore_LIBRARY_DIRS}
  PATH_SUFFIXES lib lib64)
find_library(ActCore_STATIC_LIBRARY NAMES libact_core.a
  HINTS ${_act_core_hints} ${PC_ActCore_LIBRARY_DIRS}
  PATH_SUFFIXES lib lib64)

if(PC_ActCore_VERSION)
  set(ActCore_VERSION "${PC_ActCore_VERSION}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ActCore
  REQUIRED_VARS ActCore_LIBRARY ActCore_INCLUDE_DIR
  VERSION_VAR ActCore_VERSION)

if(ActCore_FOUND)
  if(NOT TARGET act_core::act_core)
    add_library(act_core::act_core SHARED IMPORTED)
    set_target_properties(act_core::act_core PROPERTIES
      IMPORTED_LOCATION "${ActCore_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${ActCore_INCLUDE_DIR}")
  endif()
  if(ActCore_STATIC_LIBRARY AND NOT TARGET act_core::act_core_static)
    add_library(act_core::act_core_static STATIC IMPORTED)
    # What the Rust runtime inside the archive needs (rustc --print native-static-libs).
    set_target_properties(act_core::act_core_static PROPERTIES
      IMPORTED_LOCATION "${ActCore_STATIC_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${ActCore_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;pthread;m;dl;c")
  endif()
endif()

mark_as_advanced(ActCore_INCLUDE_DIR ActCore_LIBRARY ActCore_STATIC_LIBRARY)
