"""Stripe's form encoding, read back exactly as the official SDK writes it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stripe._encode import _api_encode  # the SDK's own encoder: what the simulator must read

from billfold.simulator import errors, forms

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
leaves = st.text(min_size=1, max_size=12)
values: st.SearchStrategy[Any] = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(keys, inner, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


def sdk_encoded(params: dict[str, Any]) -> list[tuple[str, str]]:
    text = urlencode(list(_api_encode(params)))
    return parse_qsl(text, keep_blank_values=True)


@settings(max_examples=40, deadline=None)  # a loaded machine is not a failure
@given(st.dictionaries(keys, values, max_size=4))
def test_whatever_the_sdk_encodes_parses_back_to_the_same_params(params: dict[str, Any]) -> None:
    assert forms.parse(sdk_encoded(params)) == params


def test_line_items_metadata_and_expand_as_the_sdk_sends_them() -> None:
    params = {
        "line_items": [{"price_data": {"unit_amount": "499"}, "quantity": "1"}],
        "metadata": {"billfold_account": "user_1"},
        "expand": ["line_items", "payment_intent"],
    }

    assert forms.parse(sdk_encoded(params)) == params


def test_curl_style_brackets_append() -> None:
    parsed = forms.parse([("expand[]", "a"), ("expand[]", "b"), ("types[]", "x")])

    assert parsed == {"expand": ["a", "b"], "types": ["x"]}


def test_sparse_or_non_numeric_keys_stay_hashes() -> None:
    assert forms.parse([("metadata[5]", "x")]) == {"metadata": {"5": "x"}}
    assert forms.Params(forms.parse([("metadata[0]", "x")])).metadata() == {"0": "x"}


def test_a_malformed_key_is_an_invalid_request() -> None:
    with pytest.raises(errors.ApiError) as caught:
        forms.parse([("a]b[", "1")])

    assert caught.value.status == 400


def test_metadata_updates_merge_and_unset() -> None:
    assert forms.apply_metadata({"a": "1", "b": "2"}, {"a": "", "c": "3"}) == {"b": "2", "c": "3"}
    assert forms.apply_metadata({"a": "1"}, {}) == {}
    assert forms.apply_metadata({"a": "1"}, None) == {"a": "1"}


def test_typed_accessors_name_the_nested_parameter() -> None:
    params = forms.Params(forms.parse([("line_items[0][quantity]", "two")]))
    [item] = params.items("line_items")

    with pytest.raises(errors.ApiError) as caught:
        item.integer("quantity")

    assert caught.value.param == "line_items[0][quantity]"
    assert caught.value.code == "parameter_invalid_integer"
