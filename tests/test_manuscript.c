/* test_manuscript.c — films from plain text (timeline/manuscript.c). */
#include "task.h"
#include "vtl_import.h"

/* Three paragraphs: extra blank lines, a blank line holding spaces, a
 * paragraph wrapped over lines, abbreviations, initials, quotes after the
 * punctuation, an ellipsis, non-ASCII. */
static const char text[] =
  "The lighthouse keeper woke before dawn. Mr. Alves climbed the stairs, "
  "counting each step \xe2\x80\x94 ninety-one, as always. Was the lamp still "
  "burning? It was!\n"
  "\n\n"
  "Outside, the sea had turned the colour of slate, e.g. the grey of old "
  "roofs. \xe2\x80\x9cStorm,\xe2\x80\x9d he said. \xe2\x80\x9c" "Again\xe2\x80\xa6"
  "\xe2\x80\x9d The gulls agreed.\n"
  "   \n"
  "By noon J. R. Alves had written three pages in the log.\n"
  "He wrote about the light, the water, and the caf\xc3\xa9 in the village\n"
  "where nobody   ever asked about the sea.\n";

static const char *const sentences[] = {
  "The lighthouse keeper woke before dawn.",
  "Mr. Alves climbed the stairs, counting each step \xe2\x80\x94 ninety-one, "
  "as always.",
  "Was the lamp still burning?",
  "It was!",
  "Outside, the sea had turned the colour of slate, e.g. the grey of old "
  "roofs.",
  "\xe2\x80\x9cStorm,\xe2\x80\x9d he said.",
  "\xe2\x80\x9c" "Again\xe2\x80\xa6\xe2\x80\x9d",
  "The gulls agreed.",
  "By noon J. R. Alves had written three pages in the log.",
  "He wrote about the light, the water, and the caf\xc3\xa9 in the village "
  "where nobody ever asked about the sea.",
  NULL};

static size_t words(const char *s) {
  size_t n = 1;
  for (; *s; s++) n += *s == ' ';
  return n;
}

/* round(max(min_s, words / wps) * fps), as documented in manuscript.c */
static int64_t frames_for(const char *s, double fps, double wps, double min_s) {
  return llround(fmax(min_s, (double)words(s) / wps) * fps);
}

static const vtl_prompt_clip *clip(vtl_doc *doc, size_t i) {
  size_t n;
  const void *const *c = vtl_doc_list(doc, VTL_ENT_PROMPT_CLIP, &n);
  return i < n ? c[i] : NULL;
}

static const vtl_marker *marker(vtl_doc *doc, size_t i) {
  size_t n;
  const void *const *m = vtl_doc_list(doc, VTL_ENT_MARKER, &n);
  return i < n ? m[i] : NULL;
}

static double weight_of(const vtl_params *p, const char *prompt) {
  for (int i = 0; i < p->nprompts; i++)
    if (strcmp(p->prompts[i].text, prompt) == 0) return p->prompts[i].weight;
  return 0;
}

TEST_IMPL(manuscript_sentences) {
  vtl_doc *doc;
  vtl_error err;
  ASSERT_OK(vtl_manuscript_import(text, strlen(text), NULL, &doc, &err));
  const vtl_timeline *tl = vtl_doc_timeline(doc);
  ASSERT_NEAR(tl->fps, 12, 0);
  ASSERT_STR_EQ(tl->name, "The lighthouse keeper woke before dawn\xe2\x80\xa6");
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_TRACK), 1);
  const vtl_track *t = vtl_doc_get(doc, VTL_ENT_TRACK, 2);
  ASSERT_NOT_NULL(t);
  ASSERT_EQ(t->target, VTL_TARGET_PROMPT);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_PROMPT_CLIP), 10);
  int64_t start = 0;
  for (size_t i = 0; sentences[i]; i++) {
    const vtl_prompt_clip *c = clip(doc, i);
    ASSERT_EQ(c->id, 3 + i);
    ASSERT_EQ(c->track, 2);
    ASSERT_STR_EQ(c->text, sentences[i]);
    ASSERT_EQ(c->start, start);
    int64_t d = frames_for(sentences[i], 12, 2.5, 2);
    int64_t fade = sentences[i + 1] ? 6 : 0; /* fps / 2 */
    ASSERT_EQ(c->end, start + d + fade);
    ASSERT_EQ(c->fade_out, fade);
    ASSERT_EQ(c->fade_in, i ? 6 : 0);
    start += d;
  }
  ASSERT_EQ(tl->length, start);
  /* a marker at each paragraph's first frame, labelled with its first words */
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_MARKER), 3);
  static const struct { size_t clip; const char *label; } m[] = {
    {0, "The lighthouse keeper woke before dawn\xe2\x80\xa6"},
    {4, "Outside, the sea had turned the\xe2\x80\xa6"},
    {8, "By noon J. R. Alves had\xe2\x80\xa6"}};
  for (size_t i = 0; i < 3; i++) {
    ASSERT_EQ(marker(doc, i)->frame, clip(doc, m[i].clip)->start);
    ASSERT_STR_EQ(marker(doc, i)->label, m[i].label);
  }
  ASSERT_STR_EQ(marker(doc, 2)->note, "paragraph 3");
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(manuscript_paragraphs) {
  vtl_manuscript_options o = {.fps = 24, .split = VTL_SPLIT_PARAGRAPH,
                              .words_per_sec = 3, .min_seconds = 1, .fade = 12};
  vtl_doc *doc;
  vtl_error err;
  ASSERT_OK(vtl_manuscript_import(text, strlen(text), &o, &doc, &err));
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_PROMPT_CLIP), 3);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_MARKER), 3);
  static const int first[] = {0, 4, 8, 10};
  int64_t start = 0;
  for (int p = 0; p < 3; p++) {
    char want[1024] = "";
    for (int s = first[p]; s < first[p + 1]; s++) {
      if (s > first[p]) strcat(want, " ");
      strcat(want, sentences[s]);
    }
    const vtl_prompt_clip *c = clip(doc, p);
    ASSERT_STR_EQ(c->text, want);
    ASSERT_EQ(c->start, start);
    ASSERT_EQ(marker(doc, p)->frame, start);
    start += frames_for(want, 24, 3, 1);
  }
  ASSERT_EQ(vtl_doc_timeline(doc)->length, start);
  ASSERT_EQ(clip(doc, 2)->end, start);
  vtl_doc_free(doc);
  return 0;
}

/* Clip lengths follow the word counts: 10, 20, 40 words at 2.5 words/s. */
TEST_IMPL(manuscript_durations) {
  char t[1024] = "";
  static const int n[] = {10, 20, 40};
  for (int s = 0; s < 3; s++) {
    for (int w = 0; w < n[s]; w++) strcat(t, w ? " word" : "Word");
    strcat(t, ". ");
  }
  vtl_manuscript_options o = {.fps = 10, .min_seconds = 1};
  vtl_doc *doc;
  vtl_error err;
  ASSERT_OK(vtl_manuscript_import(t, strlen(t), &o, &doc, &err));
  ASSERT_EQ(clip(doc, 0)->start, 0);
  ASSERT_EQ(clip(doc, 1)->start, 40);
  ASSERT_EQ(clip(doc, 2)->start, 40 + 80);
  ASSERT_EQ(vtl_doc_timeline(doc)->length, 40 + 80 + 160);
  vtl_doc_free(doc);
  /* min_seconds holds short sentences */
  const char *shortt = "Yes. No. Maybe so.";
  ASSERT_OK(vtl_manuscript_import(shortt, strlen(shortt), NULL, &doc, &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->length, 3 * 24);
  vtl_doc_free(doc);
  return 0;
}

/* Across a boundary the two prompts' weights sum to 1 and move linearly. */
TEST_IMPL(manuscript_crossfade) {
  const char *a = "One two three four five six seven eight nine ten.";
  const char *b = "Alpha beta gamma delta epsilon zeta eta theta iota kappa.";
  char t[256];
  snprintf(t, sizeof t, "%s %s", a, b);
  vtl_manuscript_options o = {.fps = 10, .fade = 8};
  vtl_doc *doc;
  vtl_error err;
  ASSERT_OK(vtl_manuscript_import(t, strlen(t), &o, &doc, &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->length, 80);
  vtl_params p;
  ASSERT_OK(vtl_params_at(doc, 39, &p));
  ASSERT_EQ(p.nprompts, 1);
  ASSERT_NEAR(weight_of(&p, a), 1, 0);
  double prev = -1;
  for (int64_t f = 40; f < 48; f++) {
    ASSERT_OK(vtl_params_at(doc, f, &p));
    ASSERT_EQ(p.nprompts, f == 40 ? 1 : 2); /* weight 0 is left out */
    double wa = weight_of(&p, a), wb = weight_of(&p, b);
    ASSERT_NEAR(wa + wb, 1, 1e-12);
    ASSERT_NEAR(wb, (double)(f - 40) / 8, 1e-12);
    if (prev >= 0) ASSERT_NEAR(wb - prev, 1.0 / 8, 1e-12);
    prev = wb;
  }
  ASSERT_OK(vtl_params_at(doc, 48, &p));
  ASSERT_EQ(p.nprompts, 1);
  ASSERT_NEAR(weight_of(&p, b), 1, 0);
  vtl_doc_free(doc);
  /* fade longer than the next clip: cut down to it */
  o.fade = 1000;
  ASSERT_OK(vtl_manuscript_import(t, strlen(t), &o, &doc, &err));
  ASSERT_EQ(clip(doc, 0)->fade_out, 40);
  ASSERT_EQ(clip(doc, 0)->end, 80);
  vtl_doc_free(doc);
  /* negative: hard cuts */
  o.fade = -1;
  ASSERT_OK(vtl_manuscript_import(t, strlen(t), &o, &doc, &err));
  ASSERT_EQ(clip(doc, 0)->end, 40);
  ASSERT_EQ(clip(doc, 1)->fade_in, 0);
  vtl_doc_free(doc);
  return 0;
}

/* CRLF, lone CR and a BOM give the same document as LF. */
TEST_IMPL(manuscript_line_ends) {
  char crlf[sizeof text * 2 + 3] = "\xef\xbb\xbf", cr[sizeof text];
  size_t n = 3, m = 0;
  for (const char *s = text; *s; s++) {
    if (*s == '\n') crlf[n++] = '\r';
    crlf[n++] = *s;
    cr[m++] = *s == '\n' ? '\r' : *s;
  }
  vtl_doc *d1, *d2, *d3;
  vtl_error err;
  char *j1, *j2, *j3;
  ASSERT_OK(vtl_manuscript_import(text, strlen(text), NULL, &d1, &err));
  ASSERT_OK(vtl_manuscript_import(crlf, n, NULL, &d2, &err));
  ASSERT_OK(vtl_manuscript_import(cr, m, NULL, &d3, &err));
  ASSERT_OK(vtl_json_export(d1, &j1));
  ASSERT_OK(vtl_json_export(d2, &j2));
  ASSERT_OK(vtl_json_export(d3, &j3));
  ASSERT_STR_EQ(j1, j2);
  ASSERT_STR_EQ(j1, j3);
  free(j1);
  free(j2);
  free(j3);
  vtl_doc_free(d1);
  vtl_doc_free(d2);
  vtl_doc_free(d3);
  return 0;
}

static int count_sentences(const char *t, size_t *n) {
  vtl_doc *doc;
  vtl_error err;
  int rc = vtl_manuscript_import(t, strlen(t), NULL, &doc, &err);
  if (rc) return rc;
  *n = vtl_doc_count(doc, VTL_ENT_PROMPT_CLIP);
  vtl_doc_free(doc);
  return 0;
}

TEST_IMPL(manuscript_abbreviations) {
  const char *t =
    "Mr. Smith met Dr. Jones on Baker St. near the station. They talked "
    "about books, e.g. those by J. R. R. Tolkien (and i.e. his maps). Then "
    "they left! Did they?! Yes... they did.\n\n"
    "1. Dawn comes early. 2. Night falls.\n\n"
    "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xab\xe8\xa1\x8c\xe3\x81\x8d\xe3\x81\xbe"
    "\xe3\x81\x97\xe3\x81\x9f\xe3\x80\x82\xe3\x81\x9d\xe3\x82\x8c\xe3\x81\x8b"
    "\xe3\x82\x89\xe4\xba\xac\xe9\x83\xbd\xe3\x81\xb8\xe3\x80\x82";
  vtl_doc *doc;
  vtl_error err;
  ASSERT_OK(vtl_manuscript_import(t, strlen(t), NULL, &doc, &err));
  static const char *const want[] = {
    "Mr. Smith met Dr. Jones on Baker St. near the station.",
    "They talked about books, e.g. those by J. R. R. Tolkien (and i.e. his "
    "maps).",
    "Then they left!", "Did they?!", "Yes...", "they did.",
    "1. Dawn comes early.", "2. Night falls.",
    "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xab\xe8\xa1\x8c\xe3\x81\x8d\xe3\x81\xbe"
    "\xe3\x81\x97\xe3\x81\x9f\xe3\x80\x82",
    "\xe3\x81\x9d\xe3\x82\x8c\xe3\x81\x8b\xe3\x82\x89\xe4\xba\xac\xe9\x83\xbd"
    "\xe3\x81\xb8\xe3\x80\x82",
    NULL};
  size_t i = 0;
  for (; want[i]; i++) ASSERT_STR_EQ(clip(doc, i)->text, want[i]);
  ASSERT_EQ(vtl_doc_count(doc, VTL_ENT_PROMPT_CLIP), i);
  vtl_doc_free(doc);
  /* not abbreviations: these end sentences */
  size_t n;
  ASSERT_OK(count_sentences("It cost a lot, etc. We paid. He said no. Fine.", &n));
  ASSERT_EQ(n, 4);
  ASSERT_OK(count_sentences("Pi is 3.14 or so. \"Really?\" she asked.", &n));
  ASSERT_EQ(n, 3);
  return 0;
}

TEST_IMPL(manuscript_errors) {
  vtl_doc *doc = NULL;
  vtl_error err;
  static const char *const empty[] = {"", "   \n\n\t  \r\n", "\xef\xbb\xbf",
                                      "\xef\xbb\xbf \r\n\r\n "};
  for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
    ASSERT_EQ(vtl_manuscript_import(empty[i], strlen(empty[i]), NULL, &doc,
                                    &err), VTL_EINVAL);
    ASSERT_STR_EQ(err.message, "manuscript: no text");
  }
  ASSERT_EQ(vtl_manuscript_import(NULL, 0, NULL, &doc, &err), VTL_EINVAL);
  const char *bad = "Hello.\r\nWorld \xff.";
  ASSERT_EQ(vtl_manuscript_import(bad, strlen(bad), NULL, &doc, &err),
            VTL_EINVAL);
  ASSERT_STR_EQ(err.message, "manuscript: line 2: not valid UTF-8");
  const char *surrogate = "A\n\nB \xed\xa0\x80.";
  ASSERT_EQ(vtl_manuscript_import(surrogate, strlen(surrogate), NULL, &doc,
                                  &err), VTL_EINVAL);
  ASSERT_STR_EQ(err.message, "manuscript: line 3: not valid UTF-8");
  vtl_manuscript_options o = {.fps = 500};
  ASSERT_EQ(vtl_manuscript_import("Hi.", 3, &o, &doc, &err), VTL_ERANGE);
  ASSERT_STR_EQ(err.message, "manuscript: fps 500 is outside 1..240");
  o = (vtl_manuscript_options){.fps = NAN};
  ASSERT_EQ(vtl_manuscript_import("Hi.", 3, &o, &doc, &err), VTL_ERANGE);
  o = (vtl_manuscript_options){.words_per_sec = -1};
  ASSERT_EQ(vtl_manuscript_import("Hi.", 3, &o, &doc, &err), VTL_ERANGE);
  o = (vtl_manuscript_options){.split = (vtl_split)7};
  ASSERT_EQ(vtl_manuscript_import("Hi.", 3, &o, &doc, &err), VTL_EINVAL);
  ASSERT_NULL(doc);
  return 0;
}

/* A text that needs more than VTL_MAX_FRAMES frames or VTL_MAX_CLIPS clips
 * is refused whole; over-long clip texts are cut at a word boundary. */
TEST_IMPL(manuscript_huge) {
  size_t cap = 20000 * 6 + 1;
  char *t = malloc(cap);
  ASSERT_NOT_NULL(t);
  t[0] = '\0';
  size_t n = 0;
  for (int i = 0; i < 2100; i++) n += (size_t)sprintf(t + n, "A b c d. ");
  vtl_manuscript_options o = {.fps = 240};
  vtl_doc *doc = NULL;
  vtl_error err;
  ASSERT_EQ(vtl_manuscript_import(t, n, &o, &doc, &err), VTL_ERANGE);
  ASSERT_STR_EQ(err.message, "manuscript: sentence 2084 of 2100 would make "
                "the film longer than 1000000 frames at 240 fps; raise "
                "words_per_sec or lower fps");
  ASSERT_NULL(doc);
  /* at 12 fps the same text fits: 2100 clips of 24 frames */
  o.fps = 12;
  ASSERT_OK(vtl_manuscript_import(t, n, &o, &doc, &err));
  ASSERT_EQ(vtl_doc_timeline(doc)->length, 2100 * 24);
  vtl_doc_free(doc);
  doc = NULL;
  n = 0;
  for (int i = 0; i <= VTL_MAX_CLIPS; i++) n += (size_t)sprintf(t + n, "Go. ");
  o.fps = 1;
  ASSERT_EQ(vtl_manuscript_import(t, n, &o, &doc, &err), VTL_ELIMIT);
  ASSERT_NULL(doc);
  /* a paragraph of 8999 bytes: cut after a whole "café" */
  n = 0;
  for (int i = 0; i < 1500; i++)
    n += (size_t)sprintf(t + n, "%scaf\xc3\xa9", i ? " " : "");
  o = (vtl_manuscript_options){.split = VTL_SPLIT_PARAGRAPH};
  ASSERT_OK(vtl_manuscript_import(t, n, &o, &doc, &err));
  const char *c = clip(doc, 0)->text;
  size_t cl = strlen(c);
  ASSERT_LE(cl, VTL_MAX_TEXT);
  ASSERT_GT(cl, VTL_MAX_TEXT - 6);
  ASSERT(strncmp(c, t, cl) == 0 && t[cl] == ' ');
  /* reading time is the whole paragraph's: 1500 words at 2.5 words/s */
  ASSERT_EQ(vtl_doc_timeline(doc)->length, 600 * 12);
  vtl_doc_free(doc);
  /* one word of 5000 two-byte letters: cut on a character boundary */
  n = 0;
  for (int i = 0; i < 5000; i++) n += (size_t)sprintf(t + n, "\xc3\xa9");
  ASSERT_OK(vtl_manuscript_import(t, n, &o, &doc, &err));
  ASSERT_EQ(strlen(clip(doc, 0)->text), VTL_MAX_TEXT);
  vtl_doc_free(doc);
  free(t);
  return 0;
}

TEST_LIST(
  TEST_ENTRY(manuscript_sentences)
  TEST_ENTRY(manuscript_paragraphs)
  TEST_ENTRY(manuscript_durations)
  TEST_ENTRY(manuscript_crossfade)
  TEST_ENTRY(manuscript_line_ends)
  TEST_ENTRY(manuscript_abbreviations)
  TEST_ENTRY(manuscript_errors)
  TEST_ENTRY(manuscript_huge)
)
