//! Data and sizes of one's own from the command line: a GPT trained on a text
//! file and sampled, an MLP trained on a CSV file, evaluated on it and exported
//! (the README's numpy program reaches the accuracy `sfnap eval` reports), and a
//! one-line error naming file, line and column for every kind of bad file.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{empty_dir, error_line, sfnap};

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Exit status 2 and one line of error containing every one of `words`.
fn refused(o: Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let line = error_line(&stderr);
    for w in words {
        assert!(line.contains(w), "`{w}` not in: {stderr}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A text of a few sentences, repeated with variations.
fn text() -> String {
    let words = [
        "The cat sat on the mat. ",
        "The dog ran. ",
        "A bird sang in the tree.\n",
        "The sun set. ",
    ];
    (0..400).map(|i| words[(i * 7 + i / 3) % words.len()]).collect()
}

/// Three classes around three centres in 3 features, with a header and string labels.
fn csv_rows(n: usize, seed: u64) -> String {
    let mut rng = sfnap::data::Rng::new(seed);
    let mut out = String::from("width,height,depth,kind\n");
    let centres = [
        ("small", [0.0, 0.0, 5.0]),
        ("large", [4.0, 4.0, 5.0]),
        ("tall", [0.0, 6.0, 9.0]),
    ];
    for i in 0..n {
        let (name, c) = centres[i % 3];
        let f: Vec<String> = c.iter().map(|v| format!("{:.3}", v + 0.6 * rng.normal())).collect();
        out.push_str(&format!("{},{name}\n", f.join(",")));
    }
    out
}

#[test]
fn a_gpt_trained_on_a_text_file_samples_and_evaluates() {
    let dir = empty_dir("text");
    let file = dir.join("corpus.txt");
    std::fs::write(&file, text()).unwrap();
    let data = format!("text:{}", s(&file));
    let run = dir.join("run");
    let sizes = ["--layers", "3", "--width", "96", "--heads", "4", "--context", "32"];
    let mut args = vec![
        "train", "--model", "gpt", "--data", &data, "--opt", "adamw_sf", "--lr", "3e-3",
    ];
    args.extend(sizes);
    args.extend(["--steps", "20", "--batch", "8", "--eval-every", "20", "--out", s(&run)]);
    ok(sfnap(&args));

    let out = ok(sfnap(&[
        "sample",
        s(&run),
        "--prompt",
        "The ",
        "--chars",
        "200",
        "--seed",
        "3",
    ]));
    let printed = out.strip_suffix('\n').unwrap();
    assert!(printed.starts_with("The "), "{printed:?}");
    assert_eq!(printed.chars().count(), 4 + 200, "{printed:?}");
    let vocab: std::collections::BTreeSet<char> = text().chars().collect();
    assert!(printed.chars().all(|c| vocab.contains(&c)), "{printed:?}");
    // Greedy sampling is deterministic, whatever the seed; a long prompt keeps its last 32 characters.
    let long = text()[..100].to_string();
    let greedy = |seed: &str| {
        ok(sfnap(&[
            "sample",
            s(&run),
            "--prompt",
            &long,
            "--chars",
            "5",
            "--temperature",
            "0",
            "--seed",
            seed,
        ]))
    };
    assert_eq!(greedy("1"), greedy("2"));
    refused(
        sfnap(&["sample", s(&run), "--prompt", "Thé"]),
        &["prompt", "character 3 ('é') is not in the model's vocabulary"],
    );
    refused(sfnap(&["sample", s(&run), "--temperature=-1"]), &["temperature"]);

    let json = ok(sfnap(&["eval", s(&run), "--data", &data, "--json"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["step"], 20);
    let rows = text().chars().count() - 1;
    assert_eq!(v["rows"].as_u64().unwrap() as usize, rows / 32 * 32, "{json}");
    let loss = v["loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss < (vocab.len() as f64).ln() + 1.0, "{json}");

    // Another size, or a changed file, is refused on resume, naming the setting.
    let mut resume = vec![
        "train", "--model", "gpt", "--data", &data, "--opt", "adamw_sf", "--lr", "3e-3",
    ];
    resume.extend([
        "--layers",
        "3",
        "--width",
        "64",
        "--heads",
        "4",
        "--context",
        "32",
        "--steps",
        "40",
    ]);
    resume.extend(["--batch", "8", "--eval-every", "20", "--resume", s(&run)]);
    refused(sfnap(&resume), &["model.gpt.width differs", "only --steps may change"]);
    std::fs::write(&file, text() + "Zebras!").unwrap();
    let mut again = resume.clone();
    let width = again.iter().position(|a| *a == "64").unwrap();
    again[width] = "96";
    refused(sfnap(&again), &["corpus.txt has changed since"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The program between the README's `numpy-export-example` markers.
fn readme_numpy_example() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- numpy-export-example -->")
        .expect("README: the example's marker");
    let block = &readme[start..];
    let code = &block[block.find("```python\n").expect("README: the example's python block") + 10..];
    code[..code.find("```").unwrap()].to_string()
}

/// A python3 that imports numpy: on the PATH, or the system's (`make setup` installs python3-numpy).
fn python_with_numpy() -> &'static str {
    for py in ["python3", "/usr/bin/python3"] {
        let has = Command::new(py).args(["-c", "import numpy"]).output();
        if has.is_ok_and(|o| o.status.success()) {
            return py;
        }
    }
    panic!(
        "no python3 imports numpy (tried python3 and /usr/bin/python3): run `make setup`, which installs python3-numpy"
    );
}

#[test]
fn an_mlp_trained_on_a_csv_file_evaluates_and_exports_for_numpy() {
    let python = python_with_numpy();
    let dir = empty_dir("csv");
    let file = dir.join("shapes.csv");
    std::fs::write(&file, csv_rows(300, 1)).unwrap();
    let data = format!("csv:{}", s(&file));
    let run = dir.join("run");
    let train = [
        "train",
        "--data",
        &data,
        "--hidden",
        "64,64",
        "--steps",
        "60",
        "--eval-every",
        "60",
    ];
    let out = ok(sfnap(&[&train[..], &["--out", s(&run)]].concat()));
    assert!(out.contains("eval accuracy"), "{out}");

    let other = dir.join("other.csv");
    std::fs::write(&other, csv_rows(90, 2)).unwrap();
    let json = ok(sfnap(&[
        "eval",
        s(&run),
        "--data",
        &format!("csv:{}", s(&other)),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!((v["step"].as_u64(), v["rows"].as_u64()), (Some(60), Some(90)), "{json}");
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "{json}");
    let own = ok(sfnap(&["eval", s(&run), "--json"]));
    assert!(own.contains("\"accuracy\"") && !own.contains("rows"), "{own}");

    let export = dir.join("export");
    ok(sfnap(&["export", s(&run), s(&export)]));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["format"], sfnap::train::EXPORT_FORMAT);
    assert_eq!(model["data"]["classes"], serde_json::json!(["large", "small", "tall"]));
    assert_eq!(model["tensors"]["l0.weight"], serde_json::json!([3, 64]));
    assert_eq!(
        model["data"]["features"],
        serde_json::json!(["width", "height", "depth"])
    );
    let program = dir.join("forward.py");
    std::fs::write(&program, readme_numpy_example()).unwrap();
    let o = Command::new(python)
        .args([s(&program), s(&export), s(&other)])
        .output()
        .unwrap();
    let printed = ok(o);
    let numpy: f64 = printed.trim().strip_prefix("accuracy ").unwrap().parse().unwrap();
    // f32 on the GPU against f64 in numpy: a row at a near-tie may go either way.
    assert!(
        (numpy - accuracy).abs() <= 1.0 / 90.0 + 1e-9,
        "numpy {numpy}, sfnap eval {accuracy}"
    );

    // The held-out split and the label column follow --eval-frac and --label.
    let by_index = [
        "train",
        "--data",
        &data,
        "--label",
        "3",
        "--eval-frac",
        "0.5",
        "--steps",
        "2",
    ];
    ok(sfnap(&[&by_index[..], &["--eval-every", "2"]].concat()));
    refused(
        sfnap(&["train", "--data", &data, "--label", "colour"]),
        &["label", "no header column named `colour`"],
    );
    refused(
        sfnap(&["eval", s(&run), "--data", &format!("text:{}", s(&file))]),
        &["this run trained an mlp"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_bad_file_gets_one_line_naming_file_line_and_column() {
    let dir = empty_dir("bad");
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "ragged.csv",
            b"a,b,label\n1,2,x\n3,y\n",
            "line 3, column 3: 2 fields, but line 1 has 3",
        ),
        (
            "word.csv",
            b"1,2,x\n3,four,y\n",
            "line 2, column 2: `four` is not a finite number",
        ),
        (
            "one.csv",
            b"a,b,label\n1,2,x\n3,4,x\n",
            "line 2, column 3: every row has the label `x`",
        ),
        ("empty.csv", b"", "line 1, column 1: the file is empty"),
        (
            "bytes.csv",
            b"1,2,x\n3,\xc3,y\n",
            "line 2, column 3: invalid UTF-8 (byte 0xc3 at byte offset 8",
        ),
        (
            "bytes.txt",
            b"The cat\nsat \xff on",
            "line 2, column 5: invalid UTF-8 (byte 0xff at byte offset 12",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (model, kind) = if name.ends_with(".txt") {
            ("gpt", "text")
        } else {
            ("mlp", "csv")
        };
        let data = format!("{kind}:{}", s(&path));
        let o = sfnap(&["train", "--model", model, "--data", &data]);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        refused(o, &[&format!("error: {}: {message}", s(&path))]);
    }
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    refused(
        sfnap(&["train", "--model", "gpt", "--data", &format!("text:{}", s(&empty))]),
        &[s(&empty), "line 1, column 1: the file is empty"],
    );
    refused(
        sfnap(&["train", "--data", "csv:/nonexistent/sfnap.csv"]),
        &["/nonexistent/sfnap.csv"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sizes_are_checked_and_a_size_of_the_other_model_is_refused() {
    let dir = empty_dir("sizes");
    let file = dir.join("corpus.txt");
    std::fs::write(&file, text()).unwrap();
    let text = format!("text:{}", s(&file));
    let gpt = ["train", "--model", "gpt", "--data", &text];
    refused(
        sfnap(&[&gpt[..], &["--hidden", "64"]].concat()),
        &["hidden", "sizes the mlp"],
    );
    refused(
        sfnap(&[&gpt[..], &["--width", "96", "--heads", "5"]].concat()),
        &["heads", "5 heads do not divide the width 96"],
    );
    refused(
        sfnap(&[&gpt[..], &["--layers", "0"]].concat()),
        &["layers", "0 is not between 1"],
    );
    refused(
        sfnap(&[&gpt[..], &["--label", "x"]].concat()),
        &["label", "csv:PATH only"],
    );
    refused(sfnap(&[&gpt[..], &["--eval-frac", "1.5"]].concat()), &["eval-frac"]);
    refused(
        sfnap(&["train", "--data", "digits", "--width", "8"]),
        &["width", "sizes the gpt"],
    );
    refused(
        sfnap(&["train", "--data", "digits", "--hidden", "64,0"]),
        &["hidden", "0 is not between 1"],
    );
    refused(
        sfnap(&["train", "--data", "digits", "--eval-frac", "0.2"]),
        &["eval-frac", "text:PATH and csv:PATH only"],
    );
    refused(
        sfnap(&["train", "--data", &text]),
        &["model", "--model mlp does not train on --data text:"],
    );
    // A context the text's held-out tail cannot hold.
    refused(
        sfnap(&[&gpt[..], &["--context", "4000", "--steps", "1"]].concat()),
        &[s(&file), "held-out tail has", "a context of 4000"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
