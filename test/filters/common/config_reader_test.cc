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

} // namespace
} // namespace sluice::filters::common
