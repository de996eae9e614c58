//! The set of scenarios a run can use: the built-in library plus any user directories.

use std::path::Path;
use std::sync::Arc;

use firedrill_alerting::{ParsedExprs, parse_exprs};

use crate::incident::{Incident, StartError};
use crate::instantiate::{Instance, alert_exprs, instantiate_with};
use crate::load::{Diagnostic, LoadError, load_file, parse_scenario, scenario_files};
use crate::model::Scenario;

/// Scenarios by id, in a stable order (built-ins first, in library order; then user files by path).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    scenarios: Vec<Scenario>,
    /// Every scenario's alert expressions, parsed once: an instance compiles its rules at every start, and
    /// parsing PromQL is most of that.
    parsed: Arc<ParsedExprs>,
}

/// Errors building or using a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Two scenarios share an id.
    #[error("duplicate scenario id {0:?}")]
    Duplicate(String),
    /// No scenario with this id.
    #[error("unknown scenario {id:?} (known: {known})")]
    Unknown {
        /// Asked for.
        id: String,
        /// Known ids.
        known: String,
    },
    /// The instance could not be built.
    #[error("{0}")]
    Instance(String),
    /// The incident could not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

impl Catalog {
    /// The built-in library. The embedded files are validated by the test suite.
    pub fn builtin() -> Result<Catalog, Vec<Diagnostic>> {
        let mut scenarios = Vec::new();
        let mut diags = Vec::new();
        for (name, text) in crate::library::SCENARIOS {
            match parse_scenario(&format!("builtin:{name}"), text) {
                Ok(s) => scenarios.push(s),
                Err(d) => diags.extend(d),
            }
        }
        if diags.is_empty() {
            let mut catalog = Catalog {
                scenarios,
                parsed: Arc::default(),
            };
            catalog.parse_alerts();
            Ok(catalog)
        } else {
            Err(diags)
        }
    }

    /// Adds every scenario file under a path.
    pub fn add_path(&mut self, path: &Path) -> Result<(), CatalogError> {
        for file in scenario_files(path)? {
            let s = load_file(&file)?;
            if self.get(&s.id).is_some() {
                return Err(CatalogError::Duplicate(s.id));
            }
            self.scenarios.push(s);
        }
        self.parse_alerts();
        Ok(())
    }

    /// Parses the alert expressions of every scenario.
    fn parse_alerts(&mut self) {
        self.parsed = Arc::new(parse_exprs(
            self.scenarios.iter().flat_map(|s| alert_exprs(s)),
        ));
    }

    /// All scenarios.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// A scenario by id.
    pub fn get(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id == id)
    }

    /// A scenario by id, or an error listing the known ids.
    pub fn require(&self, id: &str) -> Result<&Scenario, CatalogError> {
        self.get(id).ok_or_else(|| CatalogError::Unknown {
            id: id.to_string(),
            known: self
                .scenarios
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Builds an instance.
    pub fn instance(
        &self,
        id: &str,
        seed: u64,
        difficulty: f64,
    ) -> Result<Arc<Instance>, CatalogError> {
        let s = self.require(id)?;
        instantiate_with(s, seed, difficulty, &self.parsed)
            .map(Arc::new)
            .map_err(|e| {
                CatalogError::Instance(
                    e.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
    }

    /// Builds an instance and runs it to the page.
    pub fn start(&self, id: &str, seed: u64, difficulty: f64) -> Result<Incident, CatalogError> {
        Ok(Incident::start(self.instance(id, seed, difficulty)?)?)
    }

    /// [`Catalog::start`], reusing what can be reused of a finished incident ([`Incident::start_recycling`]):
    /// the same incident, started with less work.
    pub fn start_recycling(
        &self,
        id: &str,
        seed: u64,
        difficulty: f64,
        previous: Option<Incident>,
    ) -> Result<Incident, CatalogError> {
        Ok(Incident::start_recycling(
            self.instance(id, seed, difficulty)?,
            previous,
        )?)
    }
}
