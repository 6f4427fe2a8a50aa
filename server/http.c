/* http.c — plain HTTP on the websocket port: the web client's static files,
 * /metrics, and the Origin check of websocket upgrades.
 *
 *   GET /metrics      Prometheus text (metrics.c)
 *   GET /<path>       a file under the web root (--web DIR, default
 *                     clients/web/); a directory serves its index.html
 *
 * Path rules, checked on the path lws hands us (already %-decoded; lws also
 * folds "/../" itself, these checks do not rely on it):
 *   1. it must start with '/' and be shorter than PATH_MAX_URI: else 404;
 *   2. a segment "." or "..", a backslash or a control byte: 403;
 *   3. a segment starting with '.' (".git", ".env"): 404, hidden;
 *   4. realpath() of the file must lie inside realpath(web root), so a
 *      symlink cannot lead out: else 403; a missing file: 404;
 *   5. only regular files are served (a directory: its index.html).
 * Content types come from one table keyed by extension; anything else is
 * application/octet-stream, and every file goes out with
 * X-Content-Type-Options: nosniff.
 *
 * Origin allow-list (--origin URL, repeatable). Without it every upgrade
 * is accepted, as before. With it an upgrade is accepted when
 *   1. it has no Origin header (not a browser: vtl-tui, workers, tests), or
 *   2. its Origin is same-origin: scheme://host equals the Host header
 *      (the web client served by this very server), or
 *   3. its Origin equals an allowed URL (case-insensitive, a trailing '/'
 *      ignored).
 * Anything else is refused before the upgrade (the client sees an HTTP
 * error, no websocket). Rule 2 trusts Host, so a DNS-rebinding page passes
 * it; the room token still decides what a session may do.
 */
#define _DEFAULT_SOURCE /* realpath, strcasecmp */
#include "http.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "metrics.h"
#include "server.h"

#define PATH_MAX_URI 1024

static const struct {
  const char *ext, *type;
} mime_types[] = {
  {"html", "text/html; charset=utf-8"},
  {"htm", "text/html; charset=utf-8"},
  {"js", "text/javascript; charset=utf-8"},
  {"mjs", "text/javascript; charset=utf-8"},
  {"css", "text/css; charset=utf-8"},
  {"json", "application/json"},
  {"map", "application/json"},
  {"webmanifest", "application/manifest+json"},
  {"wasm", "application/wasm"},
  {"svg", "image/svg+xml"},
  {"png", "image/png"},
  {"jpg", "image/jpeg"},
  {"jpeg", "image/jpeg"},
  {"gif", "image/gif"},
  {"webp", "image/webp"},
  {"ico", "image/x-icon"},
  {"txt", "text/plain; charset=utf-8"},
  {"woff2", "font/woff2"},
  {"woff", "font/woff"},
  {"proto", "text/plain; charset=utf-8"},
};

const char *vtl_http_mime(const char *path) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (dot && (!slash || dot > slash))
    for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
      if (strcasecmp(dot + 1, mime_types[i].ext) == 0) return mime_types[i].type;
  return "application/octet-stream";
}

/* Rules 1-3 of the header comment: 0 ok, else the HTTP status. */
int vtl_http_path_check(const char *uri) {
  size_t n = strlen(uri);
  if (uri[0] != '/' || n >= PATH_MAX_URI) return 404;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)uri[i] < 0x20 || uri[i] == 0x7f || uri[i] == '\\')
      return 403;
  for (const char *seg = uri + 1; *seg;) {
    const char *end = strchr(seg, '/');
    size_t len = end ? (size_t)(end - seg) : strlen(seg);
    if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
      return 403;
    if (len && seg[0] == '.') return 404;
    if (!end) break;
    seg = end + 1;
  }
  return 0;
}

/* Resolves uri under root (rule 4-5) into out (PATH_MAX). 0 or a status. */
static int resolve(const char *root, const char *uri, char *out) {
  char path[PATH_MAX + PATH_MAX_URI + 16];
  struct stat st;
  snprintf(path, sizeof path, "%s%s", root, uri);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    strncat(path, path[strlen(path) - 1] == '/' ? "index.html" : "/index.html",
            sizeof path - strlen(path) - 1);
  if (!realpath(path, out)) return 404;
  size_t rn = strlen(root);
  if (strncmp(out, root, rn) != 0 || out[rn] != '/') return 403;
  if (stat(out, &st) != 0) return 404;
  if (!S_ISREG(st.st_mode)) return 404;
  return 0;
}

static int finish(struct lws *wsi) {
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int status_page(struct lws *wsi, unsigned code) {
  if (lws_return_http_status(wsi, code, NULL)) return -1;
  return finish(wsi);
}

static int serve_metrics(struct lws *wsi, vtl_server *sv) {
  char *body;
  size_t len;
  if (vtl_metrics_render(sv, &body, &len)) return status_page(wsi, 500);
  uint8_t hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
                              *end = hdr + sizeof hdr - 1;
  int rc = -1;
  if (!lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
                                   "text/plain; version=0.0.4; charset=utf-8",
                                   len, &p, end) &&
      !lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                    (const unsigned char *)"no-store", 8, &p,
                                    end) &&
      !lws_finalize_write_http_header(wsi, start, &p, end)) {
    uint8_t *b = malloc(LWS_PRE + len + 1);
    if (b) {
      memcpy(b + LWS_PRE, body, len);
      /* lws keeps what the socket does not take now and sends it later */
      if (lws_write(wsi, b + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) == (int)len)
        rc = finish(wsi);
      free(b);
    }
  }
  free(body);
  return rc;
}

int vtl_http_serve(struct lws *wsi, vtl_server *sv, const char *uri) {
  vtl_metrics_add(VTL_M_HTTP_REQUESTS, 1);
  if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
    return status_page(wsi, 405); /* POST, PUT, ... */
  if (strcmp(uri, "/metrics") == 0) return serve_metrics(wsi, sv);
  int code = vtl_http_path_check(uri);
  if (code) return status_page(wsi, (unsigned)code);
  if (!sv->cfg.web_root) return status_page(wsi, 404);
  char file[PATH_MAX];
  code = resolve(sv->cfg.web_root, uri, file);
  if (code) return status_page(wsi, (unsigned)code);
  static const char extra[] = "X-Content-Type-Options: nosniff\r\n"
                              "Cache-Control: no-cache\r\n";
  int n = lws_serve_http_file(wsi, file, vtl_http_mime(file), extra,
                              (int)sizeof extra - 1);
  if (n < 0) return -1;
  if (n > 0) return finish(wsi);
  return 0; /* sending; LWS_CALLBACK_HTTP_FILE_COMPLETION ends it */
}

int vtl_http_file_done(struct lws *wsi) { return finish(wsi); }

/* ---- Origin ------------------------------------------------------------------ */

/* "scheme://host[:port]" without a trailing '/', lowercased, into out. */
static void origin_norm(const char *in, char *out, size_t cap) {
  size_t n = strlen(in);
  while (n && in[n - 1] == '/') n--;
  if (n >= cap) n = cap - 1;
  for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)in[i]);
  out[n] = '\0';
}

bool vtl_http_origin_ok(const vtl_server *sv, struct lws *wsi) {
  if (!sv->cfg.norigins) return true;
  char origin[512], host[512], a[512], b[512];
  if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0) return true; /* 1 */
  if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
    return false;
  origin_norm(origin, a, sizeof a);
  const char *sep = strstr(a, "://");
  if (sep && lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0) {
    origin_norm(host, b, sizeof b);
    if (strcmp(sep + 3, b) == 0) return true; /* 2 */
  }
  for (size_t i = 0; i < sv->cfg.norigins; i++) {
    origin_norm(sv->cfg.origins[i], b, sizeof b);
    if (strcmp(a, b) == 0) return true; /* 3 */
  }
  return false;
}
