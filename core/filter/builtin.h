#pragma once

// The table of filters linked into this binary. The build generates its definition
// (builtin_filters.cc) from the SLUICE_FILTERS selection.

#include "sluice/filter.h"

#include <cstddef>

namespace sluice::filter {

struct BuiltinModule {
  const char* name;
  sluice_module_init_fn init;
};

const BuiltinModule* builtinModules(size_t* count);

} // namespace sluice::filter
