//! A minimal arbitrary-precision unsigned integer, just big enough for exact
//! decimal <-> binary floating point conversions.
//!
//! Numbers are stored as little-endian base-2^32 limbs with no high zero
//! limbs, so zero is the empty vector. Only the handful of operations the
//! conversions need are provided; none of them is meant to be fast on huge
//! inputs, but all are linear or quadratic in the limb count.

use std::cmp::Ordering;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BigUint {
    limbs: Vec<u32>,
}

impl BigUint {
    pub(crate) fn from_u64(v: u64) -> BigUint {
        let mut n = BigUint {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        n.trim();
        n
    }

    /// Builds a number from decimal digit values (0..=9), most significant
    /// first.
    pub(crate) fn from_decimal_digits(digits: &[u8]) -> BigUint {
        let mut n = BigUint::default();
        for chunk in digits.chunks(9) {
            let mut value = 0u32;
            for &d in chunk {
                value = value * 10 + u32::from(d);
            }
            n.mul_add_small(10u32.pow(chunk.len() as u32), value);
        }
        n
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// Number of significant bits (0 for zero).
    pub(crate) fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => self.limbs.len() as u64 * 32 - u64::from(top.leading_zeros()),
        }
    }

    /// Value of bit `i` (bit 0 is the least significant).
    pub(crate) fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        limb < self.limbs.len() && self.limbs[limb] >> (i % 32) & 1 == 1
    }

    /// Whether any of the bits strictly below bit `i` is set.
    pub(crate) fn any_bit_below(&self, i: u64) -> bool {
        let full = ((i / 32) as usize).min(self.limbs.len());
        if self.limbs[..full].iter().any(|&l| l != 0) {
            return true;
        }
        let rem = i % 32;
        full < self.limbs.len() && rem > 0 && self.limbs[full] & ((1u32 << rem) - 1) != 0
    }

    /// The low 128 bits.
    #[cfg(test)]
    pub(crate) fn low_u128(&self) -> u128 {
        self.limbs
            .iter()
            .take(4)
            .enumerate()
            .fold(0u128, |acc, (i, &l)| acc | u128::from(l) << (32 * i))
    }

    /// `self = self * mul + add`.
    pub(crate) fn mul_add_small(&mut self, mul: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.limbs {
            let v = u64::from(*limb) * u64::from(mul) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    /// Multiplies by `10^exp`.
    pub(crate) fn mul_pow10(&mut self, mut exp: u64) {
        while exp >= 9 {
            self.mul_add_small(1_000_000_000, 0);
            exp -= 9;
        }
        if exp > 0 {
            self.mul_add_small(10u32.pow(exp as u32), 0);
        }
    }

    /// Multiplies by `2^bits`.
    pub(crate) fn shl(&mut self, bits: u64) {
        if self.is_zero() || bits == 0 {
            return;
        }
        let (whole, part) = ((bits / 32) as usize, (bits % 32) as u32);
        if part > 0 {
            let mut carry = 0u32;
            for limb in &mut self.limbs {
                let v = *limb;
                *limb = v << part | carry;
                carry = v >> (32 - part);
            }
            if carry != 0 {
                self.limbs.push(carry);
            }
        }
        self.limbs.splice(0..0, std::iter::repeat_n(0, whole));
    }

    /// Divides by `2^bits`, discarding the remainder.
    pub(crate) fn shr(&mut self, bits: u64) {
        let whole = (bits / 32) as usize;
        if whole >= self.limbs.len() {
            self.limbs.clear();
            return;
        }
        self.limbs.drain(..whole);
        let part = (bits % 32) as u32;
        if part > 0 {
            let mut carry = 0u32;
            for limb in self.limbs.iter_mut().rev() {
                let v = *limb;
                *limb = v >> part | carry;
                carry = v << (32 - part);
            }
        }
        self.trim();
    }

    /// `self -= other`; requires `self >= other`.
    pub(crate) fn sub_assign(&mut self, other: &BigUint) {
        debug_assert!(*self >= *other);
        let mut borrow = 0i64;
        for i in 0..self.limbs.len() {
            let rhs = i64::from(other.limbs.get(i).copied().unwrap_or(0));
            let v = i64::from(self.limbs[i]) - rhs - borrow;
            borrow = i64::from(v < 0);
            self.limbs[i] = (v + (borrow << 32)) as u32;
        }
        self.trim();
    }

    /// Divides in place by a small divisor and returns the remainder.
    pub(crate) fn div_rem_small(&mut self, div: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let cur = rem << 32 | u64::from(*limb);
            *limb = (cur / u64::from(div)) as u32;
            rem = cur % u64::from(div);
        }
        self.trim();
        rem as u32
    }

    /// Decimal representation (no sign, "0" for zero).
    pub(crate) fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_rem_small(1_000_000_000));
        }
        let mut out = match chunks.pop() {
            None => return "0".to_string(),
            Some(top) => top.to_string(),
        };
        for chunk in chunks.iter().rev() {
            out.push_str(&format!("{chunk:09}"));
        }
        out
    }

    /// Computes `floor(self / other)` (which must fit in 128 bits, and
    /// `other` must be non-zero) and reports whether the division was inexact.
    pub(crate) fn div_small_quotient(&self, other: &BigUint) -> (u128, bool) {
        debug_assert!(!other.is_zero());
        let quotient_bits = (self.bit_len() + 1).saturating_sub(other.bit_len());
        assert!(quotient_bits <= 128, "quotient too large");
        let mut rem = self.clone();
        let mut divisor = other.clone();
        divisor.shl(quotient_bits);
        let mut q = 0u128;
        for _ in 0..=quotient_bits {
            q <<= 1;
            if rem >= divisor {
                rem.sub_assign(&divisor);
                q |= 1;
            }
            divisor.shr(1);
        }
        (q, !rem.is_zero())
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_round_trip() {
        let digits: Vec<u8> = "123456789012345678901234567890"
            .bytes()
            .map(|b| b - b'0')
            .collect();
        let n = BigUint::from_decimal_digits(&digits);
        assert_eq!(n.to_decimal(), "123456789012345678901234567890");
        assert_eq!(BigUint::default().to_decimal(), "0");
        let mut p = BigUint::from_u64(1);
        p.mul_pow10(40);
        assert_eq!(p.to_decimal(), format!("1{}", "0".repeat(40)));
    }

    #[test]
    fn shifts_and_bits() {
        let mut n = BigUint::from_u64(1);
        n.shl(100);
        assert_eq!(n.bit_len(), 101);
        assert!(n.bit(100));
        assert!(!n.any_bit_below(100));
        n.shr(99);
        assert_eq!(n.low_u128(), 2);
        n.shr(5);
        assert!(n.is_zero());
    }

    proptest! {
        #[test]
        fn matches_u128_arithmetic(a in any::<u64>(), b in 1u64.., s in 0u64..60) {
            let (ba, bb) = (BigUint::from_u64(a), BigUint::from_u64(b));
            let mut shifted = ba.clone();
            shifted.shl(s);
            prop_assert_eq!(shifted.low_u128(), u128::from(a) << s);
            prop_assert_eq!(shifted.bit_len(), 128 - (u128::from(a) << s).leading_zeros() as u64);
            let (q, inexact) = shifted.div_small_quotient(&bb);
            prop_assert_eq!(q, (u128::from(a) << s) / u128::from(b));
            prop_assert_eq!(inexact, (u128::from(a) << s) % u128::from(b) != 0);
            prop_assert_eq!(ba.cmp(&bb), a.cmp(&b));
            if a >= b {
                let mut d = ba.clone();
                d.sub_assign(&bb);
                prop_assert_eq!(d.low_u128(), u128::from(a - b));
            }
            let mut r = shifted.clone();
            prop_assert_eq!(u128::from(r.div_rem_small(b as u32 | 1)), (u128::from(a) << s) % u128::from(b as u32 | 1));
            prop_assert_eq!(r.low_u128(), (u128::from(a) << s) / u128::from(b as u32 | 1));
            let below = s + 3;
            prop_assert_eq!(shifted.any_bit_below(below), (u128::from(a) << s) & ((1u128 << below) - 1) != 0);
        }
    }
}
