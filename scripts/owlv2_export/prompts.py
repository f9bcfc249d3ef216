"""Class-name queries for OWLv2's zero-shot evaluation, as the OWL-ViT/OWLv2 authors' evaluator does.

Source: google-research/scenic, scenic/projects/owl_vit/evaluator.py (`get_predictions`): every
class name is put into each of `label_ops.CLIP_BEST_PROMPT_TEMPLATES` (the 7 best templates of
CLIP's ImageNet prompt engineering notebook), each prompt is canonicalised
(`label_ops._canonicalize_string_tf`), embedded, and the class logits of the templates are
averaged (`jnp.mean` over the ensemble axis of the class predictor's outputs) before the sigmoid.
"""
from __future__ import annotations

import re

# scenic/projects/owl_vit/preprocessing/label_ops.py, CLIP_BEST_PROMPT_TEMPLATES.
TEMPLATES = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
SOURCE = ("google-research/scenic scenic/projects/owl_vit/evaluator.py get_predictions: "
          "label_ops.CLIP_BEST_PROMPT_TEMPLATES, prompts canonicalised, class logits averaged over templates")
CANONICALIZE = ("lowercase; every character outside [a-z0-9-# ] becomes a space; runs of whitespace become "
                "one space; runs of '-' become one '-'; strip (scenic label_ops._canonicalize_string_tf)")


def canonicalize(text: str) -> str:
    """scenic's `_canonicalize_string_tf` for one string (its '#' marker is never in a class name
    odinw passes, so its last '#' rule is a no-op here)."""
    text = text.lower()
    text = re.sub(r"[^a-z0-9\-# ]", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"-+", "-", text)
    return text.strip()


def class_prompts(class_names: list[str]) -> list[list[str]]:
    """[template][class] prompts, canonicalised as the evaluator tokenizes them."""
    return [[canonicalize(t.format(name)) for name in class_names] for t in TEMPLATES]
