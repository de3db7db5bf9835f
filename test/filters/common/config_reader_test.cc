#include "filters/common/config_reader.h"

#include <catch2/catch.hpp>

namespace sluice::filters::common {
namespace {

sluice_str_t str(std::string_view s) {
  return sluice_str_t{s.data(), s.size()};
}

TEST_CASE("ConfigReader: an unknown key's pointer escapes \"/\" and \"~\" (RFC 6901)",
          "[filter_common]") {
  ConfigReader r;
  Json root;
  REQUIRE(r.parse(str(R"({"ok": 1, "a/b~c": 2})"), root));
  CHECK(r.object(root, "/x", {"ok"}));
  REQUIRE(r.errors().size() == 1);
  CHECK(r.errors()[0].pointer == "/x/a~1b~0c");
  CHECK(r.errors()[0].message == "unknown key \"a/b~c\"");
}

TEST_CASE("ConfigReader: typed getters report the key's pointer and the value seen",
          "[filter_common]") {
  ConfigReader r;
  Json root;
  REQUIRE(r.parse(str(R"({"s": 5, "n": 70, "b": "yes", "e": ""})"), root));
  std::string s;
  uint64_t n = 0;
  bool b = false;
  CHECK_FALSE(r.str(root, "", "s", s));
  CHECK_FALSE(r.uint(root, "", "n", n, 1, 60));
  CHECK_FALSE(r.boolean(root, "", "b", b));
  CHECK_FALSE(r.str(root, "", "e", s, false, true));
  CHECK_FALSE(r.str(root, "", "missing", s, true));
  REQUIRE(r.errors().size() == 5);
  CHECK(r.errors()[0].pointer == "/s");
  CHECK(r.errors()[0].message == "expected a string, got 5");
  CHECK(r.errors()[1].pointer == "/n");
  CHECK(r.errors()[1].message.find("70") != std::string::npos);
  CHECK(r.errors()[2].message == "expected true or false, got \"yes\"");
  CHECK(r.errors()[3].message == "expected a non-empty string, got \"\"");
  CHECK(r.errors()[4].pointer == "/missing");
  CHECK(r.errors()[4].message == "required");
  CHECK(n == 0); // untouched on error
}

TEST_CASE("ConfigReader: a 32-bit field has the same range check, message and required error",
          "[filter_common]") {
  ConfigReader r;
  Json root;
  REQUIRE(r.parse(str(R"({"ok": 4000000000, "big": 5000000000, "neg": -1})"), root));
  uint32_t v = 7;
  CHECK(r.uint(root, "", "ok", v, 0, 4000000000u));
  CHECK(v == 4000000000u);
  CHECK_FALSE(r.uint(root, "", "big", v, 0, 4294967295u));
  CHECK_FALSE(r.uint(root, "", "neg", v, 0, 10));
  CHECK_FALSE(r.uint(root, "/o", "absent", v, 0, 10)); // optional: no error
  CHECK_FALSE(r.uint(root, "/o", "weight", v, 1, 10, true));
  CHECK(v == 4000000000u); // untouched on error
  REQUIRE(r.errors().size() == 3);
  CHECK(r.errors()[0].pointer == "/big");
  CHECK(r.errors()[0].message == "expected an integer 0..4294967295, got 5000000000");
  CHECK(r.errors()[1].message == "expected an integer 0..10, got -1");
  CHECK(r.errors()[2].pointer == "/o/weight");
  CHECK(r.errors()[2].message == "required");
}

TEST_CASE("ConfigReader: a number's range reads as docs/config-errors.md writes it",
          "[filter_common]") {
  ConfigReader r;
  Json root;
  REQUIRE(r.parse(str(R"({"ok": 0.25, "big": 1.5, "text": "half", "wide": -3})"), root));
  double d = 0.5;
  CHECK(r.number(root, "", "ok", d, 0.0, 1.0));
  CHECK(d == 0.25);
  CHECK_FALSE(r.number(root, "", "big", d, 0.0, 1.0));
  CHECK_FALSE(r.number(root, "/w", "text", d, 0.0, 1.0));
  CHECK_FALSE(r.number(root, "", "wide", d, -2.5, 1e6));
  CHECK(d == 0.25); // untouched on error
  REQUIRE(r.errors().size() == 3);
  CHECK(r.errors()[0] == ConfigError{"/big", "expected a number 0..1, got 1.5"});
  CHECK(r.errors()[1] == ConfigError{"/w/text", "expected a number 0..1, got \"half\""});
  CHECK(r.errors()[2] == ConfigError{"/wide", "expected a number -2.5..1e+06, got -3"});
}

TEST_CASE("ConfigReader: member returns a value of any type, and says required when asked",
          "[filter_common]") {
  ConfigReader r;
  Json root;
  REQUIRE(r.parse(str(R"({"m": {"a": 1}, "n": null})"), root));
  const Json* m = r.member(root, "/x", "m");
  REQUIRE(m != nullptr);
  CHECK(m->is_object());
  const Json* n = r.member(root, "/x", "n", true);
  REQUIRE(n != nullptr); // present with null: the caller judges the type
  CHECK(n->is_null());
  CHECK(r.member(root, "/x", "gone") == nullptr);
  CHECK(r.ok());
  CHECK(r.member(root, "/x", "match", true) == nullptr);
  REQUIRE(r.errors().size() == 1);
  CHECK(r.errors()[0].pointer == "/x/match");
  CHECK(r.errors()[0].message == "required");
  CHECK(r.member(Json(5), "/x", "m") == nullptr); // not an object: nothing to find
}

} // namespace
} // namespace sluice::filters::common
