#include "filters/ai_agent_tagger/config.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

namespace sluice::filters::ai_agent_tagger {

namespace {

using common::ConfigReader;

// Headers a tag must not overwrite: framing, routing and the header being classified.
constexpr const char* kReservedHeaders[] = {
    "user-agent", "host", "content-length", "transfer-encoding", "connection",
    "upgrade",    "te",   "trailer",        "keep-alive",        "proxy-connection"};

bool readFile(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open \"" + path + "\"";
    return false;
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<uint64_t>(size) > Config::kMaxTaxonomyBytes) {
    error = "\"" + path + "\" is not a regular file of at most " +
            std::to_string(Config::kMaxTaxonomyBytes) + " bytes";
    return false;
  }
  in.seekg(0, std::ios::beg);
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = "cannot read \"" + path + "\"";
    return false;
  }
  return true;
}

// Loads, parses and compiles a taxonomy; inner errors are reported at `ptr` of the filter
// config with the pointer inside the taxonomy document in the message.
bool loadTaxonomy(std::string_view text, const std::string& what, const std::string& ptr, Config& c,
                  ConfigReader& r) {
  ConfigReader inner;
  c.taxonomy = std::make_unique<Taxonomy>();
  c.classifier = std::make_unique<Classifier>();
  if (parseTaxonomy(text, *c.taxonomy, inner)) {
    c.classifier->build(*c.taxonomy, inner);
  }
  for (const common::ConfigError& e : inner.errors()) {
    r.error(ptr, what + " at \"" + e.pointer + "\": " + e.message);
  }
  if (!inner.ok()) {
    c.classifier.reset();
    c.taxonomy.reset();
    return false;
  }
  return true;
}

void parseTaxonomyKey(const common::Json& root, const PathResolver& resolve, Config& c,
                      ConfigReader& r) {
  const auto it = root.find("taxonomy");
  if (it == root.end() || (it->is_string() && it->get_ref<const std::string&>() == "builtin")) {
    loadTaxonomy(builtinTaxonomy(), "built-in taxonomy", "/taxonomy", c, r);
    return;
  }
  if (!it->is_object()) {
    r.error("/taxonomy",
            "expected \"builtin\" or {\"file\": PATH}, got " + ConfigReader::describe(*it));
    return;
  }
  if (!r.object(*it, "/taxonomy", {"file"})) {
    return;
  }
  std::string path;
  if (!r.str(*it, "/taxonomy", "file", path, true, true)) {
    return;
  }
  if (path.find('\0') != std::string::npos) {
    r.error("/taxonomy/file", "a file path cannot contain a NUL byte");
    return;
  }
  const std::optional<std::string> resolved = resolve(path);
  if (!resolved || resolved->empty()) {
    r.error("/taxonomy/file", "cannot resolve \"" + path + "\" (the resolved path is too long)");
    return;
  }
  std::string text;
  std::string error;
  if (!readFile(*resolved, text, error)) {
    r.error("/taxonomy/file", error);
    return;
  }
  loadTaxonomy(text, "taxonomy \"" + *resolved + "\"", "/taxonomy/file", c, r);
}

void parseHeaders(const common::Json& root, Config& c, ConfigReader& r) {
  const auto it = root.find("request_headers");
  if (it == root.end() || !r.object(*it, "/request_headers", {"agent", "provider", "purpose"})) {
    return;
  }
  std::vector<std::string> names;
  const auto one = [&](const char* key, std::string& out) {
    std::string name;
    if (!r.str(*it, "/request_headers", key, name, false, true)) {
      return;
    }
    const std::string ptr = std::string("/request_headers/") + key;
    const std::string low = ConfigReader::lower(name);
    if (!ConfigReader::isToken(name)) {
      r.error(ptr, "expected a header name, got " + ConfigReader::describe(common::Json(name)));
    } else if (std::any_of(std::begin(kReservedHeaders), std::end(kReservedHeaders),
                           [&](const char* h) { return low == h; })) {
      r.error(ptr, "\"" + name + "\" cannot be used for a tag");
    } else if (std::find(names.begin(), names.end(), low) != names.end()) {
      r.error(ptr, "header \"" + name + "\" is already used for another field");
    } else {
      names.push_back(low);
      out = low;
    }
  };
  one("agent", c.agent_header);
  one("provider", c.provider_header);
  one("purpose", c.purpose_header);
}

void parseBlock(const common::Json& root, Config& c, ConfigReader& r) {
  const auto it = root.find("block");
  if (it == root.end() || !r.object(*it, "/block", {"agents", "status"})) {
    return;
  }
  uint64_t status = c.block_status;
  if (r.uint(*it, "/block", "status", status, 400, 599)) {
    c.block_status = static_cast<uint32_t>(status);
  }
  std::vector<std::string> agents;
  if (!r.strings(*it, "/block", "agents", agents, true)) {
    return;
  }
  if (c.taxonomy == nullptr || c.taxonomy->agents.empty()) {
    return; // the taxonomy itself failed; its errors are reported
  }
  for (size_t i = 0; i < agents.size(); i++) {
    const size_t idx = c.taxonomy->index(agents[i]);
    if (idx == SIZE_MAX) {
      r.error("/block/agents/" + std::to_string(i),
              "unknown agent \"" + agents[i] + "\" (names are the taxonomy's \"agent\" values)");
      continue;
    }
    c.blocked[idx] = true;
  }
}

} // namespace

std::unique_ptr<Config> parseConfig(sluice_str_t json, const PathResolver& resolve,
                                    ConfigReader& r) {
  common::Json root;
  if (!r.parse(json, root)) {
    return nullptr;
  }
  if (!r.object(root, "", {"taxonomy", "request_headers", "block"})) {
    return nullptr;
  }
  auto c = std::make_unique<Config>();
  parseTaxonomyKey(root, resolve, *c, r);
  if (c->taxonomy != nullptr) {
    c->blocked.assign(c->taxonomy->agents.size(), false);
  }
  parseHeaders(root, *c, r);
  parseBlock(root, *c, r);
  if (!r.ok()) {
    return nullptr;
  }
  return c;
}

} // namespace sluice::filters::ai_agent_tagger
