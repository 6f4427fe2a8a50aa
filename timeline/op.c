/* op.c — values and ops: construction, copying, freeing. */
#include <stdlib.h>
#include <string.h>

#include "vtl_timeline.h"

void vtl_value_free(vtl_value *v) {
  if (v->type == VTL_FT_STR) free(v->u.s);
  v->u.s = NULL;
}

int vtl_value_copy(vtl_value *dst, const vtl_value *src) {
  *dst = *src;
  if (src->type == VTL_FT_STR) {
    dst->u.s = strdup(src->u.s ? src->u.s : "");
    if (!dst->u.s) return VTL_ENOMEM;
  }
  return 0;
}

void vtl_op_free(vtl_op *op) {
  for (int i = 0; i < op->nfields; i++) vtl_value_free(&op->fields[i].value);
  free(op->fields);
  op->fields = NULL;
  op->nfields = 0;
}

void vtl_ops_free(vtl_op *ops, size_t n) {
  if (!ops) return;
  for (size_t i = 0; i < n; i++) vtl_op_free(&ops[i]);
  free(ops);
}

vtl_op *vtl_op_list_push(vtl_op_list *l) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    vtl_op *ops = realloc(l->ops, cap * sizeof *ops);
    if (!ops) return NULL;
    l->ops = ops;
    l->cap = cap;
  }
  vtl_op *op = &l->ops[l->n++];
  *op = (vtl_op){0};
  return op;
}

int vtl_op_create(vtl_op *op, vtl_entity_kind kind, vtl_id id) {
  *op = (vtl_op){.type = VTL_OP_CREATE, .kind = kind, .id = id};
  return 0;
}

int vtl_op_delete(vtl_op *op, vtl_entity_kind kind, vtl_id id) {
  *op = (vtl_op){.type = VTL_OP_DELETE, .kind = kind, .id = id};
  return 0;
}

/* Appends (field, value) to op; takes ownership of v's string. */
static int op_push(vtl_op *op, const char *field, vtl_value v) {
  int f = vtl_field_lookup(op->kind, field);
  if (f < 0) {
    vtl_value_free(&v);
    return VTL_EINVAL;
  }
  vtl_field_value *nf = realloc(op->fields, (op->nfields + 1) * sizeof *nf);
  if (!nf) {
    vtl_value_free(&v);
    return VTL_ENOMEM;
  }
  op->fields = nf;
  op->fields[op->nfields++] = (vtl_field_value){f, v};
  return 0;
}

static int op_push_str(vtl_op *op, const char *field, const char *s) {
  vtl_value v = {.type = VTL_FT_STR};
  v.u.s = strdup(s ? s : "");
  if (!v.u.s) return VTL_ENOMEM;
  return op_push(op, field, v);
}

#define INT_V(x) ((vtl_value){.type = VTL_FT_INT, .u.i = (x)})
#define REAL_V(x) ((vtl_value){.type = VTL_FT_REAL, .u.r = (x)})
#define BOOL_V(x) ((vtl_value){.type = VTL_FT_BOOL, .u.b = (x)})

int vtl_op_add_int(vtl_op *op, const char *f, int64_t v) {
  return op_push(op, f, INT_V(v));
}
int vtl_op_add_real(vtl_op *op, const char *f, double v) {
  return op_push(op, f, REAL_V(v));
}
int vtl_op_add_bool(vtl_op *op, const char *f, bool v) {
  return op_push(op, f, BOOL_V(v));
}
int vtl_op_add_str(vtl_op *op, const char *f, const char *v) {
  return op_push_str(op, f, v);
}

static void op_set(vtl_op *op, vtl_entity_kind kind, vtl_id id) {
  *op = (vtl_op){.type = VTL_OP_SET, .kind = kind, .id = id};
}

int vtl_op_set_int(vtl_op *op, vtl_entity_kind k, vtl_id id, const char *f,
                   int64_t v) {
  op_set(op, k, id);
  return op_push(op, f, INT_V(v));
}
int vtl_op_set_real(vtl_op *op, vtl_entity_kind k, vtl_id id, const char *f,
                    double v) {
  op_set(op, k, id);
  return op_push(op, f, REAL_V(v));
}
int vtl_op_set_bool(vtl_op *op, vtl_entity_kind k, vtl_id id, const char *f,
                    bool v) {
  op_set(op, k, id);
  return op_push(op, f, BOOL_V(v));
}
int vtl_op_set_str(vtl_op *op, vtl_entity_kind k, vtl_id id, const char *f,
                   const char *v) {
  op_set(op, k, id);
  return op_push_str(op, f, v);
}
