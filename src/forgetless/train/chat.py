"""Chat records as TRL writes them -> one rendered text and the character spans the loss covers.

TRL's shapes (`trl.data_utils`): `messages`, a multi-turn conversation (system/user/assistant), trained on the
assistant turns only (TRL's `assistant_only_loss`); and `prompt`/`completion`, trained on the completion only
(TRL's `completion_only_loss`), where both are message lists (conversational) or strings (plain: the text is
prompt + completion + EOS, as TRL adds the EOS).

Where the assistant turns lie in the rendered text:
- a template with `{% generation %}` markers: transformers' own `apply_chat_template(...,
  return_assistant_tokens_mask=True)`, the mask TRL's `assistant_only_loss` uses.
- otherwise, TRL's prompt-completion rule applied to every assistant turn: a turn is what rendering the
  conversation up to and including it adds to rendering the turns before it with the generation prompt (TRL:
  `common_prefix_length` of the two). TRL 1.16 itself cannot mask such a template: `assistant_only_loss` swaps
  in a marked copy only for the ~30 template families it ships (`get_training_chat_template`), and SmolLM2's
  ChatML with its default system prompt is not one of them ("patching is not supported for this template").
- a template that renders earlier turns differently once a later one follows (Qwen3 drops earlier reasoning)
  breaks that rule; TRL's marked copy of it is used when TRL is installed and knows it, else it is refused.

Spans are characters, so replay can mix plain text in before tokenization; `train.data.tokenize_examples` trains
every token that overlaps a span (transformers' rule for its assistant mask).
"""

from __future__ import annotations

import re
from typing import Any

from forgetless.errors import ForgetlessError

Span = tuple[int, int]
MARKERS = re.compile(r"\{%-?\s*generation\s*-?%\}")  # transformers' and TRL's test for the markers


def messages_example(tokenizer: Any, messages: Any, where: str) -> tuple[str, list[Span]]:
    """A `messages` conversation: its rendered text and the spans of its assistant turns."""
    messages = _checked_messages(messages, f"{where}: `messages`")
    if not any(m["role"] == "assistant" for m in messages):
        raise ForgetlessError(
            f"{where}: the conversation has no assistant turn, so nothing would be trained",
            "give every conversation at least one message with role 'assistant'",
        )
    template = _template(tokenizer, where)
    if MARKERS.search(template):
        return _marked(tokenizer, messages, template)
    text = _render(tokenizer, messages, template)
    spans = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        head = _render(tokenizer, messages[:k], template, generation_prompt=True) if k else ""
        upto = _render(tokenizer, messages[: k + 1], template)
        if not text.startswith(upto):
            return _trl_marked(tokenizer, messages, where)
        spans.append((_common_prefix(head, upto), len(upto)))
    return text, spans


def prompt_completion_example(tokenizer: Any, prompt: Any, completion: Any, where: str) -> tuple[str, list[Span]]:
    """A `prompt`/`completion` record: the text and the completion's span (conversational or plain)."""
    if isinstance(prompt, str) and isinstance(completion, str):
        eos = tokenizer.eos_token or ""
        completion = completion if completion.endswith(eos) else completion + eos  # TRL's add_eos: learn to stop
        return prompt + completion, [(len(prompt), len(prompt) + len(completion))]
    if isinstance(prompt, str) or isinstance(completion, str):
        raise ForgetlessError(
            f"{where}: `prompt` and `completion` must both be strings or both message lists",
            'write both as text ("prompt": "...", "completion": "...") or both as [{"role": ..., "content": ...}]',
        )
    prompt = _checked_messages(prompt, f"{where}: `prompt`")
    completion = _checked_messages(completion, f"{where}: `completion`")
    template = _template(tokenizer, where)
    head = _render(tokenizer, prompt, template, generation_prompt=True)
    text = _render(tokenizer, prompt + completion, template)
    return text, [(_common_prefix(head, text), len(text))]


def _checked_messages(value: Any, where: str) -> list[dict[str, Any]]:
    ok = isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value)
    if not ok:
        raise ForgetlessError(
            f"{where} is not a list of messages (got {value!r:.80})",
            'write each message as {"role": "system" | "user" | "assistant", "content": "..."}',
        )
    return [{k: v for k, v in m.items() if v is not None} for m in value]  # arrow fills absent keys with None


def _template(tokenizer: Any, where: str) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named variants: the default one, as TRL and transformers take it
        template = template.get("default")
    if not template:
        raise ForgetlessError(
            f"{where}: chat data needs a tokenizer with a chat template, and this one has none",
            "use a chat model, set tokenizer.chat_template, or write the data as `text` with a template",
        )
    return template


def _render(tokenizer: Any, messages: list[dict[str, Any]], template: str, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=generation_prompt
    )


def _marked(tokenizer: Any, messages: list[dict[str, Any]], template: str) -> tuple[str, list[Span]]:
    """transformers' assistant mask of a template with `{% generation %}` markers, as character spans."""
    text = _render(tokenizer, messages, template)
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
        tokenizer_kwargs={"return_offsets_mapping": True},
    )
    spans: list[Span] = []
    for masked, (start, end) in zip(out["assistant_masks"], out["offset_mapping"], strict=True):
        if not masked:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    if not spans:  # TRL refuses such an example too: it would train nothing
        raise ForgetlessError(
            "the chat template's {% generation %} markers cover no token of a conversation with an assistant turn",
            "put {% generation %}...{% endgeneration %} around the assistant's content in the template",
        )
    return text, spans


def _trl_marked(tokenizer: Any, messages: list[dict[str, Any]], where: str) -> tuple[str, list[Span]]:
    """TRL's marked copy of the tokenizer's template, for templates that rewrite earlier turns."""
    refusal = ForgetlessError(
        f"{where}: the chat template renders earlier turns differently once a later turn follows, so the "
        "assistant turns cannot be found by rendering prefixes, and it has no {% generation %} markers",
        "add {% generation %}...{% endgeneration %} around the assistant's content in tokenizer.chat_template "
        "(transformers then masks it), install TRL if it ships a training copy of this template "
        '(pip install "forgetless[trl]"), or use format: text',
    )
    try:
        from trl.chat_template_utils import get_training_chat_template
    except ImportError:
        raise refusal from None
    try:
        marked = get_training_chat_template(tokenizer)
    except ValueError:  # "patching is not supported for this template"
        raise refusal from None
    if marked is None:
        raise refusal
    return _marked(tokenizer, messages, marked)


def _common_prefix(a: str, b: str) -> int:
    """Characters `a` and `b` share at their start (TRL's `common_prefix_length`, on text)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
