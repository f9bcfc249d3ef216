"""OWLv2 (transformers' Owlv2ForObjectDetection) to ONNX: graphs, prompts and model.json."""
