//! Checkpoints in safetensors: every tensor of a run (weights, BN statistics, gate state,
//! optimizer state) plus string metadata (model, dataset, stage, epoch, config). Written to a
//! temporary file and renamed, so a killed run never leaves a torn checkpoint.

use crate::models::Model;
use crate::nn::{Optimizer, SiteMode};
use crate::{Error, Result, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub meta: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn put(&mut self, name: &str, t: &Tensor) -> Result<()> {
        self.tensors
            .insert(name.to_string(), (t.shape().to_vec(), t.to_vec()?));
        Ok(())
    }

    /// Copy the stored tensor `name` into `t` (same shape required).
    pub fn restore(&self, name: &str, t: &Tensor) -> Result<()> {
        let (shape, data) = self.tensors.get(name).ok_or_else(|| {
            Error::Invalid(format!(
                "checkpoint has no tensor '{name}': was it written by another model or stage?"
            ))
        })?;
        if shape != t.shape() {
            return Err(Error::Invalid(format!(
                "checkpoint tensor '{name}' has shape {shape:?} but the model expects {:?}",
                t.shape()
            )));
        }
        t.copy_from_host(data)
    }

    pub fn meta(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::Invalid(format!("checkpoint metadata has no '{key}'")))
    }

    /// Write atomically: a temporary file in the same folder, flushed, then renamed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(k, (shape, data))| {
                let v = TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(data))
                    .map_err(|e| Error::Invalid(format!("checkpoint tensor {k}: {e}")))?;
                Ok((k.clone(), v))
            })
            .collect::<Result<_>>()?;
        let meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
        let bytes = safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::Invalid(format!("serialising checkpoint: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        }
        let tmp = path.with_extension("safetensors.tmp");
        let io = |e: std::io::Error| {
            Error::Invalid(format!("writing checkpoint {}: {e}", path.display()))
        };
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Invalid(format!("cannot read checkpoint {}: {e}", path.display()))
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{} is not a valid safetensors checkpoint (truncated or corrupt?): {e}",
                path.display()
            ))
        })?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let mut ck = Checkpoint {
            meta: header
                .metadata()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            ..Default::default()
        };
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::Invalid(format!(
                    "{}: tensor {name} is {:?}, expected F32",
                    path.display(),
                    view.dtype()
                )));
            }
            ck.tensors.insert(
                name,
                (
                    view.shape().to_vec(),
                    bytemuck::pod_collect_to_vec(view.data()),
                ),
            );
        }
        Ok(ck)
    }

    /// Weights, BN statistics and every gated site's state.
    pub fn put_model(&mut self, model: &dyn Model) -> Result<()> {
        for (i, p) in model.params().iter().enumerate() {
            self.put(&format!("param.{i:04}"), p)?;
        }
        for (i, b) in model.buffers().iter().enumerate() {
            self.put(&format!("buffer.{i:04}"), b)?;
        }
        for (i, s) in model.sites().iter().enumerate() {
            if let SiteMode::Gated(g) = &s.mode {
                self.put(&format!("site.{i:02}.gate"), &g.gate)?;
                self.put(&format!("site.{i:02}.mask"), &g.mask)?;
                self.put(&format!("site.{i:02}.coef"), &g.coef)?;
                if let Some((m, v)) = &g.stats {
                    self.put(&format!("site.{i:02}.mean"), m)?;
                    self.put(&format!("site.{i:02}.var"), v)?;
                }
            }
        }
        self.meta.insert("model".into(), model.name().to_string());
        Ok(())
    }

    /// Restore weights and BN statistics; gated sites too when `sites` (they must already be
    /// installed with the same configuration).
    pub fn restore_model(&self, model: &dyn Model, sites: bool) -> Result<()> {
        if let Some(name) = self.meta.get("model") {
            if name != model.name() {
                return Err(Error::Invalid(format!(
                    "checkpoint is of model {name}, not {}",
                    model.name()
                )));
            }
        }
        for (i, p) in model.params().iter().enumerate() {
            self.restore(&format!("param.{i:04}"), p)?;
        }
        for (i, b) in model.buffers().iter().enumerate() {
            self.restore(&format!("buffer.{i:04}"), b)?;
        }
        if sites {
            for (i, s) in model.sites().iter().enumerate() {
                if let SiteMode::Gated(g) = &s.mode {
                    self.restore(&format!("site.{i:02}.gate"), &g.gate)?;
                    if !std::ptr::eq(g.gate.storage().as_ref(), g.mask.storage().as_ref()) {
                        self.restore(&format!("site.{i:02}.mask"), &g.mask)?;
                    }
                    self.restore(&format!("site.{i:02}.coef"), &g.coef)?;
                    if let Some((m, v)) = &g.stats {
                        self.restore(&format!("site.{i:02}.mean"), m)?;
                        self.restore(&format!("site.{i:02}.var"), v)?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn put_optimizer(&mut self, opt: &Optimizer) -> Result<()> {
        for (name, t) in opt.state_tensors() {
            self.put(&format!("opt.{name}"), &t)?;
        }
        self.meta
            .insert("opt.steps".into(), opt.steps().to_string());
        Ok(())
    }

    pub fn restore_optimizer(&self, opt: &mut Optimizer) -> Result<()> {
        for (name, t) in opt.state_tensors() {
            self.restore(&format!("opt.{name}"), &t)?;
        }
        let steps = self
            .meta("opt.steps")?
            .parse()
            .map_err(|_| Error::Invalid("checkpoint opt.steps is not a number".into()))?;
        opt.set_steps(steps);
        Ok(())
    }
}
