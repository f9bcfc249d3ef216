"""The image-processor settings an exported model's documented pre-processing reproduces: the
checks the OWLv2 and Grounding DINO exporters share (a setting the pre-processing does not
follow, or a normalisation that is not 3 finite numbers, is refused naming the weights folder)."""
from __future__ import annotations

import math
from pathlib import Path

BILINEAR = 2  # PILImageResampling.BILINEAR
# What both families' processors do by default, and all the exported pre-processing follows.
STANDARD_SETTINGS = {"do_resize": True, "do_pad": True, "do_rescale": True, "do_normalize": True,
                     "resample": BILINEAR, "rescale_factor": 1 / 255}


class PreprocessorError(ValueError):
    pass


def load(cls, weights: Path, **defaults):
    """(processor, origin): `cls.from_pretrained(weights)` when the folder has a processor_config.json
    or preprocessor_config.json, else `cls(**defaults)`."""
    if (weights / "processor_config.json").exists() or (weights / "preprocessor_config.json").exists():
        try:
            return cls.from_pretrained(weights), "processor config of the weights folder"
        except Exception as err:  # transformers raises several types for a bad file
            raise PreprocessorError(f"{weights}: image processor config not loadable ({err})") from None
    return cls(**defaults), f"{cls.__name__} defaults (the weights folder has no processor config)"


def require_settings(proc, weights: Path, whose: str, checks: dict = STANDARD_SETTINGS) -> None:
    """Each of `checks` as the processor has it (a float within 1e-12), else PreprocessorError."""
    for key, want in checks.items():
        got = getattr(proc, key, want)
        same = abs(got - want) < 1e-12 if isinstance(want, float) else got == want
        if not same:
            raise PreprocessorError(f"{weights}: image processor {key} = {got!r}; this exporter supports only "
                                    f"{want!r} ({whose} own setting)")


def normalisation(proc, weights: Path) -> tuple[list[float], list[float]]:
    """The processor's (image_mean, image_std): 3 finite numbers each, std positive."""
    mean, std = list(proc.image_mean), list(proc.image_std)
    for name, v in (("image_mean", mean), ("image_std", std)):
        if len(v) != 3 or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            raise PreprocessorError(f"{weights}: image processor {name} must be 3 finite numbers, got {v!r}")
    if any(s <= 0 for s in std):
        raise PreprocessorError(f"{weights}: image processor image_std must be positive, got {std!r}")
    return [float(x) for x in mean], [float(x) for x in std]
