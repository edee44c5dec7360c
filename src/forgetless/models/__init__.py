"""Loading models: causal LMs (hub ids, local folders, GGUF files, PEFT adapters, the default) and encoders."""

from forgetless.models.encoder import load_encoder
from forgetless.models.loading import LoadedModel, from_memory, load_model

__all__ = ["LoadedModel", "from_memory", "load_encoder", "load_model"]
