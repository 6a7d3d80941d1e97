//! Posts many offers at once from a CSV file to a running node, through its local API,
//! and reports what was posted and, for each row that failed, its line number and the
//! reason (the node's error names the field at fault).
//!
//! The file starts with a header naming its columns, in any order:
//! `title,category,body,tags,location,quantity,contact,expires`. Only `title` is
//! required; an empty cell means "not set". `tags` are separated by `;`, `expires` is a
//! lifetime such as `7d` or `12h`. A field holding commas, quotes or line breaks is
//! written in double quotes, with quotes inside it doubled (`"Bring a ""big"" bag"`).
//! See `examples/offers.csv`, whose fourth offer is deliberately invalid.
//!
//! Run a node, then import:
//!
//! ```sh
//! cargo run -- --data-dir /tmp/exnode run --no-mdns --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 &
//! cargo run --example bulk_import -- --data-dir /tmp/exnode examples/offers.csv
//! cargo run --example bulk_import -- --dry-run examples/offers.csv   # check only, no node needed
//! cargo run --example bulk_import -- --help
//! cargo test --example bulk_import                                   # the CSV parser's tests
//! ```
//!
//! `--dry-run` checks every row against the same rules the node applies, offline,
//! and posts nothing. The data dir is `--data-dir`, else `$AIDMESH_DATA_DIR`, else the
//! default one. Logs go to stderr, filtered by `RUST_LOG`. Exits 0 when every row was
//! posted (or, with `--dry-run`, is valid), non-zero when any row failed or the file
//! cannot be read; a node that cannot be reached stops the import at once.

use std::path::PathBuf;

use aidmesh::api::json::{parse_duration_secs, DraftJson};
use aidmesh::client::{self, ApiClient};
use aidmesh::proto::{Category, Kind};
use aidmesh::{DataDir, Draft, Identity};
use anyhow::{bail, Context};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Posts the offers in a CSV file to a running aidmesh node.
#[derive(Parser, Debug)]
struct Args {
    /// The running node's data dir [default: ~/.local/share/aidmesh]
    #[arg(long, env = aidmesh::data_dir::ENV_VAR, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The CSV file: a header row, then one offer per row
    file: PathBuf,

    /// Circle to post in [default: commons]
    #[arg(long)]
    circle: Option<String>,

    /// Only check the rows (with the node's rules, offline); post nothing
    #[arg(long)]
    dry_run: bool,
}

/// The columns an offer file may have.
const COLUMNS: [&str; 8] = [
    "title", "category", "body", "tags", "location", "quantity", "contact", "expires",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();

    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let file = args.file.display();
    let mut records = parse_csv(&text).map_err(|e| anyhow::anyhow!("{file}, {e}"))?;
    if records.is_empty() {
        bail!(
            "{file} is empty; expected a header row ({})",
            COLUMNS.join(",")
        );
    }
    let header = records.remove(0);
    let columns = columns_of(&header).with_context(|| format!("{file}, header"))?;
    let rows: Vec<(usize, Result<DraftJson, String>)> = records
        .iter()
        .map(|r| (r.line, draft_of(&columns, r, args.circle.as_deref())))
        .collect();
    let total = rows.len();

    let client = if args.dry_run {
        None
    } else {
        let data_dir = DataDir::resolve(args.data_dir.clone())?;
        Some(ApiClient::from_data_dir(&data_dir)?)
    };
    // Dry runs sign nothing; a throwaway author lets the node's own checks run offline.
    let scratch = Identity::generate();

    let mut ok = 0;
    let mut failures = Vec::new();
    for (line, row) in rows {
        let draft = match row {
            Ok(d) => d,
            Err(reason) => {
                println!("line {line}: skipped: {reason}");
                failures.push(line);
                continue;
            }
        };
        let title = draft.title.clone();
        let outcome = match &client {
            None => check_offline(&draft, &scratch).map(|()| "valid".to_string()),
            Some(c) => match c.publish(&draft).await {
                Ok(post) => Ok(format!("posted {}", post.id)),
                // The node checked the offer and refused it: its message names the field.
                Err(client::Error::Api { message, field, .. }) => Err(match field {
                    Some(f) if !message.contains(&f) => format!("{f}: {message}"),
                    _ => message,
                }),
                // No node, or the connection broke: no point trying the other rows.
                Err(e) => return Err(e).with_context(|| format!("posting line {line} of {file}")),
            },
        };
        match outcome {
            Ok(what) => {
                println!("line {line}: {what}  {title:?}");
                ok += 1;
            }
            Err(reason) => {
                println!("line {line}: refused: {reason}");
                failures.push(line);
            }
        }
    }

    let verb = if args.dry_run { "valid" } else { "posted" };
    println!("{ok} of {total} offers {verb}, {} failed", failures.len());
    if !failures.is_empty() {
        let lines: Vec<String> = failures.iter().map(|l| l.to_string()).collect();
        bail!(
            "{} row(s) of {file} failed, on line(s) {}",
            failures.len(),
            lines.join(", ")
        );
    }
    Ok(())
}

/// Which field each column holds, from the header row.
fn columns_of(header: &Record) -> anyhow::Result<Vec<&'static str>> {
    let mut columns = Vec::new();
    for name in &header.fields {
        let name = name.trim().to_ascii_lowercase();
        let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
            bail!(
                "unknown column {name:?}; the columns are {}",
                COLUMNS.join(",")
            );
        };
        if columns.contains(known) {
            bail!("column {name:?} appears twice");
        }
        columns.push(*known);
    }
    if !columns.contains(&"title") {
        bail!("no title column; the columns are {}", COLUMNS.join(","));
    }
    Ok(columns)
}

/// The offer in one row; an error says what is wrong with the row.
fn draft_of(columns: &[&str], row: &Record, circle: Option<&str>) -> Result<DraftJson, String> {
    if row.fields.len() != columns.len() {
        return Err(format!(
            "{} fields, but the header has {} columns (quote fields that contain commas)",
            row.fields.len(),
            columns.len()
        ));
    }
    let mut d = DraftJson {
        kind: Some("offer".into()),
        circle: circle.map(str::to_string),
        ..DraftJson::default()
    };
    let set = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
    for (column, value) in columns.iter().zip(&row.fields) {
        match *column {
            "title" => d.title = value.clone(),
            "category" => d.category = set(value),
            "body" => d.body = value.clone(),
            "tags" => {
                d.tags = value
                    .split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "location" => d.location = set(value),
            "quantity" => {
                d.quantity = set(value)
                    .map(|q| q.parse::<u32>())
                    .transpose()
                    .map_err(|_| format!("quantity: {value:?} is not a whole number"))?
            }
            "contact" => d.contact = set(value),
            "expires" => d.expires_in = set(value),
            other => unreachable!("column {other} is not in COLUMNS"),
        }
    }
    Ok(d)
}

/// Checks a draft the way the node would, without a node: the names and the lifetime
/// as the API parses them, then every post rule.
fn check_offline(d: &DraftJson, scratch: &Identity) -> Result<(), String> {
    let category = match d.category.as_deref() {
        Some(c) => c.parse().map_err(|e| format!("category: {e}"))?,
        None => Category::Other,
    };
    let expires_in_secs = d
        .expires_in
        .as_deref()
        .map(parse_duration_secs)
        .transpose()
        .map_err(|e| format!("expires_in: {e}"))?;
    let draft = Draft {
        body: d.body.clone(),
        tags: d.tags.clone(),
        location: d.location.clone(),
        quantity: d.quantity,
        contact: d.contact.clone(),
        circle: d.circle.clone(),
        expires_in_secs,
        ..Draft::new(Kind::Offer, category, d.title.as_str())
    };
    draft
        .into_post(scratch.author(), aidmesh::clock::now_ms())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One CSV record and the line it starts on (1-based).
#[derive(Debug, PartialEq)]
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// A small CSV reader (RFC 4180): fields separated by commas, records by line breaks
/// (`\n` or `\r\n`); a field in double quotes may hold commas, line breaks and doubled
/// quotes (`""` for one `"`). Spaces around a quoted field are ignored; blank lines are
/// skipped.
fn parse_csv(text: &str) -> Result<Vec<Record>, String> {
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
        // No final line break, empty fields, CRLF, spaces around quotes.
        assert_eq!(
            fields("a,,c\r\n, \"q\" ,\r\nlast"),
            [vec!["a", "", "c"], vec!["", "q", ""], vec!["last"]]
        );
        assert_eq!(fields("\"\""), [vec![""]]);
    }

    #[test]
    fn line_numbers_skip_blank_lines_and_count_breaks_in_quotes() {
        let r = parse_csv("h\n\n\"two\nlines\"\nnext\n").unwrap();
        let lines: Vec<usize> = r.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 5]);
        assert_eq!(r[1].fields, ["two\nlines"]);
    }

    #[test]
    fn malformed_quotes_are_errors_with_their_line() {
        assert!(parse_csv("a\nb\"c\n").unwrap_err().starts_with("line 2:"));
        assert!(parse_csv("a\n\"b\"c\n").unwrap_err().starts_with("line 2:"));
        assert!(parse_csv("a\n\"open\n\n")
            .unwrap_err()
            .starts_with("line 2:"));
    }

    #[test]
    fn rows_become_drafts() {
        let records = parse_csv(
            "Title,tags,quantity,expires,location\nSoup,hot; vegan;,3,2d,\nBread,,many,,\n",
        )
        .unwrap();
        let columns = columns_of(&records[0]).unwrap();
        let d = draft_of(&columns, &records[1], None).unwrap();
        assert_eq!(d.title, "Soup");
        assert_eq!(d.tags, ["hot", "vegan"]);
        assert_eq!(d.quantity, Some(3));
        assert_eq!(d.expires_in.as_deref(), Some("2d"));
        assert_eq!(d.location, None);
        assert!(check_offline(&d, &Identity::generate()).is_ok());
        let e = draft_of(&columns, &records[2], None).unwrap_err();
        assert!(e.starts_with("quantity:"), "{e}");
        assert!(columns_of(&parse_csv("title,colour\n").unwrap()[0]).is_err());
    }
}
