#pragma once

// The typed config view of the C ABI (sluice_host_config_view, sluice_host_config_get_*, ABI
// 1.3): a JSON document read by JSON pointer, with problems that carry the pointer. Header-only
// and built on the SDK's JSON reader (api/ only), so the in-memory test host serves modules with
// the very code the real host runs.

#include "sluice/filter.h"
#include "sluice/sdk/json.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::filter {

class ConfigView {
public:
  // Parses `json`; null (and `error`) when it is not JSON.
  static std::unique_ptr<ConfigView> parse(std::string_view json, std::string& error) {
    auto v = std::unique_ptr<ConfigView>(new ConfigView());
    if (!sdk::json::parse(json, v->root_, error)) {
      return nullptr;
    }
    return v;
  }

  sluice_config_view_t* handle() { return reinterpret_cast<sluice_config_view_t*>(this); }
  static ConfigView* from(sluice_config_view_t* v) { return reinterpret_cast<ConfigView*>(v); }

  // Fills `problem` (if given and big enough) with strings this view keeps alive.
  void setProblem(sluice_config_problem_t* problem, std::string_view pointer, std::string message) {
    if (problem == nullptr || problem->size < sizeof(sluice_config_problem_t)) {
      return;
    }
    problem->pointer = keep(std::string(pointer));
    problem->message = keep(std::move(message));
  }

  // A wrong value is shown as JSON, as every config error shows it (docs/config-errors.md).
  static std::string describeType(const sdk::json::Value& v) { return v.describe(); }

  // Walks `pointer`. OK with *out set, or another status with the problem filled.
  sluice_config_get_t resolve(std::string_view pointer, const sdk::json::Value** out,
                              sluice_config_problem_t* problem) {
    const sdk::json::Value* cur = &root_;
    if (!pointer.empty() && pointer[0] != '/') {
      setProblem(problem, pointer, "not a JSON pointer (it must be empty or start with \"/\")");
      return SLUICE_CONFIG_BAD_POINTER;
    }
    size_t pos = 0;
    while (pos < pointer.size()) {
      size_t next = pointer.find('/', pos + 1);
      if (next == std::string_view::npos) {
        next = pointer.size();
      }
      std::string_view raw = pointer.substr(pos + 1, next - pos - 1);
      std::string token;
      for (size_t i = 0; i < raw.size(); i++) {
        if (raw[i] != '~') {
          token += raw[i];
        } else if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
          token += raw[i + 1] == '0' ? '~' : '/';
          i++;
        } else {
          setProblem(problem, pointer, "not a JSON pointer (\"~\" must be followed by 0 or 1)");
          return SLUICE_CONFIG_BAD_POINTER;
        }
      }
      if (cur->isObject()) {
        cur = cur->find(token);
      } else if (cur->isArray()) {
        size_t index = 0;
        bool digits = !token.empty() && token.size() <= 18 && (token == "0" || token[0] != '0');
        for (char c : token) {
          digits = digits && c >= '0' && c <= '9';
          index = index * 10 + static_cast<size_t>(c - '0');
        }
        cur = digits && index < cur->items().size() ? &cur->items()[index] : nullptr;
      } else {
        setProblem(problem, pointer.substr(0, pos),
                   "expected an object or an array, got " + describeType(*cur));
        return SLUICE_CONFIG_WRONG_TYPE;
      }
      if (cur == nullptr) {
        setProblem(problem, pointer, "is required");
        return SLUICE_CONFIG_MISSING;
      }
      pos = next;
    }
    *out = cur;
    return SLUICE_CONFIG_OK;
  }

  // Fails with WRONG_TYPE ("expected <what>, got <v>") unless `ok`.
  sluice_config_get_t expect(std::string_view pointer, const sdk::json::Value& v,
                             sluice_config_problem_t* problem, bool ok, const char* what) {
    if (ok) {
      return SLUICE_CONFIG_OK;
    }
    setProblem(problem, pointer, std::string("expected ") + what + ", got " + describeType(v));
    return SLUICE_CONFIG_WRONG_TYPE;
  }

  // Walks `pointer` and checks the value there with `ok`: OK with *out set, or the problem.
  template <class Check>
  sluice_config_get_t resolveAs(std::string_view pointer, const sdk::json::Value** out,
                                sluice_config_problem_t* problem, const char* what, Check ok) {
    sluice_config_get_t r = resolve(pointer, out, problem);
    return r == SLUICE_CONFIG_OK ? expect(pointer, **out, problem, ok(**out), what) : r;
  }
  sluice_config_get_t resolveObject(std::string_view pointer, const sdk::json::Value** out,
                                    sluice_config_problem_t* problem) {
    return resolveAs(pointer, out, problem, "an object",
                     [](const sdk::json::Value& v) { return v.isObject(); });
  }

  sluice_json_type_t type(std::string_view pointer) {
    const sdk::json::Value* v = nullptr;
    if (resolve(pointer, &v, nullptr) != SLUICE_CONFIG_OK) {
      return SLUICE_JSON_MISSING;
    }
    switch (v->type()) {
    case sdk::json::Type::Null:
      return SLUICE_JSON_NULL;
    case sdk::json::Type::Bool:
      return SLUICE_JSON_BOOL;
    case sdk::json::Type::Number:
      return SLUICE_JSON_NUMBER;
    case sdk::json::Type::String:
      return SLUICE_JSON_STRING;
    case sdk::json::Type::Array:
      return SLUICE_JSON_ARRAY;
    case sdk::json::Type::Object:
      return SLUICE_JSON_OBJECT;
    }
    return SLUICE_JSON_MISSING;
  }

  // The C functions of the host table (noexcept: nothing throws into a module).
  static sluice_json_type_t cType(sluice_config_view_t* view, sluice_str_t pointer) noexcept {
    try {
      return view == nullptr ? SLUICE_JSON_MISSING : from(view)->type(sv(pointer));
    } catch (...) {
      return SLUICE_JSON_MISSING;
    }
  }

  // Runs `fn(view)` for a C function: a null view is a bad pointer, and nothing throws into a
  // module (an exception can only be out of memory while describing a problem).
  template <class Fn> static sluice_config_get_t guarded(sluice_config_view_t* view, Fn fn) noexcept {
    if (view == nullptr) {
      return SLUICE_CONFIG_BAD_POINTER;
    }
    try {
      return fn(*from(view));
    } catch (...) {
      return SLUICE_CONFIG_BAD_POINTER;
    }
  }

  template <class T, class Check, class Get>
  static sluice_config_get_t get(sluice_config_view_t* view, sluice_str_t pointer, T* out,
                                 sluice_config_problem_t* problem, const char* what, Check check,
                                 Get value) noexcept {
    return guarded(view, [&](ConfigView& self) {
      const sdk::json::Value* v = nullptr;
      sluice_config_get_t r = self.resolveAs(sv(pointer), &v, problem, what, check);
      if (r == SLUICE_CONFIG_OK && out != nullptr) {
        *out = value(*v);
      }
      return r;
    });
  }

  static sluice_config_get_t cString(sluice_config_view_t* view, sluice_str_t pointer,
                                     sluice_str_t* out, sluice_config_problem_t* problem) noexcept {
    return get(
        view, pointer, out, problem, "a string", [](const auto& v) { return v.isString(); },
        [](const auto& v) {
          return sluice_str_t{v.asString().data(), v.asString().size()};
        });
  }
  static sluice_config_get_t cInt(sluice_config_view_t* view, sluice_str_t pointer, int64_t* out,
                                  sluice_config_problem_t* problem) noexcept {
    return get(
        view, pointer, out, problem, "an integer",
        [](const auto& v) {
          return v.isInteger() && (!v.isUnsigned() || v.asUint() <= uint64_t(INT64_MAX));
        },
        [](const auto& v) { return v.asInt(); });
  }
  static sluice_config_get_t cBool(sluice_config_view_t* view, sluice_str_t pointer, bool* out,
                                   sluice_config_problem_t* problem) noexcept {
    return get(
        view, pointer, out, problem, "true or false", [](const auto& v) { return v.isBool(); },
        [](const auto& v) { return v.asBool(); });
  }
  static sluice_config_get_t cDouble(sluice_config_view_t* view, sluice_str_t pointer, double* out,
                                     sluice_config_problem_t* problem) noexcept {
    return get(
        view, pointer, out, problem, "a number", [](const auto& v) { return v.isNumber(); },
        [](const auto& v) { return v.asDouble(); });
  }
  static sluice_config_get_t cLength(sluice_config_view_t* view, sluice_str_t pointer, size_t* out,
                                     sluice_config_problem_t* problem) noexcept {
    return get(
        view, pointer, out, problem, "an array or an object",
        [](const auto& v) { return v.isArray() || v.isObject(); },
        [](const auto& v) { return v.size(); });
  }

  static sluice_config_get_t cMember(sluice_config_view_t* view, sluice_str_t pointer, size_t index,
                                     sluice_str_t* key, sluice_str_t* member_pointer,
                                     sluice_config_problem_t* problem) noexcept {
    return guarded(view, [&](ConfigView& self) {
      const sdk::json::Value* v = nullptr;
      sluice_config_get_t r = self.resolveObject(sv(pointer), &v, problem);
      if (r != SLUICE_CONFIG_OK) {
        return r;
      }
      if (index >= v->members().size()) {
        self.setProblem(problem, sv(pointer), "has no member " + std::to_string(index));
        return SLUICE_CONFIG_MISSING;
      }
      const std::string& name = v->members()[index].first;
      if (key != nullptr) {
        *key = sluice_str_t{name.data(), name.size()};
      }
      if (member_pointer != nullptr) {
        *member_pointer = self.keep(sdk::json::pointerTo(sv(pointer), name));
      }
      return SLUICE_CONFIG_OK;
    });
  }

  static sluice_config_get_t cCheckKeys(sluice_config_view_t* view, sluice_str_t pointer,
                                        const char* const* allowed, size_t allowed_count,
                                        sluice_config_problem_t* problem) noexcept {
    if (allowed == nullptr && allowed_count > 0) {
      return SLUICE_CONFIG_BAD_POINTER;
    }
    return guarded(view, [&](ConfigView& self) {
      const sdk::json::Value* v = nullptr;
      sluice_config_get_t r = self.resolveObject(sv(pointer), &v, problem);
      if (r != SLUICE_CONFIG_OK) {
        return r;
      }
      for (const auto& [name, value] : v->members()) {
        bool known = false;
        for (size_t i = 0; i < allowed_count && !known; i++) {
          known = allowed[i] != nullptr && name == allowed[i];
        }
        if (known) {
          continue;
        }
        std::string expected;
        for (size_t i = 0; i < allowed_count; i++) {
          expected += i == 0 ? "" : (i + 1 == allowed_count ? " or " : ", ");
          expected += allowed[i] != nullptr ? allowed[i] : "";
        }
        self.setProblem(problem, sdk::json::pointerTo(sv(pointer), name),
                        allowed_count == 0 ? "unknown key (this object takes no keys)"
                                           : "unknown key (expected " + expected + ")");
        return SLUICE_CONFIG_UNKNOWN_KEY;
      }
      return SLUICE_CONFIG_OK;
    });
  }

  // Fills the view functions of a host table.
  static void fillHostTable(sluice_host_t& t) {
    t.sluice_host_config_type = &cType;
    t.sluice_host_config_get_string = &cString;
    t.sluice_host_config_get_int = &cInt;
    t.sluice_host_config_get_bool = &cBool;
    t.sluice_host_config_get_double = &cDouble;
    t.sluice_host_config_get_length = &cLength;
    t.sluice_host_config_get_member = &cMember;
    t.sluice_host_config_check_keys = &cCheckKeys;
  }

private:
  ConfigView() = default;

  static std::string_view sv(sluice_str_t s) {
    return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
  }
  sluice_str_t keep(std::string s) {
    strings_.push_back(std::move(s));
    return sluice_str_t{strings_.back().data(), strings_.back().size()};
  }

  sdk::json::Value root_;
  std::deque<std::string> strings_; // problem texts and member pointers handed out
};

} // namespace sluice::filter
