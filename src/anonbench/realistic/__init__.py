"""Realistic anonymization (the study's DeepPrivacy2 rows): faces and bodies replaced by
synthesized ones from a conditional generator.

* :mod:`.base`: the generator interface (:class:`ConditionalGenerator`, :class:`CropBatch`) and
  the registry :data:`GENERATORS` (variant option ``generator``);
* :mod:`.crops`: crop boxes, resizing, dilation, keypoints, joint map, paste-back;
* :mod:`.truncation`: none / unimodal / multi-modal truncation, k-means;
* :mod:`.postprocess`: HM and HM-LO;
* :mod:`.demo`, :mod:`.dp2`: the generators;
* :mod:`.pipeline`: one image, end to end (:func:`realistic_region`, :func:`anonymize_realistic`).

Variant options (``method: realistic``): ``region`` (face, body), ``generator`` (demo, dp2),
``truncation`` (none, unimodal, multimodal; default multimodal for bodies, none for faces),
``truncation_value`` (0), ``truncation_clusters`` (512), ``hm``, ``hm_joint``, ``hm_sigma`` (9),
``lo``, ``lo_steps`` (100), ``lo_threshold`` (0.02), ``lo_lr`` (1e-3), ``hr`` (faces),
``min_body_size``, ``dilation``, ``seed`` (0), ``batch_size`` (8), ``device`` (auto), and for
dp2 ``checkpoints``, ``dp2_root``, ``download``.
"""

from __future__ import annotations

from . import demo, dp2  # noqa: F401  (register the generators)
from .base import GENERATORS, ConditionalGenerator, CropBatch, GeneratorUnavailable, build_generator
from .pipeline import Instance, anonymize_realistic, get_generator, realistic_region

__all__ = ["GENERATORS", "ConditionalGenerator", "CropBatch", "GeneratorUnavailable", "Instance",
           "anonymize_realistic", "build_generator", "get_generator", "realistic_region"]
