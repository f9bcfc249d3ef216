"""Helpers shared by the exporters of Hugging Face transformers detectors (OWLv2, Grounding DINO)."""
