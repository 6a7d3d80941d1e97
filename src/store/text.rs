//! Text search: the inverted index of word stems, and what a query term must match.
//!
//! A post's title and body become word stems in the post's language
//! ([`crate::words::analyse`], the same stems the matcher compares). A post matches a
//! text query when every term, stemmed in the post's language, is the start of one
//! of the post's stems: "rides" finds "ride", "riding" finds "rides", "wheel" finds
//! "wheelchair", "bik" finds "Bikes", "CAFÉ" finds "cafe". A term that is a stop word
//! of the post's language ("the", "para") is not looked for in it.
//!
//! The index maps each stem to the posts that have it ([`TextIndex`]), in memory
//! beside the store's other indexes and rebuilt with them at open. A search starts
//! from the rarest term's posts, so a term nobody used costs one look-up, however
//! many posts the store holds; a common term instead streams the newest posts and
//! checks each against the index, stopping at the limit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aidmesh_proto::Post;
use roaring::RoaringTreemap;

use super::index::Seq;
use crate::words::{self, Analysis, Lang};

/// Languages a term is stemmed in: [`Lang::STEMMED`] and [`Lang::Unknown`].
const LANGS: usize = Lang::STEMMED.len() + 1;

fn lang_slot(lang: Lang) -> usize {
    Lang::STEMMED
        .iter()
        .position(|l| *l == lang)
        .unwrap_or(LANGS - 1)
}

fn slot_lang(i: usize) -> Lang {
    Lang::STEMMED.get(i).copied().unwrap_or(Lang::Unknown)
}

/// One search term, stemmed in every language a post can be in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// Per language ([`lang_slot`]): the stem to look for, or `None` when the term is
    /// a stop word of that language.
    stems: [Option<String>; LANGS],
}

impl Term {
    fn new(word: &str) -> Self {
        let stems = std::array::from_fn(|i| {
            let lang = slot_lang(i);
            let folded = words::fold(word);
            (!words::stop::is_stop(lang, &folded)).then(|| words::stem(lang, word))
        });
        Self { stems }
    }

    /// The stem to look for in a post of `lang`.
    fn stem(&self, lang: Lang) -> Option<&str> {
        self.stems[lang_slot(lang)].as_deref()
    }

    /// Whether a post of `lang` with `stems` has this term.
    fn found_in<'a>(&self, lang: Lang, mut stems: impl Iterator<Item = &'a str>) -> bool {
        match self.stem(lang) {
            None => true,
            Some(s) => stems.any(|t| t.starts_with(s)),
        }
    }
}

/// The terms of a search, each of which a post must have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terms(Vec<Term>);

impl Terms {
    /// Whether there is no term: every post matches.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a post whose title and body were analysed as `analysis` matches.
    pub fn match_analysis(&self, analysis: &Analysis) -> bool {
        let lang = analysis.lang;
        self.0.iter().all(|t| t.found_in(lang, analysis.texts()))
    }
}

/// The terms of a search string.
pub fn terms(query: &str) -> Terms {
    let mut words: Vec<&str> = words::tokens(query).collect();
    words.sort_unstable();
    words.dedup();
    let mut terms: Vec<Term> = words.into_iter().map(Term::new).collect();
    terms.dedup();
    Terms(terms)
}

/// What the text index stores of a post: its title and body analysed.
pub fn analyse(post: &Post) -> Analysis {
    words::analyse(&[&post.title, &post.body])
}

/// A post's words as the matcher compares them: their language and the sorted
/// [`words::hash`]es of all its stems and of its title's.
pub type StemHashes = (Lang, (Vec<u64>, Vec<u64>));

/// The [`StemHashes`] of an analysis.
pub fn stem_hashes(analysis: &Analysis) -> StemHashes {
    let mut all: Vec<u64> = analysis.texts().map(words::hash).collect();
    let mut title: Vec<u64> = analysis
        .stems
        .iter()
        .filter(|s| s.title)
        .map(|s| words::hash(&s.text))
        .collect();
    all.sort_unstable();
    title.sort_unstable();
    (analysis.lang, (all, title))
}

/// Whether `post` has every term (analysing it; the index answers without this).
pub fn matches(post: &Post, terms: &Terms) -> bool {
    terms.is_empty() || terms.match_analysis(&analyse(post))
}

/// A stem's number in the [`TextIndex`].
pub(super) type StemId = u32;

/// One stem of the vocabulary.
#[derive(Debug)]
struct Slot {
    text: Box<str>,
    /// [`words::hash`] of the text, for the matcher.
    hash: u64,
    /// The posts that have it. A compressed bitmap: a post has some 40 stems, so
    /// this is most of the index, and records numbers come in runs (they are given
    /// out in order), which a bitmap keeps in a few bytes each and takes in order
    /// at open without searching.
    posts: RoaringTreemap,
}

/// What the text index knows of one post: enough to check terms and to remove it.
#[derive(Clone, Debug, Default)]
pub(super) struct PostText {
    /// The language its stems are in.
    pub(super) lang: Lang,
    /// Its stems, sorted by number.
    stems: Box<[StemId]>,
    /// Those of its title, sorted by number.
    title: Box<[StemId]>,
}

/// The inverted index: every stem of every stored post, with the posts that have it.
#[derive(Debug, Default)]
pub(super) struct TextIndex {
    /// Stem → its number, in stem order, so that the stems a term starts are a range.
    vocab: BTreeMap<Box<str>, StemId>,
    /// The same, hashed: the exact look-ups of every insert, which at open are
    /// millions.
    exact: HashMap<Box<str>, StemId>,
    /// Per number, the stem (`None` once no post has it; the number is then reused).
    slots: Vec<Option<Slot>>,
    /// Numbers free for reuse.
    free: Vec<StemId>,
}

/// Most distinct stems a term's estimate looks at before calling it common.
const ESTIMATE_STEMS: usize = 256;

impl TextIndex {
    /// Adds the post `seq`, analysed as `analysis`; returns what must be kept to
    /// remove it again.
    #[cfg(test)]
    pub(super) fn insert(&mut self, seq: Seq, analysis: &Analysis) -> PostText {
        self.insert_stems(
            seq,
            analysis.lang,
            analysis.stems.iter().map(|s| (s.text.as_str(), s.title)),
        )
    }

    /// Adds the post `seq`, whose text in `lang` has `stems` (each with whether it
    /// is of the title); returns what must be kept to remove it again. The stems are
    /// borrowed: a stem new to the vocabulary is the only one copied.
    pub(super) fn insert_stems<'a>(
        &mut self,
        seq: Seq,
        lang: Lang,
        stems: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> PostText {
        let stems = stems.into_iter();
        let mut ids: Vec<StemId> = Vec::with_capacity(stems.size_hint().0);
        let mut title: Vec<StemId> = Vec::new();
        for (stem, of_title) in stems {
            let id = match self.exact.get(stem) {
                Some(&id) => id,
                None => {
                    let slot = Slot {
                        text: stem.into(),
                        hash: words::hash(stem),
                        posts: RoaringTreemap::new(),
                    };
                    let id = match self.free.pop() {
                        Some(id) => {
                            self.slots[id as usize] = Some(slot);
                            id
                        }
                        None => {
                            self.slots.push(Some(slot));
                            (self.slots.len() - 1) as StemId
                        }
                    };
                    self.vocab.insert(stem.into(), id);
                    self.exact.insert(stem.into(), id);
                    id
                }
            };
            if let Some(Some(slot)) = self.slots.get_mut(id as usize) {
                slot.posts.insert(seq);
            }
            ids.push(id);
            if of_title {
                title.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        title.sort_unstable();
        title.dedup();
        PostText {
            lang,
            stems: ids.into(),
            title: title.into(),
        }
    }

    /// Removes the post `seq`, indexed as `text`.
    pub(super) fn remove(&mut self, seq: Seq, text: &PostText) {
        for &id in text.stems.iter() {
            let Some(entry) = self.slots.get_mut(id as usize) else {
                continue;
            };
            let Some(slot) = entry else { continue };
            slot.posts.remove(seq);
            if slot.posts.is_empty() {
                self.vocab.remove(&slot.text);
                self.exact.remove(&slot.text);
                *entry = None;
                self.free.push(id);
            }
        }
    }

    /// Whether nothing is indexed.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.vocab.is_empty() && self.exact.is_empty() && self.slots.iter().all(Option::is_none)
    }

    fn slot(&self, id: StemId) -> Option<&Slot> {
        self.slots.get(id as usize)?.as_ref()
    }

    fn texts<'a>(&'a self, text: &'a PostText) -> impl Iterator<Item = &'a str> + 'a {
        text.stems
            .iter()
            .filter_map(|&id| self.slot(id).map(|s| &*s.text))
    }

    /// Whether the post indexed as `text` has every term.
    pub(super) fn matches(&self, text: &PostText, terms: &Terms) -> bool {
        let lang = text.lang;
        terms.0.iter().all(|t| t.found_in(lang, self.texts(text)))
    }

    /// The hashes of a post's stems ([`words::hash`]), sorted: all of them and
    /// those of its title.
    pub(super) fn hashes(&self, text: &PostText) -> (Vec<u64>, Vec<u64>) {
        let of = |ids: &[StemId]| {
            let mut out: Vec<u64> = ids
                .iter()
                .filter_map(|&id| self.slot(id).map(|s| s.hash))
                .collect();
            out.sort_unstable();
            out
        };
        (of(&text.stems), of(&text.title))
    }

    /// The stems starting with `prefix`, at most `max` of them.
    fn starting<'a>(&'a self, prefix: &'a str, max: usize) -> impl Iterator<Item = &'a Slot> {
        self.vocab
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .take(max)
            .filter_map(|(_, &id)| self.slot(id))
    }

    /// The distinct stems a term looks for, whatever the post's language.
    fn distinct(term: &Term) -> Vec<&str> {
        let mut v: Vec<&str> = term.stems.iter().flatten().map(String::as_str).collect();
        v.sort_unstable();
        v.dedup();
        // A stem that starts another one finds all its posts already.
        let mut out: Vec<&str> = Vec::with_capacity(v.len());
        for s in v {
            if !out.last().is_some_and(|p| s.starts_with(p)) {
                out.push(s);
            }
        }
        out
    }

    /// About how many posts have `term`: `None` when too many to count cheaply (a
    /// short prefix, or a stop word in some language, which every post of that
    /// language passes).
    fn estimate(&self, term: &Term) -> Option<usize> {
        if term.stems.iter().any(Option::is_none) {
            return None;
        }
        let mut n = 0usize;
        for s in Self::distinct(term) {
            let mut seen = 0;
            for slot in self.starting(s, ESTIMATE_STEMS + 1) {
                seen += 1;
                if seen > ESTIMATE_STEMS {
                    return None;
                }
                n += usize::try_from(slot.posts.len()).unwrap_or(usize::MAX);
            }
        }
        Some(n)
    }

    /// The rarest term of `terms` and how many posts have it, if it can be counted.
    pub(super) fn rarest<'t>(&self, terms: &'t Terms) -> Option<(&'t Term, usize)> {
        terms
            .0
            .iter()
            .filter_map(|t| self.estimate(t).map(|n| (t, n)))
            .min_by_key(|(_, n)| *n)
    }

    /// Every post that may have `term` (a superset: check with [`TextIndex::matches`]).
    pub(super) fn posts_of(&self, term: &Term) -> BTreeSet<Seq> {
        let mut out = BTreeSet::new();
        for s in Self::distinct(term) {
            for slot in self.starting(s, usize::MAX) {
                out.extend(slot.posts.iter());
            }
        }
        out
    }

    /// How many posts have exactly the stem `stem`.
    pub(super) fn frequency(&self, stem: &str) -> usize {
        self.exact
            .get(stem)
            .and_then(|&id| self.slot(id))
            .map_or(0, |s| usize::try_from(s.posts.len()).unwrap_or(usize::MAX))
    }

    /// The posts that have exactly the stem `stem`, highest record number (about
    /// the newest) first.
    pub(super) fn posts_with<'a>(&'a self, stem: &str) -> impl Iterator<Item = Seq> + 'a {
        self.exact
            .get(stem)
            .and_then(|&id| self.slot(id))
            .into_iter()
            .flat_map(|s| s.posts.iter().rev())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(texts: &[&str]) -> (TextIndex, Vec<PostText>) {
        let mut index = TextIndex::default();
        let kept = texts
            .iter()
            .enumerate()
            .map(|(i, t)| index.insert(i as Seq, &words::analyse(&[t])))
            .collect();
        (index, kept)
    }

    #[test]
    fn terms_match_stems_in_the_posts_language() {
        let (index, kept) = index_of(&[
            "Ride to the clinic, wheelchair fits",
            "Busco ayuda con la mudanza",
            "Rollstuhl zu verschenken",
        ]);
        let has = |i: usize, q: &str| index.matches(&kept[i], &terms(q));
        assert!(has(0, "rides"));
        assert!(has(0, "riding"));
        assert!(has(0, "WHEEL"));
        assert!(has(0, "the clinic"));
        assert!(!has(0, "clinics bread"));
        assert!(has(1, "mudanzas"));
        assert!(has(1, "MUDANZA para"));
        assert!(has(2, "rollstühle"));
        assert!(!has(2, "rides"));
    }

    #[test]
    fn removing_every_post_empties_the_vocabulary() {
        let (mut index, kept) = index_of(&["Warm winter coat", "winter boots", "coat hooks"]);
        assert_eq!(index.frequency("winter"), 2);
        assert_eq!(index.posts_with("coat").collect::<Vec<_>>(), vec![2, 0]);
        let both = terms("coats boots");
        let (t, n) = index.rarest(&both).unwrap();
        assert_eq!(n, 1);
        assert_eq!(index.posts_of(t).into_iter().collect::<Vec<_>>(), vec![1]);
        for (i, k) in kept.iter().enumerate() {
            index.remove(i as Seq, k);
        }
        assert!(index.is_empty());
        // Numbers are reused.
        let again = index.insert(9, &words::analyse(&["bread"]));
        assert_eq!(again.stems.len(), 1);
        assert!(index.slots.len() <= 5);
    }
}
