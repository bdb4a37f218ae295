"""Integer kernels of the FPGA program (numpy only), in the manner of I-BERT.

Every kernel here takes integer arrays and integer constants and returns integers; the
constants come from ``*_constants(scale)`` functions, which run once, at export time,
and are the only place a float appears. Widths: inputs are int8/int16/int32 as stated,
every intermediate is int64 (numpy), and the stated ranges keep it inside 63 bits.

Rounding and saturation, spelled out:

- ``requantize`` (int32 -> int8 or int16): ``q = sat((acc * m) >> shift)`` with the shift
  rounding half up (``+ 2**(shift-1)`` before an arithmetic shift, i.e. ties go toward
  +inf) or half to even (``rounding="even"``); ``sat`` clips to [lo, hi], [-128, 127] by
  default ([-127, 127] for a symmetric range is a choice of ``lo``).
- divisions (softmax normalisation, LayerNorm mean and 1/std) round half up:
  ``(2a + b) // (2b)`` for b > 0.
- the polynomial constants (``b / S``, ``c / (a S^2)``) are floors for i-GELU, as in
  I-BERT (Kim et al., ICML 2021, Algorithms 1-4), and rounded to nearest for i-exp, whose
  ``>> z`` also rounds half up (both halve i-exp's error against I-BERT's floors).
"""

from __future__ import annotations

import math

import numpy as np

I64 = np.int64

# I-BERT's second-order fit of erf over [0, -b]. exp over (-ln 2, 0] is refit here for
# the least maximum relative error (1.72e-3; I-BERT's 0.3585, 1.353, 0.344 give 3.1e-3).
ERF_A, ERF_B = -0.2888, -1.769
EXP_A, EXP_B, EXP_C = 0.35091, 1.36909, 0.34054
LN2 = math.log(2.0)

MULTIPLIER_BITS = 31  # m in [2**30, 2**31): an int32 multiplier, the product fits int64
SOFTMAX_BITS = 8  # probabilities as uint8 at scale 2**-8, saturated to [0, 255]
LAYERNORM_FRACTION = 14  # (x - mean) / std in int32 at scale 2**-14


def dyadic(multiplier: float, bits: int = MULTIPLIER_BITS) -> tuple[int, int]:
    """(m, shift), ``m`` in [2**(bits-1), 2**bits), with ``m * 2**-shift`` the nearest such
    dyadic to a positive ``multiplier``. ``bits`` + the input's width must stay <= 63."""
    if not multiplier > 0 or not math.isfinite(multiplier):
        raise ValueError(f"a requantization multiplier must be positive and finite: {multiplier}")
    mantissa, exponent = math.frexp(multiplier)  # multiplier = mantissa * 2**exponent
    m = round(mantissa * (1 << bits))
    shift = bits - exponent
    if m == 1 << bits:
        m, shift = m >> 1, shift - 1
    if shift < 1 or shift > 62:
        raise ValueError(f"multiplier {multiplier} is outside the dyadic range")
    return m, shift


def rounding_shift(x: np.ndarray, shift, rounding: str = "up", out=None) -> np.ndarray:
    """``x / 2**shift`` rounded half up (ties toward +inf) or half to even; int64 in, out;
    ``shift`` >= 0 (a scalar or an array that broadcasts against ``x``). ``out=x`` rounds
    half up in place (a caller's own temporary)."""
    x = np.asarray(x, dtype=I64)
    shift = np.asarray(shift, dtype=I64)
    half = np.right_shift(np.left_shift(I64(1), shift), 1)  # 2**(shift-1), 0 for shift 0
    if rounding == "up":
        return np.right_shift(np.add(x, half, out=out), shift, out=out)
    if rounding == "even":
        floor = np.right_shift(x, shift)
        rest = x - np.left_shift(floor, shift)
        up = (rest > half) | ((rest == half) & (floor & 1 == 1))
        return floor + up.astype(I64)
    raise ValueError(f"rounding must be 'up' or 'even', not {rounding!r}")


def requantize(acc, m, shift, lo: int = -128, hi: int = 127, rounding: str = "up"):
    """int32 accumulator -> ``sat((acc * m) / 2**shift)``; m, shift scalars or per channel."""
    prod = np.multiply(acc, m, dtype=I64)  # one array, shifted and clipped where it lies
    prod = rounding_shift(prod, shift, rounding, out=prod if rounding == "up" else None)
    return np.clip(prod, lo, hi, out=prod)


def divide_round(a, b) -> np.ndarray:
    """``a / b`` rounded half up, b > 0 (int64)."""
    a, b = np.asarray(a, dtype=I64), np.asarray(b, dtype=I64)
    return (2 * a + b) // (2 * b)


# --- i-GELU ----------------------------------------------------------------------------


def gelu_constants(scale: float) -> dict:
    """Integer constants of i-GELU for an input at ``scale``, and the output's scale."""
    s_erf = scale / math.sqrt(2.0)
    q_b = math.floor(ERF_B / s_erf)
    q_c = math.floor(1.0 / (ERF_A * s_erf**2))  # negative: a < 0
    s_l = ERF_A * s_erf**2  # negative, folded into the sign below
    q_one = math.floor(1.0 / -s_l)  # 1 at the erf output's scale |s_l|
    return {"q_b": q_b, "q_c": q_c, "q_one": q_one, "out_scale": scale * -s_l / 2.0}


def i_gelu(q, q_b: int, q_c: int, q_one: int) -> np.ndarray:
    """GELU of int16 ``q``: ``q * (i_erf(q) + 1)`` at ``out_scale``; int64 out (< 2**49)."""
    q = np.asarray(q, dtype=I64)
    # L(x) = sgn(x) [a (min(|x|, -b) + b)^2 + 1]; at scale a S^2 (< 0) the sign flips:
    # erf = -sgn(q) ((min(|q|, -q_b) + q_b)^2 + q_c), then q (erf + q_one), in place
    t = np.minimum(np.abs(q), -q_b)
    t += q_b
    t *= t
    t += q_c
    t *= np.sign(q)
    np.subtract(q_one, t, out=t)
    t *= q
    return t


# --- i-exp and softmax -----------------------------------------------------------------


EXP_FINE = 2.0**-20  # i-exp shifts its input left to at most this scale first


def exp_constants(scale: float) -> dict:
    """Integer constants of i-exp for a non-positive input at ``scale``.

    The input is first shifted left by ``lift`` bits (right, rounding half up, when
    ``lift`` < 0) so that ln 2 is 2**19.5 to 2**20.5 steps: an integer ln 2 at a coarse
    scale would be off by up to half a step per factor of 2, and at a much finer one the
    polynomial's square would leave int64.
    """
    lift = math.ceil(math.log2(scale / EXP_FINE))  # < 0: a finer input is rounded down to it
    scale = scale / 2**lift
    return {
        "lift": lift,
        "q_ln2": round(LN2 / scale),
        "q_b": round(EXP_B / scale),
        "q_c": round(EXP_C / (EXP_A * scale**2)),
        "out_scale": EXP_A * scale**2,
    }


EXP_MAX_SHIFT = 30  # beyond 2**-30 an exp is 0 at every usable scale


def i_exp(q, lift: int, q_ln2: int, q_b: int, q_c: int) -> np.ndarray:
    """exp of ``q <= 0``: ``x = -z ln2 + p``, ``exp(p)`` by the polynomial, ``>> z``.

    ``q`` is int32 (|q| < 2**32 after the max is taken off); with ``lift`` it stays
    under 2**52, and the square under 2**42.
    """
    q = np.asarray(q, dtype=I64)
    q = np.left_shift(q, lift) if lift >= 0 else rounding_shift(q, -lift)
    z = np.negative(q)
    z //= q_ln2
    np.minimum(z, EXP_MAX_SHIFT, out=z)
    p = np.multiply(z, q_ln2)  # below: in place, ``rounding_shift((p + q_b)**2 + q_c, z)``
    p += q
    np.maximum(p, -q_ln2, out=p)
    p += q_b
    p *= p
    p += q_c
    return rounding_shift(p, z, out=p)


def softmax_constants(scale: float) -> dict:
    return exp_constants(scale)


def i_softmax(
    q, mask, lift: int, q_ln2: int, q_b: int, q_c: int, bits: int = SOFTMAX_BITS
) -> np.ndarray:
    """Softmax over the last axis of int32 ``q``; ``mask`` (bool, True = keep) zeroes keys.

    Output: unsigned ``bits``-bit integers at scale ``2**-bits``, saturated to
    [0, 2**bits - 1] (a probability of 1 reads 255/256).
    """
    q = np.asarray(q, dtype=I64)
    mask = np.asarray(mask, dtype=bool)
    if mask.all():  # the same integers as below, without the masking passes
        e = i_exp(q - np.max(q, axis=-1, keepdims=True), lift, q_ln2, q_b, q_c)
    else:
        mask = np.broadcast_to(mask, q.shape)
        peak = np.max(np.where(mask, q, np.iinfo(I64).min // 2), axis=-1, keepdims=True)
        e = np.where(mask, i_exp(np.where(mask, q - peak, 0), lift, q_ln2, q_b, q_c), 0)
    total = np.maximum(np.sum(e, axis=-1, keepdims=True), 1)
    # e <= 2**42 (exp(0) at 2**-40 / a); with up to 2**8 keys, (sum e) << bits < 2**59
    e <<= bits
    probs = divide_round(e, total)
    return np.clip(probs, 0, (1 << bits) - 1, out=probs)


# --- integer LayerNorm -----------------------------------------------------------------


def isqrt(n) -> np.ndarray:
    """floor(sqrt(n)) of non-negative int64 ``n`` by Newton's iteration, elementwise."""
    n = np.asarray(n, dtype=I64)
    x = np.where(n > 0, np.left_shift(I64(1), (_bit_length(n) + 1) // 2), 0)
    for _ in range(64):  # quadratic from above; converges in well under 64 steps
        safe = np.maximum(x, 1)
        nxt = np.where(n > 0, (x + n // safe) >> 1, 0)
        if np.all(nxt >= x):
            break
        x = np.minimum(nxt, x)
    return x


def _bit_length(n: np.ndarray) -> np.ndarray:
    bits = np.zeros(n.shape, dtype=I64)
    v = n.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = v >= (I64(1) << step)
        bits += np.where(big, step, 0)
        v = np.where(big, v >> step, v)
    return bits + (v > 0)


def i_normalize(q, fraction: int = LAYERNORM_FRACTION) -> np.ndarray:
    """``(q - mean) / std`` over the last axis of int32 ``q`` at scale ``2**-fraction``.

    mean and 1/std are integer divisions rounded half up; std = isqrt(variance) with
    variance = sum((q - mean)^2) // n. Inputs |q| < 2**24 keep every step in int64.
    """
    q = np.asarray(q, dtype=I64)
    n = q.shape[-1]
    mean = divide_round(np.sum(q, axis=-1, keepdims=True), n)
    y = q - mean
    var = np.sum(y * y, axis=-1, keepdims=True) // n
    std = np.maximum(isqrt(var), 1)
    y <<= fraction
    return divide_round(y, std)


def i_layernorm(q, gamma, beta, fraction: int = LAYERNORM_FRACTION) -> np.ndarray:
    """``i_normalize(q) * gamma + beta``: int16 gamma (one scale S_gamma), int32 beta at
    ``2**-fraction * S_gamma``; int64 out (< 2**40), requantized by the caller."""
    z = i_normalize(q, fraction)
    z *= np.asarray(gamma, dtype=I64)
    z += np.asarray(beta, dtype=I64)
    return z
