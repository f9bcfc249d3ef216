"""A self-contained, export-friendly GLIP (Swin + BERT + VLDyHead + ATSS) with the official
checkpoints' parameter names, and the tools that turn it into ONNX graphs (see scripts/export_glip.py)."""
