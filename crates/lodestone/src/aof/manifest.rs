//! The AOF manifest (Redis 7's multi-part AOF): one line per file,
//! `file <name> seq <n> type <b|h|i>`, base first, then history files,
//! then the incremental files in order.

/// What a file in the AOF directory is to the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The base: a point-in-time image (commands, or RDB with a preamble).
    Base,
    /// An incremental file: effects appended after its base.
    Incr,
    /// A file replaced by a rewrite, waiting to be deleted.
    History,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Base => 'b',
            Kind::Incr => 'i',
            Kind::History => 'h',
        }
    }
}

/// One manifest line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub seq: u64,
    pub kind: Kind,
}

/// The parsed manifest: the base (if any), history files and incrs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<FileInfo>,
    pub incrs: Vec<FileInfo>,
    pub history: Vec<FileInfo>,
    /// Highest base / incr sequence numbers used so far.
    pub base_seq: u64,
    pub incr_seq: u64,
}

/// The longest manifest line Redis accepts.
const MAX_LINE: usize = 1024;

impl Manifest {
    /// Parses manifest text; errors carry Redis's wording.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut any = false;
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.len() > MAX_LINE {
                return Err("The AOF manifest file contains too long line".into());
            }
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut buf = Vec::new();
            let mut ranges = Vec::new();
            if !resp::split_args(t.as_bytes(), &mut buf, &mut ranges) || ranges.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let words: Vec<String> = ranges
                .iter()
                .map(|r| String::from_utf8_lossy(&buf[r.clone()]).into_owned())
                .collect();
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in words.chunks(2) {
                match kv[0].as_str() {
                    "file" => name = Some(kv[1].clone()),
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1].as_str() {
                            "b" => Some(Kind::Base),
                            "i" => Some(Kind::Incr),
                            "h" => Some(Kind::History),
                            _ => None,
                        }
                    }
                    _ => {} // unknown keys are skipped, for forward compatibility
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if seq == 0 || name.contains('/') {
                return Err("Invalid AOF manifest file format".into());
            }
            any = true;
            let info = FileInfo { name, seq, kind };
            match kind {
                Kind::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base_seq = seq;
                    m.base = Some(info);
                }
                Kind::History => m.history.push(info),
                Kind::Incr => {
                    if seq <= m.incr_seq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incr_seq = seq;
                    m.incrs.push(info);
                }
            }
        }
        if !any {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest's text, in Redis's order (base, history, incrs).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let files = self.base.iter().chain(&self.history).chain(&self.incrs);
        for f in files {
            s.push_str(&format!(
                "file {} seq {} type {}\n",
                quote(&f.name),
                f.seq,
                f.kind.letter()
            ));
        }
        s
    }

    /// A new incremental file name (and records it).
    pub fn next_incr(&mut self, prefix: &str) -> FileInfo {
        self.incr_seq += 1;
        let f = FileInfo {
            name: format!("{prefix}.{}.incr.aof", self.incr_seq),
            seq: self.incr_seq,
            kind: Kind::Incr,
        };
        self.incrs.push(f.clone());
        f
    }

    /// The next base file name (not recorded until the rewrite commits).
    pub fn next_base(&mut self, prefix: &str, rdb: bool) -> FileInfo {
        self.base_seq += 1;
        let ext = if rdb { "rdb" } else { "aof" };
        FileInfo {
            name: format!("{prefix}.{}.base.{ext}", self.base_seq),
            seq: self.base_seq,
            kind: Kind::Base,
        }
    }
}

/// Quotes a file name the way Redis's `sdscatrepr` does when it needs it.
fn quote(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\')
    {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for b in name.bytes() {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b' '..=b'~' => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_manifest() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type h\n\
                    file appendonly.aof.3.incr.aof seq 3 type i\n\
                    file appendonly.aof.4.incr.aof seq 4 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.base_seq, 2);
        assert_eq!(m.incr_seq, 4);
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(m.render(), text);
    }

    #[test]
    fn keys_in_any_order_and_comments() {
        let m = Manifest::parse("# c\n\ntype i seq 7 file a.aof\r\n").unwrap();
        assert_eq!(
            m.incrs,
            vec![FileInfo {
                name: "a.aof".into(),
                seq: 7,
                kind: Kind::Incr
            }]
        );
    }

    #[test]
    fn rejects_bad_manifests() {
        for bad in [
            "",
            "file a seq 1\n",
            "file a seq x type i\n",
            "file a seq 1 type z\n",
            "file a seq 1 type b\nfile b seq 2 type b\n",
            "file a seq 2 type i\nfile b seq 1 type i\n",
            "file a seq\n",
            "file \"a seq 1 type i\n",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("file {} seq 1 type i\n", "x".repeat(2000));
        assert!(Manifest::parse(&long).is_err());
    }

    #[test]
    fn names_with_spaces_round_trip() {
        let mut m = Manifest::default();
        let f = m.next_incr("my file.aof");
        assert_eq!(f.name, "my file.aof.1.incr.aof");
        let text = m.render();
        assert_eq!(text, "file \"my file.aof.1.incr.aof\" seq 1 type i\n");
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert_eq!(m.next_base("x", true).name, "x.1.base.rdb");
    }
}
