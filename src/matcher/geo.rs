//! Geohash geometry for matching: the centre of a cell and the distance between two.

/// The base-32 geohash alphabet.
const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
/// Mean Earth radius.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// The centre `(latitude, longitude)` in degrees of a geohash cell, or `None` for an
/// empty string or a character outside the alphabet.
pub fn decode(geohash: &str) -> Option<(f64, f64)> {
    if geohash.is_empty() {
        return None;
    }
    let (mut lat, mut lon) = ((-90.0f64, 90.0f64), (-180.0f64, 180.0f64));
    let mut even = true;
    for c in geohash.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        for bit in (0..5).rev() {
            let on = (value >> bit) & 1 == 1;
            let range = if even { &mut lon } else { &mut lat };
            let mid = (range.0 + range.1) / 2.0;
            if on {
                range.0 = mid;
            } else {
                range.1 = mid;
            }
            even = !even;
        }
    }
    Some(((lat.0 + lat.1) / 2.0, (lon.0 + lon.1) / 2.0))
}

/// Great-circle distance in km between two `(latitude, longitude)` points (haversine).
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Distance in km between the centres of two geohash cells.
pub fn distance_km(a: &str, b: &str) -> Option<f64> {
    Some(haversine_km(decode(a)?, decode(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_known_cells() {
        // "u4pruy" is a cell in Jutland, about 57.65 N 10.41 E.
        let (lat, lon) = decode("u4pruy").unwrap();
        assert!((lat - 57.649).abs() < 0.01 && (lon - 10.407).abs() < 0.01);
        assert!(decode("").is_none());
        assert!(decode("a").is_none());
    }

    #[test]
    fn distances() {
        assert!(distance_km("u4pruy", "u4pruy").unwrap() < 0.001);
        // Paris (u09tvw) to London (gcpvj0): about 340 km.
        let d = distance_km("u09tvw", "gcpvj0").unwrap();
        assert!((300.0..380.0).contains(&d), "{d}");
    }
}
