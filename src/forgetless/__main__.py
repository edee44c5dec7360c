"""`python -m forgetless ...` (what torchrun / accelerate launch run on every rank)."""

from forgetless.cli.main import main

main()
