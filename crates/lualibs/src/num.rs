//! Number conversions the C libraries get from libc and the x86-64 CPU:
//! `printf("%.Ng")`, glibc's `strtod` prefix parsing, and the truncating
//! float-to-integer casts (out of range and NaN give the "integer
//! indefinite" value, as `cvttsd2si` does).

/// C's `printf("%.{prec}g", v)` (glibc): shortest of `%e`/`%f` style with
/// `prec` significant digits and trailing zeros removed; "inf", "-inf",
/// "nan" and "-nan" for the special values.
pub(crate) fn format_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.into();
    }
    let p = prec.max(1);
    // Fast path: an integer with at most `p` digits prints as itself.
    if v.fract() == 0.0
        && v.abs() < 1e15
        && (v.abs() as u64).checked_ilog10().unwrap_or(0) < p as u32
    {
        if v == 0.0 && v.is_sign_negative() {
            return "-0".into();
        }
        return (v as i64).to_string();
    }
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let x: i64 = exp.parse().expect("exponent");
    if x < -4 || x >= p as i64 {
        let m = strip_zeros(mantissa);
        let sign = if x < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", x.abs())
    } else {
        let fixed = format!("{:.*}", (p as i64 - 1 - x) as usize, v);
        strip_zeros(&fixed).to_string()
    }
}

/// Removes trailing fractional zeros and a dangling decimal point.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `(int64_t)v` as compiled for x86-64.
pub(crate) fn f64_to_i64(v: f64) -> i64 {
    if !(-9223372036854775808.0..9223372036854775808.0).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

/// `(int)v` as compiled for x86-64.
pub(crate) fn f64_to_i32(v: f64) -> i32 {
    if v.is_nan() || v >= 2147483648.0 || v <= -2147483649.0 {
        i32::MIN
    } else {
        v as i32
    }
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn starts_with_nocase(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// glibc `strtod` on the start of `s`: the value and the number of bytes it
/// consumed (0 when no number was recognised). Accepts leading white space,
/// a sign, decimal and hexadecimal (`0x`, with `p` exponents) forms,
/// `inf`/`infinity` and `nan`/`nan(chars)` in any case.
pub(crate) fn strtod(s: &[u8]) -> (f64, usize) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while is_c_space(at(i)) {
        i += 1;
    }
    let negative = at(i) == b'-';
    if matches!(at(i), b'+' | b'-') {
        i += 1;
    }
    let signed = |v: f64| if negative { -v } else { v };
    let rest = &s[i.min(s.len())..];
    if starts_with_nocase(rest, b"inf") {
        let n = if starts_with_nocase(rest, b"infinity") {
            8
        } else {
            3
        };
        return (signed(f64::INFINITY), i + n);
    }
    if starts_with_nocase(rest, b"nan") {
        let mut end = i + 3;
        if at(end) == b'(' {
            let mut k = end + 1;
            while at(k).is_ascii_alphanumeric() || at(k) == b'_' {
                k += 1;
            }
            if at(k) == b')' {
                end = k + 1;
            }
        }
        return (signed(f64::NAN), end);
    }
    if at(i) == b'0' && (at(i + 1) | 0x20) == b'x' {
        return match parse_hex(s, i + 2) {
            Some((v, end)) => (signed(v), end),
            None => (signed(0.0), i + 1),
        };
    }
    let start = i;
    let mut digits = 0;
    while at(i).is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if at(i) == b'.' {
        i += 1;
        while at(i).is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0);
    }
    if (at(i) | 0x20) == b'e' {
        let mut k = i + 1;
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            while at(k).is_ascii_digit() {
                k += 1;
            }
            i = k;
        }
    }
    let text = std::str::from_utf8(&s[start..i]).expect("ascii");
    let v: f64 = text.parse().unwrap_or(0.0);
    (signed(v), i)
}

/// The hexadecimal part of `strtod` after "0x": mantissa digits with an
/// optional point and binary exponent. `None` when no hex digit follows.
fn parse_hex(s: &[u8], mut i: usize) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut mantissa: u64 = 0;
    let mut exp: i64 = 0;
    let mut sticky = false;
    let mut digits = 0;
    let mut significant = 0;
    let mut seen_point = false;
    loop {
        let c = at(i);
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        digits += 1;
        // Keep 15 significant digits (60 bits); the rest only matter for rounding.
        if significant < 15 {
            if mantissa != 0 || d != 0 {
                significant += 1;
            }
            mantissa = mantissa << 4 | d as u64;
            if seen_point {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_point {
                exp += 4;
            }
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if (at(i) | 0x20) == b'p' {
        let mut k = i + 1;
        let neg = at(k) == b'-';
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            let mut e: i64 = 0;
            while at(k).is_ascii_digit() {
                e = (e * 10 + (at(k) - b'0') as i64).min(1 << 20);
                k += 1;
            }
            exp += if neg { -e } else { e };
            i = k;
        }
    }
    // One extra low bit carries the sticky digits into the rounding.
    let m = (mantissa << 1 | sticky as u64) as f64;
    exp -= 1;
    let mut v = m;
    while exp > 1000 {
        v *= 2f64.powi(1000);
        exp -= 1000;
    }
    while exp < -1000 {
        v *= 2f64.powi(-1000);
        exp += 1000;
    }
    Some((v * 2f64.powi(exp as i32), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_printf() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1e14, "1e+14"),
            (123456789012345.0, "1.2345678901234e+14"),
            (12345678901234.0, "12345678901234"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (9.876_543_210_987_654, "9.8765432109877"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (1023.2, "1023.2"),
            (0.0003, "0.0003"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (2f64.powi(53), "9.007199254741e+15"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g(*v, 14), *want, "{v}");
        }
        assert_eq!(format_g(0.5, 1), "0.5");
        assert_eq!(format_g(123.456, 3), "123");
        assert_eq!(format_g(1234.5, 3), "1.23e+03");
    }

    #[test]
    fn strtod_prefixes() {
        let cases: &[(&str, f64, usize)] = &[
            ("1", 1.0, 1),
            ("-5e3,", -5000.0, 4),
            ("0.3e-3]", 0.0003, 6),
            ("1e", 1.0, 1),
            ("1e+", 1.0, 1),
            ("1.", 1.0, 2),
            ("012", 12.0, 3),
            ("0x10", 16.0, 4),
            ("0X1p4", 16.0, 5),
            ("0x.8", 0.5, 4),
            ("0xg", 0.0, 1),
            ("+7", 7.0, 2),
            ("  3", 3.0, 3),
            ("inf", f64::INFINITY, 3),
            ("-Infinity", f64::NEG_INFINITY, 9),
            ("infinit", f64::INFINITY, 3),
            ("-", 0.0, 0),
            ("x", 0.0, 0),
            ("1e400", f64::INFINITY, 5),
        ];
        for (s, v, n) in cases {
            let (got, used) = strtod(s.as_bytes());
            assert_eq!((got, used), (*v, *n), "{s}");
        }
        let (v, n) = strtod(b"nan(abc)x");
        assert!(v.is_nan() && n == 8);
        let (v, n) = strtod(b"NaN(");
        assert!(v.is_nan() && n == 3);
        assert_eq!(strtod(b"0x1.fffffffffffff8p0").0, 2.0);
        assert_eq!(
            strtod(b"0x123456789abcdef0123").0,
            0x123456789abcdef0123u128 as f64
        );
    }

    #[test]
    fn x86_casts() {
        assert_eq!(f64_to_i64(f64::NAN), i64::MIN);
        assert_eq!(f64_to_i64(9.3e18), i64::MIN);
        assert_eq!(f64_to_i64(-2.9), -2);
        assert_eq!(f64_to_i32(2147483648.0), i32::MIN);
        assert_eq!(f64_to_i32(-2147483648.5), -2147483648);
    }
}
