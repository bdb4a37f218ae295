"""Integer kernels of the FPGA program against float references and hand-computed integers."""

import math

import numpy as np
import pytest

from pocketbert.runtimes import fpga_kernels as K

ERF = np.vectorize(math.erf)


def _gelu(x):
    return x * 0.5 * (1.0 + ERF(x / math.sqrt(2.0)))


def test_dyadic_multiplier_is_within_half_a_step_of_the_real_one():
    for real in (0.3, 1e-5, 0.75, 100.0, 2.0**-20):
        m, shift = K.dyadic(real)
        assert 2**30 <= m < 2**31
        assert abs(m * 2.0**-shift - real) <= 2.0 ** -(shift + 1)
    assert K.dyadic(0.5) == (2**30, 31)


def test_requantize_rounds_half_up_or_to_even_and_saturates_when_asked():
    # m = 2**30, shift = 31: multiply by 1/2
    acc = np.array([3, 5, -3, -5, 4, 1000, -1000])
    assert K.requantize(acc, 2**30, 31).tolist() == [2, 3, -1, -2, 2, 127, -128]
    assert K.requantize(acc, 2**30, 31, rounding="even").tolist() == [2, 2, -2, -2, 2, 127, -128]
    assert K.requantize(acc, 2**30, 31, lo=-127).tolist()[-1] == -127
    # per channel: channel 0 halves, channel 1 quarters
    got = K.requantize(np.array([[7, 7]]), np.array([2**30, 2**30]), np.array([31, 32]))
    assert got.tolist() == [[4, 2]]  # 3.5 -> 4, 1.75 -> 2


def test_requantize_matches_the_float_product_within_half_a_step():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**31), 2**31, 10000)
    real = 3.7e-8
    m, shift = K.dyadic(real)
    got = K.requantize(acc, m, shift, lo=-(2**31), hi=2**31 - 1)
    assert np.abs(got - acc * real).max() <= 0.5 + 1e-6


def test_rounding_shift_by_zero_is_the_identity_and_arrays_broadcast():
    x = np.array([[5, -5, 6]])
    assert K.rounding_shift(x, 0).tolist() == [[5, -5, 6]]
    assert K.rounding_shift(x, np.array([0, 1, 2])).tolist() == [[5, -2, 2]]


def test_i_gelu_is_within_0_02_of_gelu_on_minus_4_to_4():
    for scale in (4 / 127, 4 / 32767, 1e-2):
        c = K.gelu_constants(scale)
        q = np.arange(-round(4 / scale), round(4 / scale) + 1)
        out = K.i_gelu(q, c["q_b"], c["q_c"], c["q_one"]) * c["out_scale"]
        assert np.abs(out - _gelu(q * scale)).max() <= 0.02


def test_i_gelu_matches_hand_computed_integers():
    # scale 1: q_b = floor(-1.769 sqrt2) = -3, q_c = floor(1 / (-0.2888 / 2)) = -7, q_one = 6
    c = K.gelu_constants(1.0)
    assert (c["q_b"], c["q_c"], c["q_one"]) == (-3, -7, 6)
    # q=1: erf = -((1-3)^2 - 7) = 3 -> 1 * (3 + 6) = 9; q=-1: -1 * (-3 + 6) = -3
    # q=5: |q| clipped to 3 -> erf = -(0 - 7) = 7 -> 5 * 13 = 65; q=0 -> 0
    assert K.i_gelu(np.array([1, -1, 5, 0]), -3, -7, 6).tolist() == [9, -3, 65, 0]


def test_i_exp_relative_error_is_below_2e_3_on_minus_8_to_0():
    for scale in (1e-2, 1e-3, 3e-5, 5e-11):  # 5e-11: finer than 2**-20, shifted down
        c = K.exp_constants(scale)
        q = np.arange(-round(8 / scale), 1, max(1, round(1e-3 / scale)), dtype=np.int64)
        got = K.i_exp(q, c["lift"], c["q_ln2"], c["q_b"], c["q_c"]) * c["out_scale"]
        ref = np.exp(q * scale)
        assert (np.abs(got - ref) / ref).max() <= 2e-3


def test_i_exp_matches_hand_computed_integers():
    # q_ln2 = 7, q_b = 10, q_c = 3, no lift: q = -9 -> z = 1, p = -2: (8^2 + 3) = 67,
    # rounded >> 1 = 34; q = 0 -> 103; q = -14 -> z = 2, p = 0 -> 103 / 4 -> 26
    assert K.i_exp(np.array([-9, 0, -14]), 0, 7, 10, 3).tolist() == [34, 103, 26]


def test_i_softmax_is_within_3e_3_of_softmax_and_masks_keys():
    rng = np.random.default_rng(1)
    scale = 2e-4
    x = rng.normal(0, 3, size=(64, 16))
    q = np.round(x / scale).astype(np.int64)
    mask = np.ones(16, dtype=bool)
    mask[12:] = False
    c = K.softmax_constants(scale)
    got = K.i_softmax(q, mask, c["lift"], c["q_ln2"], c["q_b"], c["q_c"]) / 2**K.SOFTMAX_BITS
    e = np.exp((q * scale)[:, :12] - (q * scale)[:, :12].max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True)
    assert np.abs(got[:, :12] - ref).max() <= 3e-3  # 2**-9 rounding + 1.7e-3 from i-exp
    assert (got[:, 12:] == 0).all()


def test_i_softmax_of_equal_scores_is_a_hand_computed_uniform():
    c = K.softmax_constants(1e-3)
    got = K.i_softmax(np.zeros((1, 4), np.int64), True, c["lift"], c["q_ln2"], c["q_b"], c["q_c"])
    assert got.tolist() == [[64, 64, 64, 64]]  # 256 / 4
    one = K.i_softmax(np.array([[5, 0]]), [True, False], 0, 7, 10, 3)
    assert one.tolist() == [[255, 0]]  # 1.0 saturates to 255 / 256


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 2**40 - 1, 2**62 - 1])
def test_isqrt_is_the_integer_square_root(n):
    assert int(K.isqrt(np.array([n]))[0]) == math.isqrt(n)


def test_isqrt_agrees_with_math_isqrt_on_random_int64():
    v = np.random.default_rng(2).integers(0, 2**62, 20000)
    assert (K.isqrt(v) == np.array([math.isqrt(int(t)) for t in v])).all()


def test_i_layernorm_is_within_2e_3_of_layernorm_at_int16_inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 2.0, size=(32, 384))
    scale = np.abs(x).max() / 32767
    q = np.round(x / scale).astype(np.int64)
    z = K.i_normalize(q) / 2**K.LAYERNORM_FRACTION
    xq = q * scale
    ref = (xq - xq.mean(-1, keepdims=True)) / xq.std(-1, keepdims=True)
    assert np.abs(z - ref).max() <= 2e-3


def test_i_layernorm_matches_hand_computed_integers():
    # [1, 3]: mean 2, y = [-1, 1], var = 1, std = 1 -> z = [-2**14, 2**14]
    # gamma [2, 3], beta [5, -5]: [-32763, 49147]
    got = K.i_layernorm(np.array([[1, 3]]), [2, 3], [5, -5])
    assert got.tolist() == [[-32763, 49147]]
    # [0, 0, 0, 8]: mean 2, y = [-2,-2,-2,6], var = 48 // 4 = 12, std = 3
    # z = round(-2 * 16384 / 3) = -10923, round(6 * 16384 / 3) = 32768
    assert K.i_normalize(np.array([[0, 0, 0, 8]])).tolist() == [[-10923, -10923, -10923, 32768]]
