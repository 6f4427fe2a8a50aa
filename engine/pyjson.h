/* pyjson.h — JSON written by Python (model configs, reference kits). */
#ifndef VTL_PYJSON_H
#define VTL_PYJSON_H

#include <jansson.h>
#include <stddef.h>

/* Loads a JSON file written by Python's json module, whose bare Infinity,
 * -Infinity and NaN literals (e.g. DPM-Solver's "lambda_min_clipped":
 * -Infinity) jansson refuses: outside strings they are read as the strings
 * "Infinity", "-Infinity", "NaN". Returns 0 with *out a new reference, or
 * VTL_EIO / VTL_EPARSE / VTL_ENOMEM with msg set. */
int vtl_json_load_python(const char *path, json_t **out, char *msg,
                         size_t msglen);

#endif /* VTL_PYJSON_H */
