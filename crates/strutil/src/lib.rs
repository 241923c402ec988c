//! Redis-exact string utilities.
//!
//! Everything here reproduces the observable behaviour of Redis 7.2 on
//! x86-64 Linux, byte for byte:
//!
//! * [`glob`]: `stringmatchlen` glob matching (KEYS, SCAN MATCH, PSUBSCRIBE,
//!   CONFIG GET), without recursion or exponential blow-ups.
//! * [`num`]: strict integer parsing (`string2ll`, `string2ull`), double
//!   parsing (`string2d`) and double formatting (`d2string`, which replies and
//!   sorted set scores use, and `fixedpoint_d2string` for GEO distances).
//! * [`longdouble`]: a software x87 `long double` for INCRBYFLOAT and
//!   HINCRBYFLOAT, with `string2ld` parsing and `ld2string` human output.

mod bignum;
mod fpcore;
pub mod glob;
mod grisu;
pub mod longdouble;
pub mod num;

pub use glob::{glob_match, GlobPattern};
pub use longdouble::LongDouble;
pub use num::{
    format_double, format_double_fixed, format_double_inline, parse_f64, parse_i64, parse_u64,
    DoubleText,
};

#[cfg(test)]
mod testutil {
    /// Decodes a hex string, with "-" standing for the empty string.
    pub fn unhex(h: &str) -> Vec<u8> {
        if h == "-" {
            return Vec::new();
        }
        (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// Non-empty, non-comment lines of a test-vector file.
    pub fn data_lines(data: &str) -> impl Iterator<Item = &str> {
        data.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }
}
