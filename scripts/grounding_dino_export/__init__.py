"""Grounding DINO / MM-Grounding-DINO export (scripts/export_model.py --family grounding-dino|mm-grounding-dino)."""
