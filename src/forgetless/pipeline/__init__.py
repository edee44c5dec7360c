"""Whole jobs composed from the layers below: evaluate a model, audit a fine-tune, the demo."""
