/* http.h — plain HTTP beside the websocket: static files of the web client,
 * /metrics, and the Origin allow-list of upgrades (rules: http.c). Loop
 * thread only; called from ws.c's protocol callback.
 */
#ifndef VTL_HTTP_H
#define VTL_HTTP_H

#include <stdbool.h>

#include <libwebsockets.h>

typedef struct vtl_server vtl_server;

/* LWS_CALLBACK_HTTP: answers GET `uri` (lws' decoded path). Returns what
 * the callback returns (0, or -1 to close the connection). */
int vtl_http_serve(struct lws *wsi, vtl_server *sv, const char *uri);
/* LWS_CALLBACK_HTTP_FILE_COMPLETION: ends the transaction (0 or -1). */
int vtl_http_file_done(struct lws *wsi);
/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: may this upgrade's Origin
 * connect? Always true without --origin. */
bool vtl_http_origin_ok(const vtl_server *sv, struct lws *wsi);

/* Exposed for tests: the content type of a file name, and the path rules
 * 1-3 of http.c (0 = acceptable, else an HTTP status). */
const char *vtl_http_mime(const char *path);
int vtl_http_path_check(const char *uri);

#endif /* VTL_HTTP_H */
