#include "core/http/path.h"

#include <catch2/catch.hpp>

using sluice::http::normalizePath;
using sluice::http::PathStatus;

TEST_CASE("Path: normalization table", "[http]") {
  struct Case {
    const char* in;
    PathStatus status;
    const char* out; // nullptr: unchanged
  };
  auto c = GENERATE(
      Case{"/", PathStatus::Ok, nullptr}, Case{"/a/b?x=/../", PathStatus::Ok, nullptr},
      Case{"/a/./b/../c", PathStatus::Ok, "/a/c"}, Case{"/a//b///c", PathStatus::Ok, "/a/b/c"},
      Case{"/a/b/..", PathStatus::Ok, "/a/"}, Case{"/a/b/.", PathStatus::Ok, "/a/b/"},
      Case{"/%7Euser/%41%2f%2F", PathStatus::Ok, "/~user/A%2F%2F"},
      Case{"/a%2e%2e/x", PathStatus::Ok, "/a../x"}, Case{"/a/%2e%2e/b", PathStatus::Ok, "/b"},
      Case{"/x/../..", PathStatus::EscapesRoot, nullptr},
      Case{"/../etc/passwd", PathStatus::EscapesRoot, nullptr},
      Case{"/%2e%2e/etc", PathStatus::EscapesRoot, nullptr},
      Case{"/a/b?q=1&r=../..", PathStatus::Ok, nullptr},
      Case{"/a/./b?q=./x", PathStatus::Ok, "/a/b?q=./x"}, Case{"*", PathStatus::Ok, nullptr},
      Case{"relative", PathStatus::Invalid, nullptr}, Case{"/bad%zz", PathStatus::Invalid, nullptr},
      Case{"/trunc%4", PathStatus::Invalid, nullptr},
      Case{"/ctl\x01", PathStatus::Invalid, nullptr});
  std::string out = "untouched";
  bool changed = false;
  INFO(c.in);
  CHECK(normalizePath(c.in, out, &changed) == c.status);
  if (c.status == PathStatus::Ok) {
    CHECK(changed == (c.out != nullptr));
    if (c.out != nullptr) {
      CHECK(out == c.out);
    } else {
      CHECK(out == "untouched");
    }
  }
}

TEST_CASE("Path: absolute-form targets become origin-form only for their own Host", "[http]") {
  using sluice::http::originFormOf;
  using sluice::http::TargetForm;
  struct Case {
    const char* target;
    const char* host;
    TargetForm form;
    const char* origin; // for Origin and Absolute
  };
  const Case cases[] = {
      {"/a?b", "h", TargetForm::Origin, "/a?b"},
      {"*", "h", TargetForm::Origin, "*"},
      {"http://h/case?q=1", "h", TargetForm::Absolute, "/case?q=1"},
      {"HTTPS://H:8443/x", "h:8443", TargetForm::Absolute, "/x"},
      {"http://h", "h", TargetForm::Absolute, "/"},
      {"http://h/", "H", TargetForm::Absolute, "/"},
      {"http://other/case", "h", TargetForm::Invalid, nullptr},
      {"http://h:80/case", "h", TargetForm::Invalid, nullptr}, // the authority, as written
      {"http://u@h/case", "h", TargetForm::Invalid, nullptr},
      {"http:///case", "h", TargetForm::Invalid, nullptr},
      {"http://h?q", "h", TargetForm::Invalid, nullptr},
      {"http://h/case", "", TargetForm::Invalid, nullptr},
      {"ftp://h/case", "h", TargetForm::Origin, "ftp://h/case"}, // normalizePath refuses it
  };
  for (const Case& c : cases) {
    INFO(c.target << " with Host " << c.host);
    std::string_view origin;
    CHECK(originFormOf(c.target, c.host, &origin) == c.form);
    if (c.origin != nullptr) {
      CHECK(origin == c.origin);
    }
  }
}
