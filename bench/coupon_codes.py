"""Benchmark: bulk coupon-code generation, ours (NumPy, bulk os.urandom) against a naive peer.

The peer is what one would write first: a ``secrets.choice`` per character, the same mod-31
check character in pure Python, and a ``set`` for uniqueness. Both produce the same kind of
code (same alphabet, length, check), so the rates compare like with like.

    .venv/bin/python bench/coupon_codes.py              # 1,000,000 codes each
    .venv/bin/python bench/coupon_codes.py --count 200000 --repeat 5
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from memberhub.domain.coupon_codes import (  # noqa: E402
    ALPHABET,
    DEFAULT_LENGTH,
    code_check_character,
    code_verify,
    codes_generate,
)


def naive_generate(*, count: int, length: int = DEFAULT_LENGTH) -> list[str]:
    seen: set[str] = set()
    codes: list[str] = []
    while len(codes) < count:
        payload = "".join(secrets.choice(ALPHABET) for _ in range(length - 1))
        code = payload + code_check_character(payload)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


def timed(fn, *, count: int, repeat: int) -> tuple[float, list[str]]:
    best = float("inf")
    codes: list[str] = []
    for _ in range(repeat):
        started = time.perf_counter()
        codes = fn(count=count)
        best = min(best, time.perf_counter() - started)
    return best, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for ours")
    parser.add_argument("--peer-repeat", type=int, default=1, help="best of N for the naive peer")
    args = parser.parse_args()

    ours_s, ours = timed(codes_generate, count=args.count, repeat=args.repeat)
    peer_s, peer = timed(naive_generate, count=args.count, repeat=args.peer_repeat)
    for name, codes in (("ours", ours), ("peer", peer)):
        assert len(set(codes)) == args.count, name
        assert all(code_verify(code=c).valid for c in codes[:10_000]), name

    print(f"{'generator':<44} {'codes':>10} {'seconds':>9} {'codes/s':>13}")
    print(
        f"{'memberhub codes_generate (numpy, urandom)':<44} {args.count:>10,} {ours_s:>9.3f} {args.count / ours_s:>13,.0f}"
    )
    print(
        f"{'naive secrets.choice loop + set':<44} {args.count:>10,} {peer_s:>9.3f} {args.count / peer_s:>13,.0f}"
    )
    print(f"speed-up: {peer_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
