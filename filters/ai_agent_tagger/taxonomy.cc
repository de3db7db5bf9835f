#include "filters/ai_agent_tagger/taxonomy.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdlib>

namespace sluice::filters::ai_agent_tagger {

namespace {

constexpr uint64_t kMaxPrecedence = 1000;
constexpr size_t kMaxLabel = 64;
constexpr size_t kMaxToken = 128;
constexpr const char* kPurposes[] = {"training", "search", "user", "assistant", "other"};

// Label values end up in request headers and metric labels: printable ASCII, trimmed.
bool printable(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max || s.front() == ' ' || s.back() == ' ') {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string at(const std::string& ptr, size_t i) {
  return ptr + "/" + std::to_string(i);
}

bool label(ConfigReader& r, const Json& o, const std::string& ptr, const char* key,
           std::string& out) {
  if (!r.str(o, ptr, key, out, true, true)) {
    return false;
  }
  if (!printable(out, kMaxLabel)) {
    r.error(ptr + "/" + key, "expected 1.." + std::to_string(kMaxLabel) +
                                 " printable ASCII characters without leading or trailing "
                                 "spaces, got " +
                                 ConfigReader::describe(Json(out)));
    return false;
  }
  return true;
}

// {"token": ..., "reason": ...} entries that document what is deliberately not an agent.
void parseExclusions(ConfigReader& r, const Json& root, const char* key,
                     std::vector<std::string>& out) {
  const Json* a = r.array(root, "", key);
  if (a == nullptr) {
    return;
  }
  for (size_t i = 0; i < a->size(); i++) {
    const std::string ptr = at(std::string("/") + key, i);
    const Json& e = (*a)[i];
    if (!r.object(e, ptr, {"token", "reason"})) {
      continue;
    }
    std::string token;
    std::string reason;
    r.str(e, ptr, "reason", reason, true, true);
    if (r.str(e, ptr, "token", token, true, true)) {
      out.push_back(ConfigReader::lower(token));
    }
  }
}

void parseSources(ConfigReader& r, const Json& root) {
  const auto it = root.find("sources");
  if (it == root.end()) {
    return;
  }
  if (!r.object(*it, "/sources", {"ai_robots", "crawler_user_agents"})) {
    return;
  }
  for (auto s = it->begin(); s != it->end(); ++s) {
    const std::string ptr = "/sources/" + s.key();
    if (!r.object(*s, ptr, {"file", "repository", "path", "commit", "sha256", "licence"})) {
      continue;
    }
    for (auto f = s->begin(); f != s->end(); ++f) {
      if (!f->is_string()) {
        r.error(ptr + "/" + f.key(), "expected a string, got " + ConfigReader::describe(*f));
      }
    }
  }
}

void parseAgent(ConfigReader& r, const Json& e, const std::string& ptr, Agent& a) {
  if (!r.object(e, ptr,
                {"agent", "provider", "purpose", "precedence", "tokens", "patterns", "source"})) {
    return;
  }
  label(r, e, ptr, "agent", a.name);
  label(r, e, ptr, "provider", a.provider);
  if (r.str(e, ptr, "purpose", a.purpose, true, true)) {
    if (std::none_of(std::begin(kPurposes), std::end(kPurposes),
                     [&](const char* p) { return a.purpose == p; })) {
      r.error(ptr + "/purpose", "expected one of training, search, user, assistant, other; got " +
                                    ConfigReader::describe(Json(a.purpose)));
    }
  }
  uint64_t precedence = a.precedence;
  if (r.uint(e, ptr, "precedence", precedence, 0, kMaxPrecedence)) {
    a.precedence = static_cast<uint32_t>(precedence);
  }
  r.strings(e, ptr, "tokens", a.tokens);
  for (size_t i = 0; i < a.tokens.size(); i++) {
    if (!printable(a.tokens[i], kMaxToken)) {
      r.error(at(ptr + "/tokens", i), "a token is 1.." + std::to_string(kMaxToken) +
                                          " printable ASCII characters without leading or "
                                          "trailing spaces");
    }
  }
  r.strings(e, ptr, "patterns", a.patterns);
  if (a.tokens.empty() && a.patterns.empty()) {
    r.error(ptr, "an agent needs at least one token or pattern");
  }
  const auto src = e.find("source");
  if (src == e.end()) {
    r.error(ptr + "/source", "required: where this entry comes from");
  } else if (r.object(*src, ptr + "/source", {"ai_robots", "crawler_user_agents", "note"})) {
    std::vector<std::string> names;
    std::string note;
    r.strings(*src, ptr + "/source", "ai_robots", names);
    r.strings(*src, ptr + "/source", "crawler_user_agents", names);
    r.str(*src, ptr + "/source", "note", note, false, true);
    if (names.empty() && note.empty()) {
      r.error(ptr + "/source", "name at least one source (ai_robots, crawler_user_agents or note)");
    }
  }
}

bool validPattern(const std::string& pattern, std::string& message) {
  if (pattern.find('\0') != std::string::npos) {
    message = "a pattern cannot contain a NUL byte (write \\x00)";
    return false;
  }
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_expression_info(pattern.c_str(), HS_FLAG_SINGLEMATCH, &info, &err) != HS_SUCCESS) {
    message = err != nullptr && err->message != nullptr ? err->message : "invalid pattern";
    hs_free_compile_error(err);
    return false;
  }
  const bool non_empty = info->min_width > 0;
  free(info); // allocated by Hyperscan's default allocator (malloc)
  if (!non_empty) {
    message = "the pattern can match an empty string";
    return false;
  }
  return true;
}

} // namespace

size_t Taxonomy::index(std::string_view agent) const {
  for (size_t i = 0; i < agents.size(); i++) {
    if (agents[i].name == agent) {
      return i;
    }
  }
  return SIZE_MAX;
}

bool parseTaxonomy(std::string_view text, Taxonomy& out, ConfigReader& r) {
  const Json root = Json::parse(text, nullptr, false);
  if (root.is_discarded()) {
    r.error("", "the taxonomy is not valid JSON");
    return false;
  }
  if (!r.object(root, "", {"version", "about", "sources", "agents", "robots_txt_only", "not_ai"})) {
    return false;
  }
  uint64_t version = 0;
  r.uint(root, "", "version", version, 1, 1, true);
  std::vector<std::string> about;
  r.strings(root, "", "about", about);
  parseSources(r, root);
  parseExclusions(r, root, "robots_txt_only", out.robots_txt_only);
  parseExclusions(r, root, "not_ai", out.not_ai);

  const Json* agents = r.array(root, "", "agents", true, true);
  if (agents == nullptr) {
    return false;
  }
  std::vector<std::pair<std::string, std::string>> seen_tokens; // lower-case token, pointer
  for (size_t i = 0; i < agents->size(); i++) {
    const std::string ptr = at("/agents", i);
    Agent a;
    parseAgent(r, (*agents)[i], ptr, a);
    if (!a.name.empty() && out.index(a.name) != SIZE_MAX) {
      r.error(ptr + "/agent", "duplicate agent \"" + a.name + "\"");
    }
    for (size_t t = 0; t < a.tokens.size(); t++) {
      const std::string tptr = at(ptr + "/tokens", t);
      const std::string low = ConfigReader::lower(a.tokens[t]);
      for (const auto& [other, other_ptr] : seen_tokens) {
        if (other == low) {
          r.error(tptr, "token \"" + a.tokens[t] + "\" is also at " + other_ptr);
        }
      }
      const auto listed = [&](const std::vector<std::string>& l) {
        return std::find(l.begin(), l.end(), low) != l.end();
      };
      if (listed(out.robots_txt_only)) {
        r.error(tptr, "token \"" + a.tokens[t] + "\" is listed in robots_txt_only");
      }
      if (listed(out.not_ai)) {
        r.error(tptr, "token \"" + a.tokens[t] + "\" is listed in not_ai");
      }
      seen_tokens.emplace_back(low, tptr);
    }
    for (size_t p = 0; p < a.patterns.size(); p++) {
      std::string message;
      if (!validPattern(a.patterns[p], message)) {
        r.error(at(ptr + "/patterns", p), "agent \"" + a.name + "\": invalid pattern: " + message);
      }
    }
    out.agents.push_back(std::move(a));
  }
  return r.ok();
}

std::string tokenExpression(std::string_view token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string e = "(?:^|[^A-Za-z0-9_.\\-])";
  for (unsigned char c : token) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum) {
      e += static_cast<char>(c);
    } else {
      e += "\\x";
      e += kHex[c >> 4];
      e += kHex[c & 15];
    }
  }
  e += "(?:[^A-Za-z0-9_.\\-]|$)";
  return e;
}

Classifier::~Classifier() {
  if (proto_ != nullptr) {
    hs_free_scratch(proto_);
  }
  if (db_ != nullptr) {
    hs_free_database(db_);
  }
}

bool Classifier::build(const Taxonomy& taxonomy, ConfigReader& r) {
  taxonomy_ = &taxonomy;
  std::vector<std::string> exprs;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;
  std::vector<std::string> where; // JSON pointer of each expression, for errors
  for (size_t i = 0; i < taxonomy.agents.size(); i++) {
    const Agent& a = taxonomy.agents[i];
    for (size_t t = 0; t < a.tokens.size(); t++) {
      exprs.push_back(tokenExpression(a.tokens[t]));
      flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
      ids.push_back(static_cast<unsigned>(i));
      where.push_back(at(at("/agents", i) + "/tokens", t));
    }
    for (size_t p = 0; p < a.patterns.size(); p++) {
      exprs.push_back(a.patterns[p]);
      flags.push_back(HS_FLAG_SINGLEMATCH);
      ids.push_back(static_cast<unsigned>(i));
      where.push_back(at(at("/agents", i) + "/patterns", p));
    }
  }
  if (exprs.empty()) {
    r.error("/agents", "no tokens or patterns to match");
    return false;
  }
  std::vector<const char*> cexprs;
  cexprs.reserve(exprs.size());
  for (const std::string& e : exprs) {
    cexprs.push_back(e.c_str());
  }
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(cexprs.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(cexprs.size()), HS_MODE_BLOCK, nullptr, &db_,
                       &err) != HS_SUCCESS) {
    const std::string ptr = err != nullptr && err->expression >= 0 &&
                                    static_cast<size_t>(err->expression) < where.size()
                                ? where[static_cast<size_t>(err->expression)]
                                : std::string("/agents");
    r.error(ptr, std::string("cannot compile: ") +
                     (err != nullptr && err->message != nullptr ? err->message : "?"));
    hs_free_compile_error(err);
    db_ = nullptr;
    return false;
  }
  if (hs_alloc_scratch(db_, &proto_) != HS_SUCCESS) {
    r.error("", "cannot allocate Hyperscan scratch space");
    return false;
  }
  return true;
}

hs_scratch_t* Classifier::newScratch() const {
  hs_scratch_t* s = nullptr;
  if (proto_ == nullptr || hs_clone_scratch(proto_, &s) != HS_SUCCESS) {
    return nullptr;
  }
  return s;
}

namespace {

struct Best {
  const std::vector<Agent>* agents;
  int index = Classifier::kNone;
  uint32_t precedence = 0;
  unsigned long long to = 0;
};

int onMatch(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) {
  Best& b = *static_cast<Best*>(ctx);
  const uint32_t prec = (*b.agents)[id].precedence;
  const int idx = static_cast<int>(id);
  if (b.index == Classifier::kNone || prec > b.precedence ||
      (prec == b.precedence && (to < b.to || (to == b.to && idx < b.index)))) {
    b.index = idx;
    b.precedence = prec;
    b.to = to;
  }
  return 0; // keep scanning: a more specific agent may match later
}

} // namespace

int Classifier::classify(std::string_view user_agent, hs_scratch_t* scratch) const {
  if (db_ == nullptr || scratch == nullptr) {
    return kNone;
  }
  Best best{&taxonomy_->agents};
  const size_t len = std::min<size_t>(user_agent.size(), UINT_MAX);
  hs_scan(db_, user_agent.data() == nullptr ? "" : user_agent.data(), static_cast<unsigned>(len), 0,
          scratch, onMatch, &best);
  return best.index;
}

} // namespace sluice::filters::ai_agent_tagger
