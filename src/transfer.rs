//! Posts in and out of a node as files: the JSON lines of `export` (signed posts,
//! verifiable anywhere) and the CSV of drafts people write by hand (see
//! `examples/offers.csv`), each line read on its own so that a refused line says why.

use aidmesh_proto::{SignedPost, VerifiedPost};

use crate::api::json::{DraftJson, ExportLine};
use crate::draft::normalise_tag;

/// The columns a CSV file may have, in any order; only `title` is required.
pub const CSV_COLUMNS: [&str; 10] = [
    "title", "kind", "category", "body", "tags", "location", "quantity", "contact", "expires",
    "circle",
];

/// What a file holds, judged from its first non-blank line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON lines of signed posts, as `export` writes them.
    JsonLines,
    /// A header row, then one draft per row.
    Csv,
}

/// Which format `text` is in.
pub fn detect(text: &str) -> Format {
    match text.lines().find(|l| !l.trim().is_empty()) {
        Some(l) if l.trim_start().starts_with('{') => Format::JsonLines,
        _ => Format::Csv,
    }
}

/// The export line of one stored post: its signed wire bytes, hex, in JSON.
pub fn export_line(post: &VerifiedPost) -> Result<String, aidmesh_proto::Error> {
    let wire = post.signed().encode()?;
    let line = ExportLine {
        signed_post: hex::encode(wire),
    };
    // A struct of one string always serialises.
    Ok(serde_json::to_string(&line).unwrap_or_default())
}

/// Reads one export line into a signed post (not yet verified); the error says what
/// is wrong with it.
pub fn read_export_line(line: &str) -> Result<SignedPost, String> {
    let l: ExportLine = serde_json::from_str(line.trim()).map_err(|e| {
        format!("not an export line ({e}); expected {{\"signed_post\": \"<hex>\"}}")
    })?;
    let wire =
        hex::decode(l.signed_post.trim()).map_err(|e| format!("signed_post is not hex ({e})"))?;
    // The codec's own message describes bytes, not what a person can do about them.
    SignedPost::decode(&wire)
        .map_err(|_| "signed_post does not decode as a signed post (cut short or damaged)".into())
}

/// One CSV record and the line it starts on (1-based).
#[derive(Debug, PartialEq)]
pub struct Record {
    /// The line the record starts on.
    pub line: usize,
    /// Its fields.
    pub fields: Vec<String>,
}

/// A row of a CSV file turned into a draft, or why it cannot be one.
#[derive(Debug)]
pub struct Row {
    /// The line it starts on.
    pub line: usize,
    /// The draft, or what is wrong with the row.
    pub draft: Result<DraftJson, String>,
    /// Tags that were rewritten to fit the rules (`"Warm Clothes"` → `warm-clothes`).
    pub renamed_tags: Vec<(String, String)>,
}

/// Reads a CSV file of drafts: `kind` (when the file has no `kind` column) and
/// `circle` fill in what the rows leave empty. An error here is about the whole file
/// (bad header, broken quotes); a row's own problem is in its [`Row`].
pub fn read_csv(text: &str, kind: &str, circle: Option<&str>) -> Result<Vec<Row>, String> {
    let mut records = parse_csv(text)?;
    if records.is_empty() {
        return Err(format!(
            "the file is empty; expected a header row ({})",
            CSV_COLUMNS.join(",")
        ));
    }
    let header = records.remove(0);
    let columns = columns_of(&header)?;
    Ok(records
        .iter()
        .map(|r| {
            let mut renamed = Vec::new();
            let draft = draft_of(&columns, r, kind, circle, &mut renamed);
            Row {
                line: r.line,
                draft,
                renamed_tags: renamed,
            }
        })
        .collect())
}

/// Which field each column holds, from the header row.
fn columns_of(header: &Record) -> Result<Vec<&'static str>, String> {
    let mut columns = Vec::new();
    for name in &header.fields {
        let name = name.trim().to_ascii_lowercase();
        let Some(known) = CSV_COLUMNS.iter().find(|c| **c == name) else {
            return Err(format!(
                "line {}: unknown column {name:?}; the columns are {}",
                header.line,
                CSV_COLUMNS.join(",")
            ));
        };
        if columns.contains(known) {
            return Err(format!(
                "line {}: column {name:?} appears twice",
                header.line
            ));
        }
        columns.push(*known);
    }
    if !columns.contains(&"title") {
        return Err(format!(
            "line {}: no title column; the first line must name the columns ({})",
            header.line,
            CSV_COLUMNS.join(",")
        ));
    }
    Ok(columns)
}

/// The draft in one row; an error says what is wrong with the row.
fn draft_of(
    columns: &[&str],
    row: &Record,
    kind: &str,
    circle: Option<&str>,
    renamed: &mut Vec<(String, String)>,
) -> Result<DraftJson, String> {
    if row.fields.len() != columns.len() {
        return Err(format!(
            "{} fields, but the header has {} columns (put fields that hold commas in double quotes)",
            row.fields.len(),
            columns.len()
        ));
    }
    let mut d = DraftJson {
        kind: Some(kind.into()),
        circle: circle.map(str::to_string),
        ..DraftJson::default()
    };
    let set = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
    for (column, value) in columns.iter().zip(&row.fields) {
        match *column {
            "title" => d.title = value.trim().to_string(),
            "kind" => {
                if let Some(k) = set(value) {
                    d.kind = Some(k.to_ascii_lowercase())
                }
            }
            "category" => d.category = set(value).map(|c| c.to_ascii_lowercase()),
            "body" => d.body = value.clone(),
            "tags" => {
                for t in value.split(';').map(str::trim).filter(|t| !t.is_empty()) {
                    let n = normalise_tag(t);
                    if n != t {
                        renamed.push((t.to_string(), n.clone()));
                    }
                    if !n.is_empty() && !d.tags.contains(&n) {
                        d.tags.push(n);
                    }
                }
            }
            "location" => {
                d.location = match set(value) {
                    Some(l) => Some(
                        crate::places::parse(&l)
                            .map_err(|e| format!("location: {e}"))?
                            .geohash,
                    ),
                    None => None,
                }
            }
            "quantity" => {
                d.quantity = set(value)
                    .map(|q| q.parse::<u32>())
                    .transpose()
                    .map_err(|_| format!("quantity: {:?} is not a whole number", value.trim()))?
            }
            "contact" => d.contact = set(value),
            "expires" => d.expires_in = set(value),
            "circle" => {
                if let Some(c) = set(value) {
                    d.circle = Some(c)
                }
            }
            other => return Err(format!("column {other} is not handled")),
        }
    }
    if d.title.is_empty() {
        return Err("title: empty; every row needs a title".into());
    }
    Ok(d)
}

/// A small CSV reader (RFC 4180): fields separated by commas, records by line breaks
/// (`\n` or `\r\n`); a field in double quotes may hold commas, line breaks and doubled
/// quotes (`""` for one `"`). Spaces around a quoted field are ignored; blank lines are
/// skipped.
pub fn parse_csv(text: &str) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    // The current field started with a quote; `open` while inside the quotes.
    let mut quoted = false;
    let mut open = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();

    while let Some(c) = chars.next() {
        if open {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => open = false,
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                let blank = fields.len() == 1 && fields[0].is_empty() && !quoted;
                let done = std::mem::take(&mut fields);
                if !blank {
                    records.push(Record {
                        line: record_line,
                        fields: done,
                    });
                }
                quoted = false;
                line += 1;
                record_line = line;
            }
            '"' if !quoted && field.trim().is_empty() => {
                field.clear();
                quoted = true;
                open = true;
            }
            '"' => {
                return Err(format!(
                    "line {line}: a quote inside an unquoted field; \
                     put the whole field in quotes and double the quote"
                ))
            }
            ' ' | '\t' if quoted => {}
            _ if quoted => {
                return Err(format!(
                "line {line}: {c:?} after a closing quote; expected a comma or the end of the line"
            ))
            }
            _ => field.push(c),
        }
    }
    if open {
        return Err(format!(
            "line {record_line}: a quoted field is never closed"
        ));
    }
    if quoted || !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push(Record {
            line: record_line,
            fields,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse_csv(text)
            .unwrap()
            .into_iter()
            .map(|r| r.fields)
            .collect()
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(
            fields("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n"),
            [vec!["a", "b", "c"], vec!["1", "x, y", "say \"hi\""]]
        );
        assert_eq!(
            fields("a,,c\r\n, \"q\" ,\r\nlast"),
            [vec!["a", "", "c"], vec!["", "q", ""], vec!["last"]]
        );
        assert!(parse_csv("a\nb\"c\n").unwrap_err().starts_with("line 2:"));
        assert!(parse_csv("a\n\"open\n\n")
            .unwrap_err()
            .starts_with("line 2:"));
    }

    #[test]
    fn rows_become_drafts_with_reasons() {
        let rows = read_csv(
            "Title,tags,quantity,expires,location\n\
             Soup,Hot Food; vegan;,3,2d,U33DC\n\
             Bread,,many,,\n\
             ,,,,\n\
             Jam,,1\n",
            "offer",
            None,
        )
        .unwrap();
        let d = rows[0].draft.as_ref().unwrap();
        assert_eq!((d.title.as_str(), d.quantity), ("Soup", Some(3)));
        assert_eq!(d.tags, ["hot-food", "vegan"]);
        assert_eq!(d.location.as_deref(), Some("u33dc"));
        assert_eq!(
            rows[0].renamed_tags,
            [("Hot Food".into(), "hot-food".into())]
        );
        assert!(rows[1].draft.as_ref().unwrap_err().starts_with("quantity:"));
        assert_eq!(rows[1].line, 3);
        assert!(rows[2].draft.as_ref().unwrap_err().starts_with("title:"));
        assert!(rows[3].draft.as_ref().unwrap_err().contains("fields"));
        assert!(read_csv("title,colour\n", "offer", None).is_err());
        assert!(read_csv("", "offer", None).is_err());
    }

    #[test]
    fn formats_are_told_apart() {
        assert_eq!(detect("\n{\"signed_post\":\"00\"}\n"), Format::JsonLines);
        assert_eq!(detect("title\nSoup\n"), Format::Csv);
        assert!(read_export_line("{\"signed_post\":\"zz\"}")
            .unwrap_err()
            .contains("hex"));
        assert!(read_export_line("nope")
            .unwrap_err()
            .contains("export line"));
    }
}
