"""Counter-based random numbers: every draw is a pure function of (customer key, day, slot).

Why not one ``np.random.Generator`` for the population: a shared stream makes customer *i*'s
draws depend on how many customers are simulated beside it and in which order. Keying each draw
by the customer's own seed, its episode, the day and a slot number gives three properties the
lab relies on:

- the N-customer vector env equals N single-customer envs step for step;
- every policy meets the same customers and the same draws (common random numbers), so policy
  differences are paired;
- splitting customers across processes (shards) reproduces the unsharded run bit for bit.

The mixer is SplitMix64's finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014), a bijection on 64-bit words with full avalanche; each 64-bit output
yields two 24-bit uniforms in [0, 1).
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_DAY_STRIDE = np.uint64(0xD1B54A32D192ED03)
_EPISODE_STRIDE = np.uint64(0xCA5A826395121157)
_RESET_DAY = np.uint64(0xFFFF_FFFF)
_U24 = np.float32(1.0 / (1 << 24))


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, in place on a uint64 array; returns it."""
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def customer_keys(seeds: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """One 64-bit key per customer journey, from its seed and its episode number."""
    keys = np.asarray(seeds, dtype=np.uint64) * _GOLDEN
    keys += np.asarray(episodes, dtype=np.uint64) * _EPISODE_STRIDE
    return _mix(keys)


def uniforms(keys: np.ndarray, days: np.ndarray | None, count: int, first_word: int = 0) -> list[np.ndarray]:
    """``count`` float32 uniform arrays in [0, 1), one value per customer in each.

    Slot ``k`` of the result is half ``k % 2`` of word ``first_word + k // 2`` of each customer's
    stream for the day, so a caller may draw words for a subset of customers only and get exactly
    the values a full draw would give them. ``days`` selects the day (per customer); ``None``
    selects the reset stream. The arrays are strided views into one buffer.
    """
    pairs = (count + 1) // 2
    with np.errstate(over="ignore"):
        base = keys + (_RESET_DAY if days is None else days.astype(np.uint64)) * _DAY_STRIDE
        slots = np.arange(first_word + 1, first_word + pairs + 1, dtype=np.uint64) * _GOLDEN
        words = _mix(base[None, :] + slots[:, None])
    halves = words.view(np.uint32)
    halves >>= np.uint32(8)
    values = halves.view(np.int32).astype(np.float32)
    values *= _U24
    grid = values.reshape(pairs, keys.shape[0], 2)
    return [grid[slot // 2, :, slot % 2] for slot in range(count)]
