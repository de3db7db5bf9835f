# Every third-party dependency comes from a Debian 12 package (tools/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(LIBHS REQUIRED IMPORTED_TARGET libhs)
find_package(nlohmann_json REQUIRED)
find_package(fmt REQUIRED)

# llhttp (node-llhttp ships C sources, not a library): a static library of its three files.
set(LLHTTP_SRC_DIR /usr/share/llhttp CACHE PATH "llhttp C sources")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp header")
add_library(llhttp STATIC ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c ${LLHTTP_SRC_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
target_compile_options(llhttp PRIVATE -w -O2)
# Strict mode: CRLF after chunk data, no bare LF line ends, no lenient request-line spacing.
# Non-strict llhttp accepts "5\r\nhelloXX0\r\n" as a chunk, a request-smuggling vector.
target_compile_definitions(llhttp PRIVATE LLHTTP_STRICT_MODE=1)

# BoringSSL from android-libboringssl-dev. Never mixed with OpenSSL headers.
set(BORINGSSL_INCLUDE_DIR /usr/include/android CACHE PATH "BoringSSL include root")
set(BORINGSSL_LIB_DIR /usr/lib/x86_64-linux-gnu/android CACHE PATH "BoringSSL libraries")
add_library(boringssl_crypto SHARED IMPORTED)
set_target_properties(boringssl_crypto PROPERTIES IMPORTED_LOCATION ${BORINGSSL_LIB_DIR}/libcrypto.so
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR})
add_library(boringssl_ssl SHARED IMPORTED)
set_target_properties(boringssl_ssl PROPERTIES IMPORTED_LOCATION ${BORINGSSL_LIB_DIR}/libssl.so
  INTERFACE_INCLUDE_DIRECTORIES ${BORINGSSL_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES boringssl_crypto)
list(APPEND CMAKE_BUILD_RPATH ${BORINGSSL_LIB_DIR})
list(APPEND CMAKE_INSTALL_RPATH ${BORINGSSL_LIB_DIR})

if(SLUICE_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
endif()
if(SLUICE_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()
