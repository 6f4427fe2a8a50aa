"""bpe.py — the default model's own CLIP tokenizer: byte-level BPE merges
learned from the caption vocabulary until every word is one token, written
as a diffusers tokenizer/ folder (vocab.json, merges.txt,
tokenizer_config.json, special_tokens_map.json) that the engine's CLIP
tokenizer reads like any Stable Diffusion checkpoint's. Words outside the
vocabulary still tokenize, into pieces and single characters.

encode() is CLIP's tokenization for the plain lower-case ASCII captions the
dataset writes (the engine's tokenizer.c does the full Unicode version).
"""
import json
import os
import re

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LEN = 77


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def learn_merges(words):
    """Most frequent adjacent pair first (ties: smallest pair), until every
    word is a single symbol."""
    seqs = [tuple(w[:-1]) + (w[-1] + "</w>",) for w in words]
    merges = []
    while True:
        counts = {}
        for s in seqs:
            for p in zip(s, s[1:]):
                counts[p] = counts.get(p, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        out = []
        for s in seqs:
            r, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    r.append(s[i] + s[i + 1])
                    i += 2
                else:
                    r.append(s[i])
                    i += 1
            out.append(tuple(r))
        seqs = out


class Tokenizer:
    def __init__(self, words):
        b2u = bytes_to_unicode()
        base = list(b2u.values())
        self.merges = learn_merges(words)
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in self.merges] + [BOS, EOS]
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.cache = {}

    def bpe(self, word):
        s = list(word[:-1]) + [word[-1] + "</w>"]
        while len(s) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(s, s[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            first, second = self.merges[r]
            out, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == first and s[j + 1] == second:
                    out.append(first + second)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            s = out
        return s

    def encode(self, text):
        """[bos] + ids[:75] + [eos], padded to 77 with eos (SD 1.x's pad)."""
        if text in self.cache:
            return self.cache[text]
        ids = []
        for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", " ".join(text.lower().split())):
            ids += [self.vocab[t] for t in self.bpe(w)]
        ids = [self.vocab[BOS]] + ids[:MAX_LEN - 2] + [self.vocab[EOS]]
        ids += [self.vocab[EOS]] * (MAX_LEN - len(ids))
        self.cache[text] = ids
        return ids

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "vocab.json"), "w") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        with open(os.path.join(folder, "merges.txt"), "w") as f:
            f.write("#version: 0.2 - learned by tools/train-tiny/bpe.py\n")
            for a, b in self.merges:
                f.write(f"{a} {b}\n")
        special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
        with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
            json.dump(special, f, indent=2)
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(dict(special, model_max_length=MAX_LEN, do_lower_case=True,
                           tokenizer_class="CLIPTokenizer"), f, indent=2)
