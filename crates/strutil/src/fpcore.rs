//! Shared machinery for parsing floating point text the way C `strtod` /
//! `strtold` do, and for rounding exact values into a binary format.
//!
//! [`scan`] recognises the complete C99 `strtod` syntax (decimal, hexadecimal
//! and infinity forms) and insists that the whole input is one number.
//! [`Format::round`] and [`Literal::to_binary`] then produce correctly rounded
//! (round-half-even) results for any binary format with at most 64
//! significand bits, including gradual underflow and overflow to infinity.

use std::f64::consts::LOG2_10;

use crate::bignum::BigUint;

/// Parameters of an IEEE-style binary floating point format.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Format {
    /// Significand precision in bits, including the integer bit.
    pub mant_bits: u32,
    /// Exponent of the smallest normal number (value `2^min_exp`).
    pub min_exp: i32,
    /// Exponent of the largest finite binade (values below `2^(max_exp+1)`).
    pub max_exp: i32,
}

/// IEEE 754 binary64 (`double`).
pub(crate) const F64: Format = Format {
    mant_bits: 53,
    min_exp: -1022,
    max_exp: 1023,
};

/// x87 80-bit extended precision (`long double` on x86-64).
pub(crate) const X87: Format = Format {
    mant_bits: 64,
    min_exp: -16382,
    max_exp: 16383,
};

/// Outcome of rounding an exact non-negative value into a [`Format`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rounded {
    /// The value is exactly zero.
    Zero,
    /// A non-zero value that rounded to zero.
    Underflow,
    /// `mant * 2^exp`. `mant` has its top bit at `mant_bits - 1`, except for
    /// subnormals, whose exponent is then the format's minimum.
    Finite { mant: u64, exp: i32 },
    /// A finite value too large for the format.
    Overflow,
}

impl Format {
    /// Exponent of the least significant bit of subnormal numbers.
    pub(crate) fn min_lsb_exp(&self) -> i64 {
        i64::from(self.min_exp) - i64::from(self.mant_bits) + 1
    }

    /// Rounds `(mant + s) * 2^exp` to nearest, ties to even, where `s` is an
    /// unknown amount strictly between 0 and 1 when `sticky` is set and 0
    /// otherwise. When `sticky` is set, `mant` must carry at least two bits
    /// more than the format keeps, so that `s` cannot create a false tie.
    pub(crate) fn round(&self, mant: u128, exp: i64, sticky: bool) -> Rounded {
        if mant == 0 {
            return if sticky {
                Rounded::Underflow
            } else {
                Rounded::Zero
            };
        }
        let top = i64::from(127 - mant.leading_zeros());
        let value_exp = top.saturating_add(exp);
        let mut lsb = (value_exp - i64::from(self.mant_bits) + 1).max(self.min_lsb_exp());
        let shift = lsb.saturating_sub(exp);
        let mut kept = if shift <= 0 {
            debug_assert!(!sticky);
            mant << -shift
        } else if shift > 128 {
            0
        } else {
            let kept = if shift == 128 { 0 } else { mant >> shift };
            let rest = if shift == 128 {
                mant
            } else {
                mant & ((1u128 << shift) - 1)
            };
            let half = 1u128 << (shift - 1);
            let round_up = rest > half || (rest == half && (sticky || kept & 1 == 1));
            kept + u128::from(round_up)
        };
        if kept == 1u128 << self.mant_bits {
            kept >>= 1;
            lsb += 1;
        }
        if kept == 0 {
            return Rounded::Underflow;
        }
        if lsb + i64::from(self.mant_bits) - 1 > i64::from(self.max_exp) {
            return Rounded::Overflow;
        }
        Rounded::Finite {
            mant: kept as u64,
            exp: lsb as i32,
        }
    }
}

/// Assembles an `f64` from a [`Rounded`] result computed for [`F64`].
/// Underflow gives a signed zero and overflow a signed infinity.
pub(crate) fn f64_from_rounded(negative: bool, rounded: Rounded) -> f64 {
    let magnitude = match rounded {
        Rounded::Zero | Rounded::Underflow => 0.0,
        Rounded::Overflow => f64::INFINITY,
        Rounded::Finite { mant, .. } if mant >> 52 == 0 => f64::from_bits(mant),
        Rounded::Finite { mant, exp } => {
            let biased = (exp + 52 + 1023) as u64;
            f64::from_bits(biased << 52 | (mant & ((1 << 52) - 1)))
        }
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// The numeric part of a scanned `strtod` literal (sign excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Literal<'a> {
    /// `inf` or `infinity`, any case.
    Infinity,
    /// Decimal: `int.frac` (ASCII digits, either may be empty but not both)
    /// times ten to `exp`.
    Decimal {
        int: &'a [u8],
        frac: &'a [u8],
        exp: i64,
    },
    /// Hexadecimal: `0xint.frac` (ASCII hex digits) times two to `exp`.
    Hex {
        int: &'a [u8],
        frac: &'a [u8],
        exp: i64,
    },
}

/// A complete `strtod` literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scanned<'a> {
    pub negative: bool,
    pub literal: Literal<'a>,
}

/// Exponents are clamped to this magnitude while scanning; anything beyond
/// overflows or underflows every supported format anyway.
const EXP_CLAMP: i64 = 1 << 40;

fn take_while(s: &[u8], pred: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&b| !pred(b)).unwrap_or(s.len());
    s.split_at(n)
}

/// Parses an optionally signed decimal exponent that must span all of `s`.
fn scan_exponent(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first() {
        Some((b'+', rest)) => (false, rest),
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        (acc * 10 + i64::from(d - b'0')).min(EXP_CLAMP)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// Recognises `s` as exactly one number in C `strtod` syntax: an optional
/// sign, then `inf`/`infinity`, a decimal with optional `e` exponent, or a
/// `0x` hexadecimal with optional `p` exponent. Leading or trailing bytes of
/// any kind (including whitespace) make it fail, and so does any NaN
/// spelling, since Redis rejects NaN results anyway.
pub(crate) fn scan(s: &[u8]) -> Option<Scanned<'_>> {
    let (negative, body) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let literal = if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        Literal::Infinity
    } else if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        scan_hex(&body[2..])?
    } else {
        scan_decimal(body)?
    };
    Some(Scanned { negative, literal })
}

fn scan_decimal(s: &[u8]) -> Option<Literal<'_>> {
    let (int, rest) = take_while(s, |b| b.is_ascii_digit());
    let (frac, rest) = match rest.split_first() {
        Some((b'.', after)) => take_while(after, |b| b.is_ascii_digit()),
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', digits)) => scan_exponent(digits)?,
        Some(_) => return None,
    };
    Some(Literal::Decimal { int, frac, exp })
}

fn scan_hex(s: &[u8]) -> Option<Literal<'_>> {
    let (int, rest) = take_while(s, |b| b.is_ascii_hexdigit());
    let (frac, rest) = match rest.split_first() {
        Some((b'.', after)) => take_while(after, |b| b.is_ascii_hexdigit()),
        _ => (&rest[..0], rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp = match rest.split_first() {
        None => 0,
        Some((b'p' | b'P', digits)) => scan_exponent(digits)?,
        Some(_) => return None,
    };
    Some(Literal::Hex { int, frac, exp })
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => (b | 0x20) - b'a' + 10,
    }
}

impl Literal<'_> {
    /// Whether the literal denotes a value other than zero.
    pub(crate) fn is_nonzero(self) -> bool {
        match self {
            Literal::Infinity => true,
            Literal::Decimal { int, frac, .. } | Literal::Hex { int, frac, .. } => {
                int.iter().chain(frac.iter()).any(|&b| b != b'0')
            }
        }
    }

    /// Converts a finite literal to `format`, correctly rounded. Returns
    /// `None` for [`Literal::Infinity`].
    pub(crate) fn to_binary(self, format: &Format) -> Option<Rounded> {
        match self {
            Literal::Infinity => None,
            Literal::Hex { int, frac, exp } => Some(hex_to_binary(int, frac, exp, format)),
            Literal::Decimal { int, frac, exp } => Some(decimal_to_binary(int, frac, exp, format)),
        }
    }
}

fn hex_to_binary(int: &[u8], frac: &[u8], exp: i64, format: &Format) -> Rounded {
    // Only the first 32 significant hex digits (128 bits) are kept; the rest
    // only matters as a sticky "something non-zero follows" flag.
    let mut digits = int
        .iter()
        .chain(frac.iter())
        .map(|&b| hex_value(b))
        .skip_while(|&d| d == 0);
    let mut mant = 0u128;
    for d in digits.by_ref().take(32) {
        mant = mant << 4 | u128::from(d);
    }
    let mut dropped = 0i64;
    let mut sticky = false;
    for d in digits {
        dropped += 1;
        sticky |= d != 0;
    }
    let exp = exp
        .saturating_sub(4 * frac.len() as i64)
        .saturating_add(4 * dropped);
    format.round(mant, exp, sticky)
}

fn decimal_to_binary(int: &[u8], frac: &[u8], exp: i64, format: &Format) -> Rounded {
    let all: Vec<u8> = int.iter().chain(frac.iter()).map(|&b| b - b'0').collect();
    let Some(first) = all.iter().position(|&d| d != 0) else {
        return Rounded::Zero;
    };
    let last = all.iter().rposition(|&d| d != 0).unwrap_or(first);
    let digits = &all[first..=last];
    // value = digits * 10^exp10
    let exp10 = exp
        .saturating_sub(frac.len() as i64)
        .saturating_add((all.len() - 1 - last) as i64);
    let count = digits.len() as i64;
    // The value lies in [10^(count-1+exp10), 10^(count+exp10)).
    let low = count.saturating_sub(1).saturating_add(exp10) as f64 * LOG2_10;
    let high = count.saturating_add(exp10) as f64 * LOG2_10;
    if low > f64::from(format.max_exp) + 2.0 {
        return Rounded::Overflow;
    }
    if high < format.min_lsb_exp() as f64 - 2.0 {
        return Rounded::Underflow;
    }
    let mut num = BigUint::from_decimal_digits(digits);
    let mut den = BigUint::from_u64(1);
    if exp10 >= 0 {
        num.mul_pow10(exp10 as u64);
    } else {
        den.mul_pow10(exp10.unsigned_abs());
    }
    // Scale so the quotient has 66 or 67 bits: two guard bits beyond the
    // 64-bit significand, as `Format::round` requires with a sticky bit.
    let scale = 66 - (num.bit_len() as i64 - den.bit_len() as i64);
    if scale >= 0 {
        num.shl(scale as u64);
    } else {
        den.shl(scale.unsigned_abs());
    }
    let (quotient, inexact) = num.div_small_quotient(&den);
    format.round(quotient, -scale, inexact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(int: &'static str, frac: &'static str, exp: i64) -> Literal<'static> {
        Literal::Decimal {
            int: int.as_bytes(),
            frac: frac.as_bytes(),
            exp,
        }
    }

    #[test]
    fn scanning() {
        fn lit(s: &str) -> Option<Literal<'_>> {
            scan(s.as_bytes()).map(|x| x.literal)
        }
        assert_eq!(lit("12.5e3"), Some(dec("12", "5", 3)));
        assert_eq!(lit("12."), Some(dec("12", "", 0)));
        assert_eq!(lit(".5"), Some(dec("", "5", 0)));
        assert_eq!(lit("1E-7"), Some(dec("1", "", -7)));
        assert_eq!(lit("1e+7"), Some(dec("1", "", 7)));
        assert_eq!(
            lit("1e99999999999999999999999"),
            Some(dec("1", "", EXP_CLAMP))
        );
        assert_eq!(lit("inF"), Some(Literal::Infinity));
        assert_eq!(lit("INFINITY"), Some(Literal::Infinity));
        assert!(scan(b"-inf").unwrap().negative);
        assert!(!scan(b"+inf").unwrap().negative);
        assert_eq!(
            lit("0x1.8p3"),
            Some(Literal::Hex {
                int: b"1",
                frac: b"8",
                exp: 3
            })
        );
        assert_eq!(
            lit("0X.8"),
            Some(Literal::Hex {
                int: b"",
                frac: b"8",
                exp: 0
            })
        );
        for bad in [
            "",
            "+",
            "-",
            ".",
            "e5",
            ".e5",
            "1e",
            "1e+",
            "1e-",
            "1.5.",
            "1 ",
            " 1",
            "1x",
            "0x",
            "0x.",
            "0x1p",
            "0xp1",
            "0x1g",
            "infinit",
            "infinityx",
            "nan",
            "NaN",
            "nan(1)",
            "-nan",
            "++1",
            "+-1",
            "1\0",
            "0x1.8p",
            "1,5",
            "١",
        ] {
            assert_eq!(scan(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn rounding_to_f64() {
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even wins.
        assert_eq!(
            F64.round((1u128 << 53) + 1, 0, false),
            Rounded::Finite {
                mant: 1 << 52,
                exp: 1
            }
        );
        // ... but any sticky remainder breaks the tie upwards.
        assert_eq!(
            F64.round(((1u128 << 53) + 1) << 2, -2, true),
            Rounded::Finite {
                mant: (1 << 52) + 1,
                exp: 1
            }
        );
        // Smallest subnormal and half of it.
        assert_eq!(
            F64.round(1, -1074, false),
            Rounded::Finite {
                mant: 1,
                exp: -1074
            }
        );
        assert_eq!(F64.round(1, -1075, false), Rounded::Underflow);
        assert_eq!(
            F64.round(3, -1076, false),
            Rounded::Finite {
                mant: 1,
                exp: -1074
            }
        );
        assert_eq!(F64.round(1, 1024, false), Rounded::Overflow);
        assert_eq!(F64.round(0, 0, false), Rounded::Zero);
    }

    #[test]
    fn decimal_conversion_matches_std() {
        for s in [
            "0.1",
            "1",
            "123456789012345678901234567890",
            "2.2250738585072014e-308",
            "4.9e-324",
            "2.4703282292062328e-324",
            "1.7976931348623157e308",
            "3.14159",
            "9007199254740993",
            "0.000001",
            "1e22",
            "1e23",
        ] {
            let expected: f64 = s.parse().unwrap();
            let rounded = scan(s.as_bytes()).unwrap().literal.to_binary(&F64).unwrap();
            let got = f64_from_rounded(false, rounded);
            assert_eq!(got, expected, "{s}");
        }
        let under = scan(b"2.4703282292062327e-324").unwrap().literal;
        assert_eq!(under.to_binary(&F64), Some(Rounded::Underflow));
        let over = scan(b"1.7976931348623159e308").unwrap().literal;
        assert_eq!(over.to_binary(&F64), Some(Rounded::Overflow));
        assert_eq!(dec("000", "000", 5).to_binary(&F64), Some(Rounded::Zero));
    }
}
