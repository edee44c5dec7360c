"""What a fine-tune did to the weights: drift by layer, importance (Fisher) and gradient interference.

One file per diagnostic (drift.py, importance.py, interference.py), a naming rule shared by all three
(layers.py), and stage.py, which runs them around one training stage as a TrainerCallback. Nothing
heavy is imported here: the report reads results with layers.py alone.
"""

from forgetless.diagnostics.layers import group_key, layer_of

__all__ = ["group_key", "layer_of"]
