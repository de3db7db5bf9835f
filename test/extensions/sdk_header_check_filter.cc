// sluice/sdk/filter.hpp compiles on its own with every warning an error.
#include "sluice/sdk/filter.hpp"
