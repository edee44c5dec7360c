"""Fine-tuning on transformers.Trainer: forgetless adds data handling and (later) mitigations."""
