// sluice/sdk/config.hpp compiles on its own with every warning an error.
#include "sluice/sdk/config.hpp"
