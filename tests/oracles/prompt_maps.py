#!/usr/bin/env python3
"""Oracle for prompts: GLIP's inference query and positive map for every task of ODinW-35 and
ODinW-13, with and without CAPTION_PROMPT, written from the protocol (clean_name,
create_queries_and_maps, create_positive_dict) and tokenized with Python `tokenizers`'
BertWordPieceTokenizer(lowercase=True) built from the vocab file.

    prompt_maps.py VOCAB_TXT REPO_ROOT  ->  JSON on stdout:
    {"odinw35/Aquarium/prompt": {"caption": ..., "num_tokens": N, "classes": [[id, [tokens]], ...]}, ...}
"""
import glob
import json
import os
import re
import sys

from tokenizers import BertWordPieceTokenizer


def clean_name(name):
    name = re.sub(r"\(.*\)", "", name)
    name = re.sub(r"_", " ", name)
    name = re.sub(r"  ", " ", name)
    return name


def create_queries_and_maps(labels, label_list, prompt):
    """GLIP's engine/inference.py, separation tokens '. '."""
    separation_tokens = ". "
    objects_query = ""
    tokens_positive = []
    for i, _ in enumerate(labels):
        if prompt is not None:
            objects_query += prompt[i]["prefix"]
        start_i = len(objects_query)
        objects_query += prompt[i]["name"] if prompt is not None else label_list[i]
        end_i = len(objects_query)
        tokens_positive.append([(start_i, end_i)])
        if prompt is not None:
            objects_query += prompt[i]["suffix"]
        if i != len(labels) - 1:
            objects_query += separation_tokens
    return objects_query, tokens_positive


def char_to_token(encoding, pos):
    # Negative positions raise in tokenizers (they must fit an unsigned int), as in GLIP.
    return encoding.char_to_token(pos)


def create_positive_dict(encoding, tokens_positive, labels):
    positive = {}
    for j, tok_list in enumerate(tokens_positive):
        for beg, end in tok_list:
            beg_pos = char_to_token(encoding, beg)
            end_pos = char_to_token(encoding, end - 1)
            if beg_pos is None:
                try:
                    beg_pos = char_to_token(encoding, beg + 1)
                    if beg_pos is None:
                        beg_pos = char_to_token(encoding, beg + 2)
                except Exception:
                    beg_pos = None
            if end_pos is None:
                try:
                    end_pos = char_to_token(encoding, end - 2)
                    if end_pos is None:
                        end_pos = char_to_token(encoding, end - 3)
                except Exception:
                    end_pos = None
            if beg_pos is None or end_pos is None:
                continue
            positive[labels[j]] = list(range(beg_pos, end_pos + 1))
    return positive


def main():
    vocab, repo = sys.argv[1], sys.argv[2]
    tokenizer = BertWordPieceTokenizer(vocab, lowercase=True)
    out = {}
    for suite, folder in (("odinw35", "odinw_35"), ("odinw13", "odinw_13")):
        for path in sorted(glob.glob(os.path.join(repo, folder, "*.json"))):
            with open(path) as f:
                task = json.load(f)
            cats = sorted(task["categories"], key=lambda c: c["id"])
            labels = [c["id"] for c in cats]
            names = [clean_name(c["name"]) for c in cats]
            for mode in ("prompt", "no-prompt"):
                prompt = task.get("caption_prompt") if mode == "prompt" else None
                query, spans = create_queries_and_maps(labels, names, prompt)
                encoding = tokenizer.encode(query)
                positive = create_positive_dict(encoding, spans, labels)
                out[f"{suite}/{task['name']}/{mode}"] = {
                    "caption": query,
                    "num_tokens": len(encoding.ids),
                    "classes": [[l, positive.get(l, [])] for l in labels],
                }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
