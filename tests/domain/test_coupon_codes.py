"""Coupon code alphabet, check character, verification and bulk generation."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberhub.domain.coupon_codes import (
    ALPHABET,
    MAX_CODE_LENGTH,
    CodeSpecInvalid,
    code_check_character,
    code_format,
    code_normalize,
    code_verify,
    codes_generate,
)

payloads = st.text(alphabet=ALPHABET, min_size=1, max_size=MAX_CODE_LENGTH - 1)


def test_it_uses_31_unambiguous_symbols():
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    assert not set(ALPHABET) & set("01OIL")


def test_it_generates_the_requested_number_of_unique_codes():
    codes = codes_generate(count=5000)
    assert len(codes) == len(set(codes)) == 5000
    assert all(len(c) == 10 for c in codes)


def test_it_generates_codes_that_verify():
    assert all(code_verify(code=c, length=10).valid for c in codes_generate(count=2000))


def test_it_generates_long_codes_through_the_wide_uniqueness_path():
    codes = codes_generate(count=500, length=24)
    assert len(set(codes)) == 500 and all(code_verify(code=c, length=24).valid for c in codes)


def test_it_uses_only_the_alphabet():
    assert set("".join(codes_generate(count=2000))) <= set(ALPHABET)


def test_it_puts_the_prefix_in_front_and_under_the_check():
    codes = codes_generate(count=100, prefix="vp-", length=12)
    assert all(c.startswith("VP") and len(c) == 14 for c in codes)
    assert all(code_verify(code=c, prefix="VP", length=12).valid for c in codes)


def test_it_refuses_a_prefix_outside_the_alphabet():
    with pytest.raises(CodeSpecInvalid):
        codes_generate(count=1, prefix="VIP")


def test_it_refuses_a_length_too_short_to_resist_guessing():
    with pytest.raises(CodeSpecInvalid):
        codes_generate(count=1_000_000, length=6)


def test_it_refuses_a_code_longer_than_the_check_can_protect():
    with pytest.raises(CodeSpecInvalid):
        codes_generate(count=1, length=MAX_CODE_LENGTH + 1)


def test_it_avoids_codes_already_issued():
    # the same byte source replays the same codes first: all of them must be skipped
    first = codes_generate(count=5, random_bytes=random.Random(1).randbytes)
    more = codes_generate(count=5, existing=first, random_bytes=random.Random(1).randbytes)
    assert len(set(more)) == 5 and not set(more) & set(first)


def test_it_refills_when_a_batch_has_duplicates():
    rng = random.Random(3)
    calls = []

    def zeros_then_random(n: int) -> bytes:
        calls.append(n)
        return bytes(n) if len(calls) == 1 else rng.randbytes(n)

    codes = codes_generate(count=3, random_bytes=zeros_then_random)
    assert len(codes) == len(set(codes)) == 3
    assert codes[0] == "222222222" + code_check_character("222222222")
    assert len(calls) >= 2


def test_it_is_deterministic_given_the_byte_source():
    a = codes_generate(count=10, random_bytes=random.Random(7).randbytes)
    b = codes_generate(count=10, random_bytes=random.Random(7).randbytes)
    assert a == b


def test_it_normalises_case_spaces_and_dashes():
    code = codes_generate(count=1)[0]
    messy = " " + "-".join(code[i : i + 3] for i in range(0, len(code), 3)).lower() + " "
    assert code_normalize(messy) == code
    assert code_verify(code=messy).valid


def test_it_reads_back_the_display_format():
    code = codes_generate(count=1)[0]
    assert code_verify(code=code_format(code=code)).normalized == code


def test_it_names_the_reason_a_code_is_invalid():
    code = codes_generate(count=1, prefix="VP")[0]
    assert code_verify(code="").reason == "empty"
    assert code_verify(code=code[:-1] + "0").reason == "bad_character"
    assert code_verify(code=code, prefix="ZZ").reason == "wrong_prefix"
    assert code_verify(code=code, prefix="VP", length=9).reason == "bad_length"
    wrong = ALPHABET[(ALPHABET.index(code[-1]) + 1) % 31]
    assert code_verify(code=code[:-1] + wrong).reason == "bad_check_character"


def test_it_catches_every_single_substitution_and_adjacent_transposition_exhaustively():
    """The proof in the module docstring, checked on every position of sample codes."""
    rng = random.Random(42)
    samples = ["".join(rng.choice(ALPHABET) for _ in range(n - 1)) for n in range(2, MAX_CODE_LENGTH + 1)]
    samples += ["".join(rng.choice(ALPHABET) for _ in range(9)) for _ in range(300)]
    for payload in samples:
        code = payload + code_check_character(payload)
        assert code_verify(code=code).valid
        for i, wrong in itertools.product(range(len(code)), ALPHABET):
            if wrong != code[i]:
                assert not code_verify(code=code[:i] + wrong + code[i + 1 :]).valid, (code, i, wrong)
        for i in range(len(code) - 1):
            if code[i] != code[i + 1]:
                swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
                assert not code_verify(code=swapped).valid, (code, i)


@given(payload=payloads, data=st.data())
def test_it_catches_a_random_substitution(payload, data):
    code = payload + code_check_character(payload)
    i = data.draw(st.integers(0, len(code) - 1))
    wrong = data.draw(st.sampled_from(ALPHABET).filter(lambda ch: ch != code[i]))
    assert not code_verify(code=code[:i] + wrong + code[i + 1 :]).valid


@given(payload=payloads, data=st.data())
def test_it_catches_a_random_adjacent_transposition(payload, data):
    code = payload + code_check_character(payload)
    i = data.draw(st.integers(0, len(code) - 2))
    if code[i] != code[i + 1]:
        assert not code_verify(code=code[:i] + code[i + 1] + code[i] + code[i + 2 :]).valid


@pytest.mark.slow
def test_it_generates_a_million_unique_valid_codes():
    # The rate is measured by bench/coupon_codes.py, not here.
    codes = codes_generate(count=1_000_000)
    assert len(set(codes)) == 1_000_000
    assert all(code_verify(code=c).valid for c in codes[:: 10_000])
