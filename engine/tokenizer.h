/* tokenizer.h — the CLIP byte-level BPE tokenizer of Stable Diffusion.
 *
 * Reproduces transformers' slow CLIPTokenizer as used without ftfy (the
 * reference kit's `tokenize` case kind, README "Tokenizer"), read entirely
 * from a diffusers `tokenizer/` folder:
 *
 *   vocab.json               token string -> id
 *   merges.txt               "#version" line, then one "a b" merge per line;
 *                            rank = line index after the header (CLIP uses at
 *                            most the first 49152-256-2 = 48894 of them)
 *   tokenizer_config.json    bos/eos/pad/unk token strings ("..." or
 *                            {"content": "..."}), added_tokens_decoder
 *   special_tokens_map.json  fills in what tokenizer_config.json lacks
 *
 * One text becomes ids in six steps:
 *
 *   1. the special and added token strings (bos, eos, pad, unk and those of
 *      added_tokens_decoder) are split out of the raw text, longest first,
 *      case-sensitive; each is one id. The pad token may be an ordinary
 *      string such as "!": then every "!" is that one token.
 *   2. each piece between them is normalised (BasicTokenizer, no ftfy):
 *      U+0000, U+FFFD and category C* dropped (\t \n \r become spaces), Zs
 *      becomes a space, spaces put around CJK ideographs, NFC, split on
 *      whitespace, each word lowercased as Python's str.lower() does (final
 *      sigma, U+0130 -> "i\u0307"), joined by single spaces;
 *   3. pre-tokenised like CLIP's regex <|startoftext|>|<|endoftext|>|'s|'t|
 *      're|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+ (IGNORECASE);
 *   4. each pre-token's UTF-8 bytes mapped through bytes_to_unicode;
 *   5. BPE: "</w>" appended to the last symbol, the lowest-ranked adjacent
 *      pair merged (every occurrence, left to right) until no pair has a
 *      rank; symbols looked up (added tokens, then vocab.json, else unk);
 *   6. framed as one window: [bos] + ids[:75] + [eos], padded to 77 with the
 *      pad id (truncation keeps the eos at position 76).
 *
 * Beyond the kit (vtl_tokenizer_encode_weighted), what users of common UIs
 * (AUTOMATIC1111) expect:
 *
 *   weights   (text) multiplies the weight of its tokens by 1.1, [text] by
 *             1/1.1, (text:1.3) by 1.3; nesting multiplies; a bracket left
 *             open applies to the end of the prompt; an unmatched ) or ] is
 *             literal text; \( \) \[ \] \\ are the literal characters (a
 *             backslash before anything else is dropped). Runs of equal
 *             weight are tokenised as one text, so "\(x\)" reads as "(x)".
 *             "(x:1.2.3)" (not a number; A1111 raises an error) reads the
 *             ":" and the rest as text inside a plain (x...) bracket.
 *   windows   prompts longer than 75 tokens go on in further windows, each
 *             framed by itself: [bos] + up to 75 ids + [eos] + pad. The text
 *             encoder encodes every window and concatenates the hidden
 *             states along the token axis (77 * count tokens).
 *   BREAK     the word BREAK (upper case, standing alone) ends the current
 *             window early. Unlike A1111, a BREAK never makes an empty
 *             window (a BREAK right after another, at the start or at the
 *             end does nothing), and a BREAK inside brackets still breaks
 *             (A1111 turns it into the text "BREAK" with weight -1.1).
 *             A1111's comma backtracking (moving the words after the last
 *             comma into the next window) is not done: windows split
 *             exactly every 75 tokens.
 *
 * Weights are 1.0 at bos, eos and padding. Applying them is the text
 * encoder's job (A1111 scales each hidden state by its weight and then
 * restores the original mean). A prompt without weighting syntax and
 * at most 75 tokens gives exactly vtl_tokenizer_encode's window.
 *
 * Thread safety: encoding fills a per-word cache inside the tokenizer, so
 * calls on one tokenizer must not overlap (one tokenizer per thread, or a
 * lock around it). Loading and freeing touch nothing shared.
 */
#ifndef VTL_TOKENIZER_H
#define VTL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define VTL_TOKENIZER_CTX 77        /* tokens in one window (CLIP positions) */
#define VTL_TOKENIZER_CHUNK 75      /* prompt tokens per window */
#define VTL_TOKENIZER_MAX_TEXT 65536 /* bytes; longer text is VTL_ETOOLONG */

typedef struct vtl_tokenizer vtl_tokenizer;

typedef struct {
  int32_t bos, eos, pad, unk; /* ids of the special tokens */
  int32_t vocab_size;         /* largest known id + 1 */
  int32_t merges;             /* merge ranks in use */
} vtl_tokenizer_info;

/* Windows of a (weighted) prompt: window w is ids[w * 77 .. w * 77 + 76]. */
typedef struct {
  int count;      /* windows, >= 1 */
  int ntokens;    /* prompt tokens over all windows (no bos/eos/pad) */
  int32_t *ids;   /* malloc'd, [count][77] */
  float *weights; /* malloc'd, [count][77]; 1.0 at bos/eos/pad */
} vtl_token_windows;

/* Loads the tokenizer folder dir (vocab.json, merges.txt, and when present
 * tokenizer_config.json, special_tokens_map.json). Returns 0 and sets *out,
 * or a VTL_E* code with a message naming the file and the problem in msg:
 *   1. VTL_ENOENT: vocab.json or merges.txt missing;
 *   2. VTL_EPARSE: a file that is not what it should be (JSON syntax, vocab
 *      not an object of non-negative integer ids, a merge line that is not
 *      two symbols, no merges, invalid UTF-8, a special token missing from
 *      the vocabulary and from added_tokens_decoder);
 *   3. VTL_EIO, VTL_ENOMEM. */
int vtl_tokenizer_load(const char *dir, vtl_tokenizer **out, char *msg,
                       size_t msglen);
/* NULL is a no-op. */
void vtl_tokenizer_free(vtl_tokenizer *tok);

const vtl_tokenizer_info *vtl_tokenizer_get_info(const vtl_tokenizer *tok);
/* The token string of id (vocab.json's key, or the added token's content),
 * or NULL for an id nothing names. Valid until the tokenizer is freed. */
const char *vtl_tokenizer_token_str(const vtl_tokenizer *tok, int32_t id);

/* Steps 1-5 above: the ids of text without bos/eos, untruncated, in *ids
 * (malloc'd, NULL when *n is 0; free it). Returns 0, or VTL_EINVAL (text is
 * not valid UTF-8), VTL_ETOOLONG (over VTL_TOKENIZER_MAX_TEXT bytes),
 * VTL_ENOMEM. */
int vtl_tokenizer_tokenize(vtl_tokenizer *tok, const char *text, int32_t **ids,
                           size_t *n);

/* One window exactly as the reference (step 6): ids[77]. *ntokens, when not
 * NULL, receives the prompt's token count before truncation (more than 75:
 * the window dropped some). Errors as vtl_tokenizer_tokenize. */
int vtl_tokenizer_encode(vtl_tokenizer *tok, const char *text,
                         int32_t ids[VTL_TOKENIZER_CTX], int *ntokens);

/* Weighted, windowed encoding (see "Beyond the kit"). Fills *out (free it
 * with vtl_token_windows_free); an empty prompt gives one window. Errors as
 * vtl_tokenizer_tokenize; *out is zeroed on error. */
int vtl_tokenizer_encode_weighted(vtl_tokenizer *tok, const char *text,
                                  vtl_token_windows *out);
/* Frees ids and weights and zeroes *w. */
void vtl_token_windows_free(vtl_token_windows *w);

#endif /* VTL_TOKENIZER_H */
