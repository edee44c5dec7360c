"""`training.args`: any `transformers.TrainingArguments` field, checked by TrainingArguments itself at validation.

The run config's `training` section validates in three steps (`check_training`, a pydantic wrap
validator of `TrainingConfig`):

1. A Hugging Face name of a forgetless setting (`args.max_steps` for `steps`, `args.warmup_ratio` for
   a fractional `warmup_steps`; `train.trainer_args.TWINS`) moves onto the forgetless setting, which
   then checks its bounds; the error names the key the user wrote. Both spellings at once is an error.
2. forgetless's own settings validate as usual.
3. Every remaining `args` key must be a TrainingArguments field (else "did you mean"), not one forgetless
   owns; a string where the field takes a number is parsed (YAML reads `1e-4` as a string). Then one
   TrainingArguments is built from forgetless's keywords and the user's (nothing is written), and its
   error is shown at the key that causes it alone, or at `training.args` for a combination.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from forgetless.train.trainer_args import HF_TWINS, LEGACY, OWNED, forgetless_kwargs


def _error(loc: tuple[Any, ...], message: str, value: Any) -> InitErrorDetails:
    # The message goes through a context value: a raw template would read braces in it as fields.
    return InitErrorDetails(
        type=PydanticCustomError("training_args", "{message}", {"message": message}), loc=loc, input=value
    )


def trainer_fields() -> dict[str, dataclasses.Field[Any]]:
    """TrainingArguments' own fields (those its constructor takes), by name."""
    from transformers import TrainingArguments

    return {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}


def check_training(cls: type[Any], data: Any, handler: Any) -> Any:
    """Validate a `training` mapping (see the module docstring); raise one ValidationError with every problem."""
    if not isinstance(data, dict) or not isinstance(data.get("args", {}), dict):
        return handler(data)
    data, args = dict(data), dict(data.get("args") or {})
    errors: list[InitErrorDetails] = []
    moved: dict[str, str] = {}  # forgetless setting -> the Hugging Face key it was written as
    for key in [k for k in args if k in HF_TWINS]:
        ours = HF_TWINS[key]
        if ours in data or ours in moved:
            other = f"training.args.{moved[ours]}" if ours in moved else f"training.{ours}"
            errors.append(_error(("args", key), f"says what {other} says; give one of them", args[key]))
            continue
        value = args.pop(key)
        if key == "warmup_ratio" and not (isinstance(value, int | float) and 0 <= value < 1):
            errors.append(_error(("args", key), "a fraction of the steps, at least 0 and below 1", value))
            continue
        data[ours], moved[ours] = value, key
    errors += _key_errors(args)  # coerces numbers written as strings in place
    data["args"] = args
    try:
        result = handler(data)
    except ValidationError as error:
        for e in error.errors():
            loc = e["loc"]
            if loc and loc[0] in moved:
                loc = ("args", moved[str(loc[0])], *loc[1:])
            errors.append(InitErrorDetails(type=e["type"], loc=loc, input=e.get("input"), ctx=e.get("ctx", {})))
        raise ValidationError.from_exception_data(cls.__name__, errors) from None
    errors = errors or _build_errors(result)  # a TrainingArguments only from settings that are valid one by one
    if errors:
        raise ValidationError.from_exception_data(cls.__name__, errors)
    return result


def _key_errors(args: dict[str, Any]) -> list[InitErrorDetails]:
    """Each `training.args` key must be a TrainingArguments field forgetless does not own; a string for a
    number or a flag is parsed (in place)."""
    if not args:
        return []
    fields = trainer_fields()
    errors = []
    for key, value in list(args.items()):
        if key in OWNED:
            why, fix = OWNED[key]
            errors.append(_error(("args", key), f"{why}; {fix}", value))
        elif key == "logging_dir":
            if not isinstance(value, str):
                errors.append(_error(("args", key), "a folder path", value))
        elif key not in fields:
            errors.append(_error(("args", key), _unknown(key, list(fields)), value))
        elif isinstance(value, str):
            try:  # "1e-4" for a float field, "true" for a bool one; strings stay strings where allowed
                parsed = TypeAdapter(fields[key].type).validate_python(value)
            except ValidationError as error:
                errors.append(_error(("args", key), error.errors()[0]["msg"], value))
            else:
                if isinstance(parsed, bool | int | float):
                    args[key] = parsed
    return errors


def _unknown(key: str, fields: list[str]) -> str:
    import transformers

    close = difflib.get_close_matches(key, fields + list(LEGACY), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"not a field of transformers.TrainingArguments ({transformers.__version__}){hint}"


def _build_errors(training: Any) -> list[InitErrorDetails]:
    """Build TrainingArguments from forgetless's keywords and the user's: its error, at the key that causes it."""
    base = forgetless_kwargs(Path("forgetless-validation"), training)
    user = {k: v for k, v in training.args.items() if k not in LEGACY}
    if _build(base | user) is None:
        return []
    if (problem := _build(base)) is not None:  # forgetless's own settings: bf16 where it is not supported
        return [_error(("bf16",), problem, True) if training.bf16 else _error((), problem, None)]
    alone = [(k, v, problem) for k, v in user.items() if (problem := _build(base | {k: v})) is not None]
    if alone:
        return [_error(("args", k), problem, v) for k, v, problem in alone]
    return [_error(("args",), _build(base | user) or "", user)]


def _build(kwargs: dict[str, Any]) -> str | None:
    """None when TrainingArguments accepts `kwargs`, else its complaint in one line."""
    import warnings

    from transformers import TrainingArguments

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecations are the run's to show, once
            TrainingArguments(**kwargs)
    except ImportError as error:  # deepspeed, accelerate extras: a package the field needs
        return f"needs a package that is not installed ({error}); install it or drop the field"
    except Exception as error:  # TrainingArguments raises ValueError, TypeError, PackageNotFoundError...
        text = " ".join(str(error).split())
        if type(error).__name__ == "PackageNotFoundError":
            return f"needs a package that is not installed ({text}); install it or drop the field"
        return text
    return None


def drop_twin(data: dict[str, Any], key: str) -> None:
    """After the override `key=value`: forget the other spelling of the same setting in the YAML, so the
    command line wins (`training.steps=20` over the file's `training.args.max_steps`)."""
    training = data.get("training")
    if not isinstance(training, dict):
        return
    args = training.get("args") if isinstance(training.get("args"), dict) else {}
    if key.startswith("training.args."):
        ours = HF_TWINS.get(key.removeprefix("training.args."))
        if ours is not None and ours in training:
            del training[ours]
    elif key.startswith("training."):
        ours = key.removeprefix("training.")
        for hf in [k for k, v in HF_TWINS.items() if v == ours and k in args]:
            del args[hf]
