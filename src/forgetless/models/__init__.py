"""Loading causal language models: hub ids, local folders, GGUF files, PEFT adapters, the default."""

from forgetless.models.loading import LoadedModel, load_model

__all__ = ["LoadedModel", "load_model"]
