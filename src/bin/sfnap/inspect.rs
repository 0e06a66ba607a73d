//! `sfnap inspect update`: the update functions of a run's optimizer (see
//! `sfnap::optim::update_function`) at its checkpoints, or at several moments
//! of the run made again from its settings; a PNG, CSVs and `--json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::out::say;
use sfnap::gpu::{BackendChoice, Gpu};
use sfnap::optim::update_function::{linspace, sample, TensorSlope, Update, UpdateFunctions};
use sfnap::plot::{chart_grid, Chart, Series};
use sfnap::train::{checkpoint_moment, resume_settings, run_moments, Moment};
use sfnap::Error;

/// What `sfnap inspect` looks at.
#[derive(clap::Subcommand)]
pub enum InspectCommand {
    /// The update each chosen tensor's element would get as a function of its gradient g,
    /// with the optimizer frozen at a run's checkpoints or at --at steps of the run made again
    /// (see docs/update-functions.md).
    Update(Box<UpdateArgs>),
}

/// The flags of `sfnap inspect update`.
#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Run directories (or their checkpoint files), one moment each: the optimizer at the
    /// checkpoint, with the gradient and loss of the step the run would take next.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Instead of the checkpoint: train the one run's settings again from step 0 and take a
    /// moment after each of these step counts (increasing; 0: before the first step).
    #[arg(long, value_delimiter = ',', value_name = "STEP,STEP,...")]
    at: Option<Vec<u64>>,
    /// A tensor to draw (repeat for more) [default: every tensor named *.weight].
    #[arg(long = "tensor", value_name = "NAME")]
    tensors: Vec<String>,
    /// The element of each tensor to draw [default: the one with the largest |g| at the
    /// last moment].
    #[arg(long)]
    index: Option<usize>,
    /// Sweep g over +-RANGE times the element's gradient scale at the last moment (sqrt(v_hat)
    /// for the Adam kinds, whose update saturates from about 30 of it with beta2 = 0.999; else
    /// the root mean square of its tensor's gradient).
    #[arg(long, default_value_t = 100.0)]
    range: f64,
    /// Values of g in the sweep.
    #[arg(long, default_value_t = 101)]
    points: usize,
    /// Elements per tensor (evenly spaced) over which the slope at g = 0 and the effective
    /// learning rate are averaged.
    #[arg(long, default_value_t = 64)]
    sample: usize,
    /// Write update.png, update.csv and slopes.csv (and slopes.png with two moments or more) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the numbers as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One tensor's element, drawn at every moment.
#[derive(serde::Serialize)]
struct Curve {
    tensor: String,
    index: usize,
    /// Per moment: the sweep.
    sweeps: Vec<Vec<Update>>,
    /// Per moment: the element's slope at g = 0.
    slopes: Vec<Update>,
}

/// One moment's numbers.
#[derive(serde::Serialize)]
struct MomentReport {
    step: u64,
    deviation: f64,
    tensors: Vec<TensorSlope>,
}

/// Everything `--json` prints.
#[derive(serde::Serialize)]
struct Report {
    kind: String,
    moments: Vec<MomentReport>,
    curves: Vec<Curve>,
}

/// `sfnap inspect ...`.
pub fn inspect_main(backend: BackendChoice, command: &InspectCommand) -> Result<(), Error> {
    match command {
        InspectCommand::Update(args) => update_main(backend, args),
    }
}

fn update_main(backend: BackendChoice, a: &UpdateArgs) -> Result<(), Error> {
    if a.out.is_none() && !a.json {
        return Err(Error::invalid(
            "out",
            "give --out DIR, --json or both: nothing would be written",
        ));
    }
    if !(a.range.is_finite() && a.range > 0.0) {
        return Err(Error::invalid("range", format!("{} is not a number above 0", a.range)));
    }
    if a.points < 2 {
        return Err(Error::invalid("points", format!("{} is below 2", a.points)));
    }
    if a.sample == 0 {
        return Err(Error::invalid("sample", "must be at least 1"));
    }
    let gpu = Gpu::new(backend)?;
    let moments: Vec<Moment> = match &a.at {
        Some(at) => {
            let [input] = a.inputs.as_slice() else {
                return Err(Error::invalid("at", "takes one run directory: the run made again"));
            };
            let cfg = resume_settings(input)?;
            run_moments(&gpu, &cfg, at)?
        }
        None => a
            .inputs
            .iter()
            .map(|i| checkpoint_moment(&gpu, i))
            .collect::<Result<_, _>>()?,
    };
    let kind = moments[0].state.cfg.kind;
    let names: Vec<String> = moments[0].state.tensors.iter().map(|t| t.name.clone()).collect();
    if let Some(m) = moments
        .iter()
        .find(|m| m.state.tensors.iter().map(|t| &t.name).ne(names.iter()))
    {
        return Err(Error::invalid(
            "inputs",
            format!(
                "the run at step {} has other tensors than the first: give checkpoints of one model",
                m.step
            ),
        ));
    }
    let chosen: Vec<String> = if a.tensors.is_empty() {
        names.iter().filter(|n| n.ends_with(".weight")).cloned().collect()
    } else {
        a.tensors.clone()
    };
    let lens: Vec<usize> = chosen
        .iter()
        .map(|t| {
            let i = names.iter().position(|n| n == t).ok_or_else(|| {
                Error::invalid(
                    "tensor",
                    format!("no tensor `{t}` in this run (its tensors: {})", names.join(", ")),
                )
            })?;
            Ok(moments[0].state.tensors[i].y.len())
        })
        .collect::<Result<_, Error>>()?;
    let frozen: Vec<UpdateFunctions> = moments
        .iter()
        .map(|m| UpdateFunctions::new(m.state.clone(), Some(m.grads.clone()), m.loss))
        .collect::<Result<_, _>>()?;
    let mut reports = Vec::new();
    for (m, f) in moments.iter().zip(&frozen) {
        let tensors = chosen
            .iter()
            .zip(&lens)
            .map(|(t, &n)| f.tensor_slope(t, &sample(n, a.sample)))
            .collect::<Result<Vec<_>, _>>()?;
        reports.push(MomentReport {
            step: m.step,
            deviation: m.deviation,
            tensors,
        });
    }
    let mut curves = Vec::new();
    for t in &chosen {
        let index = match a.index {
            Some(i) => i,
            None => largest_gradient(
                moments.last().map(|m| m.grads.as_slice()).unwrap_or_default(),
                &names,
                t,
            ),
        };
        let elements: Vec<_> = frozen.iter().map(|f| f.element(t, index)).collect::<Result<_, _>>()?;
        let scale = elements.last().map_or(1.0, |e| e.scale());
        let gs = linspace(-a.range * scale, a.range * scale, a.points);
        curves.push(Curve {
            tensor: t.clone(),
            index,
            sweeps: elements.iter().map(|e| e.sweep(&gs)).collect::<Result<_, _>>()?,
            slopes: elements.iter().map(|e| e.slope()).collect::<Result<_, _>>()?,
        });
    }
    let report = Report {
        kind: kind.to_string(),
        moments: reports,
        curves,
    };
    if let Some(dir) = &a.out {
        write_outputs(dir, &report)?;
    }
    if a.json {
        let text = serde_json::to_string(&report).map_err(|e| Error::json("the update functions", e))?;
        say!("{text}");
    } else {
        for m in &report.moments {
            say!(
                "step {} (the reference's step from the read-back state lands {:.1e} from the device's):",
                m.step,
                m.deviation
            );
            for t in &m.tensors {
                say!(
                    "  {}: slope at g = 0 of x {:.3e}, y {:.3e}, z {:.3e}; |z| {:.3}, effective lr {:.3e}",
                    t.tensor,
                    t.slope.x,
                    t.slope.y,
                    t.slope.z,
                    t.norm,
                    t.effective_lr
                );
            }
        }
    }
    Ok(())
}

/// The index of the element of tensor `name` with the largest |g| in `grads` (0 if none).
fn largest_gradient(grads: &[Vec<f64>], names: &[String], name: &str) -> usize {
    let Some(g) = names.iter().position(|n| n == name).and_then(|i| grads.get(i)) else {
        return 0;
    };
    g.iter()
        .enumerate()
        .fold(
            (0, -1.0),
            |best, (j, v)| if v.abs() > best.1 { (j, v.abs()) } else { best },
        )
        .0
}

/// `DIR/update.png`, `update.csv`, `slopes.csv` and with two moments or more `slopes.png`.
fn write_outputs(dir: &Path, report: &Report) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let steps: Vec<u64> = report.moments.iter().map(|m| m.step).collect();
    let mut csv = String::from("step,tensor,index,g,dx,dy,dz\n");
    let titles: Vec<[String; 2]> = report
        .curves
        .iter()
        .flat_map(|c| {
            ["x", "y", "z"].map(|seq| {
                [
                    format!("{} {}[{}]: update of {seq}", report.kind, c.tensor, c.index),
                    format!("change of {seq}"),
                ]
            })
        })
        .collect();
    let mut panels = Vec::new();
    for (ci, c) in report.curves.iter().enumerate() {
        for pick in 0..3 {
            let series = c
                .sweeps
                .iter()
                .zip(&steps)
                .enumerate()
                .map(|(i, (sweep, step))| Series {
                    name: format!("step {step}"),
                    points: sweep.iter().map(|u| (u.g, [u.x, u.y, u.z][pick])).collect(),
                    color: i,
                    faint: false,
                })
                .collect();
            panels.push((
                Chart {
                    title: &titles[3 * ci + pick][0],
                    x_label: "g",
                    y_label: &titles[3 * ci + pick][1],
                    log_y: false,
                },
                series,
            ));
        }
        for (sweep, step) in c.sweeps.iter().zip(&steps) {
            for u in sweep {
                let _ = writeln!(
                    csv,
                    "{step},{},{},{:e},{:e},{:e},{:e}",
                    c.tensor, c.index, u.g, u.x, u.y, u.z
                );
            }
        }
    }
    sfnap::output::write_atomic(&dir.join("update.csv"), csv.as_bytes())?;
    chart_grid(&dir.join("update.png"), "sfnap inspect update", &panels, 3)?;
    let mut slopes = String::from("step,tensor,elements,slope_x,slope_y,slope_z,norm,effective_lr\n");
    for m in &report.moments {
        for t in &m.tensors {
            let _ = writeln!(
                slopes,
                "{},{},{},{:e},{:e},{:e},{:e},{:e}",
                m.step, t.tensor, t.elements, t.slope.x, t.slope.y, t.slope.z, t.norm, t.effective_lr
            );
        }
    }
    sfnap::output::write_atomic(&dir.join("slopes.csv"), slopes.as_bytes())?;
    if report.moments.len() >= 2 {
        let tensors: Vec<&str> = report.moments[0].tensors.iter().map(|t| t.tensor.as_str()).collect();
        let line = |f: fn(&TensorSlope) -> f64| -> Vec<Series> {
            tensors
                .iter()
                .enumerate()
                .map(|(i, name)| Series {
                    name: name.to_string(),
                    points: report
                        .moments
                        .iter()
                        .filter_map(|m| {
                            m.tensors
                                .iter()
                                .find(|t| t.tensor == *name)
                                .map(|t| (m.step as f64, f(t)))
                        })
                        .collect(),
                    color: i,
                    faint: false,
                })
                .collect()
        };
        let panels = vec![
            (
                Chart {
                    title: "-(slope of x at g = 0)",
                    x_label: "step",
                    y_label: "-dx/dg",
                    log_y: true,
                },
                line(|t| -t.slope.x),
            ),
            (
                Chart {
                    title: "effective lr: -(slope of z) / |z|^2",
                    x_label: "step",
                    y_label: "effective lr",
                    log_y: true,
                },
                line(|t| t.effective_lr),
            ),
        ];
        chart_grid(
            &dir.join("slopes.png"),
            &format!("{}: slopes over training", report.kind),
            &panels,
            2,
        )?;
    }
    Ok(())
}
