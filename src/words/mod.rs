//! Words: the one place where text becomes the word stems that matching and text
//! search compare.
//!
//! A text is split into words (runs of letters and digits); its language is decided
//! from its words (see [`detect`]); each word that is not a stop word of that
//! language is stemmed with the language's Snowball stemmer (`rust-stemmers`:
//! "mudanzas", "mudanza" → `mudanz`; "rides", "riding" → `ride`), then lowercased and
//! folded (accents removed by Unicode decomposition, so "Crêpes" and "CREPE" meet).
//! The stems of a post are a sorted set: how often a word occurs does not matter.
//!
//! Both sides of every comparison go through [`analyse`], so the stems only have to
//! be consistent, not linguistically right; the stemmer makes them right more often
//! than the English-only suffix rules it replaces.
//!
//! # Layout
//! - [`stop`]: stop words and weak words per language.

pub mod stop;

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A language a post's words are stemmed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Lang {
    /// English; also the language of a Latin-script text nothing else fits.
    English,
    /// Spanish.
    Spanish,
    /// French.
    French,
    /// German.
    German,
    /// Italian.
    Italian,
    /// Portuguese.
    Portuguese,
    /// Dutch.
    Dutch,
    /// Not a language with a stemmer here (a text mostly in another script): words
    /// are only folded.
    #[default]
    Unknown,
}

impl Lang {
    /// Every language with a stemmer and stop words, in the order ties are decided.
    pub const STEMMED: [Lang; 7] = [
        Lang::English,
        Lang::Spanish,
        Lang::French,
        Lang::German,
        Lang::Italian,
        Lang::Portuguese,
        Lang::Dutch,
    ];

    /// The ISO 639-1 code (`und` when unknown).
    pub fn code(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::Spanish => "es",
            Lang::French => "fr",
            Lang::German => "de",
            Lang::Italian => "it",
            Lang::Portuguese => "pt",
            Lang::Dutch => "nl",
            Lang::Unknown => "und",
        }
    }

    fn stemmer(self) -> Option<&'static Stemmer> {
        static STEMMERS: LazyLock<[Stemmer; 7]> = LazyLock::new(|| {
            [
                Algorithm::English,
                Algorithm::Spanish,
                Algorithm::French,
                Algorithm::German,
                Algorithm::Italian,
                Algorithm::Portuguese,
                Algorithm::Dutch,
            ]
            .map(Stemmer::create)
        });
        STEMMERS.get(self.index()?)
    }

    /// Where this language stands in [`Lang::STEMMED`] (`None` when unknown).
    pub(crate) fn index(self) -> Option<usize> {
        Lang::STEMMED.iter().position(|l| *l == self)
    }

    fn whatlang(self) -> Option<whatlang::Lang> {
        Some(match self {
            Lang::English => whatlang::Lang::Eng,
            Lang::Spanish => whatlang::Lang::Spa,
            Lang::French => whatlang::Lang::Fra,
            Lang::German => whatlang::Lang::Deu,
            Lang::Italian => whatlang::Lang::Ita,
            Lang::Portuguese => whatlang::Lang::Por,
            Lang::Dutch => whatlang::Lang::Nld,
            Lang::Unknown => return None,
        })
    }
}

/// The words of `text`: runs of letters and digits.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// `word` lowercased with its accents folded.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    fold_into(word, &mut out);
    out
}

/// [`fold`], appending to `out`.
pub fn fold_into(word: &str, out: &mut String) {
    if word.is_ascii() {
        out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        return;
    }
    for c in word.chars().flat_map(char::to_lowercase).nfd() {
        if is_combining_mark(c) {
            continue;
        }
        // Letters Unicode gives no decomposition: written as their usual ASCII form.
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ø' => out.push('o'),
            'ł' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            c => out.push(c),
        }
    }
}

/// Most words looked at to decide a text's language.
const DETECT_WORDS: usize = 200;
/// Bytes of text handed to `whatlang` when the stop words leave a tie.
const DETECT_BYTES: usize = 240;

/// The language of `text`, decided by its stop words (the function words and aid
/// words of [`stop`]), with the letters only some languages use ("ñ", "ß", "ç") as
/// further votes. `whatlang` (statistics of letter trigrams) only breaks ties: on
/// the few words of a typical post it is too often wrong ("Busco ayuda con la
/// mudanza" reads as Italian to it) and it costs more than the rest together.
/// A Latin-script text with no clue is taken as English; one mostly in another
/// script is [`Lang::Unknown`].
pub fn detect(text: &str) -> Lang {
    let mut votes = [0u32; 7];
    let mut folded = String::new();
    let (mut latin, mut other) = (0usize, 0usize);
    for word in tokens(text).take(DETECT_WORDS) {
        folded.clear();
        fold_into(word, &mut folded);
        if folded.bytes().all(|b| b.is_ascii_alphanumeric()) {
            latin += 1;
        } else if folded.chars().all(|c| c.is_alphanumeric() && !c.is_ascii()) {
            other += 1;
        }
        let lists = stop::lists_of(&folded);
        for (i, v) in votes.iter_mut().enumerate() {
            if lists & (1 << i) != 0 {
                *v += 2;
            }
        }
    }
    if other > latin {
        return Lang::Unknown;
    }
    // Letters typical of a language: one vote each kind, however often they occur.
    let hints: [(&[char], &[usize]); 6] = [
        (&['ñ', '¿', '¡'], &[1]),
        (&['ß', 'ä', 'ö'], &[3]),
        (&['ç'], &[2, 5]),
        (&['è', 'ê', 'à', 'â', 'î', 'ô', 'û', 'ë', 'ï', 'œ'], &[2]),
        (&['ã', 'õ'], &[5]),
        (&['ì', 'ò'], &[4]),
    ];
    let lower = text.to_lowercase();
    for (chars, langs) in hints {
        if lower.contains(chars) {
            for &i in langs {
                votes[i] += 1;
            }
        }
    }
    let best = votes.iter().copied().max().unwrap_or(0);
    let tied: Vec<Lang> = Lang::STEMMED
        .iter()
        .zip(votes)
        .filter(|(_, v)| *v == best)
        .map(|(l, _)| *l)
        .collect();
    if tied.len() == 1 {
        return tied[0];
    }
    let mut end = text.len().min(DETECT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let allow: Vec<whatlang::Lang> = tied.iter().filter_map(|l| l.whatlang()).collect();
    let guess = whatlang::Detector::with_allowlist(allow)
        .detect(&text[..end])
        // With no stop word at all, only a confident guess beats the default.
        .filter(|info| best > 0 || info.is_reliable())
        .map(|info| info.lang());
    tied.iter()
        .copied()
        .find(|l| l.whatlang() == guess)
        .unwrap_or(tied[0])
}

/// The folded stem of one word in `lang` (the word as written; it is lowercased
/// here). The stemmers of languages with accents know them, so their words are
/// folded after stemming; English is stemmed folded ("crêpes" → `crepe`, as
/// "crepes").
pub fn stem(lang: Lang, word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    match (lang, lang.stemmer()) {
        (Lang::English, Some(s)) => {
            let folded = fold(word);
            out.push_str(&s.stem(&folded));
        }
        (_, Some(s)) => fold_into(&s.stem(&word.to_lowercase()), &mut out),
        (_, None) => fold_into(word, &mut out),
    }
    out
}

/// Whether a word is worth a stem: two letters or more, and not a number shorter
/// than three digits ("size 4" says nothing).
fn meaningful(folded: &str) -> bool {
    let n = folded.chars().count();
    n >= 2 && (n >= 3 || !folded.bytes().all(|b| b.is_ascii_digit()))
}

/// One stem of a text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stem {
    /// The folded stem.
    pub text: String,
    /// Whether every word it came from is a weak word ([`stop::is_weak`]).
    pub weak: bool,
    /// Whether it comes from the first part of the text (a post's title): what a
    /// post is about.
    pub title: bool,
}

/// What a text says, ready to compare: its language and stems.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The language the stems were made in.
    pub lang: Lang,
    /// Sorted by text, each once.
    pub stems: Vec<Stem>,
}

impl Analysis {
    /// The stems' texts, in order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.stems.iter().map(|s| s.text.as_str())
    }
}

/// The language and stems of a text made of `parts` (a post's title and body): the
/// language is decided once for all of them.
pub fn analyse(parts: &[&str]) -> Analysis {
    let lang = match parts {
        [one] => detect(one),
        _ => detect(&parts.join("\n")),
    };
    analyse_as(lang, lang, parts)
}

/// The stems of the text made of `parts`, written in `written`, as if it were in
/// `lang`: how a post is compared with one in another language (the same word
/// stems differently in each). The stop words of both languages are left out.
pub fn analyse_as(lang: Lang, written: Lang, parts: &[&str]) -> Analysis {
    let mut stems: Vec<Stem> = Vec::new();
    let mut folded = String::new();
    let mut seen = std::collections::HashSet::new();
    for (part, word) in parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| tokens(p).map(move |w| (i, w)))
    {
        folded.clear();
        fold_into(word, &mut folded);
        if !meaningful(&folded)
            || stop::is_stop(lang, &folded)
            || (written != lang && stop::is_stop(written, &folded))
            || !seen.insert(word)
        {
            continue;
        }
        let weak = stop::is_weak(&folded);
        stems.push(Stem {
            text: stem(lang, word),
            weak,
            title: part == 0,
        });
    }
    stems.sort_unstable();
    // The same stem from a weak and a strong word ("kid", "kidding") is strong.
    stems.dedup_by(|later, kept| {
        if later.text == kept.text {
            kept.weak &= later.weak;
            kept.title |= later.title;
            true
        } else {
            false
        }
    });
    Analysis { lang, stems }
}

/// The sorted, de-duplicated stems of `text`.
pub fn stems(text: &str) -> Vec<String> {
    analyse(&[text]).stems.into_iter().map(|s| s.text).collect()
}

/// A stem as a 64-bit FNV-1a hash: what ranking compares. Two different stems share
/// a hash with odds of 2^-64.
pub fn hash(stem: &str) -> u64 {
    stem.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_uses_decomposition() {
        assert_eq!(fold("CAFÉ"), "cafe");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("Ñandú"), "nandu");
        assert_eq!(fold("Œuvre"), "oeuvre");
        assert_eq!(fold("Łódź"), "lodz");
        assert_eq!(fold("crêpe"), fold("CRÊPE"));
    }

    #[test]
    fn languages_of_short_posts() {
        for (text, lang) in [
            ("Busco ayuda con la mudanza", Lang::Spanish),
            ("Tengo furgoneta, ayudo con mudanzas", Lang::Spanish),
            ("Help moving boxes", Lang::English),
            ("Van and two strong arms for moving house", Lang::English),
            ("Cherche un vélo pour enfant", Lang::French),
            ("Donne vélo enfant 6 ans", Lang::French),
            ("Suche Rollstuhl für meine Mutter", Lang::German),
            ("Rollstuhl zu verschenken", Lang::German),
            ("Wheelchair", Lang::English),
            ("Cerco lezioni di italiano per mia figlia", Lang::Italian),
            ("Preciso de uma cadeira de rodas", Lang::Portuguese),
            ("Ik zoek een fiets voor mijn dochter", Lang::Dutch),
            ("Нужна помощь с переездом", Lang::Unknown),
        ] {
            assert_eq!(detect(text), lang, "{text}");
        }
    }

    #[test]
    fn stems_in_the_posts_language() {
        assert_eq!(stems("rides"), stems("ride"));
        assert_eq!(stems("riding"), stems("ride"));
        assert_eq!(stems("wheelchairs"), stems("Wheelchair"));
        assert_eq!(stems("nappies"), stems("nappy"));
        assert_eq!(
            stems("Busco ayuda con la mudanza"),
            vec!["mudanz".to_string()]
        );
        assert!(stems("Tengo furgoneta, ayudo con mudanzas").contains(&"mudanz".to_string()));
        assert_eq!(
            stems("Winter COATS for kids"),
            vec!["coat".to_string(), "kid".into(), "winter".into()]
        );
        let a = analyse(&["Winter coats for kids"]);
        assert!(a.stems.iter().any(|s| s.text == "kid" && s.weak));
        assert!(a.stems.iter().any(|s| s.text == "coat" && !s.weak));
    }
}
