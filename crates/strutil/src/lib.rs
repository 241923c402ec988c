//! Redis-exact string utilities.

mod bignum;
mod fpcore;
pub mod glob;
mod grisu;
pub mod num;

pub use glob::{glob_match, GlobPattern};
pub use num::{format_double, format_double_fixed, parse_f64, parse_i64, parse_u64};

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

    #[test]
    fn print_cached_powers() {
        use crate::fpcore::*;
        for i in 0..87 {
            let k = -348 + 8 * i as i64;
            let lit = Literal::Decimal {
                int: b"1",
                frac: b"",
                exp: k,
            };
            if let Some(Rounded::Finite { mant, exp }) = lit.to_binary(&X87) {
                println!("    ({mant:#018x}, {exp}), // 1e{k}");
            }
        }
    }
}
