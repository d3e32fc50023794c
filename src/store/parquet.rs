//! Records as Parquet, with a schema a DataFrame keeps: integers as int64
//! (nullable where the record's field is), times as UTC timestamps in
//! microseconds, `tags` as a list of strings, booleans as booleans. pandas
//! and Dask read the types from the file, where a CSV leaves them to guess.
//!
//! Written with the parquet crate's column writer (no arrow: a fraction of
//! the build). Rows are gathered into row groups of whole page batches
//! (`ROW_GROUP_ROWS`); a Parquet file is readable only once its footer is
//! written at the end, which is why outputs go through a `.partial` file.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use thiserror::Error;

use super::HistoryRow;
use crate::model::Question;

/// Rows gathered before they are written as one row group: 200 pages of
/// 50. Fewer, larger groups read faster and keep the footer small; a group
/// always ends at a page's end, so a page's records never straddle two.
pub const ROW_GROUP_ROWS: usize = 10_000;

#[derive(Debug, Error)]
pub enum ParquetError {
    #[error("parquet: {0}")]
    Format(#[from] parquet::errors::ParquetError),
    #[error("cannot write parquet: {0}")]
    Io(#[from] std::io::Error),
    #[error("parquet column {column}: {value} does not fit in int64")]
    OutOfRange { column: &'static str, value: u64 },
    #[error("parquet column {column} is required but the record has none")]
    Missing { column: &'static str },
}

/// How a column is stored; its Parquet type and nullability follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    OptInt,
    Text,
    OptText,
    Bool,
    Time,
    OptTime,
    TextList,
}

/// One field of a record, as the column of its kind takes it.
pub(crate) enum Cell<'a> {
    Int(Option<i64>),
    Unsigned(Option<u64>),
    Text(Option<&'a str>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
    List(&'a [String]),
}

pub(crate) struct Column<R> {
    name: &'static str,
    kind: Kind,
    get: fn(&R) -> Cell<'_>,
}

/// A record written as Parquet: its columns, in file order, each naming
/// its kind and how to read it from the record, so the schema and the
/// values written cannot drift apart.
pub(crate) trait ParquetRow: Sized + 'static {
    fn columns() -> &'static [Column<Self>];
    /// The schema's name (Parquet's `message`).
    fn message() -> &'static str;
}

impl ParquetRow for Question {
    fn message() -> &'static str {
        "question"
    }

    fn columns() -> &'static [Column<Self>] {
        use Kind::*;
        const COLUMNS: &[Column<Question>] = &[
            col("site", Text, |q| Cell::Text(Some(&q.site))),
            col("question_id", Int, |q| Cell::Unsigned(Some(q.question_id))),
            col("url", Text, |q| Cell::Text(Some(&q.url))),
            col("title", Text, |q| Cell::Text(Some(&q.title))),
            col("excerpt", Text, |q| Cell::Text(Some(&q.excerpt))),
            col("votes", Int, |q| Cell::Int(Some(q.votes))),
            col("answers", Int, |q| Cell::Unsigned(Some(q.answers))),
            col("replies", OptInt, |q| Cell::Unsigned(q.replies)),
            col("views", Int, |q| Cell::Unsigned(Some(q.views))),
            col("views_exact", Kind::Bool, |q| Cell::Bool(q.views_exact)),
            col("tags", TextList, |q| Cell::List(&q.tags)),
            col("has_accepted_answer", Kind::Bool, |q| {
                Cell::Bool(q.has_accepted_answer)
            }),
            col("author_name", OptText, |q| {
                Cell::Text(q.author_name.as_deref())
            }),
            col("author_reputation", OptInt, |q| {
                Cell::Unsigned(q.author_reputation)
            }),
            col("asked_at", OptTime, |q| Cell::Time(q.asked_at)),
            col("modified_at", OptTime, |q| Cell::Time(q.modified_at)),
            col("answered_at", OptTime, |q| Cell::Time(q.answered_at)),
            col("bounty", OptInt, |q| {
                Cell::Unsigned(q.bounty.map(u64::from))
            }),
            col("status", Text, |q| Cell::Text(Some(status_name(q)))),
            col("post_kind", Text, |q| Cell::Text(Some(kind_name(q)))),
            col("community_wiki", Kind::Bool, |q| {
                Cell::Bool(q.community_wiki)
            }),
            col("tag", Text, |q| Cell::Text(Some(&q.tag))),
            col("tab", Text, |q| Cell::Text(Some(&q.tab))),
            col("page", Int, |q| Cell::Unsigned(Some(u64::from(q.page)))),
            col("fetched_at", Kind::Time, |q| Cell::Time(Some(q.fetched_at))),
            col("author_user_id", OptInt, |q| Cell::Int(q.author_user_id)),
            col("author_has_profile", Kind::Bool, |q| {
                Cell::Bool(q.author_has_profile)
            }),
            col("author_action", OptText, |q| Cell::Text(action_name(q))),
        ];
        COLUMNS
    }
}

impl ParquetRow for HistoryRow {
    fn message() -> &'static str {
        "snapshot"
    }

    fn columns() -> &'static [Column<Self>] {
        use Kind::*;
        const COLUMNS: &[Column<HistoryRow>] = &[
            col("site", Text, |h| Cell::Text(Some(&h.site))),
            col("question_id", Int, |h| Cell::Unsigned(Some(h.question_id))),
            col("pass_id", Int, |h| Cell::Int(Some(h.pass_id))),
            col("seen_at", Time, |h| Cell::Time(Some(h.seen_at))),
            col("votes", Int, |h| Cell::Int(Some(h.votes))),
            col("answers", Int, |h| Cell::Unsigned(Some(h.answers))),
            col("views", Int, |h| Cell::Unsigned(Some(h.views))),
        ];
        COLUMNS
    }
}

const fn col<R>(name: &'static str, kind: Kind, get: fn(&R) -> Cell<'_>) -> Column<R> {
    Column { name, kind, get }
}

/// The enums' names as their JSON has them (serde's snake_case), without
/// a serialiser per row.
fn status_name(q: &Question) -> &'static str {
    use crate::model::QuestionStatus::*;
    match q.status {
        Open => "open",
        Closed => "closed",
        OnHold => "on_hold",
        Duplicate => "duplicate",
        Migrated => "migrated",
        Deleted => "deleted",
    }
}

fn kind_name(q: &Question) -> &'static str {
    match q.post_kind {
        crate::model::PostKind::Question => "question",
        crate::model::PostKind::Advice => "advice",
    }
}

fn action_name(q: &Question) -> Option<&'static str> {
    use crate::model::AuthorAction::*;
    q.author_action.map(|a| match a {
        Asked => "asked",
        Answered => "answered",
        Modified => "modified",
    })
}

/// The schema in Parquet's message syntax, from the columns.
fn schema_text<R: ParquetRow>() -> String {
    let mut s = format!("message {} {{\n", R::message());
    for c in R::columns() {
        let n = c.name;
        let line = match c.kind {
            Kind::Int => format!("REQUIRED INT64 {n};"),
            Kind::OptInt => format!("OPTIONAL INT64 {n};"),
            Kind::Text => format!("REQUIRED BYTE_ARRAY {n} (STRING);"),
            Kind::OptText => format!("OPTIONAL BYTE_ARRAY {n} (STRING);"),
            Kind::Bool => format!("REQUIRED BOOLEAN {n};"),
            Kind::Time => format!("REQUIRED INT64 {n} (TIMESTAMP(MICROS,true));"),
            Kind::OptTime => format!("OPTIONAL INT64 {n} (TIMESTAMP(MICROS,true));"),
            // The three-level list the format specifies, which pyarrow
            // reads as a list of strings.
            Kind::TextList => format!(
                "REQUIRED GROUP {n} (LIST) {{ REPEATED GROUP list {{ \
                 REQUIRED BYTE_ARRAY element (STRING); }} }}"
            ),
        };
        s.push_str("  ");
        s.push_str(&line);
        s.push('\n');
    }
    s.push('}');
    s
}

/// The "pandas" metadata pyarrow writes with a DataFrame (pandas' own
/// convention for Parquet), naming only the nullable integer columns as
/// pandas' `Int64`: without it pandas and Dask read an int64 column that
/// has a null as float64, and Dask's partitions then disagree on its type.
/// Every other column's type reads right from the schema alone.
fn pandas_metadata<R: ParquetRow>() -> String {
    let columns: Vec<serde_json::Value> = R::columns()
        .iter()
        .filter(|c| c.kind == Kind::OptInt)
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "field_name": c.name,
                "pandas_type": "int64",
                "numpy_type": "Int64",
                "metadata": null,
            })
        })
        .collect();
    serde_json::json!({
        "index_columns": [],
        "column_indexes": [],
        "columns": columns,
        "creator": {"library": "stackcrawl", "version": env!("CARGO_PKG_VERSION")},
    })
    .to_string()
}

/// A Parquet file of `R` rows written to any `Write`, a stream included.
/// The parquet writer needs a `Send` sink; it writes into `Vec` this type
/// owns, whose bytes go to the caller's writer after each row group, so no
/// more than one row group is ever held.
pub(crate) struct ParquetWriter<R> {
    file: SerializedFileWriter<Vec<u8>>,
    rows: Vec<R>,
}

impl<R: ParquetRow> ParquetWriter<R> {
    pub fn new() -> Result<Self, ParquetError> {
        let schema = Arc::new(parse_message_type(&schema_text::<R>())?);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "pandas".into(),
                pandas_metadata::<R>(),
            )]))
            .set_created_by(format!("stackcrawl {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(ParquetWriter {
            file: SerializedFileWriter::new(Vec::new(), schema, Arc::new(props))?,
            rows: Vec::new(),
        })
    }

    /// Adds one page batch's rows, and writes a row group to `w` once
    /// `ROW_GROUP_ROWS` are waiting.
    pub fn push_batch(
        &mut self,
        rows: impl IntoIterator<Item = R>,
        w: &mut dyn Write,
    ) -> Result<(), ParquetError> {
        self.rows.extend(rows);
        if self.rows.len() >= ROW_GROUP_ROWS {
            self.flush_group(w)?;
        }
        Ok(())
    }

    /// Writes the rows waiting as one row group, and its bytes to `w`.
    pub fn flush_group(&mut self, w: &mut dyn Write) -> Result<(), ParquetError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut group = self.file.next_row_group()?;
        for c in R::columns() {
            write_column(&mut group, c, &rows)?;
        }
        group.close()?;
        self.file.flush()?;
        w.write_all(&std::mem::take(self.file.inner_mut()))?;
        Ok(())
    }

    /// Writes the rows still waiting and the footer, which makes the file
    /// readable. A file with no row is valid: its schema, no row group.
    pub fn finish(mut self, w: &mut dyn Write) -> Result<(), ParquetError> {
        self.flush_group(w)?;
        let rest = self.file.into_inner()?;
        w.write_all(&rest)?;
        w.flush()?;
        Ok(())
    }
}

fn write_column<R>(
    group: &mut SerializedRowGroupWriter<'_, Vec<u8>>,
    c: &Column<R>,
    rows: &[R],
) -> Result<(), ParquetError> {
    let Some(mut column) = group.next_column()? else {
        return Err(decode(format!("no column {} in the schema", c.name)));
    };
    let required = matches!(c.kind, Kind::Int | Kind::Text | Kind::Bool | Kind::Time);
    // A present value is defined (1); a null is not (0). A required
    // column has no levels at all.
    let mut defs: Vec<i16> = Vec::with_capacity(rows.len());
    let mut define = |present: bool| -> Result<bool, ParquetError> {
        if required && !present {
            return Err(ParquetError::Missing { column: c.name });
        }
        defs.push(i16::from(present));
        Ok(present)
    };
    let levels = |defs: &[i16]| (!required).then_some(defs.to_vec());
    match c.kind {
        Kind::Int | Kind::OptInt | Kind::Time | Kind::OptTime => {
            let mut values = Vec::with_capacity(rows.len());
            for r in rows {
                let v = match (c.get)(r) {
                    Cell::Int(v) => v,
                    Cell::Unsigned(v) => v
                        .map(|v| {
                            i64::try_from(v).map_err(|_| ParquetError::OutOfRange {
                                column: c.name,
                                value: v,
                            })
                        })
                        .transpose()?,
                    Cell::Time(t) => t.map(|t| t.timestamp_micros()),
                    _ => return Err(mismatch(c.name)),
                };
                if define(v.is_some())? {
                    values.extend(v);
                }
            }
            let defs = levels(&defs);
            column
                .typed::<Int64Type>()
                .write_batch(&values, defs.as_deref(), None)?;
        }
        Kind::Text | Kind::OptText => {
            let mut values = Vec::with_capacity(rows.len());
            for r in rows {
                let Cell::Text(v) = (c.get)(r) else {
                    return Err(mismatch(c.name));
                };
                if define(v.is_some())? {
                    values.extend(v.map(ByteArray::from));
                }
            }
            let defs = levels(&defs);
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, defs.as_deref(), None)?;
        }
        Kind::Bool => {
            let mut values = Vec::with_capacity(rows.len());
            for r in rows {
                let Cell::Bool(v) = (c.get)(r) else {
                    return Err(mismatch(c.name));
                };
                values.push(v);
            }
            column
                .typed::<BoolType>()
                .write_batch(&values, None, None)?;
        }
        Kind::TextList => {
            // Levels of a required list of required strings: definition
            // 1 for an element, 0 for an empty list; repetition 0 starts
            // a row, 1 continues its list.
            let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
            for r in rows {
                let Cell::List(items) = (c.get)(r) else {
                    return Err(mismatch(c.name));
                };
                if items.is_empty() {
                    defs.push(0);
                    reps.push(0);
                }
                for (i, item) in items.iter().enumerate() {
                    values.push(ByteArray::from(item.as_str()));
                    defs.push(1);
                    reps.push(i16::from(i > 0));
                }
            }
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, Some(&defs), Some(&reps))?;
        }
    }
    column.close()?;
    Ok(())
}

fn mismatch(column: &'static str) -> ParquetError {
    decode(format!("column {column}: value of another kind"))
}

/// Every row of a Parquet file as a JSON object, with the keys and values
/// its JSONL twin has (times as RFC 3339 in UTC, lists as arrays), so
/// rows read back compare with the records written.
pub fn read_json_rows(file: std::fs::File) -> Result<Vec<serde_json::Value>, ParquetError> {
    let reader = SerializedFileReader::new(file)?;
    reader
        .get_row_iter(None)?
        .map(|row| row_json(&row?))
        .collect()
}

/// The questions of a Parquet output, as written.
pub fn read_questions(file: std::fs::File) -> Result<Vec<Question>, ParquetError> {
    read_json_rows(file)?.into_iter().map(question).collect()
}

/// Opens a Parquet output that records are to be added to, refusing one
/// whose columns are not a question's (another tool's file, an export of
/// history) before anything is fetched for it.
pub(crate) fn check_questions_file(file: std::fs::File) -> Result<(), ParquetError> {
    let reader = SerializedFileReader::new(file)?;
    let found: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let want: Vec<&str> = Question::columns().iter().map(|c| c.name).collect();
    if found != want {
        return Err(decode(format!(
            "its columns are not a question's: {}",
            found.join(", ")
        )));
    }
    Ok(())
}

/// Writes the questions of the Parquet file `src` through `w`, row group
/// by row group so each keeps its page batches: a Parquet output is added
/// to by rewriting it with its rows first. Returns the rows copied.
pub(crate) fn copy_questions(
    src: std::fs::File,
    w: &mut ParquetWriter<Question>,
    out: &mut dyn Write,
) -> Result<u64, ParquetError> {
    let reader = SerializedFileReader::new(src)?;
    let mut n = 0;
    for i in 0..reader.num_row_groups() {
        let group = reader.get_row_group(i)?;
        let rows = group
            .get_row_iter(None)?
            .map(|row| question(row_json(&row?)?))
            .collect::<Result<Vec<_>, _>>()?;
        n += rows.len() as u64;
        w.rows.extend(rows);
        w.flush_group(out)?;
    }
    Ok(n)
}

fn row_json(row: &parquet::record::Row) -> Result<serde_json::Value, ParquetError> {
    row.get_column_iter()
        .map(|(name, field)| Ok((name.clone(), field_json(field)?)))
        .collect::<Result<serde_json::Map<_, _>, ParquetError>>()
        .map(serde_json::Value::Object)
}

fn question(v: serde_json::Value) -> Result<Question, ParquetError> {
    serde_json::from_value(v).map_err(|e| decode(e.to_string()))
}

fn field_json(field: &parquet::record::Field) -> Result<serde_json::Value, ParquetError> {
    use parquet::record::Field;
    use serde_json::Value;
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Long(n) => Value::from(*n),
        Field::Str(s) => Value::from(s.as_str()),
        Field::TimestampMicros(us) => {
            let t = DateTime::<Utc>::from_timestamp_micros(*us)
                .ok_or_else(|| decode(format!("timestamp {us} out of range")))?;
            Value::from(crate::model::csv_time(&t))
        }
        Field::ListInternal(list) => Value::Array(
            list.elements()
                .iter()
                .map(field_json)
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(decode(format!("a field stackcrawl never writes: {other}"))),
    })
}

fn decode(reason: String) -> ParquetError {
    parquet::errors::ParquetError::General(reason).into()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as Physical};

    use super::*;
    use crate::model::{PostKind, QuestionStatus};
    use crate::store::fixtures::*;
    use crate::store::{OutputFormat, Store};

    /// `store`'s export as a Parquet file.
    fn export(store: &Store, history: bool) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        store
            .export(file.as_file_mut(), OutputFormat::Parquet, history)
            .unwrap();
        file
    }

    fn reader(file: &tempfile::NamedTempFile) -> SerializedFileReader<std::fs::File> {
        SerializedFileReader::new(file.reopen().unwrap()).unwrap()
    }

    /// Each leaf column: its path, physical and logical type, and its
    /// definition and repetition levels (nullable: definition 1).
    fn leaves(
        file: &tempfile::NamedTempFile,
    ) -> Vec<(String, Physical, Option<LogicalType>, i16, i16)> {
        let r = reader(file);
        let schema = r.metadata().file_metadata().schema_descr_ptr();
        schema
            .columns()
            .iter()
            .map(|c| {
                (
                    c.path().string(),
                    c.physical_type(),
                    c.logical_type_ref().cloned(),
                    c.max_def_level(),
                    c.max_rep_level(),
                )
            })
            .collect()
    }

    #[test]
    fn question_columns_have_the_types_a_dataframe_keeps() {
        let file = export(&report_fixture(), false);
        let utc_micros = Some(LogicalType::timestamp(true, TimeUnit::MICROS));
        let text = Some(LogicalType::String);
        use Physical::{BOOLEAN, BYTE_ARRAY, INT64};
        let want: Vec<(&str, Physical, Option<LogicalType>, i16, i16)> = vec![
            ("site", BYTE_ARRAY, text.clone(), 0, 0),
            ("question_id", INT64, None, 0, 0),
            ("url", BYTE_ARRAY, text.clone(), 0, 0),
            ("title", BYTE_ARRAY, text.clone(), 0, 0),
            ("excerpt", BYTE_ARRAY, text.clone(), 0, 0),
            ("votes", INT64, None, 0, 0),
            ("answers", INT64, None, 0, 0),
            ("replies", INT64, None, 1, 0),
            ("views", INT64, None, 0, 0),
            ("views_exact", BOOLEAN, None, 0, 0),
            ("tags.list.element", BYTE_ARRAY, text.clone(), 1, 1),
            ("has_accepted_answer", BOOLEAN, None, 0, 0),
            ("author_name", BYTE_ARRAY, text.clone(), 1, 0),
            ("author_reputation", INT64, None, 1, 0),
            ("asked_at", INT64, utc_micros.clone(), 1, 0),
            ("modified_at", INT64, utc_micros.clone(), 1, 0),
            ("answered_at", INT64, utc_micros.clone(), 1, 0),
            ("bounty", INT64, None, 1, 0),
            ("status", BYTE_ARRAY, text.clone(), 0, 0),
            ("post_kind", BYTE_ARRAY, text.clone(), 0, 0),
            ("community_wiki", BOOLEAN, None, 0, 0),
            ("tag", BYTE_ARRAY, text.clone(), 0, 0),
            ("tab", BYTE_ARRAY, text.clone(), 0, 0),
            ("page", INT64, None, 0, 0),
            ("fetched_at", INT64, utc_micros, 0, 0),
            ("author_user_id", INT64, None, 1, 0),
            ("author_has_profile", BOOLEAN, None, 0, 0),
            ("author_action", BYTE_ARRAY, text, 1, 0),
        ];
        let want: Vec<_> = want
            .into_iter()
            .map(|(p, t, l, d, r)| (p.to_string(), t, l, d, r))
            .collect();
        assert_eq!(leaves(&file), want);

        // `tags` is the format's list: a required LIST group holding a
        // repeated group of one required string, which pyarrow reads as
        // list<string>.
        let r = reader(&file);
        let root = r.metadata().file_metadata().schema();
        let tags = root
            .get_fields()
            .iter()
            .find(|f| f.name() == "tags")
            .unwrap();
        assert_eq!(
            tags.get_basic_info().logical_type_ref(),
            Some(&LogicalType::List)
        );
        assert_eq!(tags.get_basic_info().repetition(), Repetition::REQUIRED);
        let list = &tags.get_fields()[0];
        assert_eq!(list.get_basic_info().repetition(), Repetition::REPEATED);
        assert_eq!(
            list.get_fields()[0].get_basic_info().repetition(),
            Repetition::REQUIRED
        );
    }

    #[test]
    fn pandas_is_told_which_integers_are_nullable() {
        let file = export(&report_fixture(), false);
        let r = reader(&file);
        let kv = r.metadata().file_metadata().key_value_metadata().unwrap();
        let pandas = kv.iter().find(|k| k.key == "pandas").unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(pandas.value.as_deref().unwrap()).unwrap();
        let named: Vec<(&str, &str)> = meta["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap(),
                    c["numpy_type"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("replies", "Int64"),
                ("author_reputation", "Int64"),
                ("bounty", "Int64"),
                ("author_user_id", "Int64"),
            ]
        );
    }

    #[test]
    fn a_question_round_trips_with_its_nulls_lists_and_times() {
        let mut s = Store::open_in_memory().unwrap();
        let mut full = q(7, "rust", &["rust", "c#", "c++"], -2, 0, 3_100_000);
        full.replies = Some(3);
        full.post_kind = PostKind::Advice;
        full.status = QuestionStatus::OnHold;
        full.has_accepted_answer = true;
        full.modified_at = Some(Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap());
        full.answered_at = Some(at(3));
        full.bounty = Some(50);
        full.community_wiki = true;
        full.author_user_id = Some(-1);
        let mut bare = q(3, "rust", &[], 1, 1, 1);
        bare.author_name = None;
        bare.author_reputation = None;
        bare.asked_at = None;
        bare.author_user_id = None;
        bare.author_has_profile = false;
        bare.author_action = None;
        let p = s.begin_pass("langs", at(1)).unwrap().pass_id;
        s.record_page(p, &ctx("rust", 1), &[full.clone(), bare.clone()], at(1))
            .unwrap();

        let file = export(&s, false);
        let back = read_questions(file.reopen().unwrap()).unwrap();
        assert_eq!(back, [bare, full]);
        // The nulls are Parquet nulls, not zeros or empty strings.
        let rows = read_json_rows(file.reopen().unwrap()).unwrap();
        assert!(rows[0]["author_reputation"].is_null());
        assert!(rows[0]["asked_at"].is_null());
        assert_eq!(rows[0]["tags"], serde_json::json!([]));
    }

    #[test]
    fn times_keep_microseconds_and_drop_what_is_finer() {
        let mut w = ParquetWriter::<Question>::new().unwrap();
        let mut x = q(1, "rust", &["rust"], 0, 0, 0);
        x.fetched_at = Utc.timestamp_opt(1_740_000_000, 123_456_789).unwrap();
        let mut out = tempfile::NamedTempFile::new().unwrap();
        w.push_batch([x], out.as_file_mut()).unwrap();
        w.finish(out.as_file_mut()).unwrap();
        let back = read_questions(out.reopen().unwrap()).unwrap();
        assert_eq!(
            back[0].fetched_at,
            Utc.timestamp_opt(1_740_000_000, 123_456_000).unwrap()
        );
    }

    #[test]
    fn history_rows_are_typed_too() {
        let s = report_fixture();
        let file = export(&s, true);
        let utc_micros = Some(LogicalType::timestamp(true, TimeUnit::MICROS));
        let names: Vec<_> = leaves(&file)
            .into_iter()
            .map(|(p, t, l, d, _)| (p, t, l, d))
            .collect();
        assert_eq!(
            names,
            [
                ("site", Physical::BYTE_ARRAY, Some(LogicalType::String), 0),
                ("question_id", Physical::INT64, None, 0),
                ("pass_id", Physical::INT64, None, 0),
                ("seen_at", Physical::INT64, utc_micros, 0),
                ("votes", Physical::INT64, None, 0),
                ("answers", Physical::INT64, None, 0),
                ("views", Physical::INT64, None, 0),
            ]
            .map(|(p, t, l, d)| (p.to_string(), t, l, d))
        );
        let rows: Vec<HistoryRow> = read_json_rows(file.reopen().unwrap())
            .unwrap()
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
        let mut jsonl = Vec::new();
        s.export(&mut jsonl, OutputFormat::Jsonl, true).unwrap();
        let want: Vec<HistoryRow> = String::from_utf8(jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 7);
        assert_eq!(rows, want);
    }

    #[test]
    fn an_empty_export_is_a_readable_file_with_the_schema() {
        let file = export(&Store::open_in_memory().unwrap(), false);
        assert_eq!(leaves(&file).len(), Question::columns().len());
        let r = reader(&file);
        assert_eq!(r.metadata().num_row_groups(), 0);
        assert!(read_questions(file.reopen().unwrap()).unwrap().is_empty());
    }

    #[test]
    fn a_row_group_holds_whole_batches() {
        let mut w = ParquetWriter::<Question>::new().unwrap();
        let mut out = tempfile::NamedTempFile::new().unwrap();
        // Batches of 3,000: the group closes at the first batch end past
        // ROW_GROUP_ROWS, 12,000, and the rest is one group at the end.
        let batch: Vec<Question> = (0..3_000)
            .map(|i| q(i, "rust", &["rust"], 0, 0, i))
            .collect();
        for _ in 0..5 {
            w.push_batch(batch.iter().cloned(), out.as_file_mut())
                .unwrap();
        }
        w.finish(out.as_file_mut()).unwrap();
        let r = SerializedFileReader::new(out.reopen().unwrap()).unwrap();
        let sizes: Vec<i64> = r
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(sizes, [12_000, 3_000]);
    }

    #[test]
    fn a_value_beyond_int64_is_an_error_not_a_wrapped_number() {
        let mut w = ParquetWriter::<Question>::new().unwrap();
        let mut x = q(1, "rust", &["rust"], 0, 0, 0);
        x.views = u64::MAX;
        let mut out = Vec::new();
        let err = w
            .push_batch([x], &mut out)
            .and_then(|()| w.finish(&mut out));
        assert!(
            matches!(
                err,
                Err(ParquetError::OutOfRange {
                    column: "views",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
