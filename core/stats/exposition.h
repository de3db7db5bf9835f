#pragma once

// Text helpers for the Prometheus text exposition format 0.0.4 and for the /stats JSON:
// name validation, escaping and number formatting. Pure functions, any thread.

#include <string>
#include <string_view>

namespace sluice::stats {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool validMetricName(std::string_view name);

// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved by Prometheus).
bool validLabelName(std::string_view name);

// `text` with every ill-formed UTF-8 sequence replaced by U+FFFD. Label values and help texts
// come from configs and modules (untrusted); Prometheus and JSON parsers both reject bad UTF-8.
std::string sanitizeUtf8(std::string_view text);

// Appends a label value escaped for the text format: \ as \\, " as \", newline as \n.
void appendLabelValue(std::string& out, std::string_view value);

// Appends a help text escaped for the text format: \ as \\, newline as \n.
void appendHelp(std::string& out, std::string_view help);

// Appends `text` as a JSON string literal, quotes included.
void appendJsonString(std::string& out, std::string_view text);

// Appends a sample value as Prometheus writes it: integral values without a fraction or
// exponent, others in the shortest form that reads back exactly; NaN, +Inf, -Inf.
void appendValue(std::string& out, double value);

// Appends a JSON number in the same form; null for NaN and infinities (JSON has neither).
void appendJsonNumber(std::string& out, double value);

} // namespace sluice::stats
