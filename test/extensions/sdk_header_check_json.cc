// sluice/sdk/json.hpp compiles on its own with every warning an error.
#include "sluice/sdk/json.hpp"
