//! A Burn module as sfnap sees it: its float parameters in visiting order
//! (path, id, shape), the module types along the way, and the NaP groups that
//! structure implies.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use sfnap::arena::TensorSpec;
use sfnap::nap::{NapConfig, NapGroup};

/// One float parameter of a module.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// Its path: the field names from the module down, joined by dots
    /// (`layers.0.linear.weight`); sfnap's name for the tensor.
    pub path: String,
    /// Burn's id of the parameter.
    pub id: ParamId,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// The tensor sfnap steps: weight decay for matrices and larger, none for
    /// vectors (biases, norm gains and offsets).
    pub fn spec(&self) -> TensorSpec {
        let spec = TensorSpec::new(&self.path, &self.shape);
        if self.shape.len() >= 2 {
            spec
        } else {
            spec.no_decay()
        }
    }
}

/// The float parameters and the module types of `module`.
#[derive(Debug, Clone)]
pub struct Structure {
    /// The parameters that take gradients, in visiting order.
    pub params: Vec<ParamInfo>,
    /// Each module's path (`""` for the root) and type (`Linear`, `LayerNorm`, `Vec`).
    types: HashMap<String, String>,
    /// Each module's sub-modules, in order.
    children: HashMap<String, Vec<String>>,
}

impl Structure {
    /// Visits `module` (parameters that do not require gradients are left out:
    /// sfnap does not step them).
    pub fn of<M: Module>(module: &M) -> Structure {
        let mut v = Visitor::default();
        module.visit(&mut v);
        Structure {
            params: v.params,
            types: v.types,
            children: v.children,
        }
    }

    /// The NaP groups of the module's structure: wherever a `Linear` is followed,
    /// as the next field of the same module, by a `LayerNorm` (the norm before the
    /// nonlinearity that NaP asks for), the Linear's weight is one group and the
    /// LayerNorm's gain and offset another, each projected back to its initial
    /// norm after every step. The Linear's bias, which the norm's mean removes,
    /// is left as it is. Burn's modules do not record what runs between them, so
    /// this is the field order, not the forward pass: check the groups found
    /// (`Optimized::nap`) or name them yourself.
    pub fn nap_groups(&self) -> NapConfig {
        let has = |path: &str| self.params.iter().any(|p| p.path == path);
        let mut found: Vec<(usize, NapGroup)> = Vec::new();
        for (parent, kids) in &self.children {
            for pair in kids.windows(2) {
                let (a, b) = (join(parent, &pair[0]), join(parent, &pair[1]));
                if self.type_of(&a) != Some("Linear") || self.type_of(&b) != Some("LayerNorm") {
                    continue;
                }
                let weight = format!("{a}.weight");
                let norm: Vec<String> = ["gamma", "beta"]
                    .iter()
                    .map(|f| format!("{b}.{f}"))
                    .filter(|p| has(p))
                    .collect();
                let at = self.params.iter().position(|p| p.path == weight);
                if let Some(at) = at {
                    found.push((at, group(vec![weight])));
                    if !norm.is_empty() {
                        found.push((at, group(norm)));
                    }
                }
            }
        }
        // In the order of the parameters (a stable sort keeps a weight before its norm).
        found.sort_by_key(|(at, _)| *at);
        NapConfig {
            groups: found.into_iter().map(|(_, g)| g).collect(),
        }
    }

    /// The type of the module at `path` (`Linear`), as its derive names it.
    fn type_of(&self, path: &str) -> Option<&str> {
        self.types.get(path).map(String::as_str)
    }
}

fn group(tensors: Vec<String>) -> NapGroup {
    NapGroup { tensors, rho: None }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// Collects parameters, module types and children while Burn walks the module.
#[derive(Default)]
struct Visitor {
    path: Vec<String>,
    params: Vec<ParamInfo>,
    types: HashMap<String, String>,
    children: HashMap<String, Vec<String>>,
}

impl ModuleVisitor for Visitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // Burn names the type of the module whose field is entered: `Struct:Linear`.
        let parent = self.path.join(".");
        let ty = container_type.strip_prefix("Struct:").unwrap_or(container_type);
        self.types.entry(parent.clone()).or_insert_with(|| ty.to_string());
        let kids = self.children.entry(parent).or_default();
        if !kids.iter().any(|k| k == name) {
            kids.push(name.to_string());
        }
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        if !tensor.is_require_grad() {
            return;
        }
        self.params.push(ParamInfo {
            path: self.path.join("."),
            id: param.id,
            shape: tensor.dims().to_vec(),
        });
    }
}
