//! Listing posts the way `aidmesh list` (and `GET /api/v1/posts`) asks: a store
//! [`Query`] plus what the store's indexes do not answer on their own — several tags
//! at once, and a distance around a place.
//!
//! Both are filters over the store's own newest-first results, pulled a page at a
//! time, so a listing stays newest first and reads no more than it must.

use aidmesh_proto::VerifiedPost;

use crate::places;
use crate::store::{self, Query, Store, MAX_LIMIT};

/// The radius `--near` uses when none is given.
pub const DEFAULT_WITHIN_KM: f64 = 10.0;
/// The widest radius (half the Earth's circumference).
pub const MAX_WITHIN_KM: f64 = 20_040.0;

/// A listing: the query, and the filters beyond it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    /// The store query (its `near`, if set, is a geohash prefix: an area).
    pub query: Query,
    /// Further tags every post must carry too (beside `query.tag`).
    pub more_tags: Vec<String>,
    /// Only posts whose place is within this distance of a cell's centre (the
    /// matcher's distance: between cell centres); replaces `query.near`.
    pub within: Option<Within>,
}

/// A distance filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Within {
    /// The centre, a geohash.
    pub around: String,
    /// The radius in km.
    pub km: f64,
}

impl Within {
    /// Whether `post` has a place within the radius (a post without one never is).
    pub fn reaches(&self, post: &aidmesh_proto::Post) -> bool {
        post.location
            .as_deref()
            .and_then(|l| places::distance_km(&self.around, l))
            .is_some_and(|d| d <= self.km)
    }
}

/// A listing that cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The radius is not a positive number of km up to [`MAX_WITHIN_KM`].
    #[error("within: must be more than 0 and at most {MAX_WITHIN_KM} km, got {0}")]
    Radius(f64),
    /// The centre is not a geohash.
    #[error("near: {0:?} is not a geohash")]
    Around(String),
    /// The store failed or the query is malformed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl Listing {
    /// Checks the filters that [`Query::validate`] does not see.
    pub fn validate(&self) -> Result<(), Error> {
        self.query.validate().map_err(store::Error::from)?;
        for t in &self.more_tags {
            let q = Query {
                tag: Some(t.clone()),
                ..Query::default()
            };
            q.validate().map_err(store::Error::from)?;
        }
        if let Some(w) = &self.within {
            if !(w.km > 0.0 && w.km <= MAX_WITHIN_KM) {
                return Err(Error::Radius(w.km));
            }
            if places::centre(&w.around).is_none() {
                return Err(Error::Around(w.around.clone()));
            }
        }
        Ok(())
    }
}

/// Runs a listing at time `now`: newest first, `query.offset` skipped, at most
/// `query.limit` posts.
pub fn list(store: &Store, listing: &Listing, now: u64) -> Result<Vec<VerifiedPost>, Error> {
    listing.validate()?;
    let q = &listing.query;
    if listing.more_tags.is_empty() && listing.within.is_none() {
        return Ok(store.query(q, now)?);
    }
    let want = q.offset.saturating_add(q.limit);
    let keep = |p: &VerifiedPost| -> bool {
        let post = p.post();
        listing.more_tags.iter().all(|t| post.tags.contains(t))
            && listing.within.as_ref().is_none_or(|w| w.reaches(post))
    };
    let mut found = Vec::new();
    match &listing.within {
        Some(w) => {
            let around =
                places::centre(&w.around).ok_or_else(|| Error::Around(w.around.clone()))?;
            let cells = places::cells_within(around, w.km);
            let base = Query {
                near: None,
                ..q.clone()
            };
            if cells.is_empty() {
                // Wider than any cell: everywhere, then by distance.
                found = pull(store, base.clone(), want, &keep, now)?;
            }
            for cell in cells {
                let area = Query {
                    near: Some(cell),
                    ..base.clone()
                };
                found.extend(pull(store, area, want, &keep, now)?);
            }
        }
        None => found = pull(store, q.clone(), want, &keep, now)?,
    }
    found.sort_by(|a, b| {
        b.post()
            .updated_at
            .cmp(&a.post().updated_at)
            .then(a.post().id.0.cmp(&b.post().id.0))
    });
    Ok(found.into_iter().skip(q.offset).take(q.limit).collect())
}

/// The newest `want` posts of `query` (its limit and offset ignored) that `keep`
/// admits, read a page at a time.
fn pull(
    store: &Store,
    mut query: Query,
    want: usize,
    keep: &dyn Fn(&VerifiedPost) -> bool,
    now: u64,
) -> Result<Vec<VerifiedPost>, Error> {
    query.limit = MAX_LIMIT;
    query.offset = 0;
    let mut found = Vec::new();
    loop {
        let page = store.query(&query, now)?;
        let n = page.len();
        found.extend(page.into_iter().filter(|p| keep(p)));
        if found.len() >= want || n < query.limit {
            found.truncate(want);
            return Ok(found);
        }
        query.offset += n;
    }
}
