//! A software model of the x87 80-bit `long double`, which Redis uses for
//! INCRBYFLOAT and HINCRBYFLOAT (and to print GEOPOS coordinates).
//!
//! Only what those commands need is provided: parsing with `string2ld` rules,
//! correctly rounded addition, conversions, and the `%.17Lf`-based "human"
//! formatting of `ld2string(..., LD_STR_HUMAN)`. Arithmetic follows the x87
//! in its default configuration on x86-64 Linux: 64-bit significands, round
//! to nearest with ties to even, gradual underflow.

use std::fmt;
use std::ops::{Add, Neg};

use crate::bignum::BigUint;
use crate::fpcore::{self, Rounded, F64, X87};

/// `string2ld` copies its input into a buffer of this size
/// (`MAX_LONG_DOUBLE_CHARS`) and rejects anything that does not fit.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Fractional digits printed by the human format before trimming.
const HUMAN_DIGITS: usize = 17;

/// Exponent bias of the x87 extended format.
const BIAS: i32 = 16383;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Zero,
    /// `mant * 2^exp`, `mant != 0`. Normal numbers have the top bit of
    /// `mant` set; subnormals have the minimum exponent (-16445).
    Finite {
        mant: u64,
        exp: i32,
    },
    Infinite,
    NaN,
}

/// An x87 extended precision number: sign, 15-bit exponent and a 64-bit
/// significand with an explicit integer bit.
///
/// It behaves like C `long double` on x86-64 for the operations Redis uses,
/// so results and their printed form match Redis bit for bit.
#[derive(Clone, Copy)]
pub struct LongDouble {
    negative: bool,
    kind: Kind,
}

impl LongDouble {
    /// Positive zero.
    pub const ZERO: LongDouble = LongDouble {
        negative: false,
        kind: Kind::Zero,
    };

    fn from_rounded(negative: bool, rounded: Rounded) -> LongDouble {
        let kind = match rounded {
            Rounded::Zero | Rounded::Underflow => Kind::Zero,
            Rounded::Finite { mant, exp } => Kind::Finite { mant, exp },
            Rounded::Overflow => Kind::Infinite,
        };
        LongDouble { negative, kind }
    }

    /// Parses a value the way Redis's `string2ld` does: the whole input must
    /// be one C `strtold` number (decimal, `0x` hexadecimal or `inf` /
    /// `infinity`, optionally signed) and is correctly rounded to 64 bits.
    ///
    /// Rejected: empty input or 5120 bytes and more, leading or trailing
    /// whitespace or garbage, NaN, and values that overflow or underflow to
    /// zero. Infinity literals and subnormal results are accepted.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let scanned = fpcore::scan(s)?;
        let kind = match scanned.literal.to_binary(&X87) {
            None => Kind::Infinite,
            Some(Rounded::Overflow | Rounded::Underflow) => return None,
            Some(Rounded::Zero) => Kind::Zero,
            Some(Rounded::Finite { mant, exp }) => Kind::Finite { mant, exp },
        };
        Some(LongDouble {
            negative: scanned.negative,
            kind,
        })
    }

    /// Converts an integer exactly (every `i64` fits in 64 significand bits),
    /// as Redis does for integer-encoded values before incrementing them.
    pub fn from_i64(v: i64) -> LongDouble {
        if v == 0 {
            return LongDouble::ZERO;
        }
        let magnitude = v.unsigned_abs();
        let shift = magnitude.leading_zeros();
        LongDouble {
            negative: v < 0,
            kind: Kind::Finite {
                mant: magnitude << shift,
                exp: -(shift as i32),
            },
        }
    }

    /// Converts a double exactly, like the implicit C conversion from
    /// `double` to `long double` (used when GEOPOS prints coordinates).
    pub fn from_f64(v: f64) -> LongDouble {
        let negative = v.is_sign_negative();
        if v.is_nan() {
            return LongDouble {
                negative,
                kind: Kind::NaN,
            };
        }
        if v.is_infinite() {
            return LongDouble {
                negative,
                kind: Kind::Infinite,
            };
        }
        if v == 0.0 {
            return LongDouble {
                negative,
                kind: Kind::Zero,
            };
        }
        let bits = v.to_bits();
        let fraction = bits & ((1 << 52) - 1);
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let (mant, exp) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | 1 << 52, biased - 1075)
        };
        let shift = mant.leading_zeros();
        LongDouble {
            negative,
            kind: Kind::Finite {
                mant: mant << shift,
                exp: exp - shift as i32,
            },
        }
    }

    /// Rounds to the nearest double (ties to even), as a C cast does.
    /// Values beyond the double range become infinite, tiny ones zero.
    pub fn to_f64(self) -> f64 {
        match self.kind {
            Kind::NaN => f64::NAN,
            Kind::Infinite | Kind::Zero => {
                let magnitude = if self.kind == Kind::Zero {
                    0.0
                } else {
                    f64::INFINITY
                };
                if self.negative {
                    -magnitude
                } else {
                    magnitude
                }
            }
            Kind::Finite { mant, exp } => fpcore::f64_from_rounded(
                self.negative,
                F64.round(u128::from(mant), i64::from(exp), false),
            ),
        }
    }

    /// The 80-bit x87 encoding in the low bits of a `u128`: significand in
    /// bits 0-63, biased exponent in bits 64-78 and the sign in bit 79.
    pub fn to_bits(self) -> u128 {
        let (exponent, mant) = match self.kind {
            Kind::Zero => (0, 0),
            Kind::Finite { mant, .. } if mant >> 63 == 0 => (0, mant),
            Kind::Finite { mant, exp } => ((exp + 63 + BIAS) as u128, mant),
            Kind::Infinite => (0x7fff, 1 << 63),
            Kind::NaN => (0x7fff, 0xc000_0000_0000_0000),
        };
        u128::from(self.negative) << 79 | exponent << 64 | u128::from(mant)
    }

    /// Decodes the 80-bit x87 encoding produced by [`LongDouble::to_bits`]
    /// (higher bits are ignored). Encodings the x87 rejects as invalid
    /// operands (unnormals, pseudo-infinities) decode as NaN.
    pub fn from_bits(bits: u128) -> LongDouble {
        let negative = bits >> 79 & 1 == 1;
        let exponent = (bits >> 64) as i32 & 0x7fff;
        let mant = bits as u64;
        let integer_bit = mant >> 63 == 1;
        let kind = match exponent {
            0 if mant == 0 => Kind::Zero,
            0 => Kind::Finite {
                mant,
                exp: X87.min_lsb_exp() as i32,
            },
            0x7fff if mant == 1 << 63 => Kind::Infinite,
            0x7fff => Kind::NaN,
            _ if !integer_bit => Kind::NaN,
            _ => Kind::Finite {
                mant,
                exp: exponent - BIAS - 63,
            },
        };
        LongDouble { negative, kind }
    }

    /// True unless the value is infinite or NaN.
    pub fn is_finite(self) -> bool {
        matches!(self.kind, Kind::Zero | Kind::Finite { .. })
    }

    /// True for positive or negative infinity.
    pub fn is_infinite(self) -> bool {
        self.kind == Kind::Infinite
    }

    /// True for NaN (which only arises from adding opposite infinities).
    pub fn is_nan(self) -> bool {
        self.kind == Kind::NaN
    }

    /// Exact sum rounded once to 64 significand bits (nearest, ties to
    /// even), like an x87 `fadd`. Opposite infinities give NaN; an exact
    /// zero sum is positive unless both operands are negative zeros.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: LongDouble) -> LongDouble {
        let nan = LongDouble {
            negative: true,
            kind: Kind::NaN,
        };
        match (self.kind, other.kind) {
            (Kind::NaN, _) | (_, Kind::NaN) => nan,
            (Kind::Infinite, Kind::Infinite) if self.negative != other.negative => nan,
            (Kind::Infinite, _) => self,
            (_, Kind::Infinite) => other,
            (Kind::Zero, Kind::Zero) => LongDouble {
                negative: self.negative && other.negative,
                kind: Kind::Zero,
            },
            (Kind::Zero, _) => other,
            (_, Kind::Zero) => self,
            (Kind::Finite { mant: ma, exp: ea }, Kind::Finite { mant: mb, exp: eb }) => {
                add_finite((self.negative, ma, ea), (other.negative, mb, eb))
            }
        }
    }

    /// Formats like Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf` (the
    /// exact binary value rounded half-to-even to 17 decimals, never in
    /// exponent form), then trailing zeros and a trailing point removed.
    ///
    /// A result of `-0` becomes `0`; infinities print as `inf` / `-inf` and
    /// NaN as `nan`. Huge values print all their integer digits.
    pub fn to_human_string(&self) -> String {
        let (mant, exp) = match self.kind {
            Kind::NaN => return "nan".to_string(),
            Kind::Infinite => return if self.negative { "-inf" } else { "inf" }.to_string(),
            Kind::Zero => return "0".to_string(),
            Kind::Finite { mant, exp } => (mant, exp),
        };
        // Round mant * 2^exp * 10^17 to an integer, ties to even.
        let mut scaled = BigUint::from_u64(mant);
        scaled.mul_pow10(HUMAN_DIGITS as u64);
        if exp >= 0 {
            scaled.shl(exp as u64);
        } else {
            let shift = u64::from(exp.unsigned_abs());
            let half = scaled.bit(shift - 1);
            let below_half = scaled.any_bit_below(shift - 1);
            scaled.shr(shift);
            if half && (below_half || scaled.bit(0)) {
                scaled.mul_add_small(1, 1);
            }
        }
        let digits = scaled.to_decimal();
        let digits = format!("{digits:0>width$}", width = HUMAN_DIGITS + 1);
        let (int_part, frac_part) = digits.split_at(digits.len() - HUMAN_DIGITS);
        let frac_part = frac_part.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if self.negative && !(int_part == "0" && frac_part.is_empty()) {
            out.push('-');
        }
        out.push_str(int_part);
        if !frac_part.is_empty() {
            out.push('.');
            out.push_str(frac_part);
        }
        out
    }
}

/// Adds two non-zero finite values given as (negative, mant, exp).
fn add_finite(a: (bool, u64, i32), b: (bool, u64, i32)) -> LongDouble {
    // Order by magnitude; with the normalisation invariant, comparing
    // (exponent, significand) pairs compares magnitudes.
    let (big, small) = if (a.2, a.1) >= (b.2, b.1) {
        (a, b)
    } else {
        (b, a)
    };
    let (negative, big_mant, big_exp) = big;
    let (_, small_mant, small_exp) = small;
    // Give the larger operand 62 spare low bits; the smaller one is shifted
    // into place and whatever falls off is remembered as a sticky bit.
    const SPARE: u32 = 62;
    let wide_big = u128::from(big_mant) << SPARE;
    let gap = (big_exp - small_exp) as u32;
    let wide_small = u128::from(small_mant) << SPARE;
    let (aligned, sticky) = if gap >= 128 {
        (0, true)
    } else {
        let aligned = wide_small >> gap;
        (aligned, aligned << gap != wide_small)
    };
    let exp = i64::from(big_exp) - i64::from(SPARE);
    let sum = if a.0 == b.0 {
        wide_big + aligned
    } else {
        if wide_big == aligned && !sticky {
            return LongDouble::ZERO;
        }
        // With a sticky remainder the true difference lies strictly between
        // `wide_big - aligned - 1` and `wide_big - aligned`.
        wide_big - aligned - u128::from(sticky)
    };
    LongDouble::from_rounded(negative, X87.round(sum, exp, sticky))
}

impl Add for LongDouble {
    type Output = LongDouble;

    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble::add(self, other)
    }
}

impl Neg for LongDouble {
    type Output = LongDouble;

    fn neg(self) -> LongDouble {
        LongDouble {
            negative: !self.negative,
            kind: self.kind,
        }
    }
}

impl From<i64> for LongDouble {
    fn from(v: i64) -> LongDouble {
        LongDouble::from_i64(v)
    }
}

impl From<f64> for LongDouble {
    fn from(v: f64) -> LongDouble {
        LongDouble::from_f64(v)
    }
}

impl fmt::Debug for LongDouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LongDouble({} = {:#022x})",
            self.to_human_string(),
            self.to_bits()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ld(s: &str) -> LongDouble {
        LongDouble::parse(s.as_bytes()).unwrap_or_else(|| panic!("{s:?} rejected"))
    }

    /// INCRBYFLOAT: parse both sides, add, format.
    fn incr(value: &str, by: &str) -> String {
        let sum = ld(value) + ld(by);
        assert!(sum.is_finite());
        sum.to_human_string()
    }

    #[test]
    fn human_format_basics() {
        assert_eq!(ld("10.5").to_human_string(), "10.5");
        assert_eq!(ld("3.0").to_human_string(), "3");
        assert_eq!(ld("5.0e3").to_human_string(), "5000");
        assert_eq!(ld("0").to_human_string(), "0");
        assert_eq!(ld("-0").to_human_string(), "0");
        assert_eq!(ld("-0.0").to_human_string(), "0");
        assert_eq!(ld("0.1").to_human_string(), "0.1");
        assert_eq!(ld("-1.25").to_human_string(), "-1.25");
        assert_eq!(ld("1e-17").to_human_string(), "0.00000000000000001");
        // Rounds to zero at 17 decimals; the sign is dropped with it.
        assert_eq!(ld("4e-18").to_human_string(), "0");
        assert_eq!(ld("-4e-18").to_human_string(), "0");
        assert_eq!(ld("-6e-18").to_human_string(), "-0.00000000000000001");
        assert_eq!(ld("1e20").to_human_string(), "100000000000000000000");
        assert_eq!(ld("inf").to_human_string(), "inf");
        assert_eq!(ld("-inf").to_human_string(), "-inf");
        // An exact tie at the 18th decimal rounds to even:
        // 2^-18 = 0.000003814697265625 and 3 * 2^-18 = 0.000011444091796875.
        assert_eq!(ld("0x1p-18").to_human_string(), "0.00000381469726562");
        assert_eq!(ld("0x3p-18").to_human_string(), "0.00001144409179688");
    }

    #[test]
    fn incrbyfloat_examples_from_redis_tests() {
        // unit/type/incr.tcl
        assert_eq!(incr("0", "1"), "1");
        assert_eq!(incr("1", "0.25"), "1.25");
        assert_eq!(incr("1.5", "1.5"), "3");
        assert_eq!(incr("17179869184", "1.5"), "17179869185.5");
        assert_eq!(incr("17179869184", "17179869184"), "34359738368");
        assert_eq!(incr("1", "-1.1"), "-0.1");
        // unit/type/hash.tcl (HINCRBYFLOAT)
        assert_eq!(incr("0", "2.5"), "2.5");
        assert_eq!(incr("100", "2.5"), "102.5");
        assert_eq!(incr("17179869184", "1"), "17179869185");
        assert_eq!(incr("0", "1.23"), "1.23");
        assert_eq!(incr("1.23", "0.77"), "2");
        assert_eq!(incr("2", "-0.1"), "1.9");
        assert_eq!(incr("0", "0.000005"), "0.000005");
        assert_eq!(incr("0", "0.0000005"), "0.0000005");
        // Extended precision hides the usual double artefacts.
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("1.1", "-1"), "0.1");
        assert_eq!(incr("10.50", "0.1"), "10.6");
        assert_eq!(incr("5.0e3", "2.0e2"), "5200");
    }

    #[test]
    fn no_negative_zero() {
        // "No negative zero" in incr.tcl: +1/41 then -1/41.
        let third = ld("0.024390243902439025");
        let sum = LongDouble::ZERO + third + -third;
        assert_eq!(sum.to_human_string(), "0");
        assert_eq!(sum.to_bits(), 0);
        assert_eq!((ld("-0") + ld("-0")).to_bits(), 1 << 79);
        assert_eq!((ld("-0") + ld("0")).to_bits(), 0);
    }

    #[test]
    fn parse_rules() {
        for bad in [
            "",
            " 11",
            "11 ",
            " 11 ",
            "    11",
            "1\0",
            "1\x002",
            "abc",
            "nan",
            "-nan",
            "NaN",
            "1e",
            "0x",
            ".",
            "+",
            "1e4933",
            "-1e4933",
            "1e-4952",
            "1.8e-4951",
            "0x1p16384",
            "0x1p-16446",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(ld("inf").is_infinite());
        assert!(ld("+inf").is_infinite());
        assert!(ld("-Infinity").is_infinite());
        assert!(ld("1e4932").is_finite());
        // Subnormal results are accepted even though strtold flags ERANGE.
        assert_eq!(ld("1.9e-4951").to_bits(), 1);
        assert_eq!(ld("0x1p-16445").to_bits(), 1);
        assert_eq!(ld("0e-99999").to_bits(), 0);
        // Length limit: 5119 bytes pass, 5120 do not.
        let long = format!("1.{}", "0".repeat(5117));
        assert_eq!(long.len(), 5119);
        assert_eq!(ld(&long).to_human_string(), "1");
        assert!(LongDouble::parse(format!("{long}0").as_bytes()).is_none());
    }

    #[test]
    fn parse_is_correctly_rounded() {
        // 0.1 in x87 extended precision.
        assert_eq!(ld("0.1").to_bits(), 0x3ffb_cccc_cccc_cccc_cccd);
        assert_eq!(ld("10").to_bits(), 0x4002_a000_0000_0000_0000);
        assert_eq!(ld("-2").to_bits(), 0xc000_8000_0000_0000_0000);
        // 2^64 + 1 is a tie between 2^64 and 2^64 + 2: ties go to even.
        assert_eq!(
            ld("18446744073709551617").to_bits(),
            ld("18446744073709551616").to_bits()
        );
        assert_eq!(
            ld("18446744073709551619").to_bits(),
            ld("18446744073709551620").to_bits()
        );
        // Any digit after the tie breaks it upwards.
        assert_eq!(
            ld("18446744073709551617.000000000000000000000001").to_bits(),
            ld("18446744073709551618").to_bits()
        );
    }

    #[test]
    fn overflow_and_nan() {
        let max = ld("1.18973149535723176502e4932");
        assert!(max.is_finite());
        assert!((max + max).is_infinite());
        assert!(!(max + max).is_finite());
        let inf = ld("inf");
        assert!((inf + ld("1")).is_infinite());
        assert!((inf + -inf).is_nan());
        assert_eq!((inf + -inf).to_human_string(), "nan");
    }

    #[test]
    fn conversions() {
        assert_eq!(LongDouble::from_i64(0).to_bits(), 0);
        assert_eq!(
            LongDouble::from_i64(i64::MIN).to_human_string(),
            "-9223372036854775808"
        );
        assert_eq!(
            LongDouble::from_i64(i64::MAX).to_human_string(),
            "9223372036854775807"
        );
        assert_eq!(LongDouble::from(-5i64).to_human_string(), "-5");
        assert_eq!(ld("0.1").to_f64(), 0.1);
        assert_eq!(ld("1e4000").to_f64(), f64::INFINITY);
        assert_eq!(ld("-1e-4000").to_f64().to_bits(), (-0.0f64).to_bits());
        assert_eq!(
            LongDouble::from_f64(0.1).to_human_string(),
            "0.10000000000000001"
        );
        assert_eq!(
            LongDouble::from_f64(-13.361389).to_human_string(),
            "-13.36138900000000085"
        );
        assert_eq!(LongDouble::from_f64(5e-324).to_f64(), 5e-324);
        assert!(LongDouble::from_f64(f64::NAN).is_nan());
        assert_eq!(
            LongDouble::from_bits(ld("123.456").to_bits()).to_bits(),
            ld("123.456").to_bits()
        );
    }

    fn check_vector(line: &str) {
        let f: Vec<&str> = line.split(' ').collect();
        let unhex = crate::testutil::unhex;
        let expect = |got: Option<LongDouble>, rest: &[&str]| match (got, rest) {
            (None, ["rej"]) => {}
            (Some(v), ["ok", bits, human]) if v.is_nan() => {
                assert!(
                    bits.starts_with("ffff") || bits.starts_with("7fff"),
                    "{line}"
                );
                assert_eq!(*human, "nan", "{line}");
            }
            (Some(v), ["ok", bits, human]) => {
                assert_eq!(format!("{:020x}", v.to_bits()), *bits, "{line}");
                assert_eq!(v.to_human_string(), *human, "{line}");
            }
            (got, _) => panic!("{line}: got {got:?}"),
        };
        match f[0] {
            "parse" => expect(LongDouble::parse(&unhex(f[1])), &f[2..]),
            "add" => {
                let sum = LongDouble::parse(&unhex(f[1]))
                    .zip(LongDouble::parse(&unhex(f[2])))
                    .map(|(a, b)| a + b);
                expect(sum, &f[3..]);
            }
            "bits" => {
                let v = LongDouble::from_bits(u128::from_str_radix(f[1], 16).unwrap());
                assert_eq!(v.to_human_string(), f[2], "{line}");
                assert_eq!(format!("{:016x}", v.to_f64().to_bits()), f[3], "{line}");
            }
            "f64" => {
                let v =
                    LongDouble::from_f64(f64::from_bits(u64::from_str_radix(f[1], 16).unwrap()));
                expect(Some(v), &["ok", f[2], f[3]]);
            }
            other => panic!("unknown vector kind {other}"),
        }
    }

    #[test]
    fn redis_reference_vectors() {
        let data = include_str!("testdata/longdouble_vectors.txt");
        let mut count = 0;
        for line in crate::testutil::data_lines(data) {
            check_vector(line);
            count += 1;
        }
        assert!(count >= 1000, "{count}");
    }

    proptest! {
        #[test]
        fn integer_sums_are_exact(a in -(1i64 << 62)..(1i64 << 62), b in -(1i64 << 62)..(1i64 << 62)) {
            let sum = LongDouble::from_i64(a) + LongDouble::from_i64(b);
            prop_assert_eq!(sum.to_human_string(), (a + b).to_string());
            prop_assert_eq!(ld(&a.to_string()).to_bits(), LongDouble::from_i64(a).to_bits());
        }

        #[test]
        fn doubles_round_trip(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assume!(!v.is_nan());
            prop_assert_eq!(LongDouble::from_f64(v).to_f64().to_bits(), bits);
        }

        #[test]
        fn addition_identities(a in any::<f64>(), b in any::<f64>()) {
            prop_assume!(a.is_finite() && b.is_finite());
            let (x, y) = (LongDouble::from_f64(a), LongDouble::from_f64(b));
            prop_assert_eq!((x + y).to_bits(), (y + x).to_bits());
            if a != 0.0 {
                prop_assert_eq!((x + LongDouble::ZERO).to_bits(), x.to_bits());
            }
            prop_assert_eq!((x + -x).to_bits(), 0);
            // Two doubles never overflow the extended range.
            prop_assert!((x + y).is_finite());
        }

        #[test]
        fn human_output_parses_back_close(v in -1e15f64..1e15) {
            let x = LongDouble::from_f64(v);
            let text = x.to_human_string();
            let back = ld(&text).to_f64();
            prop_assert!((back - v).abs() <= 1e-17_f64.max(v.abs() * 1e-15), "{} {}", v, text);
        }
    }
}
