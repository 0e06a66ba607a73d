//! Classification data of one's own from a CSV file (`--data csv:PATH`).
//!
//! Every row holds numeric feature columns and one label column: the last, or
//! the one `--label` names (a 0-based index when it is a whole number, else a
//! header name). Fields are
//! separated by commas, surrounding spaces and one pair of double quotes are
//! dropped (quoted fields cannot hold commas), blank lines are skipped, and a
//! UTF-8 byte-order mark at the start is dropped. The first row is a header
//! when none of its feature fields is a number (or when the label is named by a
//! header name), data when all of them are; one that mixes names and numbers is
//! refused. Another file read for a run's model has its feature columns matched
//! to the run's by header name. Labels may be any text: the
//! distinct labels, sorted (as numbers when they all are numbers), are the
//! classes `0..K`. Features are standardised with the training file's mean and
//! standard deviation (a constant column is divided by 1), kept with the run.

use std::path::Path;

use super::Classification;
use crate::error::{Error, Result};

/// A CSV file of one's own and what a model trained on it needs to read
/// another: the label column, the classes and the features' statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CsvSpec {
    /// The file: its absolute path (as given in runs from before paths were made absolute).
    pub path: String,
    /// The label column as given (`--label`): a 0-based index (a whole number) or a header name; `None`: the last.
    pub label: Option<String>,
    /// The fraction of the rows held out for evaluation (stratified, shuffled with the seed).
    pub eval_frac: f64,
    /// The feature columns' names (from the header; `x0`, `x1`, ... without one).
    pub features: Vec<String>,
    /// The class names, in class-id order.
    pub classes: Vec<String>,
    /// Each feature's mean over the file.
    pub mean: Vec<f32>,
    /// Each feature's standard deviation over the file (1 where it is 0).
    pub std: Vec<f32>,
    /// The file's [`super::fingerprint`] when the run started (`None` in runs
    /// from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A CSV file parsed: features as read (not standardised) and label strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The feature columns' names.
    pub features: Vec<String>,
    /// The label column (0-based, among all columns).
    pub label_column: usize,
    /// Features, row-major `[rows, features]`.
    pub values: Vec<f32>,
    /// Each row's label.
    pub labels: Vec<String>,
    /// Each row's line in the file (1-based).
    pub lines: Vec<usize>,
}

/// One field: trimmed, one pair of surrounding double quotes dropped.
fn clean(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(f)
}

fn number(field: &str) -> Option<f32> {
    field.parse::<f32>().ok()
}

impl Table {
    /// Reads and parses the CSV file at `path`, the label column named by
    /// `label` (see the module documentation). Errors name the file, line and column.
    pub fn read(path: &Path, label: Option<&str>) -> Result<Table> {
        super::check_regular(path)?;
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: name.clone(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = std::str::from_utf8(&valid[start..]).map_or(0, |s| s.chars().count()) + 1;
            Error::invalid(
                &name,
                format!(
                    "line {line}, column {column}: invalid UTF-8 (byte 0x{:02x} at byte offset {} of the file)",
                    bytes[e.valid_up_to()],
                    e.valid_up_to()
                ),
            )
        })?;
        Table::parse(&name, text, label)
    }

    /// Parses CSV `text`; `name` names it in errors.
    pub fn parse(name: &str, text: &str, label: Option<&str>) -> Result<Table> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let err = |line: usize, column: usize, msg: String| {
            Error::invalid(name, format!("line {line}, column {column}: {msg}"))
        };
        let mut rows = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i, l.split(',').map(clean).collect::<Vec<&str>>()));
        let Some((first_line, first)) = rows.next() else {
            return Err(err(1, 1, "the file is empty (no rows)".into()));
        };
        let width = first.len();
        if width < 2 {
            return Err(err(
                first_line,
                1,
                "one column: a CSV needs at least one feature column and a label column".into(),
            ));
        }
        // The label column: a 0-based index (a whole number), else a header name; by default the last.
        let index = label.map(|l| l.parse::<usize>().map_err(|_| l));
        let by_name = match index {
            Some(Err(l)) => {
                let at: Vec<usize> = (0..width).filter(|&i| first[i] == l).collect();
                match at[..] {
                    [i] => Some(i),
                    [] => {
                        return Err(Error::invalid(
                            "label",
                            format!("{name} has no header column named `{l}`"),
                        ))
                    }
                    _ => {
                        return Err(Error::invalid(
                            "label",
                            format!("{name} has {} header columns named `{l}`: rename all but one", at.len()),
                        ))
                    }
                }
            }
            _ => None,
        };
        let label_column = match (index, by_name) {
            (_, Some(i)) => i,
            (Some(Ok(i)), _) if i >= width => {
                return Err(Error::invalid(
                    "label",
                    format!("column {i} (0-based) is beyond the {width} columns of {name}"),
                ))
            }
            (Some(Ok(i)), _) => i,
            _ => width - 1,
        };
        let is_feature = |i: &usize| *i != label_column;
        let numeric = (0..width)
            .filter(is_feature)
            .filter(|&i| number(first[i]).is_some())
            .count();
        let header = by_name.is_some() || numeric < width - 1;
        if header && numeric > 0 && by_name.is_none() {
            let i = (0..width)
                .filter(is_feature)
                .find(|&i| number(first[i]).is_some())
                .unwrap_or(0);
            return Err(err(
                first_line,
                i + 1,
                format!(
                    "the first row mixes names and numbers (`{}`): a header names every feature column, a data \
                     row has a number in each",
                    first[i]
                ),
            ));
        }
        let features: Vec<String> = if header {
            (0..width).filter(is_feature).map(|i| first[i].to_string()).collect()
        } else {
            (0..width - 1).map(|i| format!("x{i}")).collect()
        };
        let mut table = Table {
            features,
            label_column,
            values: Vec::new(),
            labels: Vec::new(),
            lines: Vec::new(),
        };
        let data = (!header).then_some((first_line, first)).into_iter().chain(rows);
        for (line, fields) in data {
            if fields.len() != width {
                let column = fields.len().min(width) + 1;
                return Err(err(
                    line,
                    column,
                    format!("{} fields, but line {first_line} has {width}", fields.len()),
                ));
            }
            for (i, f) in fields.iter().enumerate() {
                if i == label_column {
                    if f.is_empty() {
                        return Err(err(line, i + 1, "the label is empty".into()));
                    }
                    table.labels.push(f.to_string());
                    continue;
                }
                match number(f) {
                    Some(v) if v.is_finite() => table.values.push(v),
                    _ => return Err(err(line, i + 1, format!("`{f}` is not a finite number"))),
                }
            }
            table.lines.push(line);
        }
        if table.labels.is_empty() {
            return Err(err(first_line + 1, 1, "a header and no rows".into()));
        }
        Ok(table)
    }

    /// The table with its feature columns in the order of `names`, matched by
    /// header name; `name` names the file in errors. A column of `names` that is
    /// missing, one that is not among them, or a name used twice is refused.
    /// Features named `x0`, `x1`, ... (a run's file without a header) match
    /// by position.
    pub fn matched(self, name: &str, names: &[String]) -> Result<Table> {
        let positional = names.iter().enumerate().all(|(i, n)| *n == format!("x{i}"));
        if self.features == names || (positional && self.features.len() == names.len()) {
            return Ok(self);
        }
        let listed = names.join(", ");
        if let Some(twice) = self
            .features
            .iter()
            .enumerate()
            .find(|(i, f)| self.features[..*i].contains(f))
        {
            return Err(Error::invalid(
                name,
                format!(
                    "two feature columns are named `{}`: columns are matched by name",
                    twice.1
                ),
            ));
        }
        let order: Vec<usize> = names
            .iter()
            .map(|n| {
                self.features.iter().position(|f| f == n).ok_or_else(|| {
                    Error::invalid(
                        name,
                        format!(
                            "has no column named `{n}` (the run's features: {listed}; columns are matched by name)"
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?;
        if let Some(extra) = self.features.iter().find(|f| !names.contains(f)) {
            return Err(Error::invalid(
                name,
                format!("column `{extra}` is not among the run's features ({listed})"),
            ));
        }
        let d = self.features.len();
        let values = self
            .values
            .chunks_exact(d)
            .flat_map(|row| order.iter().map(move |&i| row[i]))
            .collect();
        Ok(Table {
            features: names.to_vec(),
            values,
            ..self
        })
    }

    /// Rows of the table.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The distinct labels, sorted (as numbers when every label is a number).
    pub fn classes(&self) -> Vec<String> {
        let mut classes = self.labels.clone();
        classes.sort();
        classes.dedup();
        if classes.iter().all(|c| c.parse::<f64>().is_ok()) {
            classes.sort_by(|a, b| {
                a.parse::<f64>()
                    .unwrap_or(0.0)
                    .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
            });
        }
        classes
    }

    /// Each feature's mean and standard deviation over the rows (a deviation of 0 is 1).
    pub fn stats(&self) -> (Vec<f32>, Vec<f32>) {
        let d = self.features.len();
        let n = self.len() as f64;
        let mut mean = vec![0f64; d];
        for row in self.values.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; d];
        for row in self.values.chunks_exact(d) {
            var.iter_mut()
                .zip(row.iter().zip(&mean))
                .for_each(|(s, (&v, m))| *s += (v as f64 - m).powi(2));
        }
        let std = var
            .into_iter()
            .map(|s| (s / n).sqrt() as f32)
            .map(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 })
            .collect();
        (mean.into_iter().map(|m| m as f32).collect(), std)
    }
}

impl CsvSpec {
    /// Reads `path` and derives the classes and statistics a model trains with.
    /// A file of one class is refused.
    pub fn scan(path: &str, label: Option<&str>, eval_frac: f64) -> Result<(CsvSpec, Table)> {
        super::text::check_eval_frac(eval_frac)?;
        let table = Table::read(Path::new(path), label)?;
        let classes = table.classes();
        if classes.len() < 2 {
            let column = table.label_column + 1;
            return Err(Error::invalid(
                path,
                format!(
                    "line {}, column {column}: every row has the label `{}`: a classifier needs at least two classes",
                    table.lines[0], classes[0]
                ),
            ));
        }
        let (mean, std) = table.stats();
        let spec = CsvSpec {
            path: path.to_string(),
            label: label.map(str::to_string),
            eval_frac,
            features: table.features.clone(),
            classes,
            mean,
            std,
            fingerprint: Some(super::fingerprint(Path::new(path))?),
        };
        Ok((spec, table))
    }

    /// The rows of `table` (the training file or another), standardised with
    /// these statistics, labels mapped to these classes. A feature count that
    /// differs, or a label not among the classes, is an error naming `name`.
    pub fn classification(&self, name: &str, table: &Table) -> Result<Classification> {
        let d = self.mean.len();
        if table.features.len() != d {
            return Err(Error::invalid(
                name,
                format!(
                    "{} feature columns, the model takes {d} ({})",
                    table.features.len(),
                    self.path
                ),
            ));
        }
        let mut inputs = table.values.clone();
        for row in inputs.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        let labels = table
            .labels
            .iter()
            .zip(&table.lines)
            .map(|(l, &line)| {
                self.classes
                    .iter()
                    .position(|c| c == l)
                    .map(|i| i as u32)
                    .ok_or_else(|| {
                        Error::invalid(
                            name,
                            format!(
                                "line {line}, column {}: label `{l}` is not one of the model's {} classes",
                                table.label_column + 1,
                                self.classes.len()
                            ),
                        )
                    })
            })
            .collect::<Result<_>>()?;
        Ok(Classification {
            inputs,
            labels,
            dim: d,
            classes: self.classes.len(),
        })
    }

    /// Reads `path` (the training file, or another of the same columns) as a
    /// standardised classification set.
    pub fn load(&self, path: &str) -> Result<Classification> {
        if path == self.path {
            super::check_fingerprint(path, self.fingerprint.as_deref())?;
        }
        let table = Table::read(Path::new(path), self.label.as_deref())?;
        let table = table.matched(path, &self.features)?;
        self.classification(path, &table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, label: Option<&str>) -> Result<Table> {
        Table::parse("f.csv", text, label)
    }

    fn message(r: Result<Table>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn header_is_detected_and_label_is_last_by_default() {
        let t = parse("a,b,kind\n1,2,x\n3,4,y\n\n5,6,x\n", None).unwrap();
        assert_eq!(t.features, ["a", "b"]);
        assert_eq!(t.label_column, 2);
        assert_eq!(t.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(t.labels, ["x", "y", "x"]);
        assert_eq!(t.lines, [2, 3, 5]);
        let t = parse("1,2,0\n3,4,1\n", None).unwrap();
        assert_eq!(t.features, ["x0", "x1"]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn label_by_header_name_or_index() {
        let t = parse("kind,a,b\ncat,1,2\ndog,3,4\n", Some("kind")).unwrap();
        assert_eq!(
            (t.label_column, t.features.clone()),
            (0, vec!["a".to_string(), "b".into()])
        );
        let t = parse("1,\"dog\",2\n3, cat ,4\n", Some("1")).unwrap();
        assert_eq!(t.label_column, 1);
        assert_eq!(t.labels, ["dog", "cat"]);
        assert_eq!(t.values, [1.0, 2.0, 3.0, 4.0]);
        assert!(message(parse("a,b\n1,2\n", Some("c"))).contains("no header column named `c`"));
        assert!(message(parse("1,2\n1,2\n", Some("5"))).contains("column 5"));
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let m = message(parse("a,b,c\n1,2,0\n1,2\n", None));
        assert_eq!(m, "f.csv: line 3, column 3: 2 fields, but line 1 has 3");
        let m = message(parse("1,2,0\n1,x,1\n", None));
        assert_eq!(m, "f.csv: line 2, column 2: `x` is not a finite number");
        let m = message(parse("1,2,0\n1,inf,1\n", None));
        assert!(m.contains("line 2, column 2"), "{m}");
        assert!(message(parse("\n  \n", None)).contains("line 1, column 1: the file is empty"));
        assert!(message(parse("a,b\n", None)).contains("a header and no rows"));
    }

    #[test]
    fn classes_sort_as_numbers_and_features_standardise() {
        let t = parse("1,10\n3,2\n5,10\n7,1\n", None).unwrap();
        assert_eq!(t.classes(), ["1", "2", "10"]);
        let (mean, std) = t.stats();
        assert_eq!(mean, [4.0]);
        assert!((std[0] - 5f32.sqrt()).abs() < 1e-6, "{std:?}");
        let constant = parse("2,a\n2,b\n", None).unwrap();
        assert_eq!(constant.stats(), (vec![2.0], vec![1.0]));
    }

    #[test]
    fn a_spec_maps_labels_and_refuses_what_it_does_not_know() {
        let dir = std::env::temp_dir().join(format!("sfnap-csv-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.csv");
        std::fs::write(&path, "x,y,label\n0,0,b\n2,4,a\n4,8,b\n").unwrap();
        let (spec, table) = CsvSpec::scan(path.to_str().unwrap(), None, 0.25).unwrap();
        assert_eq!(spec.classes, ["a", "b"]);
        let c = spec.classification("a.csv", &table).unwrap();
        assert_eq!(c.labels, [1, 0, 1]);
        assert_eq!((c.dim, c.classes), (2, 2));
        let sum: f32 = c.inputs.iter().step_by(2).sum();
        assert!(sum.abs() < 1e-6);
        let other = Table::parse("b.csv", "1,2,c\n", None).unwrap();
        let m = spec.classification("b.csv", &other).unwrap_err().to_string();
        assert_eq!(
            m,
            "b.csv: line 1, column 3: label `c` is not one of the model's 2 classes"
        );
        let narrow = Table::parse("c.csv", "1,c\n", None).unwrap();
        assert!(spec.classification("c.csv", &narrow).is_err());
        std::fs::write(&path, "1,2,a\n3,4,a\n").unwrap();
        let m = CsvSpec::scan(path.to_str().unwrap(), None, 0.25)
            .unwrap_err()
            .to_string();
        assert!(m.contains("line 1, column 3: every row has the label `a`"), "{m}");
        std::fs::write(&path, b"1,2,a\n3,\xff,b\n").unwrap();
        let m = CsvSpec::scan(path.to_str().unwrap(), None, 0.25)
            .unwrap_err()
            .to_string();
        assert!(
            m.ends_with("line 2, column 3: invalid UTF-8 (byte 0xff at byte offset 8 of the file)"),
            "{m}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let t = parse("\u{feff}a,b,kind\n1,2,x\n3,4,y\n", None).unwrap();
        assert_eq!(t.features, ["a", "b"]);
        let t = parse("\u{feff}1,2,x\n3,4,y\n", None).unwrap();
        assert_eq!((t.features.clone(), t.len()), (vec!["x0".to_string(), "x1".into()], 2));
    }

    #[test]
    fn a_first_row_of_names_and_numbers_is_refused() {
        let m = message(parse("a,2,kind\n1,2,x\n", None));
        assert!(
            m.contains("line 1, column 2") && m.contains("mixes names and numbers"),
            "{m}"
        );
    }

    #[test]
    fn a_label_name_two_columns_share_is_refused() {
        let m = message(parse("a,kind,kind\n1,x,y\n", Some("kind")));
        assert!(
            m.starts_with("label:") && m.contains("2 header columns named `kind`"),
            "{m}"
        );
    }

    #[test]
    fn columns_are_matched_by_name() {
        let names: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let swapped = parse("b,a,kind\n1,2,x\n3,4,y\n", None).unwrap();
        let t = swapped.matched("f.csv", &names).unwrap();
        assert_eq!(
            (t.features.clone(), t.values),
            (names.clone(), vec![2.0, 1.0, 4.0, 3.0])
        );
        let renamed = parse("a,B,kind\n1,2,x\n", None).unwrap();
        let m = renamed.matched("f.csv", &names).unwrap_err().to_string();
        assert!(m.contains("no column named `b`"), "{m}");
        let twice = parse("a,a,kind\n1,2,x\n", None).unwrap();
        let m = twice.matched("f.csv", &names).unwrap_err().to_string();
        assert!(m.contains("two feature columns are named `a`"), "{m}");
        let extra = parse("a,b,c,kind\n1,2,3,x\n", None).unwrap();
        let m = extra.matched("f.csv", &names).unwrap_err().to_string();
        assert!(m.contains("column `c` is not among"), "{m}");
    }
}
