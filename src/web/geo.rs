//! Geohashes for "near me": encoding a place, and the cells of one length that cover
//! a circle of N km around a place (posts carry a geohash of at most 6 characters,
//! so distances are between cell centres).

use aidmesh_proto::rules::GEOHASH_ALPHABET;

pub use crate::matcher::geo::{decode, haversine_km};

/// The geohash of `precision` characters holding (`lat`, `lon`), in degrees.
pub fn encode(lat: f64, lon: f64, precision: usize) -> String {
    let alphabet = GEOHASH_ALPHABET.as_bytes();
    let (mut lat_lo, mut lat_hi) = (-90.0f64, 90.0f64);
    let (mut lon_lo, mut lon_hi) = (-180.0f64, 180.0f64);
    let mut out = String::with_capacity(precision);
    let (mut bits, mut ch, mut even) = (0, 0usize, true);
    while out.len() < precision {
        if even {
            let mid = (lon_lo + lon_hi) / 2.0;
            if lon >= mid {
                ch = (ch << 1) | 1;
                lon_lo = mid;
            } else {
                ch <<= 1;
                lon_hi = mid;
            }
        } else {
            let mid = (lat_lo + lat_hi) / 2.0;
            if lat >= mid {
                ch = (ch << 1) | 1;
                lat_lo = mid;
            } else {
                ch <<= 1;
                lat_hi = mid;
            }
        }
        even = !even;
        bits += 1;
        if bits == 5 {
            out.push(alphabet[ch] as char);
            bits = 0;
            ch = 0;
        }
    }
    out
}

/// The height of a geohash cell of `len` characters, in km.
fn cell_km(len: usize) -> f64 {
    let lat_bits = (5 * len) / 2;
    180.0 / f64::powi(2.0, lat_bits as i32) * 111.0
}

/// The cells that together cover every place within `km` of `centre` (a geohash):
/// the longest cell length whose cells are at least `km` tall, sampled over the
/// circle's bounding box — at most 25 cells, usually 4 to 9.
pub fn cells_around(centre: &str, km: f64) -> Option<Vec<String>> {
    let (lat, lon) = decode(centre)?;
    let len = (1..=6).rev().find(|&l| cell_km(l) >= km).unwrap_or(1);
    let dlat = km / 111.0;
    let dlon = km / (111.0 * lat.to_radians().cos().max(0.01));
    let mut cells = Vec::new();
    for i in 0..5 {
        for j in 0..5 {
            let la = (lat - dlat + dlat * i as f64 / 2.0).clamp(-89.999, 89.999);
            let mut lo = lon - dlon + dlon * j as f64 / 2.0;
            if lo >= 180.0 {
                lo -= 360.0;
            } else if lo < -180.0 {
                lo += 360.0;
            }
            let c = encode(la, lo, len);
            if !cells.contains(&c) {
                cells.push(c);
            }
        }
    }
    Some(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_places() {
        // The classic example: ezs42 is the cell around 42.605 N, 5.603 W.
        assert_eq!(encode(42.605, -5.603, 5), "ezs42");
        assert_eq!(
            encode(55.6761, 12.5683, 6),
            encode(55.6761, 12.5683, 8)[..6]
        );
        let (la, lo) = decode(&encode(55.6761, 12.5683, 6)).unwrap();
        assert!((la - 55.6761).abs() < 0.01 && (lo - 12.5683).abs() < 0.01);
    }

    #[test]
    fn cells_cover_the_circle() {
        let cells = cells_around(&encode(55.6761, 12.5683, 6), 10.0).unwrap();
        assert!(cells.len() <= 25 && !cells.is_empty());
        // A place 8 km north is in one of the cells.
        let north = encode(55.6761 + 8.0 / 111.0, 12.5683, 6);
        assert!(
            cells.iter().any(|c| north.starts_with(c.as_str())),
            "{cells:?} {north}"
        );
        assert!(cells_around("!!", 5.0).is_none());
    }
}
