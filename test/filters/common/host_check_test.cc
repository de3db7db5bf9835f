#include "filters/common/host_check.h"
#include "test/filters/common/fake_host.h"

#include <catch2/catch.hpp>

using sluice::filters::common::hostCompatible;

TEST_CASE("host check: a host of this major with a big enough table is accepted") {
  sluice::testing::FakeHost host;
  CHECK(hostCompatible(host.table(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR,
                       SLUICE_HOST_SIZE_THROUGH(sluice_host_worker_now_ms), "f"));
  CHECK(host.logs().empty());
}

TEST_CASE("host check: another major or a short table is refused and logged") {
  sluice::testing::FakeHost host;
  CHECK_FALSE(hostCompatible(host.table(), SLUICE_ABI_VERSION_MAJOR + 1, 0,
                             SLUICE_HOST_SIZE_THROUGH(sluice_host_log), "myfilter"));
  REQUIRE(host.logs().size() == 1);
  CHECK(host.logs()[0].first == SLUICE_LOG_ERROR);
  CHECK(host.logs()[0].second.find("myfilter: built for C ABI") == 0);
  CHECK(host.logs()[0].second.find("host is 2.0") != std::string::npos);

  sluice_host_t small = *host.table();
  small.size = static_cast<uint32_t>(SLUICE_HOST_SIZE_THROUGH(sluice_host_log));
  CHECK_FALSE(hostCompatible(&small, SLUICE_ABI_VERSION_MAJOR, 0, sizeof(sluice_host_t), "f"));
  CHECK(host.logs().size() == 2);
  CHECK(host.logs()[1].second.find("this filter needs") != std::string::npos);

  small.size = 8; // too short even to log through
  CHECK_FALSE(hostCompatible(&small, SLUICE_ABI_VERSION_MAJOR, 0, sizeof(sluice_host_t), "f"));
  CHECK(host.logs().size() == 2);
  CHECK_FALSE(hostCompatible(nullptr, SLUICE_ABI_VERSION_MAJOR, 0, 0, "f"));
}
