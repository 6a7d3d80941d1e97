//! The word analysis of every record, kept on disk so that opening the store does not
//! redo it.
//!
//! Deciding a post's language and stemming its words ([`super::text::analyse`]) is
//! most of what rebuilding the indexes would cost: about 80 µs a post, 8 s for
//! 100,000 posts. The analysis only depends on the post's text and on this code, so
//! the store keeps it beside the record, in its own tree:
//!
//! `analysed`: `seq (u64 BE)` → content hash (32) ‖ [`encode`]d analysis.
//!
//! It is a cache, never the truth: an entry is used only while its content hash is
//! the record's, and [`ANALYSIS_VERSION`] (in the `store` tree) says which analysis
//! code wrote the tree, so a change of stemmer or stop words re-analyses everything
//! once. A missing, stale or unreadable entry is analysed again at open and written
//! back; an entry whose record is gone is removed then. That is why it is written
//! after the records, in its own batch, with no transaction spanning the two trees:
//! whatever a crash leaves, open repairs it.

use crate::words::{Analysis, Lang};
use aidmesh_proto::ContentHash;

/// The tree.
pub(super) const TREE_ANALYSED: &str = "analysed";
/// The key in the `store` tree of the analysis version the tree was written with.
pub(super) const VERSION_KEY: &[u8] = b"analysis";
/// Bumped whenever [`crate::words::analyse`] can give another result for the same
/// text (stemmer, stop words, language detection, folding): entries of another
/// version are discarded.
pub(super) const ANALYSIS_VERSION: u32 = 1;

/// Bytes of the content hash that opens an entry.
const HASH: usize = 32;

const WEAK: u8 = 1;
const TITLE: u8 = 2;
/// The language byte of [`Lang::Unknown`].
const UNKNOWN: u8 = 0xff;

fn lang_byte(lang: Lang) -> u8 {
    lang.index().map_or(UNKNOWN, |i| i as u8)
}

fn byte_lang(b: u8) -> Option<Lang> {
    match b {
        UNKNOWN => Some(Lang::Unknown),
        b => Lang::STEMMED.get(usize::from(b)).copied(),
    }
}

/// The stored form of `analysis` of the post whose content hash is `hash`:
/// `hash ‖ lang (u8) ‖ count (u16 BE) ‖ count × (flags (u8) ‖ len (u16 BE) ‖ utf8)`.
/// Stems longer than 65,535 bytes (a post is far smaller) are cut at that length on
/// a character boundary.
pub(super) fn encode(hash: &ContentHash, analysis: &Analysis) -> Vec<u8> {
    let count = analysis.stems.len().min(usize::from(u16::MAX));
    let text_bytes: usize = analysis.stems[..count]
        .iter()
        .map(|s| s.text.len() + 3)
        .sum();
    let mut out = Vec::with_capacity(HASH + 3 + text_bytes);
    out.extend_from_slice(&hash.0);
    out.push(lang_byte(analysis.lang));
    out.extend_from_slice(&(count as u16).to_be_bytes());
    for s in &analysis.stems[..count] {
        let mut end = s.text.len().min(usize::from(u16::MAX));
        while !s.text.is_char_boundary(end) {
            end -= 1;
        }
        let flags = if s.weak { WEAK } else { 0 } | if s.title { TITLE } else { 0 };
        out.push(flags);
        out.extend_from_slice(&(end as u16).to_be_bytes());
        out.extend_from_slice(&s.text.as_bytes()[..end]);
    }
    out
}

/// A stored analysis read in place: checked whole when made, so its stems come out
/// without allocating (opening the store reads 100,000s of them).
#[derive(Clone, Copy, Debug)]
pub(super) struct View<'a> {
    /// The language of the stems.
    pub(super) lang: Lang,
    count: u16,
    stems: &'a [u8],
}

impl<'a> View<'a> {
    /// The analysis in `bytes` if it was made for the post whose content hash is
    /// `hash` and reads back whole; `None` otherwise (the caller analyses the post
    /// again).
    pub(super) fn of(bytes: &'a [u8], hash: &ContentHash) -> Option<Self> {
        let (stored, rest) = bytes.split_at_checked(HASH)?;
        if stored != hash.0 {
            return None;
        }
        let (&lang, rest) = rest.split_first()?;
        let lang = byte_lang(lang)?;
        let (count, stems) = rest.split_at_checked(2)?;
        let view = Self {
            lang,
            count: u16::from_be_bytes([count[0], count[1]]),
            stems,
        };
        let mut rest = stems;
        for _ in 0..view.count {
            let (_, text, r) = next_stem(rest)?;
            std::str::from_utf8(text).ok()?;
            rest = r;
        }
        rest.is_empty().then_some(view)
    }

    /// Each stem: its text, whether it is weak, whether it is of the title.
    pub(super) fn stems(self) -> impl Iterator<Item = (&'a str, bool, bool)> {
        let mut rest = self.stems;
        (0..self.count).map_while(move |_| {
            let (flags, text, r) = next_stem(rest)?;
            rest = r;
            // Checked in `of`: never fails here.
            let text = std::str::from_utf8(text).ok()?;
            Some((text, flags & WEAK != 0, flags & TITLE != 0))
        })
    }
}

/// Whether the stored analysis `bytes` was made for the post whose content hash is
/// `hash` (its other bytes are checked by [`View::of`] when they are read).
pub(super) fn made_for(bytes: &[u8], hash: &ContentHash) -> bool {
    bytes.get(..HASH) == Some(&hash.0[..])
}

/// One stem's `(flags, text, rest)`.
fn next_stem(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&flags, r) = bytes.split_first()?;
    let (len, r) = r.split_at_checked(2)?;
    let (text, r) = r.split_at_checked(usize::from(u16::from_be_bytes([len[0], len[1]])))?;
    Some((flags, text, r))
}

/// The analysis in `bytes`, owned (see [`View::of`]).
#[cfg(test)]
pub(super) fn decode(bytes: &[u8], hash: &ContentHash) -> Option<Analysis> {
    let view = View::of(bytes, hash)?;
    let stems = view
        .stems()
        .map(|(text, weak, title)| crate::words::Stem {
            text: text.to_owned(),
            weak,
            title,
        })
        .collect();
    Some(Analysis {
        lang: view.lang,
        stems,
    })
}

/// The stored form of [`ANALYSIS_VERSION`].
pub(super) fn version_value() -> [u8; 4] {
    ANALYSIS_VERSION.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words;

    #[test]
    fn an_analysis_reads_back_only_for_its_post() {
        let hash = ContentHash([7; 32]);
        for text in [
            &["Warm winter coat", "Size M, collect in Riverside"][..],
            &["Busco ayuda con la mudanza"][..],
            &["Помогу с переездом"][..],
            &[""][..],
        ] {
            let analysis = words::analyse(text);
            let bytes = encode(&hash, &analysis);
            assert_eq!(decode(&bytes, &hash), Some(analysis));
            assert_eq!(decode(&bytes, &ContentHash([8; 32])), None);
        }
    }

    #[test]
    fn damaged_entries_are_not_used() {
        let hash = ContentHash([1; 32]);
        let bytes = encode(&hash, &words::analyse(&["ride to the clinic"]));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], &hash), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer, &hash), None);
        let mut bad_lang = bytes.clone();
        bad_lang[HASH] = 42;
        assert_eq!(decode(&bad_lang, &hash), None);
    }
}
