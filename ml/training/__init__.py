"""Training in two stages, both on feature maps cached once per augmented view.

Records are ``(image, class_id, kind)`` with ``kind`` in {"snapshot", "item"} and
``image`` a path (or a PIL image); a post (snapshot + its items) is one class.

Every record is run through the frozen part of the backbone once per view (view 0
plain, further views randomly cropped, flipped and colour-jittered) and the maps are
cached (float16, under ``cache_dir``, keyed by the records, the sizes, the views and a
digest of the weights that produced them). Training draws class-balanced batches
(P classes x K samples) from the cache: each item view gives one descriptor, each
snapshot view gives its global descriptor plus its best-matching region of the region
scheme (the region whose descriptor is closest to the class — the regions are in the
loop, as they are at serving time). Loss: ArcFace (or batch-hard triplet), plus the
optional auxiliary smoothed/temperature-scaled classification on the first branch.

- Stage 1 (:func:`train`): frozen backbone; the CGD head trains on cached final maps.
- Stage 2 (``TrainOptions.stage2_epochs`` in :func:`train`, or :func:`finetune` from a
  stage-1 artifact): the last ``finetune_stages`` backbone stages (EfficientNet-Lite: the
  last MBConv stage(s) + the 1x1 top convolution; ResNet50: conv5) train with the head, on
  cached maps at the *input* of that part, so the frozen prefix still runs once per view.
  The backbone part gets its own (lower) learning rate; its BatchNorm layers stay in
  inference mode (frozen statistics: the batches are small). ArcFace class weights are
  initialised from the class means of the current descriptors ("imprinting").

Mixed precision (``TrainOptions.mixed_precision``): ``"auto"`` turns it on only when
TensorFlow sees a GPU. The trainable backbone part and the head's projections then compute
in float16 (``mixed_float16`` policy, float32 variables) with dynamic loss scaling
(``keras.optimizers.LossScaleOptimizer``); descriptors, losses and ArcFace logits stay
float32. The policies are set on those layers only and restored afterwards.

Modules: :mod:`~ml.training.options` (``TrainOptions``, mixed precision), :mod:`~ml.training.feature_cache`
(the cached maps), :mod:`~ml.training.sampling` (the P x K ``PyDataset``), :mod:`~ml.training.trainer`
(the ``keras.Model`` whose ``train_step`` is the traced step), :mod:`~ml.training.callbacks` (val check,
checkpoints, progress; early stopping is Keras's ``EarlyStopping``), :mod:`~ml.training.stages` (one
stage's loop), :mod:`~ml.training.run` (``train`` and ``finetune``).
"""

from ml.training.feature_cache import FeatureCache, cache_feature_sets, cache_features
from ml.training.options import (
    KINDS,
    MIXED_PRECISION,
    Progress,
    TrainOptions,
    mixed_precision_policy,
    use_mixed_precision,
)
from ml.training.run import finetune, train

__all__ = [
    "KINDS",
    "MIXED_PRECISION",
    "FeatureCache",
    "Progress",
    "TrainOptions",
    "cache_feature_sets",
    "cache_features",
    "finetune",
    "mixed_precision_policy",
    "train",
    "use_mixed_precision",
]
