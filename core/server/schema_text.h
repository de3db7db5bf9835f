#pragma once

#include <string_view>

namespace sluice::server {

// schema/sluice.schema.json as it was when this binary was built (`sluice schema`).
std::string_view configSchemaText();

} // namespace sluice::server
