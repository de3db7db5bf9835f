/*
 * A getaddrinfo interposer for the bind-first test (LD_PRELOAD): a lookup of a name ending in
 * ".slow.sluice.test" blocks until the file named by $SLUICE_TEST_DNS_GATE exists, then answers
 * with the address written in that file (e.g. "127.0.0.1"). Every other name goes to the real
 * getaddrinfo. It stands in for a slow DNS server, which a test cannot run without root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn)(const char*, const char*, const struct addrinfo*, struct addrinfo**);

static int ends_with(const char* s, const char* suffix) {
  size_t n = strlen(s);
  size_t m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int read_gate(const char* path, char* out, size_t cap) {
  FILE* f = fopen(path, "r");
  if (f == NULL) {
    return 0;
  }
  size_t n = fread(out, 1, cap - 1, f);
  fclose(f);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) {
    n--;
  }
  out[n] = '\0';
  return n > 0;
}

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                struct addrinfo** res) {
  static getaddrinfo_fn real = NULL;
  if (real == NULL) {
    real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  }
  const char* gate = getenv("SLUICE_TEST_DNS_GATE");
  if (node == NULL || gate == NULL || !ends_with(node, ".slow.sluice.test")) {
    return real(node, service, hints, res);
  }
  char address[64];
  const struct timespec tick = {0, 10 * 1000 * 1000};
  /* Bounded (60 s) so a forgotten gate cannot hang a process forever. */
  for (int i = 0; i < 6000 && !read_gate(gate, address, sizeof(address)); i++) {
    nanosleep(&tick, NULL);
  }
  struct addrinfo numeric;
  memset(&numeric, 0, sizeof(numeric));
  numeric.ai_family = AF_UNSPEC;
  numeric.ai_socktype = hints != NULL ? hints->ai_socktype : 0;
  numeric.ai_flags = AI_NUMERICHOST;
  if (!read_gate(gate, address, sizeof(address))) {
    return EAI_AGAIN;
  }
  return real(address, service, &numeric, res);
}
