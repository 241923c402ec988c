//! The geospatial family (Redis's `geo.c`): GEOADD, GEODIST, GEOHASH,
//! GEOPOS, GEOSEARCH, GEOSEARCHSTORE and the deprecated GEORADIUS* forms.
//!
//! Points live in ordinary sorted sets ([`ZSetValue`]): the score of a
//! member is its 52-bit interleaved geohash (26 bits of latitude, 26 of
//! longitude), exactly the integer Redis stores, so a geo set is a zset for
//! every other command, OBJECT ENCODING, DEBUG DIGEST and MEMORY USAGE.
//!
//! Searches follow Redis's algorithm step by step (the [`hash`] module):
//! estimate a geohash precision from the radius, take the center cell and
//! its eight neighbours (dropping the ones the bounding box cannot reach),
//! read each cell's score range from the zset and keep the points whose
//! haversine distance (earth radius 6372797.560856 m) is inside the shape.
//! Same cells, same order, same arithmetic: results, ANY truncation and
//! printed distances agree with Redis.

use super::zsets::{limits, zget};
use super::{err, notify, Ctx, Handler, KeysFn, Registry};
use crate::keyspace::types::zset::{AddFlags, AddOutcome, ZSetValue};
use crate::keyspace::Value;
use resp::Reply;
use strutil::{format_double_fixed, parse_f64, parse_i64, LongDouble};

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
geoadd|geo|-5|3.2.0|write,denyoom|geo|1,1,1|Adds one or more members to a geospatial index. The key is created if it doesn't exist.
geodist|geo|-4|3.2.0|readonly|geo|1,1,1|Returns the distance between two members of a geospatial index.
geohash|geo|-2|3.2.0|readonly|geo|1,1,1|Returns members from a geospatial index as geohash strings.
geopos|geo|-2|3.2.0|readonly|geo|1,1,1|Returns the longitude and latitude of members from a geospatial index.
georadius|geo|-6|3.2.0|write,denyoom|geo|1,1,1|Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.
georadius_ro|geo|-6|3.2.10|readonly|geo|1,1,1|Returns members from a geospatial index that are within a distance from a coordinate.
georadiusbymember|geo|-5|3.2.0|write,denyoom|geo|1,1,1|Queries a geospatial index for members within a distance from a member, optionally stores the result.
georadiusbymember_ro|geo|-5|3.2.10|readonly|geo|1,1,1|Returns members from a geospatial index that are within a distance from a member.
geosearch|geo|-7|6.2.0|readonly|geo|1,1,1|Queries a geospatial index for members inside an area of a box or a circle.
geosearchstore|geo|-8|6.2.0|write,denyoom|geo|1,2,1|Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("geoadd", geoadd as Handler),
        ("geodist", geodist),
        ("geohash", geohash),
        ("geopos", geopos),
        ("georadius", georadius),
        ("georadius_ro", georadius_ro),
        ("georadiusbymember", georadiusbymember),
        ("georadiusbymember_ro", georadiusbymember_ro),
        ("geosearch", geosearch),
        ("geosearchstore", geosearchstore),
    ]);
    r.keys.extend_from_slice(&[
        ("georadius", keys_georadius as KeysFn),
        ("georadiusbymember", keys_georadius),
    ]);
}

/// GEORADIUS / GEORADIUSBYMEMBER: the source key plus every argument that
/// follows a STORE or STOREDIST token in the option area. Reporting every
/// candidate (not only the last one) keeps the lock set a superset of the
/// key the handler picks, whatever the option mix.
fn keys_georadius(argv: &[&[u8]]) -> Option<Vec<usize>> {
    if argv.len() < 2 {
        return None;
    }
    let mut v = vec![1];
    let mut i = 5;
    while i + 1 < argv.len() {
        let a = argv[i];
        if (a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist"))
            && !v.contains(&(i + 1))
        {
            v.push(i + 1);
        }
        i += 1;
    }
    Some(v)
}

// ---------------------------------------------------------------------------
// Geohash arithmetic (geohash.c / geohash_helper.c)
// ---------------------------------------------------------------------------

pub mod hash {
    //! Redis's geohash: 26+26 interleaved bits over the Web Mercator
    //! latitude range, the neighbour cells, the step estimate and the
    //! haversine distances, with the same floating point operations.

    pub const STEP_MAX: u8 = 26;
    pub const LAT_MIN: f64 = -85.05112878;
    pub const LAT_MAX: f64 = 85.05112878;
    pub const LONG_MIN: f64 = -180.0;
    pub const LONG_MAX: f64 = 180.0;
    pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
    const MERCATOR_MAX: f64 = 20037726.37;
    const D_R: f64 = std::f64::consts::PI / 180.0;

    /// A geohash cell: `step` bits per coordinate. `bits == 0 && step == 0`
    /// marks a dropped neighbour.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct Bits {
        pub bits: u64,
        pub step: u8,
    }

    impl Bits {
        pub fn is_zero(&self) -> bool {
            self.bits == 0 && self.step == 0
        }
    }

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Range {
        pub min: f64,
        pub max: f64,
    }

    /// The rectangle a cell covers.
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Area {
        pub longitude: Range,
        pub latitude: Range,
    }

    pub const LONG_RANGE: Range = Range {
        min: LONG_MIN,
        max: LONG_MAX,
    };
    pub const LAT_RANGE: Range = Range {
        min: LAT_MIN,
        max: LAT_MAX,
    };

    #[inline]
    pub fn deg_rad(a: f64) -> f64 {
        a * D_R
    }

    #[inline]
    pub fn rad_deg(a: f64) -> f64 {
        a / D_R
    }

    /// Spreads the low 32 bits of `v` to the even bit positions.
    fn spread(v: u32) -> u64 {
        let mut x = v as u64;
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333_3333_3333;
        x = (x | (x << 1)) & 0x5555_5555_5555_5555;
        x
    }

    /// Gathers the even bit positions of `v` into 32 bits.
    fn squash(v: u64) -> u64 {
        let mut x = v & 0x5555_5555_5555_5555;
        x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
        x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
        x
    }

    /// Latitude bits on even positions, longitude bits on odd ones.
    pub fn interleave(lat: u32, lon: u32) -> u64 {
        spread(lat) | (spread(lon) << 1)
    }

    /// Inverse of [`interleave`]: (lat, lon).
    pub fn deinterleave(bits: u64) -> (u32, u32) {
        (squash(bits) as u32, squash(bits >> 1) as u32)
    }

    /// C's double to 32-bit unsigned conversion as x86-64 compilers emit it
    /// (through a 64-bit signed conversion, then truncation).
    fn c_u32(x: f64) -> u32 {
        c_i64(x) as u32
    }

    /// `cvttsd2si`: truncation, out of range and NaN give `i64::MIN`.
    pub fn c_i64(x: f64) -> i64 {
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) {
            x as i64
        } else {
            i64::MIN
        }
    }

    /// C's `(uint64_t)double` on x86-64.
    pub fn c_u64(x: f64) -> u64 {
        const TWO63: f64 = 9_223_372_036_854_775_808.0;
        // Unordered (NaN) compares take the signed path, as `comisd; jae`.
        if x.partial_cmp(&TWO63).is_none_or(|o| o.is_lt()) {
            c_i64(x) as u64
        } else {
            (c_i64(x - TWO63) as u64) ^ (1u64 << 63)
        }
    }

    /// `geohashEncode`. None outside the supported coordinates.
    pub fn encode(
        long_range: Range,
        lat_range: Range,
        lon: f64,
        lat: f64,
        step: u8,
    ) -> Option<Bits> {
        if step > 32 || step == 0 {
            return None;
        }
        if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
            return None;
        }
        if lat < lat_range.min
            || lat > lat_range.max
            || lon < long_range.min
            || lon > long_range.max
        {
            return None;
        }
        let mut lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min);
        let mut long_offset = (lon - long_range.min) / (long_range.max - long_range.min);
        lat_offset *= (1u64 << step) as f64;
        long_offset *= (1u64 << step) as f64;
        Some(Bits {
            bits: interleave(c_u32(lat_offset), c_u32(long_offset)),
            step,
        })
    }

    /// `geohashEncodeWGS84`.
    pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Bits> {
        encode(LONG_RANGE, LAT_RANGE, lon, lat, step)
    }

    /// `geohashDecode`.
    pub fn decode(long_range: Range, lat_range: Range, h: Bits) -> Option<Area> {
        if h.is_zero() {
            return None;
        }
        let (ilato, ilono) = deinterleave(h.bits);
        let lat_scale = lat_range.max - lat_range.min;
        let long_scale = long_range.max - long_range.min;
        let div = (1u64 << h.step) as f64;
        Some(Area {
            latitude: Range {
                min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
                max: lat_range.min + ((ilato as u64 + 1) as f64 * 1.0 / div) * lat_scale,
            },
            longitude: Range {
                min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
                max: long_range.min + ((ilono as u64 + 1) as f64 * 1.0 / div) * long_scale,
            },
        })
    }

    /// The center of a cell, clamped to the valid coordinates: [lon, lat].
    pub fn area_center(a: &Area) -> [f64; 2] {
        let mut lon = (a.longitude.min + a.longitude.max) / 2.0;
        lon = lon.clamp(LONG_MIN, LONG_MAX);
        let mut lat = (a.latitude.min + a.latitude.max) / 2.0;
        lat = lat.clamp(LAT_MIN, LAT_MAX);
        [lon, lat]
    }

    /// Redis's `decodeGeohash`: a zset score to [lon, lat].
    pub fn decode_score(score: f64) -> [f64; 2] {
        let h = Bits {
            bits: c_u64(score),
            step: STEP_MAX,
        };
        // A step-26 hash never counts as "zero", so decoding cannot fail.
        let a = decode(LONG_RANGE, LAT_RANGE, h).expect("step is non-zero");
        area_center(&a)
    }

    /// The 52-bit score of a point (already validated).
    pub fn score_of(lon: f64, lat: f64) -> u64 {
        encode_wgs84(lon, lat, STEP_MAX).map_or(0, align52)
    }

    /// `geohashAlign52Bits`.
    pub fn align52(h: Bits) -> u64 {
        h.bits << (52 - h.step as u32 * 2)
    }

    fn move_x(h: &mut Bits, d: i8) {
        if d == 0 {
            return;
        }
        let mut x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
        let y = h.bits & 0x5555_5555_5555_5555;
        let zz = 0x5555_5555_5555_5555u64 >> (64 - h.step as u32 * 2);
        if d > 0 {
            x = x.wrapping_add(zz + 1);
        } else {
            x |= zz;
            x = x.wrapping_sub(zz + 1);
        }
        x &= 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step as u32 * 2);
        h.bits = x | y;
    }

    fn move_y(h: &mut Bits, d: i8) {
        if d == 0 {
            return;
        }
        let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
        let mut y = h.bits & 0x5555_5555_5555_5555;
        let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step as u32 * 2);
        if d > 0 {
            y = y.wrapping_add(zz + 1);
        } else {
            y |= zz;
            y = y.wrapping_sub(zz + 1);
        }
        y &= 0x5555_5555_5555_5555u64 >> (64 - h.step as u32 * 2);
        h.bits = x | y;
    }

    /// The cell moved by (dx, dy) cells, wrapping around.
    pub fn moved(h: Bits, dx: i8, dy: i8) -> Bits {
        let mut n = h;
        move_x(&mut n, dx);
        move_y(&mut n, dy);
        n
    }

    /// `geohashEstimateStepsByRadius`.
    pub fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
        if range_meters == 0.0 {
            return 26;
        }
        let mut range = range_meters;
        let mut step: i32 = 1;
        while range < MERCATOR_MAX {
            range *= 2.0;
            step += 1;
        }
        step -= 2;
        if !(-66.0..=66.0).contains(&lat) {
            step -= 1;
            if !(-80.0..=80.0).contains(&lat) {
                step -= 1;
            }
        }
        step.clamp(1, 26) as u8
    }

    /// A search shape; sizes are in the request's unit, `conversion` turns
    /// them into meters.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Kind {
        Radius(f64),
        /// width, height
        Box(f64, f64),
    }

    #[derive(Clone, Copy, Debug)]
    pub struct Shape {
        pub xy: [f64; 2],
        pub conversion: f64,
        pub kind: Kind,
    }

    impl Shape {
        /// `geohashBoundingBox`: [min_lon, min_lat, max_lon, max_lat].
        pub fn bounding_box(&self) -> [f64; 4] {
            let (lon, lat) = (self.xy[0], self.xy[1]);
            let (height, width) = match self.kind {
                Kind::Radius(r) => (self.conversion * r, self.conversion * r),
                Kind::Box(w, h) => (self.conversion * (h / 2.0), self.conversion * (w / 2.0)),
            };
            let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
            let long_delta_top =
                rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
            let long_delta_bottom =
                rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
            let south = lat < 0.0;
            [
                if south {
                    lon - long_delta_bottom
                } else {
                    lon - long_delta_top
                },
                lat - lat_delta,
                if south {
                    lon + long_delta_bottom
                } else {
                    lon + long_delta_top
                },
                lat + lat_delta,
            ]
        }

        /// `geoWithinShape` after decoding: the distance (meters) from the
        /// center when the point is inside.
        pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
            match self.kind {
                Kind::Radius(r) => {
                    let d = distance(self.xy[0], self.xy[1], lon, lat);
                    (d <= r * self.conversion).then_some(d)
                }
                Kind::Box(w, h) => {
                    let (w, h) = (w * self.conversion, h * self.conversion);
                    if lat_distance(lat, self.xy[1]) > h / 2.0 {
                        return None;
                    }
                    if distance(lon, lat, self.xy[0], lat) > w / 2.0 {
                        return None;
                    }
                    Some(distance(self.xy[0], self.xy[1], lon, lat))
                }
            }
        }

        /// `geohashCalculateAreasByShapeWGS84`: the cells to read, in
        /// Redis's order (center, N, S, E, W, NE, NW, SE, SW); dropped
        /// neighbours are zero.
        pub fn cells(&self) -> [Bits; 9] {
            let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
            let (lon, lat) = (self.xy[0], self.xy[1]);
            let radius_meters = match self.kind {
                Kind::Radius(r) => r,
                Kind::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
            } * self.conversion;
            let mut steps = estimate_steps(radius_meters, lat);
            let mut h = encode_wgs84(lon, lat, steps).unwrap_or_default();
            let mut area = decode(LONG_RANGE, LAT_RANGE, h).unwrap_or_default();
            let dec = |b: Bits| decode(LONG_RANGE, LAT_RANGE, b).unwrap_or_default();
            let north = dec(moved(h, 0, 1));
            let south = dec(moved(h, 0, -1));
            let east = dec(moved(h, 1, 0));
            let west = dec(moved(h, -1, 0));
            let decrease = north.latitude.max < max_lat
                || south.latitude.min > min_lat
                || east.longitude.max < max_lon
                || west.longitude.min > min_lon;
            if steps > 1 && decrease {
                steps -= 1;
                h = encode_wgs84(lon, lat, steps).unwrap_or_default();
                area = decode(LONG_RANGE, LAT_RANGE, h).unwrap_or_default();
            }
            // Center, N, S, E, W, NE, NW, SE, SW.
            const DIRS: [(i8, i8); 9] = [
                (0, 0),
                (0, 1),
                (0, -1),
                (1, 0),
                (-1, 0),
                (1, 1),
                (-1, 1),
                (1, -1),
                (-1, -1),
            ];
            let mut cells = DIRS.map(|(dx, dy)| moved(h, dx, dy));
            if steps >= 2 {
                let zero = Bits::default();
                if area.latitude.min < min_lat {
                    for i in [2, 7, 8] {
                        cells[i] = zero;
                    }
                }
                if area.latitude.max > max_lat {
                    for i in [1, 5, 6] {
                        cells[i] = zero;
                    }
                }
                if area.longitude.min < min_lon {
                    for i in [4, 8, 6] {
                        cells[i] = zero;
                    }
                }
                if area.longitude.max > max_lon {
                    for i in [3, 7, 5] {
                        cells[i] = zero;
                    }
                }
            }
            cells
        }
    }

    /// `geohashGetLatDistance`.
    pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
        EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
    }

    /// `geohashGetDistance`: haversine distance in meters.
    pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
        let lon1r = deg_rad(lon1);
        let lon2r = deg_rad(lon2);
        let v = ((lon2r - lon1r) / 2.0).sin();
        if v == 0.0 {
            return lat_distance(lat1, lat2);
        }
        let lat1r = deg_rad(lat1);
        let lat2r = deg_rad(lat2);
        let u = ((lat2r - lat1r) / 2.0).sin();
        let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
        2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
    }

    /// The score range `[min, max)` of the points inside a cell.
    pub fn score_range(h: Bits) -> (u64, u64) {
        let min = align52(h);
        let max = align52(Bits {
            bits: h.bits + 1,
            step: h.step,
        });
        (min, max)
    }

    /// The standard 11-character geohash (latitude range -90..90) of a
    /// stored score, as GEOHASH prints it.
    pub fn geohash_string(score: f64) -> [u8; 11] {
        const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
        let [lon, lat] = decode_score(score);
        let std_lat = Range {
            min: -90.0,
            max: 90.0,
        };
        let bits = encode(LONG_RANGE, std_lat, lon, lat, 26).map_or(0, |h| h.bits);
        let mut out = [b'0'; 11];
        for (i, c) in out.iter_mut().enumerate().take(10) {
            let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
            *c = ALPHABET[idx as usize];
        }
        out
    }
}

use hash::{Kind, Shape};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `getDoubleFromObjectOrReply` with an optional custom message.
fn arg_double(r: &mut Reply, a: &[u8], msg: Option<&str>) -> Option<f64> {
    let v = parse_f64(a);
    if v.is_none() {
        match msg {
            Some(m) => r.error(&format!("ERR {m}")),
            None => r.error(err::NOT_FLOAT),
        }
    }
    v
}

/// `extractLongLatOrReply`: [lon, lat] from two arguments.
fn arg_lonlat(r: &mut Reply, a: &[&[u8]]) -> Option<[f64; 2]> {
    let lon = arg_double(r, a[0], None)?;
    let lat = arg_double(r, a[1], None)?;
    if !(hash::LONG_MIN..=hash::LONG_MAX).contains(&lon)
        || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&lat)
    {
        r.error(&format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        ));
        return None;
    }
    Some([lon, lat])
}

/// `extractUnitOrReply`: meters per unit.
fn arg_unit(r: &mut Reply, a: &[u8]) -> Option<f64> {
    let f = match a.to_ascii_lowercase().as_slice() {
        b"m" => 1.0,
        b"km" => 1000.0,
        b"ft" => 0.3048,
        b"mi" => 1609.34,
        _ => {
            r.error("ERR unsupported unit provided. please use M, KM, FT, MI");
            return None;
        }
    };
    Some(f)
}

/// `extractDistanceOrReply`: (radius, conversion).
fn arg_distance(r: &mut Reply, a: &[&[u8]]) -> Option<(f64, f64)> {
    let d = arg_double(r, a[0], Some("need numeric radius"))?;
    if d < 0.0 {
        r.error("ERR radius cannot be negative");
        return None;
    }
    let conv = arg_unit(r, a[1])?;
    Some((d, conv))
}

/// `extractBoxOrReply`: (width, height, conversion).
fn arg_box(r: &mut Reply, a: &[&[u8]]) -> Option<(f64, f64, f64)> {
    let w = arg_double(r, a[0], Some("need numeric width"))?;
    let h = arg_double(r, a[1], Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        r.error("ERR height or width cannot be negative");
        return None;
    }
    let conv = arg_unit(r, a[2])?;
    Some((w, h, conv))
}

/// A coordinate as `addReplyHumanLongDouble` sends it.
fn reply_coord(r: &mut Reply, x: f64) {
    r.double_text(LongDouble::from_f64(x).to_human_string().as_bytes());
}

/// A distance with four decimals (`addReplyDoubleDistance`), always a bulk.
fn reply_distance(r: &mut Reply, d: f64) {
    r.bulk(format_double_fixed(d, 4).as_bytes());
}

// ---------------------------------------------------------------------------
// GEOADD
// ---------------------------------------------------------------------------

fn geoadd(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut f = AddFlags::default();
    let mut ch = false;
    let mut idx = 2;
    while idx < argv.len() {
        match argv[idx].to_ascii_lowercase().as_slice() {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"ch" => ch = true,
            _ => break,
        }
        idx += 1;
    }
    let lim = limits(ctx);
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    if !(argv.len() - idx).is_multiple_of(3) || (f.xx && f.nx) {
        return r.error(err::SYNTAX);
    }
    let elements = (argv.len() - idx) / 3;
    if elements == 0 {
        // ZADD's own check on the rewritten command.
        return r.error(err::SYNTAX);
    }
    let mut scores = Vec::with_capacity(elements);
    for j in 0..elements {
        let a = &argv[idx + 3 * j..idx + 3 * j + 2];
        let Some([lon, lat]) = arg_lonlat(&mut r, a) else {
            return;
        };
        scores.push(hash::score_of(lon, lat) as f64);
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut created = None;
    let z = match zget(sh, key, now, true) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(Some(z)) => {
            z.maybe_convert(elements, lim);
            z
        }
        Ok(None) => {
            if f.xx {
                return r.int(0);
            }
            created = Some(ZSetValue::with_hint(elements, argv[idx + 2].len(), lim));
            created.as_mut().unwrap()
        }
    };
    let (mut added, mut updated) = (0i64, 0i64);
    for (j, &s) in scores.iter().enumerate() {
        match z.add(s, argv[idx + 2 + 3 * j], f, lim) {
            Ok(AddOutcome::Added(_)) => added += 1,
            Ok(AddOutcome::Updated(_)) => updated += 1,
            _ => {}
        }
    }
    if let Some(z) = created {
        if !z.is_empty() {
            sh.insert(key, Value::ZSet(z), None);
        }
    }
    if added + updated > 0 {
        ctx.notify(notify::ZSET, "zadd", key);
    }
    ctx.srv.add_dirty((added + updated) as u64);
    ctx.r().int(if ch { added + updated } else { added });
}

// ---------------------------------------------------------------------------
// GEODIST, GEOHASH, GEOPOS
// ---------------------------------------------------------------------------

fn geodist(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let mut to_meter = 1.0;
    if argv.len() == 5 {
        match arg_unit(&mut r, argv[4]) {
            Some(u) => to_meter = u,
            None => return,
        }
    } else if argv.len() > 5 {
        return r.error(err::SYNTAX);
    }
    let sh = ctx.locks.shard(db, argv[1]);
    let z = match zget(sh, argv[1], now, touch) {
        Err(()) => {
            ctx.srv.stats.hit(true);
            return r.error(err::WRONGTYPE);
        }
        Ok(None) => {
            ctx.srv.stats.hit(false);
            return r.null();
        }
        Ok(Some(z)) => z,
    };
    ctx.srv.stats.hit(true);
    match (z.score(argv[2]), z.score(argv[3])) {
        (Some(s1), Some(s2)) => {
            let a = hash::decode_score(s1);
            let b = hash::decode_score(s2);
            reply_distance(&mut r, hash::distance(a[0], a[1], b[0], b[1]) / to_meter);
        }
        _ => r.null(),
    }
}

/// GEOHASH / GEOPOS: the zset (None when missing), after WRONGTYPE.
fn read_scores(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<Vec<Option<f64>>, ()> {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let res = match zget(sh, argv[1], now, touch) {
        Err(()) => Err(()),
        Ok(None) => Ok(None),
        Ok(Some(z)) => Ok(Some(argv[2..].iter().map(|m| z.score(m)).collect())),
    };
    ctx.srv.stats.hit(!matches!(res, Ok(None)));
    res.map(|o| o.unwrap_or_else(|| vec![None; argv.len() - 2]))
}

fn geohash(ctx: &mut Ctx, argv: &[&[u8]]) {
    let scores = read_scores(ctx, argv);
    let mut r = ctx.r();
    let Ok(scores) = scores else {
        return r.error(err::WRONGTYPE);
    };
    r.array(scores.len());
    for s in scores {
        match s {
            Some(s) => r.bulk(&hash::geohash_string(s)),
            None => r.null(),
        }
    }
}

fn geopos(ctx: &mut Ctx, argv: &[&[u8]]) {
    let scores = read_scores(ctx, argv);
    let mut r = ctx.r();
    let Ok(scores) = scores else {
        return r.error(err::WRONGTYPE);
    };
    r.array(scores.len());
    for s in scores {
        match s {
            Some(s) => {
                let [lon, lat] = hash::decode_score(s);
                r.array(2);
                reply_coord(&mut r, lon);
                reply_coord(&mut r, lat);
            }
            None => r.null_array(),
        }
    }
}

// ---------------------------------------------------------------------------
// Searches
// ---------------------------------------------------------------------------

const RADIUS_COORDS: u32 = 1 << 0;
const RADIUS_MEMBER: u32 = 1 << 1;
const RADIUS_NOSTORE: u32 = 1 << 2;
const GEOSEARCH: u32 = 1 << 3;
const GEOSEARCHSTORE: u32 = 1 << 4;

fn georadius(ctx: &mut Ctx, argv: &[&[u8]]) {
    search_generic(ctx, argv, 1, RADIUS_COORDS)
}

fn georadiusbymember(ctx: &mut Ctx, argv: &[&[u8]]) {
    search_generic(ctx, argv, 1, RADIUS_MEMBER)
}

fn georadius_ro(ctx: &mut Ctx, argv: &[&[u8]]) {
    search_generic(ctx, argv, 1, RADIUS_COORDS | RADIUS_NOSTORE)
}

fn georadiusbymember_ro(ctx: &mut Ctx, argv: &[&[u8]]) {
    search_generic(ctx, argv, 1, RADIUS_MEMBER | RADIUS_NOSTORE)
}

fn geosearch(ctx: &mut Ctx, argv: &[&[u8]]) {
    search_generic(ctx, argv, 1, GEOSEARCH)
}

fn geosearchstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    search_generic(ctx, argv, 2, GEOSEARCH | GEOSEARCHSTORE)
}

/// One matching point.
pub struct Point {
    pub member: Vec<u8>,
    pub score: f64,
    pub lon: f64,
    pub lat: f64,
    /// Meters until the reply divides by the unit.
    pub dist: f64,
}

/// `membersOfAllNeighbors`: the points inside `shape`, cell by cell in
/// Redis's order. `limit` (ANY's COUNT, 0 = none) stops the scan early.
pub fn points_in_shape(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = shape.cells();
    let mut out: Vec<Point> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, c) in cells.iter().enumerate() {
        if c.is_zero() {
            continue;
        }
        if let Some(l) = last {
            if cells[l] == *c {
                continue;
            }
        }
        if !out.is_empty() && limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = hash::score_range(*c);
        let lo = z.count_score_below(min as f64, false);
        let hi = z.count_score_below(max as f64, false);
        if hi > lo {
            let mut done = false;
            z.range(lo, hi - lo, false, |m, s| {
                if done {
                    return;
                }
                let [lon, lat] = hash::decode_score(s);
                if let Some(dist) = shape.contains(lon, lat) {
                    out.push(Point {
                        member: m.to_vec(),
                        score: s,
                        lon,
                        lat,
                        dist,
                    });
                }
                if !out.is_empty() && limit > 0 && out.len() >= limit {
                    done = true;
                }
            });
        }
        last = Some(i);
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

fn search_generic(ctx: &mut Ctx, argv: &[&[u8]], src_idx: usize, flags: u32) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let lim = limits(ctx);
    let proto = ctx.client.proto;
    let srv = ctx.srv;
    let src = argv[src_idx];
    let mut r = Reply::new(ctx.out, proto);

    // The source is looked up first: WRONGTYPE wins over argument errors.
    let zobj: Option<&ZSetValue> = match zget(ctx.locks.shard(db, src), src, now, touch) {
        Err(()) => {
            srv.stats.hit(true);
            return r.error(err::WRONGTYPE);
        }
        Ok(z) => {
            srv.stats.hit(z.is_some());
            z.map(|z| &*z)
        }
    };

    let mut storekey: Option<&[u8]> = None;
    let mut storedist = false;
    let mut xy = [0.0f64; 2];
    let mut conversion = 1.0;
    let mut kind = Kind::Radius(0.0);
    let base_args;
    if flags & RADIUS_COORDS != 0 {
        base_args = 6;
        let Some(p) = arg_lonlat(&mut r, &argv[2..4]) else {
            return;
        };
        xy = p;
        let Some((d, conv)) = arg_distance(&mut r, &argv[4..6]) else {
            return;
        };
        kind = Kind::Radius(d);
        conversion = conv;
    } else if flags & RADIUS_MEMBER != 0 {
        base_args = 5;
        if let Some(z) = zobj {
            match z.score(argv[2]) {
                Some(s) => xy = hash::decode_score(s),
                None => return r.error("ERR could not decode requested zset member"),
            }
            let Some((d, conv)) = arg_distance(&mut r, &argv[3..5]) else {
                return;
            };
            kind = Kind::Radius(d);
            conversion = conv;
        }
    } else {
        base_args = if flags & GEOSEARCHSTORE != 0 { 3 } else { 2 };
        if flags & GEOSEARCHSTORE != 0 {
            storekey = Some(argv[1]);
        }
    }

    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let remaining = argv.len().saturating_sub(base_args);
    let mut i = 0;
    while i < remaining {
        let a = argv[base_args + i];
        let arg = a.to_ascii_lowercase();
        let is_search = flags & GEOSEARCH != 0;
        let can_store = flags & RADIUS_NOSTORE == 0 && !is_search;
        match arg.as_slice() {
            b"withdist" => withdist = true,
            b"withhash" => withhash = true,
            b"withcoord" => withcoords = true,
            b"any" => any = true,
            b"asc" => sort = Sort::Asc,
            b"desc" => sort = Sort::Desc,
            b"count" if i + 1 < remaining => {
                let Some(n) = parse_i64(argv[base_args + i + 1]) else {
                    return r.error(err::NOT_INT);
                };
                if n <= 0 {
                    return r.error("ERR COUNT must be > 0");
                }
                count = n;
                i += 1;
            }
            b"store" if i + 1 < remaining && can_store => {
                storekey = Some(argv[base_args + i + 1]);
                storedist = false;
                i += 1;
            }
            b"storedist" if i + 1 < remaining && can_store => {
                storekey = Some(argv[base_args + i + 1]);
                storedist = true;
                i += 1;
            }
            b"storedist" if is_search && flags & GEOSEARCHSTORE != 0 => storedist = true,
            b"frommember" if i + 1 < remaining && is_search && !fromloc => {
                if let Some(z) = zobj {
                    match z.score(argv[base_args + i + 1]) {
                        Some(s) => xy = hash::decode_score(s),
                        None => return r.error("ERR could not decode requested zset member"),
                    }
                }
                frommember = true;
                i += 1;
            }
            b"fromlonlat" if i + 2 < remaining && is_search && !frommember => {
                let Some(p) = arg_lonlat(&mut r, &argv[base_args + i + 1..base_args + i + 3])
                else {
                    return;
                };
                xy = p;
                fromloc = true;
                i += 2;
            }
            b"byradius" if i + 2 < remaining && is_search && !bybox => {
                let Some((d, conv)) =
                    arg_distance(&mut r, &argv[base_args + i + 1..base_args + i + 3])
                else {
                    return;
                };
                kind = Kind::Radius(d);
                conversion = conv;
                byradius = true;
                i += 2;
            }
            b"bybox" if i + 3 < remaining && is_search && !byradius => {
                let Some((w, h, conv)) =
                    arg_box(&mut r, &argv[base_args + i + 1..base_args + i + 4])
                else {
                    return;
                };
                kind = Kind::Box(w, h);
                conversion = conv;
                bybox = true;
                i += 3;
            }
            _ => return r.error(err::SYNTAX),
        }
        i += 1;
    }

    if storekey.is_some() && (withdist || withhash || withcoords) {
        return r.error(&format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if flags & GEOSEARCHSTORE != 0 {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let cmd = String::from_utf8_lossy(argv[0]);
    if flags & GEOSEARCH != 0 && !(frommember || fromloc) {
        return r.error(&format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {cmd}"
        ));
    }
    if flags & GEOSEARCH != 0 && !(byradius || bybox) {
        return r.error(&format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {cmd}"
        ));
    }
    if any && count == 0 {
        return r.error("ERR the ANY argument requires COUNT argument");
    }

    let Some(z) = zobj else {
        match storekey {
            Some(dst) => {
                if ctx.locks.shard(db, dst).remove(dst).is_some() {
                    notify::notify(srv, notify::GENERIC, "del", db, dst);
                    srv.add_dirty(1);
                }
                r.int(0);
            }
            None => r.array(0),
        }
        return;
    };

    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape = Shape {
        xy,
        conversion,
        kind,
    };
    let limit = if any { count as usize } else { 0 };
    let mut points = points_in_shape(z, &shape, limit);

    if points.is_empty() && storekey.is_none() {
        return r.array(0);
    }
    let returned = if count == 0 || (points.len() as i64) < count {
        points.len()
    } else {
        count as usize
    };
    match sort {
        Sort::Asc => points.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => points.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Sort::None => {}
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= conversion;
    }

    let Some(dst) = storekey else {
        let options = withdist as usize + withcoords as usize + withhash as usize;
        r.array(points.len());
        for p in &points {
            if options > 0 {
                r.array(options + 1);
            }
            r.bulk(&p.member);
            if withdist {
                reply_distance(&mut r, p.dist);
            }
            if withhash {
                r.int(hash::c_i64(p.score));
            }
            if withcoords {
                r.array(2);
                reply_coord(&mut r, p.lon);
                reply_coord(&mut r, p.lat);
            }
        }
        return;
    };

    let sh = ctx.locks.shard(db, dst);
    if returned > 0 {
        let mut out = ZSetValue::default();
        out.convert_to_skiplist(returned);
        for p in &points {
            let score = if storedist { p.dist } else { p.score };
            if out.score(&p.member).is_none() {
                out.insert_new(&p.member, score, lim);
            }
        }
        out.shrink_if_fits(lim);
        sh.insert(dst, Value::ZSet(out), None);
        let event = if flags & GEOSEARCH != 0 {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        notify::notify(srv, notify::ZSET, event, db, dst);
        srv.add_dirty(returned as u64);
    } else if sh.remove(dst).is_some() {
        notify::notify(srv, notify::GENERIC, "del", db, dst);
        srv.add_dirty(1);
    }
    r.int(returned as i64);
}

#[cfg(test)]
mod tests {
    use super::hash::*;
    use super::*;
    use crate::keyspace::types::zset::Limits;
    use proptest::prelude::*;

    const SMALL: Limits = Limits {
        max_entries: 128,
        max_value: 64,
    };
    const TINY: Limits = Limits {
        max_entries: 0,
        max_value: 0,
    };

    #[test]
    fn known_values_from_redis() {
        // GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
        let p = score_of(13.361389, 38.115556);
        let c = score_of(15.087269, 37.502669);
        assert_eq!(p, 3479099956230698);
        assert_eq!(c, 3479447370796909);
        assert_eq!(&geohash_string(p as f64), b"sqc8b49rny0");
        assert_eq!(&geohash_string(c as f64), b"sqdtr74hyu0");
        let [plon, plat] = decode_score(p as f64);
        let [clon, clat] = decode_score(c as f64);
        assert_eq!(
            LongDouble::from_f64(plon).to_human_string(),
            "13.36138933897018433"
        );
        assert_eq!(
            LongDouble::from_f64(plat).to_human_string(),
            "38.11555639549629859"
        );
        let d = distance(plon, plat, clon, clat);
        assert_eq!(format_double_fixed(d, 4), "166274.1516");
        assert_eq!(format_double_fixed(d / 1000.0, 4), "166.2742");
    }

    #[test]
    fn c_conversions() {
        assert_eq!(c_u64(-1.0), u64::MAX);
        assert_eq!(c_u64(0.5), 0);
        assert_eq!(c_u64(1e20), 0);
        assert_eq!(c_u64(f64::NAN), 1 << 63);
        assert_eq!(c_u64(9_223_372_036_854_775_808.0), 1 << 63);
        assert_eq!(c_i64(1e30), i64::MIN);
        assert_eq!(c_i64(-3.9), -3);
    }

    #[test]
    fn step_estimate() {
        assert_eq!(estimate_steps(0.0, 0.0), 26);
        assert_eq!(estimate_steps(1.0, 0.0), 24);
        assert_eq!(estimate_steps(1.0, 70.0), 23);
        assert_eq!(estimate_steps(1.0, -85.0), 22);
        assert_eq!(estimate_steps(1e9, 0.0), 1);
        assert_eq!(estimate_steps(f64::INFINITY, 0.0), 1);
    }

    #[test]
    fn keys_finder() {
        let argv: Vec<&[u8]> = vec![
            b"georadius",
            b"k",
            b"1",
            b"2",
            b"3",
            b"km",
            b"STORE",
            b"a",
            b"storedist",
            b"b",
        ];
        assert_eq!(keys_georadius(&argv), Some(vec![1, 7, 9]));
        let argv: Vec<&[u8]> = vec![b"georadiusbymember", b"k", b"m", b"3", b"km", b"STORE"];
        assert_eq!(keys_georadius(&argv), Some(vec![1]));
    }

    fn cell_xy(h: Bits) -> (u64, u64) {
        let (lat, lon) = deinterleave(h.bits);
        (lat as u64, lon as u64)
    }

    fn build(points: &[(f64, f64)], lim: Limits) -> ZSetValue {
        let mut z = ZSetValue::default();
        for (i, &(lon, lat)) in points.iter().enumerate() {
            let m = format!("m{i}");
            z.add(
                score_of(lon, lat) as f64,
                m.as_bytes(),
                AddFlags::default(),
                lim,
            )
            .unwrap();
        }
        z
    }

    /// The model: every point, exact distance check, no cells.
    fn brute(points: &[(f64, f64)], shape: &Shape) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = points
            .iter()
            .enumerate()
            .filter_map(|(i, &(lon, lat))| {
                let [x, y] = decode_score(score_of(lon, lat) as f64);
                shape.contains(x, y).map(|_| format!("m{i}").into_bytes())
            })
            .collect();
        v.sort();
        v
    }

    fn names(p: &[Point]) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = p.iter().map(|p| p.member.clone()).collect();
        v.sort();
        v
    }

    proptest! {
        #[test]
        fn interleave_roundtrip(lat in any::<u32>(), lon in any::<u32>()) {
            prop_assert_eq!(deinterleave(interleave(lat, lon)), (lat, lon));
        }

        #[test]
        fn encode_decode_contains_point(lon in -180.0f64..180.0, lat in LAT_MIN..LAT_MAX, step in 1u8..=26) {
            let h = encode_wgs84(lon, lat, step).unwrap();
            let a = decode(LONG_RANGE, LAT_RANGE, h).unwrap();
            prop_assert!(a.longitude.min <= lon && lon <= a.longitude.max);
            prop_assert!(a.latitude.min <= lat && lat <= a.latitude.max);
            // The 52-bit score of the point lies in the cell's score range.
            let (lo, hi) = score_range(h);
            let s = score_of(lon, lat);
            prop_assert!(lo <= s && s < hi);
            // Decoding a score lands within half a step-26 cell.
            let [x, y] = decode_score(s as f64);
            prop_assert!((x - lon).abs() <= 360.0 / (1u64 << 26) as f64);
            prop_assert!((y - lat).abs() <= 171.0 / (1u64 << 26) as f64);
        }

        #[test]
        fn neighbours_match_grid_model(bits in any::<u64>(), step in 1u8..=26, dx in -1i8..=1, dy in -1i8..=1) {
            let mask = if step == 32 { u64::MAX } else { (1u64 << (2 * step as u32)) - 1 };
            let h = Bits { bits: bits & mask, step };
            let n = moved(h, dx, dy);
            let (lat, lon) = cell_xy(h);
            let (nlat, nlon) = cell_xy(n);
            let size = 1u64 << step;
            prop_assert_eq!(nlat, (lat + size).wrapping_add(dy as i64 as u64) % size);
            prop_assert_eq!(nlon, (lon + size).wrapping_add(dx as i64 as u64) % size);
            prop_assert_eq!(n.step, step);
        }

        #[test]
        fn search_agrees_with_model(
            points in prop::collection::vec((-180.0f64..180.0, -70.0f64..70.0), 0..150),
            center in (-180.0f64..180.0, -70.0f64..70.0),
            radius_km in 1.0f64..3000.0,
            boxed in any::<bool>(),
            ratio in 0.3f64..3.0,
        ) {
            let kind = if boxed { Kind::Box(radius_km, radius_km * ratio) } else { Kind::Radius(radius_km) };
            let shape = Shape { xy: [center.0, center.1], conversion: 1000.0, kind };
            let want = brute(&points, &shape);
            let small = build(&points, SMALL);
            let big = build(&points, TINY);
            prop_assert_eq!(small.encoding(), if points.is_empty() || points.len() <= 128 { "listpack" } else { "skiplist" });
            prop_assert_eq!(big.encoding(), if points.is_empty() { "listpack" } else { "skiplist" });
            let a = points_in_shape(&small, &shape, 0);
            let b = points_in_shape(&big, &shape, 0);
            // Both encodings give the same points in the same order.
            let ka: Vec<_> = a.iter().map(|p| (p.member.clone(), p.dist.to_bits())).collect();
            let kb: Vec<_> = b.iter().map(|p| (p.member.clone(), p.dist.to_bits())).collect();
            prop_assert_eq!(&ka, &kb);
            // Every reported point is inside; away from the poles nothing
            // inside is missed (Redis's own fuzz test makes the same claim).
            let got = names(&a);
            for m in &got {
                prop_assert!(want.contains(m));
            }
            prop_assert_eq!(got, want);
            // ANY stops after COUNT points, which are a prefix of the scan.
            let any = points_in_shape(&small, &shape, 3);
            prop_assert_eq!(any.len(), a.len().min(3));
            for (x, y) in any.iter().zip(a.iter()) {
                prop_assert_eq!(&x.member, &y.member);
            }
        }
    }
}
