// The SDK headers compile on their own, in any order, with every warning an error.
#include "sluice/sdk/config.hpp"
#include "sluice/sdk/filter.hpp"
#include "sluice/sdk/json.hpp"
