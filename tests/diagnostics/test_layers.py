"""The naming rule: a parameter name -> (block or embed/norm/head/other, module type), and the sums per cell."""

from __future__ import annotations

import pytest

from forgetless.diagnostics.layers import group_key, layer_of, merge, tally


@pytest.mark.parametrize(
    "name,expected",
    [
        ("model.layers.3.mlp.up_proj.weight", ("3", "up_proj")),
        ("model.layers.0.self_attn.q_proj.bias", ("0", "q_proj")),
        ("model.layers.12.input_layernorm.weight", ("12", "norm")),
        ("model.layers.1.post_attention_layernorm.weight", ("1", "norm")),
        ("model.embed_tokens.weight", ("embed", "embed")),
        ("model.norm.weight", ("norm", "norm")),
        ("lm_head.weight", ("head", "head")),
        # PEFT: the adapter tensors and the wrapped base weight belong to the adapted module
        ("base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight", ("3", "q_proj")),
        ("base_model.model.model.layers.3.self_attn.q_proj.lora_B.my_adapter.weight", ("3", "q_proj")),
        ("base_model.model.model.layers.3.self_attn.q_proj.base_layer.weight", ("3", "q_proj")),
        ("base_model.model.model.layers.2.mlp.down_proj.lora_magnitude_vector.default.weight", ("2", "down_proj")),
        ("base_model.model.lm_head.weight", ("head", "head")),
        # GPT-2 and a plain module
        ("transformer.h.0.attn.c_attn.weight", ("0", "c_attn")),
        ("transformer.h.5.ln_2.bias", ("5", "norm")),
        ("transformer.wte.weight", ("embed", "embed")),
        ("transformer.wpe.weight", ("embed", "embed")),
        ("transformer.ln_f.weight", ("norm", "norm")),
        ("blocks.1.fc.weight", ("1", "fc")),
        ("scale", ("other", "other")),
        ("adapter.proj.weight", ("other", "proj")),
    ],
)
def test_layer_of(name: str, expected: tuple[str, str]) -> None:
    assert layer_of(name) == expected


def test_groups_sort_by_depth() -> None:
    groups = ["head", "10", "other", "2", "norm", "embed", "0"]
    assert sorted(groups, key=group_key) == ["embed", "0", "2", "10", "norm", "head", "other"]


def test_tally_sums_each_cell_and_merge_sums_across() -> None:
    cells = tally(
        [
            ("model.layers.1.self_attn.q_proj.weight", {"x": 1.0, "n": 2}),
            ("model.layers.1.self_attn.q_proj.bias", {"x": 2.0, "n": 1}),
            ("model.layers.0.self_attn.q_proj.weight", {"x": 4.0, "n": 2}),
            ("model.layers.0.mlp.up_proj.weight", {"x": 8.0, "n": 3}),
            ("lm_head.weight", {"x": 16.0, "n": 5}),
        ]
    )
    assert list(cells) == [("0", "q_proj"), ("0", "up_proj"), ("1", "q_proj"), ("head", "head")]
    assert cells[("1", "q_proj")] == {"x": 3.0, "n": 3}
    assert merge(cells, "group") == {
        ("0", ""): {"x": 12.0, "n": 5},
        ("1", ""): {"x": 3.0, "n": 3},
        ("head", ""): {"x": 16.0, "n": 5},
    }
    assert merge(cells, "module")[("", "q_proj")] == {"x": 7.0, "n": 5}
