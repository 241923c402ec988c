//! Double to shortest-ish decimal digits with the Grisu2 algorithm, as done
//! by the `fpconv_dtoa` routine Redis 7.2 uses to print doubles.
//!
//! Grisu2 (Florian Loitsch, "Printing Floating-Point Numbers Quickly and
//! Accurately with Integers", PLDI 2010) produces digits that always read
//! back as the same double but are not always the shortest or closest such
//! digits. Redis output therefore depends on the precise variant: the cached
//! power selection, the rounding of the 64x64-bit products, the narrowing of
//! the boundaries by one unit and the final digit "weeding". This module
//! follows the same choices so that the text matches byte for byte.

/// A do-it-yourself floating point number `f * 2^e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DiyFp {
    f: u64,
    e: i32,
}

impl DiyFp {
    /// Product rounded to the upper 64 bits (half rounded up).
    fn times(self, other: DiyFp) -> DiyFp {
        let product = u128::from(self.f) * u128::from(other.f) + (1u128 << 63);
        DiyFp {
            f: (product >> 64) as u64,
            e: self.e + other.e + 64,
        }
    }

    /// Shifts the significand left until its top bit is set.
    fn normalized(self) -> DiyFp {
        let shift = self.f.leading_zeros();
        DiyFp {
            f: self.f << shift,
            e: self.e - shift as i32,
        }
    }
}

/// `10^k` for `k = FIRST_CACHED_POWER + 8 * i`, as 64-bit normalized
/// significands and binary exponents (rounded to nearest). The values are
/// checked against an exact big-integer computation in the tests.
const CACHED_POWERS: [(u64, i32); 87] = [
    (0xfa8fd5a0081c0288, -1220), // 1e-348
    (0xbaaee17fa23ebf76, -1193), // 1e-340
    (0x8b16fb203055ac76, -1166), // 1e-332
    (0xcf42894a5dce35ea, -1140), // 1e-324
    (0x9a6bb0aa55653b2d, -1113), // 1e-316
    (0xe61acf033d1a45df, -1087), // 1e-308
    (0xab70fe17c79ac6ca, -1060), // 1e-300
    (0xff77b1fcbebcdc4f, -1034), // 1e-292
    (0xbe5691ef416bd60c, -1007), // 1e-284
    (0x8dd01fad907ffc3c, -980),  // 1e-276
    (0xd3515c2831559a83, -954),  // 1e-268
    (0x9d71ac8fada6c9b5, -927),  // 1e-260
    (0xea9c227723ee8bcb, -901),  // 1e-252
    (0xaecc49914078536d, -874),  // 1e-244
    (0x823c12795db6ce57, -847),  // 1e-236
    (0xc21094364dfb5637, -821),  // 1e-228
    (0x9096ea6f3848984f, -794),  // 1e-220
    (0xd77485cb25823ac7, -768),  // 1e-212
    (0xa086cfcd97bf97f4, -741),  // 1e-204
    (0xef340a98172aace5, -715),  // 1e-196
    (0xb23867fb2a35b28e, -688),  // 1e-188
    (0x84c8d4dfd2c63f3b, -661),  // 1e-180
    (0xc5dd44271ad3cdba, -635),  // 1e-172
    (0x936b9fcebb25c996, -608),  // 1e-164
    (0xdbac6c247d62a584, -582),  // 1e-156
    (0xa3ab66580d5fdaf6, -555),  // 1e-148
    (0xf3e2f893dec3f126, -529),  // 1e-140
    (0xb5b5ada8aaff80b8, -502),  // 1e-132
    (0x87625f056c7c4a8b, -475),  // 1e-124
    (0xc9bcff6034c13053, -449),  // 1e-116
    (0x964e858c91ba2655, -422),  // 1e-108
    (0xdff9772470297ebd, -396),  // 1e-100
    (0xa6dfbd9fb8e5b88f, -369),  // 1e-92
    (0xf8a95fcf88747d94, -343),  // 1e-84
    (0xb94470938fa89bcf, -316),  // 1e-76
    (0x8a08f0f8bf0f156b, -289),  // 1e-68
    (0xcdb02555653131b6, -263),  // 1e-60
    (0x993fe2c6d07b7fac, -236),  // 1e-52
    (0xe45c10c42a2b3b06, -210),  // 1e-44
    (0xaa242499697392d3, -183),  // 1e-36
    (0xfd87b5f28300ca0e, -157),  // 1e-28
    (0xbce5086492111aeb, -130),  // 1e-20
    (0x8cbccc096f5088cc, -103),  // 1e-12
    (0xd1b71758e219652c, -77),   // 1e-4
    (0x9c40000000000000, -50),   // 1e4
    (0xe8d4a51000000000, -24),   // 1e12
    (0xad78ebc5ac620000, 3),     // 1e20
    (0x813f3978f8940984, 30),    // 1e28
    (0xc097ce7bc90715b3, 56),    // 1e36
    (0x8f7e32ce7bea5c70, 83),    // 1e44
    (0xd5d238a4abe98068, 109),   // 1e52
    (0x9f4f2726179a2245, 136),   // 1e60
    (0xed63a231d4c4fb27, 162),   // 1e68
    (0xb0de65388cc8ada8, 189),   // 1e76
    (0x83c7088e1aab65db, 216),   // 1e84
    (0xc45d1df942711d9a, 242),   // 1e92
    (0x924d692ca61be758, 269),   // 1e100
    (0xda01ee641a708dea, 295),   // 1e108
    (0xa26da3999aef774a, 322),   // 1e116
    (0xf209787bb47d6b85, 348),   // 1e124
    (0xb454e4a179dd1877, 375),   // 1e132
    (0x865b86925b9bc5c2, 402),   // 1e140
    (0xc83553c5c8965d3d, 428),   // 1e148
    (0x952ab45cfa97a0b3, 455),   // 1e156
    (0xde469fbd99a05fe3, 481),   // 1e164
    (0xa59bc234db398c25, 508),   // 1e172
    (0xf6c69a72a3989f5c, 534),   // 1e180
    (0xb7dcbf5354e9bece, 561),   // 1e188
    (0x88fcf317f22241e2, 588),   // 1e196
    (0xcc20ce9bd35c78a5, 614),   // 1e204
    (0x98165af37b2153df, 641),   // 1e212
    (0xe2a0b5dc971f303a, 667),   // 1e220
    (0xa8d9d1535ce3b396, 694),   // 1e228
    (0xfb9b7cd9a4a7443c, 720),   // 1e236
    (0xbb764c4ca7a44410, 747),   // 1e244
    (0x8bab8eefb6409c1a, 774),   // 1e252
    (0xd01fef10a657842c, 800),   // 1e260
    (0x9b10a4e5e9913129, 827),   // 1e268
    (0xe7109bfba19c0c9d, 853),   // 1e276
    (0xac2820d9623bf429, 880),   // 1e284
    (0x80444b5e7aa7cf85, 907),   // 1e292
    (0xbf21e44003acdd2d, 933),   // 1e300
    (0x8e679c2f5e44ff8f, 960),   // 1e308
    (0xd433179d9c8cb841, 986),   // 1e316
    (0x9e19db92b4e31ba9, 1013),  // 1e324
    (0xeb96bf6ebadf77d9, 1039),  // 1e332
    (0xaf87023b9bf0ee6b, 1066),  // 1e340
];

const FIRST_CACHED_POWER: i32 = -348;
const CACHED_POWER_STEP: i32 = 8;

/// Picks the cached power `c` of ten that brings a number with binary
/// exponent `e` into the window where `e + c.e + 64` is in `-60..=-32`.
/// The search starts from a logarithmic estimate and walks towards the
/// window, which decides between two candidates when both would fit.
fn cached_power(e: i32) -> (DiyFp, i32) {
    const LOG10_2: f64 = 0.301_029_995_663_981_14;
    let estimate = (f64::from(-(e + CACHED_POWERS.len() as i32)) * LOG10_2) as i32;
    let mut index = (estimate - FIRST_CACHED_POWER) / CACHED_POWER_STEP;
    loop {
        let (f, pe) = CACHED_POWERS[index as usize];
        let window = e + pe + 64;
        if window < -60 {
            index += 1;
        } else if window > -32 {
            index -= 1;
        } else {
            return (
                DiyFp { f, e: pe },
                FIRST_CACHED_POWER + index * CACHED_POWER_STEP,
            );
        }
    }
}

/// The decimal digits of a double, meaning `0.d1d2...dn * 10^(n + exp10)`,
/// or equivalently the integer `d1...dn` times `10^exp10`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Digits {
    pub digits: DigitBuf,
    pub exp10: i32,
}

/// Up to 24 decimal digits held inline (Grisu2 gives at most 17 for a
/// double), so formatting a double allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct DigitBuf {
    d: [u8; 24],
    n: usize,
}

impl DigitBuf {
    #[inline]
    fn push(&mut self, x: u8) {
        self.d[self.n] = x;
        self.n += 1;
    }
}

impl std::ops::Deref for DigitBuf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.d[..self.n]
    }
}

impl std::ops::DerefMut for DigitBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.d[..self.n]
    }
}

/// A small inline output buffer for [`fpconv_dtoa`].
pub(crate) struct Out {
    pub buf: [u8; 32],
    pub len: usize,
}

impl Out {
    #[inline]
    pub(crate) fn new() -> Out {
        Out {
            buf: [0; 32],
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn extend(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Appends a non-negative integer in decimal.
    pub(crate) fn push_u64(&mut self, mut v: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.extend(&tmp[i..]);
    }
}

/// Digits of a positive finite double `v`, exactly as fpconv's Grisu2.
pub(crate) fn grisu2(v: f64) -> Digits {
    debug_assert!(v.is_finite() && v > 0.0);
    let bits = v.to_bits();
    let fraction = bits & ((1 << 52) - 1);
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let w = if biased == 0 {
        DiyFp {
            f: fraction,
            e: -1074,
        }
    } else {
        DiyFp {
            f: fraction | 1 << 52,
            e: biased - 1075,
        }
    };

    // Boundaries halfway to the neighbouring doubles; the lower one is
    // closer when `w` is an exact power of two (other than subnormals).
    let upper = DiyFp {
        f: (w.f << 1) + 1,
        e: w.e - 1,
    }
    .normalized();
    let lower_shift = if w.f == 1 << 52 { 2 } else { 1 };
    let lower = DiyFp {
        f: ((w.f << lower_shift) - 1) << (w.e - lower_shift - upper.e),
        e: upper.e,
    };

    let (power, k) = cached_power(upper.e);
    let w = w.normalized().times(power);
    let mut upper = upper.times(power);
    let mut lower = lower.times(power);
    // Stay strictly inside the rounding interval despite the product errors.
    lower.f = lower.f.wrapping_add(1);
    upper.f = upper.f.wrapping_sub(1);

    let mut out = Digits {
        digits: DigitBuf::default(),
        exp10: -k,
    };
    generate_digits(w, upper, lower, &mut out);
    out
}

const POW10: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Emits digits of `upper` until the remainder fits in the interval
/// `upper - lower`, then nudges the last digit towards `w`.
fn generate_digits(w: DiyFp, upper: DiyFp, lower: DiyFp, out: &mut Digits) {
    let shift = (-upper.e) as u32;
    let one = 1u64 << shift;
    let mask = one - 1;
    let distance = upper.f.wrapping_sub(w.f);
    let mut delta = upper.f.wrapping_sub(lower.f);
    let mut integral = upper.f >> shift;
    let mut fractional = upper.f & mask;

    // Integral part: at most ten digits since `integral < 2^32`.
    for kappa in (0..10).rev() {
        let divisor = POW10[kappa];
        let digit = integral / divisor;
        if digit != 0 || !out.digits.is_empty() {
            out.digits.push(digit as u8);
        }
        integral -= digit * divisor;
        let rest = (integral << shift).wrapping_add(fractional);
        if rest <= delta {
            out.exp10 += kappa as i32;
            weed(&mut out.digits, delta, rest, divisor << shift, distance);
            return;
        }
    }

    // Fractional part.
    let mut kappa = 0i32;
    let mut unit = 1u64;
    loop {
        fractional = fractional.wrapping_mul(10);
        delta = delta.wrapping_mul(10);
        unit = unit.wrapping_mul(10);
        kappa -= 1;
        let digit = fractional >> shift;
        if digit != 0 || !out.digits.is_empty() {
            out.digits.push(digit as u8);
        }
        fractional &= mask;
        if fractional < delta {
            out.exp10 += kappa;
            weed(
                &mut out.digits,
                delta,
                fractional,
                one,
                distance.wrapping_mul(unit),
            );
            return;
        }
    }
}

/// Lowers the last digit while that moves the result closer to the exact
/// value and keeps it inside the safe interval.
fn weed(digits: &mut [u8], delta: u64, mut rest: u64, ten_kappa: u64, distance: u64) {
    let Some(last) = digits.last_mut() else {
        return;
    };
    while rest < distance
        && delta.wrapping_sub(rest) >= ten_kappa
        && (rest.wrapping_add(ten_kappa) < distance
            || distance.wrapping_sub(rest) > rest.wrapping_add(ten_kappa).wrapping_sub(distance))
    {
        *last = last.wrapping_sub(1);
        rest = rest.wrapping_add(ten_kappa);
    }
}

/// Formats a non-zero finite double like `fpconv_dtoa`: plain integer,
/// plain decimal or scientific notation depending on the magnitude.
pub(crate) fn fpconv_dtoa(v: f64, out: &mut Out) {
    debug_assert!(v.is_finite() && v != 0.0);
    let negative = v.is_sign_negative();
    let Digits { digits, exp10 } = grisu2(v.abs());
    if negative {
        out.push(b'-');
    }
    let push_digits = |out: &mut Out, ds: &[u8]| {
        for &d in ds {
            out.push(b'0' + d);
        }
    };
    let n = digits.len() as i32;
    // Decimal exponent of the leading digit, without sign.
    let point_exp = (exp10 + n - 1).abs();
    if exp10 >= 0 && point_exp < n + 7 {
        push_digits(out, &digits);
        for _ in 0..exp10 {
            out.push(b'0');
        }
    } else if exp10 < 0 && (exp10 > -7 || point_exp < 4) {
        let int_len = n + exp10;
        if int_len <= 0 {
            out.extend(b"0.");
            for _ in 0..-int_len {
                out.push(b'0');
            }
            push_digits(out, &digits);
        } else {
            push_digits(out, &digits[..int_len as usize]);
            out.push(b'.');
            push_digits(out, &digits[int_len as usize..]);
        }
    } else {
        let kept = n.min(18 - i32::from(negative));
        push_digits(out, &digits[..1]);
        if kept > 1 {
            out.push(b'.');
            push_digits(out, &digits[1..kept as usize]);
        }
        out.push(b'e');
        out.push(if exp10 + kept - 1 < 0 { b'-' } else { b'+' });
        out.push_u64(point_exp as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpcore::{Literal, Rounded, X87};

    #[test]
    fn cached_powers_are_exact() {
        for (i, &(f, e)) in CACHED_POWERS.iter().enumerate() {
            let k = i64::from(FIRST_CACHED_POWER + CACHED_POWER_STEP * i as i32);
            let exact = Literal::Decimal {
                int: b"1",
                frac: b"",
                exp: k,
            }
            .to_binary(&X87);
            assert_eq!(exact, Some(Rounded::Finite { mant: f, exp: e }), "10^{k}");
        }
    }

    #[test]
    fn digits() {
        let d = |v: f64| {
            let g = grisu2(v);
            (
                g.digits
                    .iter()
                    .map(|&x| char::from(b'0' + x))
                    .collect::<String>(),
                g.exp10,
            )
        };
        assert_eq!(d(1.0), ("1".to_string(), 0));
        assert_eq!(d(0.1), ("1".to_string(), -1));
        assert_eq!(d(1.5), ("15".to_string(), -1));
        assert_eq!(d(1e20), ("1".to_string(), 20));
        assert_eq!(d(5e-324), ("5".to_string(), -324));
        assert_eq!(d(f64::MAX), ("17976931348623157".to_string(), 292));
    }
}
