#!/usr/bin/env python3
"""Writes a `tokenizer.json` for GLIP's text tokenizer (bert-base-uncased, lowercasing WordPiece)
from its `vocab.txt`, with Python `tokenizers`' BertWordPieceTokenizer(lowercase=True).

    python3 scripts/make_bert_tokenizer.py ../shared/data/bert-base-uncased-vocab.txt \
        models/bert-base-uncased/tokenizer.json

`odinw prompt` embeds the committed output; rerun this only to rebuild it.
"""
import sys

from tokenizers import BertWordPieceTokenizer


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_bert_tokenizer.py VOCAB_TXT OUT_TOKENIZER_JSON")
    vocab, out = sys.argv[1], sys.argv[2]
    tokenizer = BertWordPieceTokenizer(vocab, lowercase=True)
    tokenizer.save(out, pretty=False)
    print(f"{out}: {tokenizer.get_vocab_size()} tokens")


if __name__ == "__main__":
    main()
