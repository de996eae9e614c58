//! The compiled topology: services and edges by index, checked and ordered for the simulation.

use std::collections::BTreeMap;

use crate::spec::{Behaviour, ClusterSpec, Qos, ServiceKind, ServiceSpec, TopologySpec};

/// Index of a service in its topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub u16);

impl ServiceId {
    /// As an index into per-service arrays.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One segment of a path into a spec document (`services[2].calls[0].to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into a spec document, so that a loader can point at the exact line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecPath(pub Vec<PathSeg>);

impl SpecPath {
    /// The empty path (the document root).
    pub fn root() -> SpecPath {
        SpecPath(Vec::new())
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> SpecPath {
        let mut segs = self.0.clone();
        segs.push(PathSeg::Key(key.to_string()));
        SpecPath(segs)
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> SpecPath {
        let mut segs = self.0.clone();
        segs.push(PathSeg::Index(index));
        SpecPath(segs)
    }
}

impl std::fmt::Display for SpecPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) if i == 0 => write!(f, "{k}")?,
                PathSeg::Key(k) => write!(f, ".{k}")?,
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem found while compiling a spec, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// Where in the document.
    pub path: SpecPath,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    /// A new error at `path`.
    pub fn new(path: SpecPath, message: impl Into<String>) -> SpecError {
        SpecError {
            path,
            message: message.into(),
        }
    }
}

/// A synchronous call edge, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Caller.
    pub from: ServiceId,
    /// Callee.
    pub to: ServiceId,
    /// Calls per request.
    pub per_request: f64,
    /// Timeout per attempt, in ms.
    pub timeout_ms: f64,
    /// Retries after a failed attempt.
    pub retries: u8,
    /// Connection pool size per caller replica.
    pub pool: Option<u32>,
    /// Extra hold time of a pooled connection per call, in ms.
    pub hold_ms: f64,
    /// Cache consulted first.
    pub via_cache: Option<ServiceId>,
}

/// A writer on a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    /// Publishing service.
    pub service: ServiceId,
    /// Nominal messages per second.
    pub rate_hz: f64,
    /// Offered contract.
    pub qos: Qos,
}

/// A reader on a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Reader {
    /// Subscribing service.
    pub service: ServiceId,
    /// Requested contract.
    pub qos: Qos,
    /// Messages per second one replica processes.
    pub capacity_hz_per_replica: f64,
}

/// A publish/subscribe topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Writers.
    pub writers: Vec<Writer>,
    /// Readers.
    pub readers: Vec<Reader>,
}

/// A compiled service: its spec plus indexes the simulation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The spec it came from.
    pub spec: ServiceSpec,
    /// Behaviour of each version, in `spec.versions` order.
    pub version_behaviours: Vec<Behaviour>,
    /// Indexes into [`Topology::edges`] of this service's outgoing calls.
    pub out_edges: Vec<usize>,
    /// Indexes into [`Topology::edges`] of calls made to this service.
    pub in_edges: Vec<usize>,
    /// Depth from the nearest entry point (entry points are 0; unreachable services are `u16::MAX`).
    pub depth: u16,
}

impl Service {
    /// The service name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The service kind.
    pub fn kind(&self) -> ServiceKind {
        self.spec.kind
    }

    /// Index of a version by name.
    pub fn version_index(&self, name: &str) -> Option<usize> {
        self.spec.versions.iter().position(|v| v.name == name)
    }

    /// Index of a flag by name.
    pub fn flag_index(&self, name: &str) -> Option<usize> {
        self.spec.flags.iter().position(|f| f.name == name)
    }
}

/// A traffic entry point, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Receiving service.
    pub service: ServiceId,
    /// Mean requests per second.
    pub rps: f64,
    /// Daily amplitude.
    pub daily_amplitude: f64,
    /// Per-tick relative noise.
    pub noise: f64,
}

/// The most replicas one service can run; per-replica state lives in fixed arrays of this size so that a tick
/// never allocates.
pub const MAX_REPLICAS: usize = 16;

/// The most versions one service can have: a replica names its version by a `u8` index.
pub const MAX_VERSIONS: usize = 256;

/// The most feature flags one service can have: the enabled ones are the bits of a `u64`.
pub const MAX_FLAGS: usize = 64;

/// A checked system, ready to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Seconds per tick.
    pub tick_s: f64,
    /// Services, by [`ServiceId`].
    pub services: Vec<Service>,
    /// Call edges, grouped by caller.
    pub edges: Vec<Edge>,
    /// Topics, by name order.
    pub topics: Vec<Topic>,
    /// Entry points.
    pub entries: Vec<Entry>,
    /// Services with every caller before its callees.
    pub call_order: Vec<ServiceId>,
    /// Cluster quota.
    pub cluster: ClusterSpec,
}

impl Topology {
    /// Checks a spec and compiles it. Reports every problem found, each with its path.
    pub fn compile(spec: &TopologySpec, base: &SpecPath) -> Result<Topology, Vec<SpecError>> {
        let mut errors = Vec::new();
        let services_path = base.key("services");
        let mut by_name: BTreeMap<&str, ServiceId> = BTreeMap::new();
        if spec.services.is_empty() {
            errors.push(SpecError::new(
                services_path.clone(),
                "a topology needs at least one service",
            ));
        }
        if spec.services.len() > u16::MAX as usize / 2 {
            errors.push(SpecError::new(services_path.clone(), "too many services"));
        }
        if !(spec.tick_s >= 1.0 && spec.tick_s <= 300.0) {
            errors.push(SpecError::new(
                base.key("tick_s"),
                "tick_s must be between 1 and 300 seconds",
            ));
        }
        for (i, s) in spec.services.iter().enumerate() {
            let p = services_path.index(i);
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                errors.push(SpecError::new(
                    p.key("name"),
                    format!(
                        "service name {:?} must be lowercase letters, digits and '-'",
                        s.name
                    ),
                ));
            }
            if by_name
                .insert(s.name.as_str(), ServiceId(i as u16))
                .is_some()
            {
                errors.push(SpecError::new(
                    p.key("name"),
                    format!("duplicate service name {:?}", s.name),
                ));
            }
            check_service(s, &p, &mut errors);
        }

        let mut edges = Vec::new();
        let mut out_edges = vec![Vec::new(); spec.services.len()];
        let mut in_edges = vec![Vec::new(); spec.services.len()];
        for (i, s) in spec.services.iter().enumerate() {
            let p = services_path.index(i);
            for (j, c) in s.calls.iter().enumerate() {
                let cp = p.key("calls").index(j);
                let Some(&to) = by_name.get(c.to.as_str()) else {
                    errors.push(SpecError::new(
                        cp.key("to"),
                        unknown_service(&c.to, &by_name),
                    ));
                    continue;
                };
                if to.index() == i {
                    errors.push(SpecError::new(cp.key("to"), "a service cannot call itself"));
                    continue;
                }
                let via_cache = match &c.via_cache {
                    None => None,
                    Some(name) => match by_name.get(name.as_str()) {
                        Some(&id) if spec.services[id.index()].kind == ServiceKind::Cache => {
                            Some(id)
                        }
                        Some(_) => {
                            errors.push(SpecError::new(
                                cp.key("via_cache"),
                                format!("{name:?} is not a service of kind cache"),
                            ));
                            None
                        }
                        None => {
                            errors.push(SpecError::new(
                                cp.key("via_cache"),
                                unknown_service(name, &by_name),
                            ));
                            None
                        }
                    },
                };
                if !(c.per_request > 0.0 && c.per_request <= 50.0) {
                    errors.push(SpecError::new(
                        cp.key("per_request"),
                        "per_request must be in (0, 50]",
                    ));
                }
                if !(c.timeout_ms > 0.0 && c.timeout_ms <= 600_000.0) {
                    errors.push(SpecError::new(
                        cp.key("timeout_ms"),
                        "timeout_ms must be in (0, 600000]",
                    ));
                }
                if c.retries > 10 {
                    errors.push(SpecError::new(cp.key("retries"), "at most 10 retries"));
                }
                if c.pool == Some(0) {
                    errors.push(SpecError::new(
                        cp.key("pool"),
                        "a pool needs at least one connection",
                    ));
                }
                if !(c.hold_ms >= 0.0 && c.hold_ms.is_finite()) {
                    errors.push(SpecError::new(
                        cp.key("hold_ms"),
                        "hold_ms must be a finite number >= 0",
                    ));
                }
                let e = edges.len();
                out_edges[i].push(e);
                in_edges[to.index()].push(e);
                edges.push(Edge {
                    from: ServiceId(i as u16),
                    to,
                    per_request: c.per_request,
                    timeout_ms: c.timeout_ms,
                    retries: c.retries,
                    pool: c.pool,
                    hold_ms: c.hold_ms,
                    via_cache,
                });
            }
        }

        let mut topics: BTreeMap<String, Topic> = BTreeMap::new();
        for (i, s) in spec.services.iter().enumerate() {
            let p = services_path.index(i);
            for (j, w) in s.publishes.iter().enumerate() {
                if !(w.rate_hz >= 0.0 && w.rate_hz.is_finite()) {
                    errors.push(SpecError::new(
                        p.key("publishes").index(j).key("rate_hz"),
                        "rate must be >= 0",
                    ));
                }
                topic_entry(&mut topics, &w.topic)
                    .writers
                    .push(crate::topology::Writer {
                        service: ServiceId(i as u16),
                        rate_hz: w.rate_hz,
                        qos: w.qos,
                    });
            }
            for (j, r) in s.subscribes.iter().enumerate() {
                if !(r.capacity_hz_per_replica > 0.0 && r.capacity_hz_per_replica.is_finite()) {
                    errors.push(SpecError::new(
                        p.key("subscribes").index(j).key("capacity_hz_per_replica"),
                        "capacity must be > 0",
                    ));
                }
                topic_entry(&mut topics, &r.topic).readers.push(Reader {
                    service: ServiceId(i as u16),
                    qos: r.qos,
                    capacity_hz_per_replica: r.capacity_hz_per_replica,
                });
            }
        }
        for (i, s) in spec.services.iter().enumerate() {
            for (j, r) in s.subscribes.iter().enumerate() {
                if topics.get(&r.topic).is_some_and(|t| t.writers.is_empty()) {
                    errors.push(SpecError::new(
                        services_path
                            .index(i)
                            .key("subscribes")
                            .index(j)
                            .key("topic"),
                        format!("no service publishes topic {:?}", r.topic),
                    ));
                }
            }
        }

        let mut entries = Vec::new();
        let entries_path = base.key("entrypoints");
        if spec.entrypoints.is_empty() {
            errors.push(SpecError::new(
                entries_path.clone(),
                "a topology needs at least one entry point",
            ));
        }
        for (i, e) in spec.entrypoints.iter().enumerate() {
            let p = entries_path.index(i);
            let Some(&service) = by_name.get(e.service.as_str()) else {
                errors.push(SpecError::new(
                    p.key("service"),
                    unknown_service(&e.service, &by_name),
                ));
                continue;
            };
            if !(e.rps > 0.0 && e.rps <= 1e7) {
                errors.push(SpecError::new(p.key("rps"), "rps must be in (0, 1e7]"));
            }
            if !(0.0..1.0).contains(&e.daily_amplitude) {
                errors.push(SpecError::new(
                    p.key("daily_amplitude"),
                    "daily_amplitude must be in [0, 1)",
                ));
            }
            if !(0.0..=0.5).contains(&e.noise) {
                errors.push(SpecError::new(p.key("noise"), "noise must be in [0, 0.5]"));
            }
            entries.push(Entry {
                service,
                rps: e.rps,
                daily_amplitude: e.daily_amplitude,
                noise: e.noise,
            });
        }

        let call_order = match topological_order(spec.services.len(), &edges) {
            Some(order) => order,
            None => {
                errors.push(SpecError::new(
                    services_path.clone(),
                    "the call graph has a cycle",
                ));
                Vec::new()
            }
        };

        if !errors.is_empty() {
            return Err(errors);
        }

        let depths = depths(spec.services.len(), &edges, &entries, &topics);
        let services = spec
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| Service {
                spec: s.clone(),
                version_behaviours: s.versions.iter().map(|v| v.behaviour).collect(),
                out_edges: std::mem::take(&mut out_edges[i]),
                in_edges: std::mem::take(&mut in_edges[i]),
                depth: depths[i],
            })
            .collect();
        Ok(Topology {
            tick_s: spec.tick_s,
            services,
            edges,
            topics: topics.into_values().collect(),
            entries,
            call_order,
            cluster: spec.cluster,
        })
    }

    /// Looks a service up by name.
    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.spec.name == name)
            .map(|i| ServiceId(i as u16))
    }

    /// The service with this id.
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.index()]
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there are no services (never true for a compiled topology).
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Names of all services, in id order.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.spec.name.as_str())
    }

    /// Services that call `id` directly.
    pub fn callers(&self, id: ServiceId) -> impl Iterator<Item = ServiceId> + '_ {
        self.services[id.index()]
            .in_edges
            .iter()
            .map(|&e| self.edges[e].from)
    }

    /// Services that `id` calls directly.
    pub fn callees(&self, id: ServiceId) -> impl Iterator<Item = ServiceId> + '_ {
        self.services[id.index()]
            .out_edges
            .iter()
            .map(|&e| self.edges[e].to)
    }
}

fn topic_entry<'a>(topics: &'a mut BTreeMap<String, Topic>, name: &str) -> &'a mut Topic {
    topics.entry(name.to_string()).or_insert_with(|| Topic {
        name: name.to_string(),
        writers: Vec::new(),
        readers: Vec::new(),
    })
}

fn unknown_service(name: &str, known: &BTreeMap<&str, ServiceId>) -> String {
    let names: Vec<&str> = known.keys().copied().collect();
    format!("unknown service {name:?} (known: {})", names.join(", "))
}

fn check_service(s: &ServiceSpec, p: &SpecPath, errors: &mut Vec<SpecError>) {
    let mut bad = |key: &str, msg: &str| errors.push(SpecError::new(p.key(key), msg));
    if s.replicas as usize > MAX_REPLICAS {
        bad("replicas", &format!("at most {MAX_REPLICAS} replicas"));
    }
    if s.cpu_millis == 0 || s.cpu_millis > 64_000 {
        bad("cpu_millis", "cpu_millis must be in 1..=64000");
    }
    if s.memory_mb == 0 || s.memory_mb > 1_048_576 {
        bad("memory_mb", "memory_mb must be in 1..=1048576");
    }
    if !(s.capacity_rps > 0.0 && s.capacity_rps.is_finite()) {
        bad("capacity_rps", "capacity_rps must be > 0");
    }
    if !(s.latency_ms > 0.0 && s.latency_ms < 600_000.0) {
        bad("latency_ms", "latency_ms must be in (0, 600000)");
    }
    if !(s.latency_sigma > 0.0 && s.latency_sigma <= 3.0) {
        bad("latency_sigma", "latency_sigma must be in (0, 3]");
    }
    if !(0.0..1.0).contains(&s.error_ratio) {
        bad("error_ratio", "error_ratio must be in [0, 1)");
    }
    if !(s.base_memory_mb >= 0.0 && s.base_memory_mb.is_finite()) {
        bad("base_memory_mb", "base_memory_mb must be >= 0");
    }
    if !(s.memory_per_rps_mb >= 0.0 && s.memory_per_rps_mb.is_finite()) {
        bad("memory_per_rps_mb", "memory_per_rps_mb must be >= 0");
    }
    if !(s.startup_s >= 0.0 && s.startup_s <= 3600.0) {
        bad("startup_s", "startup_s must be in [0, 3600]");
    }
    if !(s.log_lines_per_s >= 0.0 && s.log_lines_per_s <= 1000.0) {
        bad("log_lines_per_s", "log_lines_per_s must be in [0, 1000]");
    }
    if let Some(a) = &s.autoscale {
        if a.min == 0 || a.min > a.max || a.max as usize > MAX_REPLICAS {
            bad(
                "autoscale",
                &format!("autoscale needs 1 <= min <= max <= {MAX_REPLICAS}"),
            );
        }
        if !(a.target_cpu > 0.0 && a.target_cpu <= 1.0) {
            bad("autoscale", "autoscale.target_cpu must be in (0, 1]");
        }
    }
    if let Some(r) = &s.rate_limit
        && !(r.rps_per_replica > 0.0 && r.burst >= 0.0)
    {
        bad(
            "rate_limit",
            "rate_limit needs rps_per_replica > 0 and burst >= 0",
        );
    }
    if let Some(d) = &s.disk
        && !(d.size_gb > 0.0
            && d.data_gb >= 0.0
            && d.data_gb < d.size_gb
            && (0.0..=1.0).contains(&d.write_ratio))
    {
        bad(
            "disk",
            "disk needs size_gb > data_gb >= 0 and write_ratio in [0, 1]",
        );
    }
    if s.versions.is_empty() {
        bad("versions", "a service needs at least one version");
    } else if s.versions.len() > MAX_VERSIONS {
        bad(
            "versions",
            &format!(
                "a service has at most {MAX_VERSIONS} versions (this one has {})",
                s.versions.len()
            ),
        );
    } else if !s.versions.iter().any(|v| v.name == s.version) {
        let names: Vec<&str> = s.versions.iter().map(|v| v.name.as_str()).collect();
        bad(
            "version",
            &format!(
                "unknown version {:?} (known: {})",
                s.version,
                names.join(", ")
            ),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in s.versions.iter().enumerate() {
        if !seen.insert(v.name.as_str()) {
            errors.push(SpecError::new(
                p.key("versions").index(i).key("name"),
                format!("duplicate version {:?}", v.name),
            ));
        }
        check_behaviour(
            &v.behaviour,
            &p.key("versions").index(i).key("behaviour"),
            errors,
        );
    }
    if s.flags.len() > MAX_FLAGS {
        errors.push(SpecError::new(
            p.key("flags"),
            format!(
                "a service has at most {MAX_FLAGS} flags (this one has {})",
                s.flags.len()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, f) in s.flags.iter().enumerate() {
        if !seen.insert(f.name.as_str()) {
            errors.push(SpecError::new(
                p.key("flags").index(i).key("name"),
                format!("duplicate flag {:?}", f.name),
            ));
        }
        check_behaviour(&f.when_on, &p.key("flags").index(i).key("when_on"), errors);
    }
    for (key, value) in &s.config {
        if let Err(msg) = crate::config::check_value(key, value) {
            errors.push(SpecError::new(p.key("config").key(key), msg));
        }
    }
}

fn check_behaviour(b: &Behaviour, p: &SpecPath, errors: &mut Vec<SpecError>) {
    let fields = [
        ("leak_mb_per_min", b.leak_mb_per_min),
        ("extra_memory_mb", b.extra_memory_mb),
        ("conn_leak_per_min", b.conn_leak_per_min),
        ("error_ratio", b.error_ratio),
        ("lock_hold_ms", b.lock_hold_ms),
    ];
    for (name, v) in fields {
        if !(v >= 0.0 && v.is_finite()) {
            errors.push(SpecError::new(
                p.key(name),
                format!("{name} must be a finite number >= 0"),
            ));
        }
    }
    for (name, v) in [
        ("cpu_factor", b.cpu_factor),
        ("latency_factor", b.latency_factor),
        ("publish_factor", b.publish_factor),
    ] {
        if !(v > 0.0 && v <= 1000.0) {
            errors.push(SpecError::new(
                p.key(name),
                format!("{name} must be in (0, 1000]"),
            ));
        }
    }
    if b.error_ratio > 1.0 {
        errors.push(SpecError::new(
            p.key("error_ratio"),
            "error_ratio must be <= 1",
        ));
    }
}

/// Kahn's algorithm; `None` on a cycle. Ties break by id so the order is deterministic.
fn topological_order(n: usize, edges: &[Edge]) -> Option<Vec<ServiceId>> {
    let mut indegree = vec![0usize; n];
    for e in edges {
        indegree[e.to.index()] += 1;
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(ServiceId(i as u16));
        for e in edges.iter().filter(|e| e.from.index() == i) {
            indegree[e.to.index()] -= 1;
            if indegree[e.to.index()] == 0 {
                ready.insert(e.to.index());
            }
        }
    }
    (order.len() == n).then_some(order)
}

/// Breadth-first depth from entry points over calls and topics (writer to reader).
fn depths(
    n: usize,
    edges: &[Edge],
    entries: &[Entry],
    topics: &BTreeMap<String, Topic>,
) -> Vec<u16> {
    let mut depth = vec![u16::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    for e in entries {
        depth[e.service.index()] = 0;
        queue.push_back(e.service.index());
    }
    for t in topics.values() {
        for w in &t.writers {
            if depth[w.service.index()] == u16::MAX {
                depth[w.service.index()] = 0;
                queue.push_back(w.service.index());
            }
        }
    }
    while let Some(i) = queue.pop_front() {
        let mut next: Vec<usize> = edges
            .iter()
            .filter(|e| e.from.index() == i)
            .map(|e| e.to.index())
            .collect();
        for t in topics.values() {
            if t.writers.iter().any(|w| w.service.index() == i) {
                next.extend(t.readers.iter().map(|r| r.service.index()));
            }
        }
        for j in next {
            if depth[j] == u16::MAX {
                depth[j] = depth[i] + 1;
                queue.push_back(j);
            }
        }
    }
    depth
}
