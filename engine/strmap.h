/* strmap.h — an open-addressing hash map from byte strings to int64 values.
 *
 * Made for the tokenizer's tables (token -> id, "a b" merge -> rank, word
 * -> cached BPE result), which are built once and then only read, or grow
 * and are cleared as a whole. There is no delete: clear empties the map.
 *
 * Keys are (pointer, length) byte strings, not necessarily NUL-terminated;
 * the map copies them into its own arena (each stored copy is followed by a
 * NUL, so a stored key can also be read as a C string). Values are plain
 * int64: an id, a rank, or an offset the owner packs itself.
 */
#ifndef VTL_STRMAP_H
#define VTL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vtl_strmap vtl_strmap;

/* Returns a map with room for about `hint` keys before it grows, or NULL
 * when out of memory. */
vtl_strmap *vtl_strmap_create(size_t hint);
/* Frees the map, its slots and every stored key. NULL is a no-op. */
void vtl_strmap_release(vtl_strmap *m);

/* Inserts key -> val, or overwrites the value when key is present (the
 * last write wins, as in a Python dict built from a list). When stored is
 * not NULL it receives the map's own NUL-terminated copy of the key, valid
 * until the map is cleared or released. Returns 0 or VTL_ENOMEM (the map is
 * unchanged then). */
int vtl_strmap_put(vtl_strmap *m, const char *key, size_t len, int64_t val,
                   const char **stored);
/* Returns 1 and sets *val when key is present, 0 when it is not. */
int vtl_strmap_get(const vtl_strmap *m, const char *key, size_t len,
                   int64_t *val);
/* Keys in the map. */
size_t vtl_strmap_count(const vtl_strmap *m);
/* Removes every key, keeps the slot table's size (the key arena is freed
 * but for its first block). */
void vtl_strmap_clear(vtl_strmap *m);

#endif /* VTL_STRMAP_H */
