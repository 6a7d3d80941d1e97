//! Places as people type them, and distances between them.
//!
//! A post's place is a *geohash*: a short code naming a box on the map, made finer by
//! each character (5 characters ≈ 5 km across, 6 ≈ 1 km; aidmesh keeps at most 6, for
//! privacy). People may type one in any case, or a `LAT,LON` pair (as any map app
//! shows for a point), which is rounded to the 6-character cell around it. Distances
//! are those of the matcher ([`crate::matcher::geo`]): between the centres of cells.

use crate::matcher::geo;

/// The base-32 geohash alphabet: digits and letters without `a`, `i`, `l`, `o`.
const ALPHABET: &[u8] = aidmesh_proto::rules::GEOHASH_ALPHABET.as_bytes();
/// The finest geohash a post may carry (about 1 km).
pub const PRECISION: usize = aidmesh_proto::rules::MAX_GEOHASH_CHARS;

/// Where to look up a place's geohash, for messages and help.
pub const HOW_TO_FIND: &str = "give LAT,LON (a map app shows them for any point) \
     and aidmesh rounds it to a geohash";

/// A place that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither a geohash nor `LAT,LON`.
    #[error("{given:?} is not a geohash: {why}; {HOW_TO_FIND}")]
    NotGeohash {
        /// What was typed.
        given: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `LAT,LON` pair out of range or not numbers.
    #[error("{given:?} is not LAT,LON: {why}")]
    BadCoordinates {
        /// What was typed.
        given: String,
        /// What is wrong with it.
        why: String,
    },
}

/// A place read from what a person typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The geohash, lowercase, at most [`PRECISION`] characters.
    pub geohash: String,
    /// Something the person should know about how it was read (rounded, shortened,
    /// or a word that happens to be a geohash), for a `note:` line.
    pub note: Option<String>,
}

/// Reads a geohash (any case; longer ones are cut to [`PRECISION`] characters) or
/// `LAT,LON` (rounded to the cell of [`PRECISION`] characters around it).
pub fn parse(text: &str) -> Result<Place, Error> {
    let given = text.trim();
    if let Some((lat, lon)) = given.split_once(',') {
        let number = |s: &str, name: &str, max: f64| -> Result<f64, Error> {
            let bad = |why: String| Error::BadCoordinates {
                given: given.to_string(),
                why,
            };
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| bad(format!("{name} {:?} is not a number", s.trim())))?;
            if !v.is_finite() || v.abs() > max {
                return Err(bad(format!("{name} must be between -{max} and {max}")));
            }
            Ok(v)
        };
        let lat = number(lat, "latitude", 90.0)?;
        let lon = number(lon, "longitude", 180.0)?;
        let geohash = encode(lat, lon, PRECISION);
        let note = format!("{given} is the geohash {geohash} (the ~1 km cell around it)");
        return Ok(Place {
            geohash,
            note: Some(note),
        });
    }
    let lower = given.to_ascii_lowercase();
    let not = |why: String| Error::NotGeohash {
        given: given.to_string(),
        why,
    };
    if lower.is_empty() {
        return Err(not("it is empty".into()));
    }
    if let Some(c) = lower
        .chars()
        .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
    {
        return Err(not(format!(
            "{c:?} is not a geohash character (0-9 and b-z except i, l, o)"
        )));
    }
    let mut note = None;
    let mut geohash = lower;
    if geohash.len() > PRECISION {
        geohash.truncate(PRECISION);
        note = Some(format!(
            "{given} is shortened to {geohash}: aidmesh keeps places to ~1 km, for privacy"
        ));
    } else if looks_like_a_word(given) {
        let (lat, lon) = centre(&geohash).unwrap_or((0.0, 0.0));
        note = Some(format!(
            "{given:?} is read as the geohash {geohash}, an area around {}; if you meant a \
             place name, {HOW_TO_FIND}",
            show_lat_lon(lat, lon)
        ));
    }
    Ok(Place { geohash, note })
}

/// Whether a valid geohash was more likely typed as a word (a town's name): letters
/// only, and long enough to be one. Real geohashes of 4 or more characters mostly
/// hold a digit.
fn looks_like_a_word(text: &str) -> bool {
    text.len() >= 4 && text.chars().all(|c| c.is_ascii_alphabetic())
}

/// `52.52°N 13.40°E`.
pub fn show_lat_lon(lat: f64, lon: f64) -> String {
    format!(
        "{:.2}°{} {:.2}°{}",
        lat.abs(),
        if lat >= 0.0 { 'N' } else { 'S' },
        lon.abs(),
        if lon >= 0.0 { 'E' } else { 'W' }
    )
}

/// The geohash of `precision` characters of the cell holding `(lat, lon)`.
pub fn encode(lat: f64, lon: f64, precision: usize) -> String {
    let (mut lat_r, mut lon_r) = ((-90.0f64, 90.0f64), (-180.0f64, 180.0f64));
    let mut out = String::with_capacity(precision);
    let mut even = true;
    let (mut value, mut bits) = (0usize, 0);
    while out.len() < precision {
        let (range, v) = if even {
            (&mut lon_r, lon)
        } else {
            (&mut lat_r, lat)
        };
        let mid = (range.0 + range.1) / 2.0;
        value <<= 1;
        if v >= mid {
            value |= 1;
            range.0 = mid;
        } else {
            range.1 = mid;
        }
        even = !even;
        bits += 1;
        if bits == 5 {
            out.push(ALPHABET[value] as char);
            value = 0;
            bits = 0;
        }
    }
    out
}

/// The centre `(lat, lon)` of a geohash cell, as the matcher sees it.
pub fn centre(geohash: &str) -> Option<(f64, f64)> {
    geo::decode(geohash)
}

/// The distance in km between the centres of two cells, as the matcher reckons it.
pub fn distance_km(a: &str, b: &str) -> Option<f64> {
    geo::distance_km(a, b)
}

/// Size `(height, width)` in degrees of a cell of `precision` characters.
fn cell_degrees(precision: usize) -> (f64, f64) {
    let bits = 5 * precision;
    let lon_bits = bits.div_ceil(2);
    let lat_bits = bits / 2;
    (
        180.0 / (1u64 << lat_bits) as f64,
        360.0 / (1u64 << lon_bits) as f64,
    )
}

/// Geohash prefixes whose cells together hold every cell centre within `km` of
/// `around` (a cell centre): the cell around it and its neighbours, at the finest
/// precision whose cells are at least `km` across. An empty list means "everywhere"
/// (the radius is wider than the coarsest cells).
pub fn cells_within(around: (f64, f64), km: f64) -> Vec<String> {
    const KM_PER_DEGREE: f64 = 111.32;
    let (lat, lon) = around;
    let mut chosen = None;
    for precision in (1..=PRECISION).rev() {
        let (h, w) = cell_degrees(precision);
        let height_km = h * KM_PER_DEGREE;
        // The narrowest the cell gets across its own latitude band.
        let band = (lat.abs() + h).min(90.0);
        let width_km = w * KM_PER_DEGREE * band.to_radians().cos();
        if height_km >= km && width_km >= km {
            chosen = Some((precision, h, w));
            break;
        }
    }
    let Some((precision, h, w)) = chosen else {
        return Vec::new();
    };
    let mut cells = Vec::new();
    for dy in [-1.0, 0.0, 1.0] {
        for dx in [-1.0, 0.0, 1.0] {
            let y = lat + dy * h;
            if !(-90.0..=90.0).contains(&y) {
                continue;
            }
            let mut x = lon + dx * w;
            if x >= 180.0 {
                x -= 360.0;
            } else if x < -180.0 {
                x += 360.0;
            }
            cells.push(encode(y, x, precision));
        }
    }
    cells.sort();
    cells.dedup();
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_matcher_decodes() {
        // Berlin, Alexanderplatz.
        let g = encode(52.5219, 13.4132, 6);
        assert_eq!(g, "u33dc1");
        let (lat, lon) = centre(&g).unwrap();
        assert!((lat - 52.52).abs() < 0.01 && (lon - 13.41).abs() < 0.01);
        assert_eq!(encode(-33.8688, 151.2093, 5), "r3gx2");
    }

    #[test]
    fn reads_what_people_type() {
        assert_eq!(parse("U33DC").unwrap().geohash, "u33dc");
        assert!(parse("U33DC").unwrap().note.is_none());
        let p = parse(" 52.5219, 13.4132 ").unwrap();
        assert_eq!(p.geohash, "u33dc1");
        assert!(p.note.unwrap().contains("u33dc1"));
        assert_eq!(parse("u33dc1xyz").unwrap().geohash, "u33dc1");
        // A town's name that happens to be a geohash is read, with a warning.
        let essen = parse("essen").unwrap();
        assert_eq!(essen.geohash, "essen");
        assert!(essen.note.unwrap().contains("place name"));
        assert!(matches!(parse("Paris"), Err(Error::NotGeohash { .. })));
        assert!(matches!(parse("91,0"), Err(Error::BadCoordinates { .. })));
        assert!(matches!(parse("x,0"), Err(Error::BadCoordinates { .. })));
        assert!(matches!(parse(""), Err(Error::NotGeohash { .. })));
    }

    #[test]
    fn the_cells_within_a_radius_hold_every_close_cell() {
        // The case: u33db2 is ~2 km from the centre of u33dc, in another cell.
        let around = centre("u33dc").unwrap();
        let cells = cells_within(around, 10.0);
        assert!(
            cells.iter().any(|c| "u33db2".starts_with(c.as_str())),
            "{cells:?}"
        );
        assert!(distance_km("u33dc", "u33db2").unwrap() < 10.0);
        // Every 6-character cell within 10 km of the centre is covered.
        for dy in -20..=20 {
            for dx in -20..=20 {
                let p = (around.0 + dy as f64 * 0.005, around.1 + dx as f64 * 0.008);
                let g = encode(p.0, p.1, 6);
                if geo::haversine_km(around, centre(&g).unwrap()) <= 10.0 {
                    assert!(
                        cells.iter().any(|c| g.starts_with(c.as_str())),
                        "{g} not covered by {cells:?}"
                    );
                }
            }
        }
        assert!(cells_within(around, 20_000.0).is_empty());
    }
}
