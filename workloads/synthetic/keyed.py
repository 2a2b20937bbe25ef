"""Random numbers keyed by absolute indices, so any tick range renders on its own.

Discrete events (checkpoints, batch windows, storms, copies, ...) and slow load wander
are drawn with a counter-based hash (`u01`) of (seed, stream, absolute slot index,
volume index), never from a stream whose position depends on what was asked before.
"""

from __future__ import annotations

import zlib

import numpy as np

MASK64 = (1 << 64) - 1

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = z ^ (z >> _S30)
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def stream_key(seed: int, *names: str | int) -> int:
    """A 64-bit key for one random stream: (seed, kind, stream name, ...)."""
    h = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64
    for n in names:
        v = zlib.crc32(n.encode()) if isinstance(n, str) else int(n) & MASK64
        h ^= (v * 0xBF58476D1CE4E5B9) & MASK64
        h = ((h ^ (h >> 31)) * 0x94D049BB133111EB) & MASK64
    return h


def u01(key: int, *idx: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) values, a pure function of `key` and the (broadcast) integer indices."""
    with np.errstate(over="ignore"):
        h = np.full((), key, dtype=np.uint64)
        for a in idx:
            h = _mix(h ^ (np.asarray(a).astype(np.int64).astype(np.uint64) * _GOLD))
        return (h >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(key: int, *idx: np.ndarray | int) -> np.ndarray:
    """Standard normal values keyed like `u01` (Box-Muller on two hashed uniforms)."""
    u1 = u01(key, *idx, 1)
    u2 = u01(key, *idx, 2)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def uniform(key: int, lo: float, hi: float, *idx: np.ndarray | int) -> np.ndarray:
    return lo + (hi - lo) * u01(key, *idx)
