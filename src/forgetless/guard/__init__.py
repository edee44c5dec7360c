"""Hold a fine-tune to a forgetting budget: the budget, the watch during training, and repair."""
