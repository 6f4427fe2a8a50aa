/* auth.c — room tokens.
 *
 * A token is "vtd_" (director) or "vtv_" (viewer) followed by 48 hex digits
 * of getrandom() output (192 bits). Only its SHA-256 is stored (tokens
 * table, store.c); a presented token is hashed and compared with every hash
 * of the room in constant time, so neither the database nor the timing of
 * a refusal tells anything about a valid token.
 */
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "server.h"

int vtl_auth_token_new(int role, char *buf, size_t len) {
  uint8_t rnd[24];
  size_t got = 0;
  while (got < sizeof rnd) {
    ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
    if (n <= 0) return VTL_EIO;
    got += (size_t)n;
  }
  if (len < 4 + 2 * sizeof rnd + 1) return VTL_EINVAL;
  memcpy(buf, role == VTL__V1__ROLE__ROLE_DIRECTOR ? "vtd_" : "vtv_", 4);
  for (size_t i = 0; i < sizeof rnd; i++) {
    static const char hex[] = "0123456789abcdef";
    buf[4 + 2 * i] = hex[rnd[i] >> 4];
    buf[5 + 2 * i] = hex[rnd[i] & 15];
  }
  buf[4 + 2 * sizeof rnd] = '\0';
  return 0;
}

void vtl_auth_hash(const char *token, uint8_t out[VTL_TOKEN_HASH_BYTES]) {
  unsigned n = 0;
  EVP_Digest(token, strlen(token), out, &n, EVP_sha256(), NULL);
}

bool vtl_auth_equal(const uint8_t *a, const uint8_t *b) {
  return CRYPTO_memcmp(a, b, VTL_TOKEN_HASH_BYTES) == 0;
}
