//! Workloads: synthetic key streams built from a seed, and key trace files.
//!
//! A spec is `zipf:ALPHA` with optional modifiers joined by `+`:
//! `ohw[:FRACTION]` (that fraction of requests goes to never-repeated keys),
//! `scan[:LEN[:EVERY]]` (after every EVERY other requests, a sequential sweep
//! over LEN keys, each sweep continuing where the last stopped),
//! `shift[:EVERY]` (every EVERY requests the popular set moves to other keys).
//! `trace:PATH` replays a file with one key per line and an optional size
//! column (`key size`, whitespace or comma separated). Requests are streamed:
//! nothing is materialized except the interned names of a trace.

use crate::rng::{mix64, Rng};
use crate::zipf::Zipf;
use std::collections::HashMap;
use std::io::BufRead;

/// Ids at or above this bit are one-hit wonders (the low bits count them).
const OHW_BIT: u64 = 1 << 62;

/// One request of a trace: the key's id and the value size used on a miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Key identity (names come from [`Generator::key_name`]).
    pub id: u64,
    /// Value bytes written by the cache-aside SET after a miss.
    pub size: u32,
}

/// A parsed workload description (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Zipf exponent, or `None` for a trace file.
    pub alpha: Option<f64>,
    /// Trace file path for `trace:PATH`.
    pub trace: Option<String>,
    /// Fraction of one-hit-wonder requests.
    pub ohw: Option<f64>,
    /// Scan sweep length and period, 0 meaning the default from the key count.
    pub scan: Option<(u64, u64)>,
    /// Hot-set shift period, 0 meaning the default from the key count.
    pub shift: Option<u64>,
}

impl Spec {
    /// Parses `zipf:0.9+ohw:0.25+scan+shift` or `trace:PATH`.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let mut spec = Spec {
            alpha: None,
            trace: None,
            ohw: None,
            scan: None,
            shift: None,
        };
        if let Some(path) = text.strip_prefix("trace:") {
            spec.trace = Some(path.to_string());
            return Ok(spec);
        }
        let num = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("bad number '{s}' in workload '{text}'"))
        };
        let int = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("bad count '{s}' in workload '{text}'"))
        };
        for (i, part) in text.split('+').enumerate() {
            let mut args = part.split(':');
            let name = args.next().unwrap_or("");
            let args: Vec<&str> = args.collect();
            match (i, name) {
                (0, "zipf") => {
                    let a = num(args.first().ok_or("zipf needs an exponent: zipf:0.9")?)?;
                    if !(a > 0.0 && a < 20.0) {
                        return Err(format!("zipf exponent out of range: {a}"));
                    }
                    spec.alpha = Some(a);
                }
                (0, _) => {
                    return Err(format!(
                        "unknown workload '{text}' (zipf:ALPHA[+ohw][+scan][+shift] or trace:PATH)"
                    ))
                }
                (_, "ohw") => {
                    let f = match args.first() {
                        Some(s) => num(s)?,
                        None => 0.25,
                    };
                    if !(0.0..1.0).contains(&f) {
                        return Err(format!("ohw fraction must be in [0, 1): {f}"));
                    }
                    spec.ohw = Some(f);
                }
                (_, "scan") => {
                    let len = args.first().map(|s| int(s)).transpose()?.unwrap_or(0);
                    let every = args.get(1).map(|s| int(s)).transpose()?.unwrap_or(0);
                    spec.scan = Some((len, every));
                }
                (_, "shift") => {
                    spec.shift = Some(args.first().map(|s| int(s)).transpose()?.unwrap_or(0))
                }
                _ => return Err(format!("unknown modifier '{part}' in workload '{text}'")),
            }
        }
        Ok(spec)
    }
}

/// Everything besides the spec that fixes a trace.
#[derive(Clone, Debug)]
pub struct Params {
    /// Distinct keys in the Zipf population.
    pub keys: u64,
    /// Requests to produce (0 = a whole trace file).
    pub requests: u64,
    /// The seed; printed in every report.
    pub seed: u64,
    /// Smallest and largest value size; each key's size is a hash of its id.
    pub size_min: u32,
    /// See `size_min`.
    pub size_max: u32,
}

enum Source {
    Zipf(ZipfState),
    Trace(TraceState),
}

struct ZipfState {
    zipf: Zipf,
    rng: Rng,
    n: u64,
    perm_mul: u64,
    ohw: f64,
    ohw_next: u64,
    scan_len: u64,
    scan_every: u64,
    scan_left: u64,
    scan_cursor: u64,
    since_scan: u64,
    shift_every: u64,
    shift_by: u64,
}

struct TraceState {
    reader: Box<dyn BufRead>,
    ids: HashMap<Box<[u8]>, u64>,
    names: Vec<Box<[u8]>>,
    line: Vec<u8>,
    path: String,
    lineno: u64,
}

/// A streaming request generator; iterate it for [`Request`]s.
pub struct Generator {
    source: Source,
    emitted: u64,
    limit: u64,
    size_min: u32,
    size_span: u64,
    size_salt: u64,
    /// A trace line that failed to parse stops the stream; the error is kept here.
    pub error: Option<String>,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Generator {
    /// A generator for `spec` with `params`; fails on an unreadable trace file.
    pub fn new(spec: &Spec, params: &Params) -> Result<Generator, String> {
        if params.size_min == 0 || params.size_max < params.size_min {
            return Err("value sizes need 1 <= min <= max".into());
        }
        let source = if let Some(path) = &spec.trace {
            let file =
                std::fs::File::open(path).map_err(|e| format!("cannot open trace {path}: {e}"))?;
            Source::Trace(TraceState {
                reader: Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                ids: HashMap::new(),
                names: Vec::new(),
                line: Vec::new(),
                path: path.clone(),
                lineno: 0,
            })
        } else {
            let n = params.keys.max(1);
            let alpha = spec
                .alpha
                .ok_or("workload needs zipf:ALPHA or trace:PATH")?;
            // A multiplier coprime with n spreads popular ranks over the id range,
            // so a sequential scan meets keys of every popularity.
            let mut perm_mul = if n > 2 {
                mix64(params.seed ^ 0x7065_726d) % n
            } else {
                1
            };
            perm_mul = perm_mul.max(1);
            while gcd(perm_mul, n) != 1 {
                perm_mul += 1;
            }
            let (scan_len, scan_every) = match spec.scan {
                Some((l, e)) => (
                    if l == 0 { (n / 10).max(1) } else { l },
                    if e == 0 { n } else { e },
                ),
                None => (0, 0),
            };
            let shift_every = match spec.shift {
                Some(0) => n,
                Some(e) => e,
                None => 0,
            };
            Source::Zipf(ZipfState {
                zipf: Zipf::new(n, alpha),
                rng: Rng::new(params.seed),
                n,
                perm_mul,
                ohw: spec.ohw.unwrap_or(0.0),
                ohw_next: 0,
                scan_len,
                scan_every,
                scan_left: 0,
                scan_cursor: 0,
                since_scan: 0,
                shift_every,
                // About 0.382 n: successive hot sets land on unrelated keys.
                shift_by: ((n as f64 * 0.381_966) as u64).max(1),
            })
        };
        Ok(Generator {
            source,
            emitted: 0,
            limit: if params.requests == 0 && spec.trace.is_none() {
                1_000_000
            } else {
                params.requests
            },
            size_min: params.size_min,
            size_span: (params.size_max - params.size_min) as u64 + 1,
            size_salt: mix64(params.seed ^ 0x7369_7a65),
            error: None,
        })
    }

    /// The deterministic value size of a key.
    pub fn size_of(&self, id: u64) -> u32 {
        self.size_min + (mix64(id ^ self.size_salt) % self.size_span) as u32
    }

    /// Appends the key name of `id` (as sent to a server) to `out`.
    pub fn key_name(&self, id: u64, out: &mut Vec<u8>) {
        use std::io::Write;
        match &self.source {
            Source::Trace(t) => out.extend_from_slice(&t.names[id as usize]),
            Source::Zipf(_) if id & OHW_BIT != 0 => {
                let _ = write!(out, "o{}", id & !OHW_BIT);
            }
            Source::Zipf(_) => {
                let _ = write!(out, "k{id}");
            }
        }
    }

    fn next_zipf(z: &mut ZipfState, emitted: u64) -> u64 {
        if z.scan_len > 0 {
            if z.scan_left > 0 {
                z.scan_left -= 1;
                let id = z.scan_cursor;
                z.scan_cursor = (z.scan_cursor + 1) % z.n;
                return id;
            }
            z.since_scan += 1;
            if z.since_scan >= z.scan_every {
                z.since_scan = 0;
                z.scan_left = z.scan_len;
            }
        }
        if z.ohw > 0.0 && z.rng.next_f64() < z.ohw {
            z.ohw_next += 1;
            return OHW_BIT | z.ohw_next;
        }
        let mut rank = z.zipf.sample(&mut z.rng) - 1;
        if let Some(epoch) = emitted.checked_div(z.shift_every) {
            rank = ((rank as u128 + epoch as u128 * z.shift_by as u128) % z.n as u128) as u64;
        }
        ((rank as u128 * z.perm_mul as u128) % z.n as u128) as u64
    }

    fn next_trace(&mut self) -> Option<Request> {
        let Source::Trace(t) = &mut self.source else {
            unreachable!()
        };
        loop {
            t.line.clear();
            match t.reader.read_until(b'\n', &mut t.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.error = Some(format!("{}: {e}", t.path));
                    return None;
                }
            }
            t.lineno += 1;
            let text = t.line.trim_ascii();
            if text.is_empty() || text[0] == b'#' {
                continue;
            }
            let mut fields = text
                .split(|&b| b == b' ' || b == b'\t' || b == b',')
                .filter(|f| !f.is_empty());
            let key = fields.next().unwrap_or_default();
            let size = match fields.next() {
                Some(f) => match std::str::from_utf8(f)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    Some(s) if s > 0 => Some(s),
                    _ => {
                        self.error = Some(format!("{}:{}: bad size field", t.path, t.lineno));
                        return None;
                    }
                },
                None => None,
            };
            let next = t.names.len() as u64;
            let id = *t.ids.entry(key.into()).or_insert(next);
            if id == next {
                t.names.push(key.into());
            }
            let size = size.unwrap_or_else(|| self.size_of(id));
            return Some(Request { id, size });
        }
    }
}

impl Iterator for Generator {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.limit > 0 && self.emitted >= self.limit {
            return None;
        }
        let req = match &mut self.source {
            Source::Zipf(z) => {
                let id = Self::next_zipf(z, self.emitted);
                Some(Request {
                    id,
                    size: self.size_of(id),
                })
            }
            Source::Trace(_) => self.next_trace(),
        };
        if req.is_some() {
            self.emitted += 1;
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(keys: u64, requests: u64, seed: u64) -> Params {
        Params {
            keys,
            requests,
            seed,
            size_min: 10,
            size_max: 20,
        }
    }

    fn ids(spec: &str, p: &Params) -> Vec<u64> {
        Generator::new(&Spec::parse(spec).unwrap(), p)
            .unwrap()
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn specs_parse_and_bad_ones_are_refused() {
        let s = Spec::parse("zipf:0.9+ohw:0.1+scan:5:100+shift:7").unwrap();
        assert_eq!(s.alpha, Some(0.9));
        assert_eq!(s.ohw, Some(0.1));
        assert_eq!(s.scan, Some((5, 100)));
        assert_eq!(s.shift, Some(7));
        assert_eq!(Spec::parse("zipf:1.2+ohw").unwrap().ohw, Some(0.25));
        assert_eq!(
            Spec::parse("trace:/x/y").unwrap().trace.as_deref(),
            Some("/x/y")
        );
        for bad in [
            "zipf",
            "zipf:x",
            "lru:1",
            "zipf:0.9+foo",
            "zipf:0.9+ohw:1.5",
            "zipf:-1",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_seed_same_trace_and_sizes_are_per_key() {
        let p = params(1000, 5000, 9);
        assert_eq!(
            ids("zipf:0.9+ohw+scan+shift", &p),
            ids("zipf:0.9+ohw+scan+shift", &p)
        );
        assert_ne!(
            ids("zipf:0.9", &p),
            ids("zipf:0.9", &params(1000, 5000, 10))
        );
        let g = Generator::new(&Spec::parse("zipf:0.9").unwrap(), &p).unwrap();
        let reqs: Vec<Request> = g.collect();
        assert_eq!(reqs.len(), 5000);
        let mut size = HashMap::new();
        for r in &reqs {
            assert!(r.id < 1000 && (10..=20).contains(&r.size));
            assert_eq!(*size.entry(r.id).or_insert(r.size), r.size);
        }
    }

    #[test]
    fn one_hit_wonders_never_repeat_and_take_their_share() {
        let v = ids("zipf:0.9+ohw:0.3", &params(1000, 20_000, 1));
        let ohw: Vec<u64> = v.iter().copied().filter(|&i| i & OHW_BIT != 0).collect();
        let distinct: std::collections::HashSet<u64> = ohw.iter().copied().collect();
        assert_eq!(distinct.len(), ohw.len());
        let frac = ohw.len() as f64 / v.len() as f64;
        assert!((0.27..0.33).contains(&frac), "{frac}");
    }

    #[test]
    fn scans_are_sequential_sweeps_that_continue() {
        // 10 keys per sweep after every 20 other requests.
        let v = ids("zipf:1.2+scan:10:20", &params(100, 120, 3));
        assert_eq!(&v[20..30], &(0..10).collect::<Vec<u64>>()[..]);
        assert_eq!(&v[50..60], &(10..20).collect::<Vec<u64>>()[..]);
    }

    #[test]
    fn shift_moves_the_hot_set() {
        let v = ids("zipf:1.2+shift:5000", &params(1000, 10_000, 5));
        let top = |s: &[u64]| {
            let mut c: HashMap<u64, u32> = HashMap::new();
            s.iter().for_each(|&i| *c.entry(i).or_default() += 1);
            c.into_iter().max_by_key(|&(_, n)| n).unwrap().0
        };
        assert_ne!(top(&v[..5000]), top(&v[5000..]));
    }

    #[test]
    fn trace_files_with_and_without_sizes() {
        let dir = std::env::temp_dir().join(format!("replay-trace-{}", std::process::id()));
        std::fs::write(&dir, "# comment\na 100\nb,7\n\na 100\nc\n").unwrap();
        let spec = Spec::parse(&format!("trace:{}", dir.display())).unwrap();
        let mut g = Generator::new(&spec, &params(0, 0, 1)).unwrap();
        let reqs: Vec<Request> = g.by_ref().collect();
        assert_eq!(
            reqs.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![0, 1, 0, 2]
        );
        assert_eq!(reqs[0].size, 100);
        assert_eq!(reqs[1].size, 7);
        assert!((10..=20).contains(&reqs[3].size));
        let mut name = Vec::new();
        g.key_name(2, &mut name);
        assert_eq!(name, b"c");
        std::fs::write(&dir, "a x\n").unwrap();
        let mut g = Generator::new(&spec, &params(0, 0, 1)).unwrap();
        assert!(g.next().is_none() && g.error.is_some());
        std::fs::remove_file(&dir).unwrap();
    }
}
