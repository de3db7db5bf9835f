# sluice_add_module(NAME <name> SOURCES ... [LIBS ...] [TARGET <target>] [OUTPUT_DIRECTORY <dir>])
# Builds a filter as a loadable module lib<name>.so against the ABI headers only (target
# sluice::api): hidden visibility (only the entry symbol is exported), C++20 for the SDK.
# Installed with the sluice package (find_package(sluice)), where sluice_add_filter() is this
# function too, so one filter folder builds as a .so on its own and links into a distro build
# of sluice with -DSLUICE_EXTRA_FILTERS=<folder>.
function(sluice_add_module)
  cmake_parse_arguments(F "" "NAME;TARGET;OUTPUT_DIRECTORY" "SOURCES;LIBS" ${ARGN})
  if(NOT F_NAME OR NOT F_SOURCES)
    message(FATAL_ERROR "sluice_add_module: NAME and SOURCES are required")
  endif()
  if(NOT F_TARGET)
    set(F_TARGET ${F_NAME})
  endif()
  add_library(${F_TARGET} MODULE ${F_SOURCES})
  target_link_libraries(${F_TARGET} PRIVATE sluice::api ${F_LIBS})
  get_property(_sluice_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(CXX IN_LIST _sluice_languages)
    target_compile_features(${F_TARGET} PRIVATE cxx_std_20) # the C++ SDK
  endif()
  set_target_properties(${F_TARGET} PROPERTIES PREFIX "lib" OUTPUT_NAME ${F_NAME}
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(F_OUTPUT_DIRECTORY)
    set_target_properties(${F_TARGET} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${F_OUTPUT_DIRECTORY})
  endif()
endfunction()
